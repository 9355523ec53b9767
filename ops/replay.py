"""Replaying dead-lettered messages to the main queue, one message at a time safe against a crash.

For every message, in this order:
1. append it (body, all attributes) to the JSON-lines backup and fsync;
2. send it to the main queue (SendMessageBatch);
3. delete it from the DLQ, only if its send succeeded.

A crash between 2 and 3 leaves the message in both queues: the linker then sees it twice, which its
idempotency (keyed on what the related item is, never on the SQS message id) makes harmless. A crash before 2 loses
nothing: the message reappears in the DLQ when its visibility timeout ends. Messages read but not moved
(not matching, beyond --max, failed to send, dry run) are released with visibility 0 before the run ends.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import ClientError

from ops.errors import translate_client_error
from ops.sqs import HOLD_SECONDS, SQS_BATCH_ENTRIES, HeldMessages, receive
from ops.summary import (
    ERROR_CODE,
    ERROR_MESSAGE,
    EXHAUSTED_RETRY_CONDITION,
    RECEIVE_COUNT,
    RETRY_ATTEMPTS,
    RULE_ARN,
    SOURCE_MESSAGE_ID,
    TARGET_ARN,
    MessageFilter,
    summarise,
)

# SendMessageBatch allows 1 MiB in total today, but a queue's MaximumMessageSize may still be 256 KiB:
# 256 KiB batches are accepted everywhere.
MAX_BATCH_BYTES = 256 * 1024

# Dropped on replay, kept in the backup. These describe the failure that sent the message to a DLQ; carried
# back to the main queue they would be stale, and if the message were then redriven by SQS after
# maxReceiveCount (no linker involved) it would land in the DLQ labelled with the old failure. Dropping them
# also leaves room for the linker to write them afresh within SQS's 10-attributes-per-message limit.
FAILURE_ATTRIBUTES = frozenset(
    {
        ERROR_CODE,
        ERROR_MESSAGE,
        SOURCE_MESSAGE_ID,
        RECEIVE_COUNT,
        RULE_ARN,
        TARGET_ARN,
        EXHAUSTED_RETRY_CONDITION,
        RETRY_ATTEMPTS,
    }
)


# Tells the linker this message was delivered before (its receive count restarts at 1 on replay), so it looks
# for an item an earlier, ambiguous attempt may have created before creating one. Same name as
# functions/case_linker/processor.py's REPLAYED_ATTRIBUTE (a test holds them together).
REPLAYED_ATTRIBUTE = "REPLAYED"
MAX_MESSAGE_ATTRIBUTES = 10


def replay_attributes(attributes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The message attributes to send back: the original ones, without the failure attributes, plus REPLAYED."""
    kept: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        if name in FAILURE_ATTRIBUTES:
            continue
        kept[name] = {k: value[k] for k in ("DataType", "StringValue", "BinaryValue") if k in value}
    if REPLAYED_ATTRIBUTE in kept or len(kept) < MAX_MESSAGE_ATTRIBUTES:
        kept[REPLAYED_ATTRIBUTE] = {"DataType": "String", "StringValue": "dlq"}
    return kept


def entry_size(entry: Mapping[str, Any]) -> int:
    """Bytes an entry counts towards SQS's payload limit: body plus attribute names, types and values."""
    size = len(str(entry["MessageBody"]).encode("utf-8"))
    for name, value in entry.get("MessageAttributes", {}).items():
        size += len(name.encode("utf-8")) + len(str(value.get("DataType", "")).encode("utf-8"))
        if "StringValue" in value:
            size += len(str(value["StringValue"]).encode("utf-8"))
        if "BinaryValue" in value:
            size += len(value["BinaryValue"])
    return size


def pack_batches(
    entries: Sequence[dict[str, Any]],
    *,
    max_entries: int = SQS_BATCH_ENTRIES,
    max_bytes: int = MAX_BATCH_BYTES,
) -> Iterator[list[dict[str, Any]]]:
    """Split entries into batches of at most `max_entries` and `max_bytes` (an oversized entry goes alone)."""
    batch: list[dict[str, Any]] = []
    batch_bytes = 0
    for entry in entries:
        size = entry_size(entry)
        if batch and (len(batch) >= max_entries or batch_bytes + size > max_bytes):
            yield batch
            batch, batch_bytes = [], 0
        batch.append(entry)
        batch_bytes += size
    if batch:
        yield batch


class BackupWriter:
    """Appends messages to a JSON-lines file, fsynced before returning. The file holds customer data: mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Opened up front so an unwritable path fails before any message is touched.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file: IO[str] = os.fdopen(fd, "a", encoding="utf-8")

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        for record in records:
            self._file.write(json.dumps(record, default=_json_default, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def default_backup_path(source_url: str, now: datetime | None = None) -> Path:
    """dlq-backup-<queue>-<UTC time>.jsonl in the current directory."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return Path(f"dlq-backup-{source_url.rstrip('/').rsplit('/', 1)[-1]}-{stamp}.jsonl")


class Pacer:
    """Keeps sends at or below `rate` messages per second (None: no limit)."""

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._start: float | None = None
        self._count = 0

    @property
    def batch_entries(self) -> int:
        """Smaller batches under a low rate, so the pace is even rather than bursty."""
        return SQS_BATCH_ENTRIES if not self.rate else max(1, min(SQS_BATCH_ENTRIES, int(self.rate)))

    def wait(self, count: int) -> None:
        if not self.rate:
            return
        now = self._clock()
        if self._start is None:
            self._start = now
        delay = self._start + self._count / self.rate - now
        if delay > 0:
            self._sleep(delay)
        self._count += count


@dataclass
class Failure:
    message_id: str
    stage: str  # send | delete | release
    code: str
    detail: str


@dataclass
class ReplayReport:
    """Counts for the summary table; `failures` names what went wrong per message."""

    read: int = 0
    matched: int = 0
    sent: int = 0
    deleted: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0


class Replayer:
    """Moves matching messages from a DLQ to the main queue. Takes the SQS client; holds no global state."""

    def __init__(
        self,
        sqs: Any,
        *,
        source_url: str,
        destination_url: str,
        message_filter: MessageFilter,
        max_messages: int | None = None,
        dry_run: bool = False,
        backup: BackupWriter | None = None,
        pacer: Pacer | None = None,
        hold_seconds: int = HOLD_SECONDS,
        wait_seconds: int = 1,
        expected: int | None = None,
        on_progress: Callable[[ReplayReport], None] | None = None,
    ) -> None:
        if backup is None and not dry_run:
            raise ValueError("a replay that moves messages needs a backup")
        self.sqs = sqs
        self.source_url = source_url
        self.destination_url = destination_url
        self.message_filter = message_filter
        self.max_messages = max_messages
        self.dry_run = dry_run
        self.backup = backup
        self.pacer = pacer or Pacer(None)
        self.hold_seconds = hold_seconds
        self.wait_seconds = wait_seconds
        self.expected = expected
        self.on_progress = on_progress
        self.report = ReplayReport()
        self._held = HeldMessages()

    def run(self) -> ReplayReport:
        """Replay; whatever happens, messages this run still holds are released before returning or raising."""
        try:
            self._loop()
        finally:
            self._release_held()
        return self.report

    def _loop(self) -> None:
        report = self.report
        while True:
            remaining = None if self.max_messages is None else self.max_messages - report.matched
            if remaining is not None and remaining <= 0:
                return
            if self.expected is not None and report.read >= self.expected:
                return  # read as many as were visible at the start: skip the final empty long poll
            # Under a low --rate, read no more than one paced batch, so nothing waits long while held.
            count = (
                self.pacer.batch_entries if remaining is None else min(self.pacer.batch_entries, remaining)
            )
            batch = receive(
                self.sqs,
                self.source_url,
                count=count,
                hold_seconds=self.hold_seconds,
                wait_seconds=self.wait_seconds,
            )
            new = [m for m in batch if self._held.hold(m)]
            if not new:
                return  # empty, or only messages read already in this run: nothing visible is left
            report.read += len(new)
            to_move = []
            for message in new:
                under_max = self.max_messages is None or report.matched < self.max_messages
                if under_max and self.message_filter.matches(summarise(message)):
                    report.matched += 1
                    to_move.append(message)
                else:
                    report.skipped += 1
            if to_move and not self.dry_run:
                self._move(to_move)
            self._notify()

    def _move(self, messages: Sequence[dict[str, Any]]) -> None:
        by_id = {str(i): m for i, m in enumerate(messages)}
        entries = [self._entry(entry_id, m) for entry_id, m in by_id.items()]
        max_entries = self.pacer.batch_entries
        for batch in pack_batches(entries, max_entries=max_entries):
            self.pacer.wait(len(batch))
            if self.backup is None:
                raise RuntimeError("no backup writer")  # __init__ refuses this for a non-dry run
            self.backup.write([self._backup_record(by_id[e["Id"]]) for e in batch])
            try:
                response = self.sqs.send_message_batch(QueueUrl=self.destination_url, Entries=batch)
            except ClientError as e:
                raise translate_client_error(e, f"sending to {self.destination_url}") from e
            for failed in response.get("Failed", []):
                message = by_id[failed["Id"]]
                self._fail(message["MessageId"], "send", failed.get("Code", ""), failed.get("Message", ""))
            sent = [by_id[s["Id"]] for s in response.get("Successful", [])]
            self.report.sent += len(sent)
            if sent:
                self._delete(sent)
            self._notify()

    def _delete(self, messages: Sequence[dict[str, Any]]) -> None:
        by_id = {str(i): m for i, m in enumerate(messages)}
        entries = [{"Id": i, "ReceiptHandle": self._held.handle(m["MessageId"])} for i, m in by_id.items()]
        try:
            response = self.sqs.delete_message_batch(QueueUrl=self.source_url, Entries=entries)
        except ClientError as e:
            raise translate_client_error(e, f"deleting from {self.source_url} (messages already sent)") from e
        for ok in response.get("Successful", []):
            self._held.forget(by_id[ok["Id"]]["MessageId"])
            self.report.deleted += 1
        for failed in response.get("Failed", []):
            message = by_id[failed["Id"]]
            # Sent but still in the DLQ: a later replay sends it again, which the linker's idempotency absorbs.
            self._fail(message["MessageId"], "delete", failed.get("Code", ""), failed.get("Message", ""))

    def _entry(self, entry_id: str, message: Mapping[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message["Body"]}
        attributes = replay_attributes(message.get("MessageAttributes", {}))
        if attributes:
            entry["MessageAttributes"] = attributes
        if self.destination_url.endswith(".fifo"):
            system = message.get("Attributes", {})
            entry["MessageGroupId"] = system.get("MessageGroupId", "replay")
            entry["MessageDeduplicationId"] = system.get("MessageDeduplicationId", message["MessageId"])
        return entry

    def _backup_record(self, message: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "backed_up_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source_queue_url": self.source_url,
            "destination_queue_url": self.destination_url,
            "message_id": message["MessageId"],
            "md5_of_body": message.get("MD5OfBody"),
            "body": message["Body"],
            "message_attributes": message.get("MessageAttributes", {}),
            "attributes": message.get("Attributes", {}),
        }

    def _fail(self, message_id: str, stage: str, code: str, detail: str) -> None:
        self.report.failed += 1
        self.report.failures.append(Failure(message_id=message_id, stage=stage, code=code, detail=detail))

    def _release_held(self) -> None:
        if not len(self._held):
            return
        try:
            not_released = self._held.release_all(self.sqs, self.source_url)
        except ClientError as e:
            not_released = -1
            code = str(e.response.get("Error", {}).get("Code", ""))
            self.report.failures.append(Failure(message_id="*", stage="release", code=code, detail=str(e)))
        if not_released > 0:
            self.report.failures.append(
                Failure(
                    message_id="*",
                    stage="release",
                    code="",
                    detail=f"{not_released} messages stay hidden until their visibility timeout",
                )
            )

    def _notify(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.report)
