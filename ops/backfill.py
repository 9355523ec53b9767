"""`backfill`: enqueue the finished contacts of a past time range, as the sweeper does for its trailing window.

Each contact Connect's SearchContacts finds (by disconnect time, oldest first) becomes one message on the main
queue shaped like Connect's COMPLETED event, with `source` case-linker.backfill; the linker handles it like the
event (it looks before it links, so a contact already on its case is not linked twice). Contacts the link
ledger holds as linked or dead-lettered are skipped; the ledger keeps 15 days.

SearchContacts' documented limits, honoured here: MaxResults 1..100 a page; contacts up to two years old; a
time range of up to 8 weeks a search and the first 10,000 results of a search (documented for contact search
in the console, taken as the API's too). The range is searched a day at a time, and when a search stops short
of its TotalCount, or after 10,000 results, the next one starts at the last disconnect time it returned; more
contacts ending at one instant than a search returns stop the run (exit 1, naming the instant). Its
quota is 0.5 requests/s, burst 1, by public figures, shared with the sweeper.

The message is built here rather than imported from the function (case_linker.sweeper.contact_message): the
installed `case-linker` command ships without the function's code. tests/ops/test_ops_backfill.py checks the
linker reads both alike.

A checkpoint file (`--checkpoint`) records how far the backfill got: the end of the last range done and the
contacts enqueued in the range in progress, written after every SendMessageBatch. It is created new with mode
0600 through O_EXCL|O_NOFOLLOW, replaced atomically, and a backfill started again with the same range and
instance continues where it stopped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import stat
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ops.errors import ExitCode, OpsError, failure_code, translate_client_error
from ops.replay import Pacer

SOURCE = "case-linker.backfill"
CONTACT_DETAIL_TYPE = "Amazon Connect Contact Event"
SEARCH_PAGE_SIZE = 100
MAX_RANGE_PER_SEARCH = dt.timedelta(weeks=8)
# A search serves its first 10,000 results; whether TotalCount then counts every match or only those is not
# documented, so a search that served this many is continued whatever TotalCount says.
SEARCH_RESULT_LIMIT = 10_000
# "Two years" as whole weeks (104, 728 days), the stricter reading: a range older than that is a usage error up
# front rather than an InvalidParameterException in the middle of a run.
MAX_AGE = dt.timedelta(weeks=104)
CHUNK = dt.timedelta(days=1)
DEFAULT_SEARCH_RATE = 0.5
# Enqueued contacts a second: half the default Cases quota (2 requests/s per API), leaving the rest to live
# contact events; each contact with a case id costs the linker a ListCasesForContact and a CreateRelatedItem.
DEFAULT_RATE = 1.0
# The link ledger's contact records (docs/CONTRACTS.md); any state but no_case_id means handled.
LEDGER_PREFIX = "case-linker#contact#v1#"
NO_CASE_ID = "no_case_id"
CHECKPOINT_VERSION = 1
CHECKPOINT_MODE = 0o600


def parse_time(value: str, name: str) -> dt.datetime:
    """An ISO-8601 time (UTC when it names no zone), or a one-line usage error naming the option.

    RFC 3339 allows a lowercase `t` and `z` (2026-11-01t00:00:00z): they are read as `T` and `Z`.
    """
    try:
        parsed = dt.datetime.fromisoformat(value.strip().upper().replace("Z", "+00:00"))
    except ValueError:
        raise OpsError(
            f"{name} {value!r} is not an ISO-8601 time (e.g. 2026-11-01T00:00:00Z)", ExitCode.USAGE
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def check_range(since: dt.datetime, until: dt.datetime, now: dt.datetime) -> None:
    """Refuse a range that is empty or in the future (its age is checked once the checkpoint is read)."""
    if since >= until:
        raise OpsError("--since must be before --until", ExitCode.USAGE)
    if until > now:
        raise OpsError(
            "--until is in the future: contacts that have not ended cannot be backfilled", ExitCode.USAGE
        )


def check_age(since: dt.datetime, start: dt.datetime, now: dt.datetime) -> None:
    """Refuse to search from `start` (--since, or where a checkpoint continues) more than two years ago.

    The part of a range a checkpoint holds as done is not searched again, so a backfill started within the
    limit can be continued after its --since has aged past it.
    """
    if start >= now - MAX_AGE:
        return
    limit = (now - MAX_AGE).date()
    if start == since:
        raise OpsError(
            f"--since is more than two years ago ({limit}): SearchContacts finds contacts up to two years old",
            ExitCode.USAGE,
        )
    raise OpsError(
        f"the checkpoint continues from {start.isoformat()}, more than two years ago ({limit}): SearchContacts "
        "finds contacts up to two years old",
        ExitCode.USAGE,
        hint="start a backfill of the rest with a --since within the last two years",
    )


def _cut_off(served: int, total: Any) -> bool:
    """Whether a search whose pages ended after `served` results left some out."""
    return served >= SEARCH_RESULT_LIMIT or served < int(total or 0)


# --- the checkpoint -----------------------------------------------------------------------------------------


@dataclass
class Progress:
    """How far a backfill got, and what it counted so far (across resumed runs)."""

    instance_arn: str
    since: dt.datetime
    until: dt.datetime
    done_until: dt.datetime
    current: set[str] = field(default_factory=set)  # contacts enqueued in the range in progress
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.done_until >= self.until

    def as_json(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "instanceArn": self.instance_arn,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "doneUntil": self.done_until.isoformat(),
            "current": sorted(self.current),
            "counts": self.counts,
        }


class Checkpoint:
    """The file that lets an interrupted backfill continue: read at start, replaced after every batch."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, instance_arn: str, since: dt.datetime, until: dt.datetime) -> Progress | None:
        """The progress saved for this very backfill, None when there is no file yet."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise OpsError(
                f"cannot read the checkpoint {self.path}: {e.strerror} (a symbolic link?)", ExitCode.USAGE
            ) from e
        with os.fdopen(fd, encoding="utf-8") as handle:
            _check_owned_regular(self.path, os.fstat(handle.fileno()))
            try:
                saved = json.load(handle)
                progress = Progress(
                    instance_arn=str(saved["instanceArn"]),
                    since=dt.datetime.fromisoformat(saved["since"]),
                    until=dt.datetime.fromisoformat(saved["until"]),
                    done_until=dt.datetime.fromisoformat(saved["doneUntil"]),
                    current={str(i) for i in saved.get("current", [])},
                    counts={str(k): int(v) for k, v in saved.get("counts", {}).items()},
                )
                version = saved["version"]
            except (ValueError, KeyError, TypeError, AttributeError):
                raise OpsError(f"{self.path} is not a backfill checkpoint", ExitCode.USAGE) from None
        if version != CHECKPOINT_VERSION or (progress.instance_arn, progress.since, progress.until) != (
            instance_arn,
            since,
            until,
        ):
            raise OpsError(
                f"the checkpoint {self.path} belongs to another backfill ({progress.instance_arn}, "
                f"{progress.since.isoformat()} to {progress.until.isoformat()})",
                ExitCode.USAGE,
                hint="pass the same --since, --until and instance, or another --checkpoint path",
            )
        return progress

    def check_writable(self) -> None:
        """Refuse, before any work, a path that is a symbolic link, a folder, or someone else's file."""
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            if not self.path.parent.is_dir():
                raise OpsError(f"no folder {self.path.parent} for the checkpoint", ExitCode.USAGE) from None
            return
        if stat.S_ISLNK(info.st_mode):
            raise OpsError(f"the checkpoint path {self.path} is a symbolic link: refused", ExitCode.USAGE)
        _check_owned_regular(self.path, info)

    def save(self, progress: Progress) -> None:
        """Write a new file beside the checkpoint (0600, O_EXCL|O_NOFOLLOW), fsync it, and rename it over."""
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        try:
            fd = os.open(temporary, flags, CHECKPOINT_MODE)
        except OSError as e:
            raise OpsError(
                f"cannot write the checkpoint beside {self.path}: {e.strerror}", ExitCode.FAILED
            ) from e
        try:
            os.fchmod(fd, CHECKPOINT_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(progress.as_json(), handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            # rename() replaces a link at the path itself, never the file it points to.
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


def _check_owned_regular(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise OpsError(f"the checkpoint path {path} is not a regular file: refused", ExitCode.USAGE)
    if info.st_uid != os.geteuid():
        raise OpsError(
            f"the checkpoint {path} belongs to user id {info.st_uid}, not to you: refused", ExitCode.USAGE
        )


# --- the message ----------------------------------------------------------------------------------------------


def contact_message(summary: Mapping[str, Any], instance_arn: str, now: dt.datetime) -> str:
    """A SearchContacts result as the COMPLETED event Connect would have published, in an EventBridge envelope."""
    _, _, _, region, account, _ = instance_arn.split(":", 5)
    contact_id = str(summary["Id"])
    agent, queue = summary.get("AgentInfo") or {}, summary.get("QueueInfo") or {}
    detail = {
        "eventType": "COMPLETED",
        "contactId": contact_id,
        "initialContactId": summary.get("InitialContactId") or contact_id,
        "previousContactId": summary.get("PreviousContactId"),
        "channel": summary.get("Channel"),
        "instanceArn": instance_arn,
        "initiationMethod": summary.get("InitiationMethod"),
        "initiationTimestamp": _iso(summary.get("InitiationTimestamp")),
        "disconnectTimestamp": _iso(summary.get("DisconnectTimestamp")),
        "agentInfo": {"agentArn": f"{instance_arn}/agent/{agent['Id']}"} if agent.get("Id") else None,
        "queueInfo": {"queueArn": f"{instance_arn}/queue/{queue['Id']}"} if queue.get("Id") else None,
        "tags": dict(summary.get("Tags") or {}),
    }
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": CONTACT_DETAIL_TYPE,
            "source": SOURCE,
            "account": account,
            "time": _iso(now),
            "region": region,
            "resources": [instance_arn, f"{instance_arn}/contact/{contact_id}"],
            "detail": {k: v for k, v in detail.items() if v is not None},
        },
        separators=(",", ":"),
    )


def _iso(when: Any) -> str | None:
    if not isinstance(when, dt.datetime):
        return None
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the backfill ---------------------------------------------------------------------------------------------


@dataclass
class Counts:
    searches: int = 0
    found: int = 0
    already_handled: int = 0
    enqueued: int = 0

    def add(self, other: Mapping[str, int]) -> None:
        for key, value in other.items():
            if hasattr(self, key):
                setattr(self, key, getattr(self, key) + int(value))

    def as_dict(self) -> dict[str, int]:
        return {
            "searches": self.searches,
            "found": self.found,
            "already_handled": self.already_handled,
            "enqueued": self.enqueued,
        }


class Backfill:
    """Search, skip what the ledger holds as handled, enqueue; report progress after every batch.

    A run stopped by Ctrl-C or by an error records that (`stopped`, `stopped_by`) before the exception goes on,
    as a DLQ replay does (ops/replay.py), so the caller can still say what was done. A dry run counts what it
    would do in `counts` only: the progress keeps the counts of the runs that enqueued.
    """

    def __init__(
        self,
        *,
        connect: Any,
        sqs: Any,
        dynamodb: Any | None,
        table_name: str | None,
        instance_arn: str,
        queue_url: str,
        search_pacer: Pacer,
        send_pacer: Pacer,
        dry_run: bool,
        progress: Progress,
        checkpoint: Checkpoint | None,
        on_progress: Callable[[dt.datetime, Counts], None] = lambda _at, _counts: None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        page_size: int = SEARCH_PAGE_SIZE,
    ) -> None:
        self._connect = connect
        self._sqs = sqs
        self._dynamodb = dynamodb
        self._table = table_name
        self._instance_arn = instance_arn
        self._instance_id = instance_arn.rsplit("/", 1)[-1]
        self._queue_url = queue_url
        self._search_pacer = search_pacer
        self._send_pacer = send_pacer
        self._dry_run = dry_run
        self.progress = progress
        self._checkpoint = checkpoint
        self.on_progress = on_progress
        self._clock = clock
        self._page_size = page_size
        self.counts = Counts()  # this run's
        self.stopped: str | None = None  # interrupted | error
        self.stopped_by: str | None = None  # the error's code, never its message

    def run(self) -> None:
        """Work from where the progress says until the end of the range, a day at a time."""
        try:
            while not self.progress.complete:
                self._range(
                    self.progress.done_until, min(self.progress.done_until + CHUNK, self.progress.until)
                )
        except KeyboardInterrupt:
            self.stopped = "interrupted"
            raise
        except Exception as e:  # recorded, then raised on unchanged
            self.stopped, self.stopped_by = "error", failure_code(e)
            raise

    def _range(self, start: dt.datetime, end: dt.datetime) -> None:
        """Every contact that ended in [start, end], oldest first.

        One search returns its first 10,000 results only: when its pages end short of its TotalCount, or after
        that many, a new search starts at the last disconnect time seen; the contacts of that instant already
        enqueued are in `progress.current`, so they are left out, also after an interruption.
        """
        page = self._search(start, end, None)
        served = 0
        # The latest instant seen and the contacts of it, across pages: where a search is continued, or where the
        # next day's search starts (both ends are inclusive), those are found again and must be left out.
        instant: Any = None
        at_instant: set[str] = set()
        while True:
            contacts = page.get("Contacts", [])
            served += len(contacts)
            self._page(contacts)
            for contact in contacts:
                if contact.get("DisconnectTimestamp") != instant:
                    instant, at_instant = contact.get("DisconnectTimestamp"), set()
                at_instant.add(str(contact["Id"]))
            if page.get("NextToken"):
                page = self._search(start, end, page["NextToken"])
            elif not _cut_off(served, page.get("TotalCount")) or not isinstance(instant, dt.datetime):
                break
            elif instant > start:
                # The search left some out (the last page may be empty): search on from the latest instant.
                self._advance(instant, keep=at_instant)
                start, served = instant, 0
                page = self._search(start, end, None)
            else:
                # Every result of the search ended at its start: a search from there returns the same ones.
                raise OpsError(
                    f"more contacts ended at {start.isoformat()} than one search returns ({SEARCH_RESULT_LIMIT:,}): "
                    "the rest of them cannot be listed",
                    ExitCode.FAILED,
                    hint="backfill the rest of the range with a --since after that instant",
                )
        self._advance(end, keep=at_instant if instant == end else set())

    def _advance(self, done_until: dt.datetime, keep: set[str]) -> None:
        """Everything before `done_until` is done; `keep`: contacts of that very instant already handled."""
        self.progress.done_until = done_until
        self.progress.current &= keep
        self._save()
        self.on_progress(done_until, self.counts)

    def _page(self, contacts: list[dict[str, Any]]) -> None:
        # Contacts of the instant a search was continued from were handled before it: leave them out.
        fresh = [c for c in contacts if str(c["Id"]) not in self.progress.current]
        self._count(found=len(fresh))
        handled = self._handled([str(c["Id"]) for c in fresh])
        todo = []
        for contact in fresh:
            if str(contact["Id"]) in handled:
                self._count(already_handled=1)
                self.progress.current.add(str(contact["Id"]))
            else:
                todo.append(contact)
        size = self._send_pacer.batch_entries
        for start in range(0, len(todo), size):
            batch = todo[start : start + size]
            if not self._dry_run:
                self._send_pacer.wait(len(batch))
                self._send(batch)
            self.progress.current.update(str(c["Id"]) for c in batch)
            self._count(enqueued=len(batch))
            self._save()
        if contacts and isinstance(contacts[-1].get("DisconnectTimestamp"), dt.datetime):
            self.on_progress(contacts[-1]["DisconnectTimestamp"], self.counts)

    def _count(self, **values: int) -> None:
        self.counts.add(values)
        if self._dry_run:
            return
        for key, value in values.items():
            self.progress.counts[key] = self.progress.counts.get(key, 0) + value

    def _save(self) -> None:
        if self._checkpoint is not None and not self._dry_run:
            self._checkpoint.save(self.progress)

    def _search(self, start: dt.datetime, end: dt.datetime, token: str | None) -> dict[str, Any]:
        self._search_pacer.wait(1)
        params: dict[str, Any] = {
            "InstanceId": self._instance_id,
            "TimeRange": {"Type": "DISCONNECT_TIMESTAMP", "StartTime": start, "EndTime": end},
            "Sort": {"FieldName": "DISCONNECT_TIMESTAMP", "Order": "ASCENDING"},
            "MaxResults": self._page_size,
        }
        if token:
            params["NextToken"] = token
        try:
            response: dict[str, Any] = self._connect.search_contacts(**params)
        except ClientError as e:
            raise translate_client_error(e, "Connect SearchContacts") from e
        self._count(searches=1)
        return response

    def _handled(self, contact_ids: list[str]) -> set[str]:
        """Contacts the ledger holds as linked or dead-lettered (BatchGetItem, 100 keys a call)."""
        if self._dynamodb is None or self._table is None or not contact_ids:
            return set()
        handled: set[str] = set()
        for start in range(0, len(contact_ids), 100):
            request: dict[str, Any] = {
                self._table: {
                    "Keys": [
                        {"id": {"S": f"{LEDGER_PREFIX}{self._instance_id}#{c}"}}
                        for c in contact_ids[start : start + 100]
                    ],
                    "ConsistentRead": True,
                    "ProjectionExpression": "id, #s",
                    "ExpressionAttributeNames": {"#s": "state"},
                }
            }
            while request:
                try:
                    response = self._dynamodb.batch_get_item(RequestItems=request)
                except ClientError as e:
                    raise translate_client_error(e, "reading the link ledger") from e
                for item in response.get("Responses", {}).get(self._table, []):
                    if item.get("state", {}).get("S") != NO_CASE_ID:
                        handled.add(item["id"]["S"].rsplit("#", 1)[-1])
                request = response.get("UnprocessedKeys") or {}
        return handled

    def _send(self, batch: list[dict[str, Any]]) -> None:
        now = self._clock()
        entries = [
            {"Id": str(i), "MessageBody": contact_message(c, self._instance_arn, now)}
            for i, c in enumerate(batch)
        ]
        for _ in range(3):
            try:
                response = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            except ClientError as e:
                raise translate_client_error(e, f"sending to {self._queue_url}") from e
            failed = {f["Id"] for f in response.get("Failed", [])}
            if not failed:
                return
            entries = [e for e in entries if e["Id"] in failed]
        raise OpsError(
            f"SQS refused {len(entries)} messages three times; nothing after them was sent", ExitCode.FAILED
        )
