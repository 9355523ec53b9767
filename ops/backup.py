"""JSON-lines backups of DLQ messages (full bodies: customer data), written safely and read back for `restore`.

A backup file is created with O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600: an existing file or a symlink at the path
(even the predictable default name) is refused, so a backup can never be written through a link an attacker
planted, nor into a world-readable file. `append=True` (`--append-backup`) adds to an existing file only if it is a
regular file (not a symlink) owned by the user running the tool, and forces its mode to 0600.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ops.attributes import ATTRIBUTE_NAME
from ops.errors import ExitCode, OpsError

BACKUP_MODE = 0o600


class BackupWriter:
    """Appends message records to a JSON-lines file, fsynced before `write` returns."""

    def __init__(self, path: Path, *, append: bool = False) -> None:
        self.path = path
        # Opened up front so an unusable path fails before any message is touched.
        fd = _open_append(path) if append else _create(path)
        self._file: IO[str] = os.fdopen(fd, "a", encoding="utf-8")
        self._failed = False

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Append and fsync; raises OSError when the disk refuses."""
        try:
            for record in records:
                self._file.write(json.dumps(record, default=_json_default, ensure_ascii=False) + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError:
            self._failed = True
            raise

    def close(self) -> None:
        """Close the file. After a failed write the unwritten rest fails again here: that error was raised
        (and reported) already, so it is not raised a second time over the report."""
        try:
            self._file.close()
        except OSError:
            if not self._failed:
                raise


def check_backup_path(path: Path, *, append: bool = False) -> None:
    """Refuse, before anyone is asked anything, a path BackupWriter would refuse; it checks again when opening."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        # A new file: what a backup is, if it can be created where asked.
        folder = path.parent
        if not folder.is_dir():
            raise OpsError(
                f"cannot create the backup file {path}: its folder does not exist", ExitCode.USAGE
            ) from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OpsError(
                f"cannot create the backup file {path}: no permission to write in its folder", ExitCode.USAGE
            ) from None
        return
    except OSError as e:
        raise OpsError(f"cannot use the backup path {path}: {e.strerror}", ExitCode.USAGE) from e
    if stat.S_ISLNK(info.st_mode):
        raise _symlink_refused(path)
    if not append:
        raise _existing_refused(path, "a file")
    problem = _not_appendable(info)
    if problem:
        raise OpsError(f"the backup path {path} {problem}: refused", ExitCode.USAGE)


def _symlink_refused(path: Path) -> OpsError:
    return OpsError(f"the backup path {path} is a symbolic link: refused", ExitCode.USAGE)


def _existing_refused(path: Path, kind: str) -> OpsError:
    return OpsError(
        f"the backup path {path} is already {kind}: refused (backups are always new files)",
        ExitCode.USAGE,
        hint="pick another --backup path, or pass --append-backup to add to your own existing backup",
    )


def _not_appendable(info: os.stat_result) -> str | None:
    """Why an existing file may not take more backup lines (None: it may)."""
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if info.st_uid != os.geteuid():
        return f"belongs to user id {info.st_uid}, not to you ({os.geteuid()})"
    return None


def _create(path: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_APPEND
    try:
        fd = os.open(path, flags, BACKUP_MODE)
    except FileExistsError:
        raise _existing_refused(path, "a symbolic link" if path.is_symlink() else "a file") from None
    except OSError as e:
        raise OpsError(f"cannot create the backup file {path}: {e.strerror}", ExitCode.USAGE) from e
    os.fchmod(fd, BACKUP_MODE)  # the umask could have taken bits away; never wider than 0600 anyway
    return fd


def _open_append(path: Path) -> int:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_APPEND, BACKUP_MODE)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _symlink_refused(path) from e
        raise OpsError(f"cannot open the backup file {path}: {e.strerror}", ExitCode.USAGE) from e
    problem = _not_appendable(os.fstat(fd))
    if problem:
        os.close(fd)
        raise OpsError(f"the backup path {path} {problem}: refused", ExitCode.USAGE)
    os.fchmod(fd, BACKUP_MODE)
    return fd


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def default_backup_path(source_url: str, action: str = "backup", now: datetime | None = None) -> Path:
    """dlq-backup-<action>-<queue>-<UTC time>.jsonl here; .gitignore keeps dlq-backup-* out of git."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return Path(f"dlq-backup-{action}-{source_url.rstrip('/').rsplit('/', 1)[-1]}-{stamp}.jsonl")


def backup_record(
    message: Mapping[str, Any], *, source_url: str, destination_url: str | None
) -> dict[str, Any]:
    """One backup line: the message as received from the DLQ, every attribute included."""
    return {
        "backed_up_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source_queue_url": source_url,
        "destination_queue_url": destination_url,
        "message_id": message["MessageId"],
        "md5_of_body": message.get("MD5OfBody"),
        "body": message["Body"],
        "message_attributes": message.get("MessageAttributes", {}),
        "attributes": message.get("Attributes", {}),
    }


@dataclass(frozen=True, kw_only=True)
class BackedUp:
    """One message read back from a backup."""

    line: int
    message_id: str
    source_queue_url: str
    body: str
    message_attributes: dict[str, Any]


def read_backup(path: Path) -> Iterator[BackedUp]:
    """The records of a backup file; OpsError (usage) naming the line and field of a malformed one, never a value."""
    try:
        handle = path.open("rb")
    except OSError as e:
        raise OpsError(f"cannot read the backup file {path}: {e.strerror}", ExitCode.USAGE) from e
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = _record(number, line)
            except MalformedRecord as e:
                raise OpsError(f"{path} line {number} is not a backup record: {e}", ExitCode.USAGE) from None
            yield record


class MalformedRecord(ValueError):
    """A backup line that is not a record; the message names the field and the problem, never a value."""


def _record(number: int, line: bytes) -> BackedUp:
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise MalformedRecord("it is not UTF-8 text") from None
    except (ValueError, RecursionError):
        raise MalformedRecord("it is not JSON") from None
    if not isinstance(record, dict):
        raise MalformedRecord("it is not a JSON object (message_id, source_queue_url, body)")
    return BackedUp(
        line=number,
        message_id=_text(record, "message_id"),
        source_queue_url=_text(record, "source_queue_url"),
        body=_text(record, "body"),
        message_attributes=_attributes(record.get("message_attributes")),
    )


def _text(record: Mapping[str, Any], name: str) -> str:
    if name not in record:
        raise MalformedRecord(f"{name} is missing (a record has message_id, source_queue_url, body)")
    value = record[name]
    if not isinstance(value, str):
        raise MalformedRecord(f"{name} is not text")
    return value


def _attributes(value: Any) -> dict[str, Any]:
    """message_attributes as a received message has them: {name: {DataType, StringValue | BinaryValue}}."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedRecord("message_attributes is not an object of attributes")
    for name, attribute in value.items():
        if not ATTRIBUTE_NAME.fullmatch(name):  # never named back: it could be data
            raise MalformedRecord("a message attribute has a name SQS does not take")
        _check_attribute(f"message_attributes.{name}", attribute)
    return value


def _check_attribute(field: str, attribute: Any) -> None:
    if not isinstance(attribute, dict):
        raise MalformedRecord(f"{field} is not an attribute (DataType, StringValue or BinaryValue)")
    if not isinstance(attribute.get("DataType"), str):
        raise MalformedRecord(f"{field}.DataType is missing or not text")
    string, binary = attribute.get("StringValue"), attribute.get("BinaryValue")
    if (string is None) == (binary is None):
        raise MalformedRecord(f"{field} needs exactly one of StringValue, BinaryValue")
    if string is not None and not isinstance(string, str):
        raise MalformedRecord(f"{field}.StringValue is not text")
    if binary is not None:
        try:
            base64.b64decode(binary, validate=True)
        except (TypeError, ValueError):
            raise MalformedRecord(f"{field}.BinaryValue is not base64") from None
