"""Working through a DLQ: replay matching messages to the main queue, or discard them. Safe against a crash.

Both read the DLQ to its end (or to `--max` matches). A run holds what it reads (invisible to others) and
releases whatever it did not move before it returns. The end is a long-poll receive that returns nothing. Before
its hold ends, what the run has read is held again, so it is not read twice however deep the queue; a receive
that returns only messages this run has seen already (held again too late: a failed call) is not the end: they
are held again and reading goes on.
Messages that arrived in the DLQ after the run started (a replayed message failing again) are left alone and
counted, so a run never chases its own failures.

Replay, for every message, in this order:
1. append it (body, all attributes) to the JSON-lines backup and fsync;
2. send it to the main queue (SendMessageBatch) with the attributes docs/CONTRACTS.md prescribes: the reason
   dropped, the originals unpacked, `REPLAYED=dlq` always (ops/attributes.py);
3. delete it from the DLQ, only if its send succeeded.
A crash between 2 and 3 leaves the message in both queues: the linker's ledger makes the second delivery
harmless. A crash before 2 loses nothing: the message reappears in the DLQ when its hold ends.

Discard: 1. backup, 3. delete.

A run stopped by Ctrl-C or by an error records that in its report (`stopped`, `stopped_by`, `in_doubt`) before
the exception goes on, so the caller can still say what was done; such a run is never reported complete.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError

from ops.attributes import UnreadableOriginals, replay_attributes
from ops.backup import BackupWriter, backup_record
from ops.errors import ExitCode, OpsError, failure_code, translate_botocore_error, translate_client_error
from ops.sqs import DEFAULT_MAX_MESSAGE_BYTES, HOLD_SECONDS, SQS_BATCH_ENTRIES, HeldMessages, receive
from ops.summary import MessageFilter, summarise

# SendMessageBatch allows 1 MiB in total today, but a queue's MaximumMessageSize may still be 256 KiB:
# 256 KiB batches are accepted everywhere.
MAX_BATCH_BYTES = 256 * 1024


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
        if self._start is None or self._start + self._count / self.rate < now:
            # Idle since the last slot (a slow read, a long search): time not used is not saved up for a burst.
            self._start, self._count = now, 0
        delay = self._start + self._count / self.rate - now
        if delay > 0:
            self._sleep(delay)
        self._count += count


@dataclass
class Failure:
    message_id: str
    stage: str  # attributes | size | send | delete | release
    code: str
    detail: str


@dataclass
class ReplayReport:
    """What a run did. `left_matching`: matched but still in the DLQ (refused, failed to send or delete, or not
    acted on yet when the run stopped). `stopped`: why the run ended before the end of the DLQ (None: it did not
    stop early); `stopped_by`: the error's code, never its message. `in_doubt`: messages being sent, or sent and
    not yet deleted, when the run stopped: they may be on both queues."""

    read: int = 0
    matched: int = 0
    sent: int = 0
    deleted: int = 0
    failed: int = 0
    skipped: int = 0
    arrived_during_run: int = 0
    reached_max: bool = False
    failures: list[Failure] = field(default_factory=list)
    dry_run: bool = False
    stopped: str | None = None  # interrupted | error
    stopped_by: str | None = None
    in_doubt: int = 0

    @property
    def ok(self) -> bool:
        return self.failed == 0

    @property
    def left_matching(self) -> int:
        # Every matched message is deleted or still in the DLQ: counted from what is known to be gone, so a run
        # that stopped part-way counts what it read and never acted on too.
        return 0 if self.dry_run else self.matched - self.deleted

    @property
    def complete(self) -> bool:
        """Read to the end of the DLQ, and every matching message done."""
        return self.stopped is None and not self.reached_max and self.left_matching == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "matched": self.matched,
            "sent": self.sent,
            "deleted": self.deleted,
            "failed": self.failed,
            "skipped": self.skipped,
            "arrived_during_run": self.arrived_during_run,
            "left_matching": self.left_matching,
            "reached_max": self.reached_max,
        }


class DlqScan:
    """Reads a DLQ to its end and hands matching messages, a paced batch at a time, to `_act`."""

    def __init__(
        self,
        sqs: Any,
        *,
        source_url: str,
        message_filter: MessageFilter,
        max_messages: int | None = None,
        dry_run: bool = False,
        backup: BackupWriter | None = None,
        pacer: Pacer | None = None,
        hold_seconds: int = HOLD_SECONDS,
        wait_seconds: int = 1,
        expected: int | None = None,
        on_progress: Callable[[ReplayReport], None] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if backup is None and not dry_run:
            raise ValueError("a run that moves or deletes messages needs a backup")
        self.sqs = sqs
        self.source_url = source_url
        self.message_filter = message_filter
        self.max_messages = max_messages
        self.dry_run = dry_run
        self.backup = backup
        self.pacer = pacer or Pacer(None)
        self.hold_seconds = hold_seconds
        self.wait_seconds = wait_seconds
        self.expected = expected  # the DLQ's visible depth at the start: a progress total, never a stop rule
        self.on_progress = on_progress
        self.report = ReplayReport(dry_run=dry_run)
        self._held = HeldMessages()
        self._in_doubt = 0  # messages of the batch being sent, or sent and not yet deleted
        self._now = now
        self._started_ms = 0

    def run(self) -> ReplayReport:
        """Work through the DLQ; messages this run still holds are released before returning or raising.

        A run stopped by Ctrl-C or by an error records why in its report before the exception goes on.
        """
        self._started_ms = int(self._now().timestamp() * 1000)
        try:
            self._loop()
        except KeyboardInterrupt:
            self._stop("interrupted", None)
            raise
        except Exception as e:  # recorded, then raised on unchanged
            self._stop("error", failure_code(e))
            raise
        finally:
            self._release_held()
        return self.report

    def _stop(self, why: str, code: str | None) -> None:
        self.report.stopped = why
        self.report.stopped_by = code
        self.report.in_doubt = self._in_doubt

    def _loop(self) -> None:
        report = self.report
        while True:
            remaining = None if self.max_messages is None else self.max_messages - report.matched
            if remaining is not None and remaining <= 0:
                report.reached_max = True
                return
            # What this run holds stays hidden (held again before its hold ends), so it is not read twice.
            self._held.extend(self.sqs, self.source_url, hold_seconds=self.hold_seconds)
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
            if not batch:
                return  # a long poll found nothing visible: the end of the queue
            # Seen already: their hold ran out and they came back. Held again (new receipt handle), not the end.
            new = [m for m in batch if self._held.hold(m)]
            to_act = []
            for message in new:
                if self._arrived_during_run(message):
                    report.arrived_during_run += 1
                    continue
                report.read += 1
                under_max = self.max_messages is None or report.matched < self.max_messages
                if under_max and self.message_filter.matches(summarise(message)):
                    report.matched += 1
                    to_act.append(message)
                else:
                    report.skipped += 1
            if to_act and not self.dry_run:
                self._act(to_act)
            self._notify()

    def _arrived_during_run(self, message: Mapping[str, Any]) -> bool:
        sent = message.get("Attributes", {}).get("SentTimestamp")
        try:
            return int(sent) >= self._started_ms
        except (TypeError, ValueError):
            return False

    def _act(self, messages: Sequence[dict[str, Any]]) -> None:
        raise NotImplementedError

    # --- shared steps ------------------------------------------------------------------------------------

    def _write_backup(self, messages: Sequence[Mapping[str, Any]], destination_url: str | None) -> None:
        if self.backup is None:
            raise RuntimeError("no backup writer")  # __init__ refuses this for a run that changes anything
        records = [
            backup_record(m, source_url=self.source_url, destination_url=destination_url) for m in messages
        ]
        try:
            self.backup.write(records)
        except OSError as e:
            raise OpsError(
                f"writing the backup {self.backup.path} failed ({e.strerror or e}); stopped before changing "
                f"anything more: the {len(messages)} messages not backed up are still in the DLQ",
                ExitCode.FAILED,
                code=errno.errorcode.get(e.errno or 0, type(e).__name__),
            ) from e

    def _delete(self, messages: Sequence[Mapping[str, Any]], after: str) -> None:
        by_id = {str(i): m for i, m in enumerate(messages)}
        entries = [{"Id": i, "ReceiptHandle": self._held.handle(m["MessageId"])} for i, m in by_id.items()]
        doing = f"DeleteMessageBatch on the DLQ {self.source_url} ({after})"
        try:
            response = self.sqs.delete_message_batch(QueueUrl=self.source_url, Entries=entries)
        except ClientError as e:
            raise translate_client_error(e, doing) from e
        except BotoCoreError as e:
            raise translate_botocore_error(e, doing) from e
        for ok in response.get("Successful", []):
            self._held.forget(by_id[ok["Id"]]["MessageId"])
            self.report.deleted += 1
        for failed in response.get("Failed", []):
            message = by_id[failed["Id"]]
            self._fail(message["MessageId"], "delete", failed.get("Code", ""), failed.get("Message", ""))

    def _fail(self, message_id: str, stage: str, code: str, detail: str) -> None:
        self.report.failed += 1
        self.report.failures.append(Failure(message_id=message_id, stage=stage, code=code, detail=detail))

    def _release_held(self) -> None:
        if not len(self._held):
            return
        try:
            not_released = self._held.release_all(self.sqs, self.source_url)
        except (ClientError, BotoCoreError) as e:
            self.report.failures.append(
                Failure(
                    message_id="*",
                    stage="release",
                    code=type(e).__name__,
                    detail=f"held messages stay hidden for up to {self.hold_seconds} s",
                )
            )
            return
        if not_released > 0:
            self.report.failures.append(
                Failure(
                    message_id="*",
                    stage="release",
                    code="",
                    detail=f"{not_released} messages stay hidden for up to {self.hold_seconds} s",
                )
            )

    def _notify(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.report)


class Replayer(DlqScan):
    """Moves matching messages from a DLQ to the main queue, marked as replays. Holds no global state."""

    def __init__(
        self,
        sqs: Any,
        *,
        source_url: str,
        destination_url: str,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        **options: Any,
    ) -> None:
        super().__init__(sqs, source_url=source_url, **options)
        self.destination_url = destination_url
        self.max_message_bytes = max_message_bytes

    def _act(self, messages: Sequence[dict[str, Any]]) -> None:
        entries: list[dict[str, Any]] = []
        by_id: dict[str, dict[str, Any]] = {}
        for index, message in enumerate(messages):
            entry = self._entry(str(index), message)
            if entry is not None:
                entries.append(entry)
                by_id[entry["Id"]] = message
        for batch in pack_batches(entries, max_entries=self.pacer.batch_entries):
            batch_messages = [by_id[e["Id"]] for e in batch]
            self.pacer.wait(len(batch))
            self._write_backup(batch_messages, self.destination_url)
            self._in_doubt = len(batch)  # from here until the delete, the batch may be on both queues
            response = self._send(batch)
            for failed in response.get("Failed", []):
                message = by_id[failed["Id"]]
                self._fail(message["MessageId"], "send", failed.get("Code", ""), failed.get("Message", ""))
            sent = [by_id[s["Id"]] for s in response.get("Successful", [])]
            self.report.sent += len(sent)
            self._in_doubt = len(sent)
            if sent:
                self._delete(
                    sent, after="the messages were sent to the main queue: they are now in both queues"
                )
            self._in_doubt = 0
            self._notify()

    def _send(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        doing = f"SendMessageBatch to the main queue {self.destination_url}"
        try:
            response: dict[str, Any] = self.sqs.send_message_batch(
                QueueUrl=self.destination_url, Entries=batch
            )
        except ClientError as e:
            self._in_doubt = 0  # SQS answered: nothing was taken
            raise translate_client_error(e, f"{doing} failed; this batch stays in the DLQ") from e
        except HTTPClientError as e:
            # The request went out and no answer came back (read timeout, connection closed): SQS may have
            # taken the messages. botocore's timeouts are OSErrors too, which is why this is caught by type here.
            raise OpsError(
                f"{doing} got no answer ({type(e).__name__}): the {len(batch)} messages of this batch may or "
                "may not be on the main queue; they are backed up and still in the DLQ, so a second replay may "
                "send them again, which the linker's ledger makes harmless",
                ExitCode.FAILED,
                code=type(e).__name__,
            ) from e
        except BotoCoreError as e:
            self._in_doubt = 0  # the request never went out
            raise translate_botocore_error(
                e, f"{doing} could not be sent; this batch stays in the DLQ"
            ) from e
        return response

    def _entry(self, entry_id: str, message: Mapping[str, Any]) -> dict[str, Any] | None:
        """The SendMessageBatch entry, or None (a counted failure) when the message cannot be sent marked."""
        try:
            attributes = replay_attributes(message.get("MessageAttributes", {}))
        except UnreadableOriginals as e:
            self._fail(message["MessageId"], "attributes", "UnreadableOriginals", str(e))
            return None
        entry: dict[str, Any] = {
            "Id": entry_id,
            "MessageBody": message["Body"],
            "MessageAttributes": attributes,
        }
        if entry_size(entry) > self.max_message_bytes:
            self._fail(
                message["MessageId"],
                "size",
                "MessageTooLong",
                f"with REPLAYED it would be {entry_size(entry)} bytes, over the main queue's "
                f"{self.max_message_bytes}; left in the DLQ rather than sent unmarked",
            )
            return None
        if self.destination_url.endswith(".fifo"):
            # Never the message's own deduplication id: a FIFO queue accepts a send that reuses one within five
            # minutes of its first use and then drops it, and the replay would delete the message from the DLQ.
            # The DLQ message's id is new to the main queue, and the same for a second replay of this message.
            system = message.get("Attributes", {})
            entry["MessageGroupId"] = system.get("MessageGroupId", "replay")
            entry["MessageDeduplicationId"] = f"replay-{message['MessageId']}"
        return entry


class Discarder(DlqScan):
    """Deletes matching messages from a DLQ after backing them up (poison messages nobody will fix)."""

    def _act(self, messages: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(messages), SQS_BATCH_ENTRIES):
            batch = messages[start : start + SQS_BATCH_ENTRIES]
            self._write_backup(batch, None)
            self._delete(batch, after="the messages are backed up")
            self._notify()
