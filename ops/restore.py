"""`dlq restore`: put what a backup holds back on the DLQ it came from, skipping what is already there.

A backup line is a DLQ message as it was received (body and every attribute, the reason included), so a restored
message is the same DLQ message again: inspect, replay or discard it as any other. "Already there" means a
message with the same id is still on the queue (a replay or discard that stopped before deleting it), or one
with the same body and attributes (restored before: restoring gives a new id). Messages held by another reader
while the queue is read cannot be compared; the plan counts them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError

from ops.attributes import pack, sendable
from ops.backup import BackedUp
from ops.errors import ExitCode, OpsError, translate_botocore_error, translate_client_error
from ops.replay import Failure, pack_batches
from ops.sqs import HOLD_SECONDS, QueueDepth, peek

# Read "everything" when comparing against a queue; a DLQ this deep is a different conversation.
_READ_ALL = 1_000_000


def identity(body: str, attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """What makes two DLQ messages the same message: body and attributes (in SendMessage's shape)."""
    digest = hashlib.sha256(body.encode("utf-8"))
    digest.update(b"\0")
    digest.update(pack({name: sendable(value) for name, value in attributes.items()}).encode("utf-8"))
    return digest.hexdigest()


@dataclass
class RestorePlan:
    """What a restore to one queue would send."""

    queue: QueueDepth
    to_send: list[BackedUp]
    in_backup: int
    repeated_in_backup: int
    already_on_queue: int
    not_compared: int  # in flight on the queue while it was read: held by another reader

    def describe(self) -> str:
        """One line for the person about to confirm: counts and the queue (name, account, Region)."""
        return (
            f"plan: {len(self.to_send)} of {self.in_backup} messages to send to {self.queue.where()} "
            f"({self.repeated_in_backup} repeated in the backup, {self.already_on_queue} already on the queue)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "queue_url": self.queue.url,
            "in_backup": self.in_backup,
            "repeated_in_backup": self.repeated_in_backup,
            "already_on_queue": self.already_on_queue,
            "to_send": len(self.to_send),
            "not_compared_in_flight": self.not_compared,
        }


def plan_restore(
    sqs: Any, queue: QueueDepth, records: Sequence[BackedUp], *, wait_seconds: int = 1
) -> RestorePlan:
    """Compare the backup with what the queue holds now (read and released, nothing consumed)."""
    present_ids: set[str] = set()
    present: set[str] = set()
    for message in peek(
        sqs, queue.url, max_messages=_READ_ALL, hold_seconds=HOLD_SECONDS, wait_seconds=wait_seconds
    ):
        present_ids.add(message["MessageId"])
        present.add(identity(message["Body"], message.get("MessageAttributes", {})))
    seen: set[str] = set()
    seen_ids: set[str] = set()
    to_send: list[BackedUp] = []
    repeated = already = 0
    for record in records:
        key = identity(record.body, record.message_attributes)
        if key in seen or record.message_id in seen_ids:
            repeated += 1
            continue
        seen.add(key)
        seen_ids.add(record.message_id)
        if record.message_id in present_ids or key in present:
            already += 1
            continue
        to_send.append(record)
    return RestorePlan(
        queue=queue,
        to_send=to_send,
        in_backup=len(records),
        repeated_in_backup=repeated,
        already_on_queue=already,
        not_compared=queue.in_flight,
    )


@dataclass
class RestoreReport:
    sent: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"sent": self.sent, "failed": self.failed}


def restore(sqs: Any, plan: RestorePlan, report: RestoreReport | None = None) -> RestoreReport:
    """Send the plan's messages to its queue; per-message failures are reported, an AWS error raises.

    `report` is filled as batches go, so a caller holding it knows what was restored when an error stops this.
    """
    report = report if report is not None else RestoreReport()
    by_id = {str(i): record for i, record in enumerate(plan.to_send)}
    entries: list[dict[str, Any]] = []
    for entry_id, record in by_id.items():
        entry: dict[str, Any] = {"Id": entry_id, "MessageBody": record.body}
        attributes = {name: sendable(value) for name, value in record.message_attributes.items()}
        if attributes:
            entry["MessageAttributes"] = attributes
        if plan.queue.url.endswith(".fifo"):
            entry["MessageGroupId"] = "restore"
            entry["MessageDeduplicationId"] = identity(record.body, record.message_attributes)[:128]
        entries.append(entry)
    doing = f"SendMessageBatch to {plan.queue.url}"
    for batch in pack_batches(entries):
        try:
            response = sqs.send_message_batch(QueueUrl=plan.queue.url, Entries=batch)
        except ClientError as e:
            raise translate_client_error(e, f"{doing} failed ({report.sent} restored before)") from e
        except HTTPClientError as e:
            raise OpsError(
                f"{doing} got no answer ({type(e).__name__}): {len(batch)} messages may or may not be restored; "
                "run the same restore again: it skips what is already on the queue",
                ExitCode.FAILED,
            ) from e
        except BotoCoreError as e:
            raise translate_botocore_error(
                e, f"{doing} could not be sent ({report.sent} restored before)"
            ) from e
        report.sent += len(response.get("Successful", []))
        for failed in response.get("Failed", []):
            report.failed += 1
            report.failures.append(
                Failure(
                    message_id=by_id[failed["Id"]].message_id,
                    stage="send",
                    code=failed.get("Code", ""),
                    detail=failed.get("Message", ""),
                )
            )
    return report
