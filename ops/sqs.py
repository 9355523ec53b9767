"""Small SQS building blocks: queue depth, receiving without consuming, holding read messages again, releasing them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ops.errors import translate_botocore_error, translate_client_error
from ops.queues import queue_name

SQS_BATCH_ENTRIES = 10
# While a run holds messages they are invisible to everyone else; long enough for one batch to be backed up,
# sent and deleted, short enough that a crashed run's messages come back soon on their own.
HOLD_SECONDS = 120


# SQS's largest message (body + attributes) when a queue does not say otherwise.
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024


@dataclass(frozen=True, kw_only=True)
class QueueDepth:
    """One queue's depth (ApproximateNumberOfMessages*) and the attributes the tool checks."""

    url: str
    arn: str
    visible: int
    in_flight: int
    delayed: int
    redrive_policy: dict[str, Any] | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed

    @property
    def name(self) -> str:
        return queue_name(self.url)

    @property
    def region(self) -> str:
        """From the ARN (arn:aws:sqs:REGION:ACCOUNT:NAME): the queue's own, whatever the client was told."""
        parts = self.arn.split(":")
        return parts[3] if len(parts) == 6 else "?"

    @property
    def account(self) -> str:
        parts = self.arn.split(":")
        return parts[4] if len(parts) == 6 else "?"

    def where(self) -> str:
        """`name (account A, Region R)`: what a confirmation prompt names."""
        return f"{self.name} (account {self.account}, Region {self.region})"


def queue_depth(sqs: Any, url: str) -> QueueDepth:
    """Depth and ARN of a queue; a missing queue or permission becomes an OpsError naming the URL."""
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    except ClientError as e:
        raise translate_client_error(e, f"reading queue {url}") from e
    try:
        redrive = json.loads(attributes["RedrivePolicy"]) if attributes.get("RedrivePolicy") else None
    except ValueError:
        redrive = None
    return QueueDepth(
        url=url,
        arn=attributes.get("QueueArn", ""),
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
        redrive_policy=redrive if isinstance(redrive, dict) else None,
        max_message_bytes=int(attributes.get("MaximumMessageSize", DEFAULT_MAX_MESSAGE_BYTES)),
    )


def receive(sqs: Any, url: str, *, count: int, hold_seconds: int, wait_seconds: int) -> list[dict[str, Any]]:
    """One ReceiveMessage call with every attribute; the messages stay invisible for `hold_seconds`.

    A failed call (throttling, KMS, the network) is an OpsError, so a run that reads can report what it did.
    """
    doing = f"ReceiveMessage on {url}"
    try:
        response = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=max(1, min(SQS_BATCH_ENTRIES, count)),
            VisibilityTimeout=hold_seconds,
            WaitTimeSeconds=wait_seconds,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
    except ClientError as e:
        raise translate_client_error(e, doing) from e
    except BotoCoreError as e:
        raise translate_botocore_error(e, doing) from e
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


def release(sqs: Any, url: str, receipt_handles: Iterable[str]) -> int:
    """Make held messages visible again now (visibility 0). Returns how many could not be released."""
    failed = 0
    for chunk in chunks(list(receipt_handles), SQS_BATCH_ENTRIES):
        entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)]
        response = sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
        failed += len(response.get("Failed", []))
    return failed


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class HeldMessages:
    """Messages received (so invisible) in this run, by MessageId, with their latest receipt handle and when
    their hold began."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._handles: dict[str, str] = {}
        self._held_at: dict[str, float] = {}
        self._clock = clock

    def hold(self, message: dict[str, Any]) -> bool:
        """Record a received message. False when it was already seen in this run (it came back)."""
        message_id = message["MessageId"]
        seen = message_id in self._handles
        self._handles[message_id] = message["ReceiptHandle"]
        self._held_at[message_id] = self._clock()
        return not seen

    def forget(self, message_id: str) -> None:
        """The message is gone from the queue (deleted): nothing to release."""
        self._handles.pop(message_id, None)
        self._held_at.pop(message_id, None)

    def handle(self, message_id: str) -> str:
        return self._handles[message_id]

    def extend(self, sqs: Any, url: str, *, hold_seconds: int) -> None:
        """Hold again, for `hold_seconds` from now, the messages held for half of that already.

        A run that keeps what it read hidden never reads it again: each receive brings only messages it has not
        seen, so it reaches the end of the queue however long it takes. A message that could not be held again
        (a failed call) comes back when its hold ends and is held again by the receive that returns it.
        """
        now = self._clock()
        due = [m for m, at in self._held_at.items() if now - at >= hold_seconds / 2]
        for chunk in chunks(due, SQS_BATCH_ENTRIES):
            entries = [
                {"Id": str(i), "ReceiptHandle": self._handles[m], "VisibilityTimeout": hold_seconds}
                for i, m in enumerate(chunk)
            ]
            try:
                response = sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
            except (ClientError, BotoCoreError):
                return  # deliberate: a nicety; what is not held again comes back and is held again
            failed = {f["Id"] for f in response.get("Failed", [])}
            for i, message_id in enumerate(chunk):
                if str(i) not in failed:
                    self._held_at[message_id] = now

    def release_all(self, sqs: Any, url: str) -> int:
        handles = list(self._handles.values())
        self._handles.clear()
        self._held_at.clear()
        return release(sqs, url, handles)

    def __len__(self) -> int:
        return len(self._handles)


def peek(
    sqs: Any,
    url: str,
    *,
    max_messages: int,
    expected: int | None = None,
    hold_seconds: int = 30,
    wait_seconds: int = 1,
) -> list[dict[str, Any]]:
    """Up to `max_messages` messages, read and then released at once (visibility 0), so none is consumed.

    Reading raises each message's ApproximateReceiveCount, and hides it from other readers until released.
    `expected` (the visible depth, when known) saves the last, empty long poll. A receive holding only messages
    seen already (their hold ran out) is not the end; an empty one is.
    """
    limit = min(max_messages, expected) if expected is not None else max_messages
    held = HeldMessages()
    messages: list[dict[str, Any]] = []
    try:
        while len(messages) < limit:
            batch = receive(
                sqs, url, count=limit - len(messages), hold_seconds=hold_seconds, wait_seconds=wait_seconds
            )
            if not batch:
                break
            messages.extend(m for m in batch if held.hold(m))
    finally:
        held.release_all(sqs, url)
    return messages[:max_messages]


def oldest_age_from_cloudwatch(cloudwatch: Any, url: str, now: datetime | None = None) -> float | None:
    """ApproximateAgeOfOldestMessage (seconds) from CloudWatch, or None when unavailable (local, no permission)."""
    now = now or datetime.now(UTC)
    try:
        response = cloudwatch.get_metric_statistics(
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": queue_name(url)}],
            StartTime=now - timedelta(minutes=15),
            EndTime=now,
            Period=300,
            Statistics=["Maximum"],
        )
    except (ClientError, BotoCoreError):
        # Deliberate: the metric is a nicety. No CloudWatch locally, or no cloudwatch:GetMetricStatistics
        # permission, must not stop `stats`; the caller falls back to the sampled messages' SentTimestamp.
        return None
    points = sorted(response.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return float(points[-1]["Maximum"]) if points else None
