"""When a record handed back should come again: its visibility on the main queue, or a fresh copy.

Lambda's event source leaves a failed record invisible for the queue's whole visibility timeout (six
function timeouts). A record that must wait a known time (an earlier create settling, a case being merged,
a lease held by another delivery, Cases capacity) is made visible again after that time instead.

A record handed back only for want of Cases capacity must not reach the DLQ through maxReceiveCount: close to
that count it is sent again as a new message (same body and attributes, its hand-backs counted in
`CASE_LINKER_REQUEUES` and its first send time kept in `CASE_LINKER_FIRST_SENT`; a replay's `REPLAYED` stays an
attribute of its own), and the original is acknowledged. Should SQS refuse that copy (a record too close to the
queue's maximum size for the history), it is sent with its attributes as they came, its count not advanced. The
ledger makes the copy harmless: it is the same item.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError

from case_linker.dlq import (
    MAX_ATTRIBUTES,
    ORIGINAL_ATTRIBUTES,
    attributes_as_received,
    original_attributes,
    pack,
)
from case_linker.errors import TransientError, error_code

# SQS's longest visibility timeout (12 hours) and delivery delay (15 minutes).
MAX_VISIBILITY_SECONDS = 43_200
MAX_DELAY_SECONDS = 900
REQUEUES = "CASE_LINKER_REQUEUES"
FIRST_SENT = "CASE_LINKER_FIRST_SENT"
# Set by `python -m ops dlq replay`; read only as a message attribute of its own, so a re-send never packs it.
REPLAYED_ATTRIBUTE = "REPLAYED"
_SQS_THROTTLING_CODES = frozenset({"RequestThrottled", "ThrottlingException", "Throttling"})


def capacity_delay(receive_count: int, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds a record handed back for want of Cases capacity waits before its next try: a random half to
    all of a ceiling that doubles with each receive, up to `cap`."""
    return (0.5 + 0.5 * rand()) * min(cap, 2.0 ** (receive_count - 1))


def requeue_due(receive_count: int, max_receive_count: int | None) -> bool:
    """Whether a capacity hand-back must be sent again as a new message: one more receive could be the
    last before SQS moves it to the DLQ (maxReceiveCount)."""
    return max_receive_count is not None and receive_count >= max_receive_count - 1


def last_delivery(receive_count: int, max_receive_count: int) -> bool:
    """Whether this delivery is the last SQS makes before it moves the message to the DLQ."""
    return receive_count >= max_receive_count


class Redelivery:
    """Changes a record's visibility on the main queue (a no-op when the queue URL is not configured)."""

    def __init__(self, sqs: Any, queue_url: str | None, logger: Logger) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._logger = logger

    def defer(self, record: SQSRecord, seconds: float) -> None:
        """Make `record` visible again in `seconds` (rounded up); best effort."""
        if self._queue_url is None:
            return
        error = self._set_visibility(record, seconds, at_least=0)
        if error is not None:
            # The record still comes back, after the queue's own visibility timeout.
            self._logger.warning(
                "could not change the record's visibility", extra={"error": type(error).__name__}
            )

    def can_requeue(self) -> bool:
        return self._queue_url is not None

    def claim(self, record: SQSRecord, seconds: float) -> bool:
        """Keep `record` invisible for `seconds` more; False when this delivery no longer holds it.

        SQS refuses the change for a message that is gone from the queue (SQS moved it to the DLQ, or a later
        delivery deleted it) or no longer in flight. Before the linker dead-letters or re-sends a record itself,
        this makes sure the record has no other ending already; True without a queue URL (nothing to ask), and
        when SQS failed the request without refusing it (the receive's visibility still holds it). A delivery
        cannot outlive its visibility in the stack (six function timeouts), so only a rig with a short visibility
        needs it; a receipt made stale by a later receive may not be refused.
        """
        if self._queue_url is None:
            return True
        error = self._set_visibility(record, seconds, at_least=1)
        if error is None:
            return True
        code = error_code(error)
        if _unanswered(error):
            # SQS did not say the message is gone (a 5xx, a throttle, a dropped connection): it is still this
            # delivery's for the visibility its receive gave it. Handed back instead, a record on its last
            # delivery would be moved to the DLQ by SQS, without a reason.
            self._logger.warning(
                "could not hold the record; going on", extra={"error": code or type(error).__name__}
            )
            return True
        self._logger.warning(
            "the record is no longer held by this delivery", extra={"error": code or type(error).__name__}
        )
        return False

    def _set_visibility(
        self, record: SQSRecord, seconds: float, *, at_least: int
    ) -> ClientError | BotoCoreError | None:
        """ChangeMessageVisibility to `seconds` rounded up, within [at_least, 12 h]; the error, if SQS refused."""
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self._queue_url,
                ReceiptHandle=record.receipt_handle,
                VisibilityTimeout=min(MAX_VISIBILITY_SECONDS, max(at_least, math.ceil(seconds))),
            )
        except (ClientError, BotoCoreError) as error:
            return error
        return None

    def requeue(self, record: SQSRecord, seconds: float) -> int:
        """Send `record` again as a new message, delivered after `seconds`; return its hand-back count.

        Raises TransientError when the copy could not be sent (the original is then handed back as usual).
        """
        if self._queue_url is None:
            raise TransientError("RequeueUnavailable", "MAIN_QUEUE_URL is not configured")
        raw = record.raw_event
        originals = original_attributes(raw)
        count = _count(originals.pop(REQUEUES, {}).get("StringValue")) + 1
        first = originals.pop(FIRST_SENT, None) or {
            "DataType": "Number",
            "StringValue": str((raw.get("attributes") or {}).get("SentTimestamp", "0") or "0"),
        }
        ours = {REQUEUES: {"DataType": "Number", "StringValue": str(count)}, FIRST_SENT: first}
        if len(originals) + len(ours) > MAX_ATTRIBUTES:
            # A replay stays one: its mark travels beside the packed originals, as `ops dlq replay` sends it.
            replayed = originals.pop(REPLAYED_ATTRIBUTE, None)
            originals = {ORIGINAL_ATTRIBUTES: {"DataType": "String", "StringValue": pack(originals)}}
            if replayed is not None:
                originals[REPLAYED_ATTRIBUTE] = replayed
        try:
            self._send(raw, {**originals, **ours}, seconds)
        except ClientError as error:
            # Refused: our history may not fit beside a record within a few bytes of the queue's maximum size
            # (SQS counts attributes too). The record as it came fitted, so it goes as it came, uncounted.
            as_received = attributes_as_received(raw)
            self._logger.warning(
                "re-sending the record as it came, without its hand-back history",
                extra={"error": error_code(error) or type(error).__name__},
            )
            try:
                self._send(raw, as_received, seconds)
            except (ClientError, BotoCoreError) as again:
                raise TransientError(
                    "RequeueFailed", f"could not re-send the record: {type(again).__name__}"
                ) from again
        except BotoCoreError as error:
            raise TransientError(
                "RequeueFailed", f"could not re-send the record: {type(error).__name__}"
            ) from error
        return count

    def _send(self, raw: dict[str, Any], attributes: dict[str, Any], seconds: float) -> None:
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=str(raw["body"]),
            MessageAttributes=attributes,
            DelaySeconds=min(MAX_DELAY_SECONDS, max(0, math.ceil(seconds))),
        )


def _unanswered(error: ClientError | BotoCoreError) -> bool:
    """Whether SQS failed a request without answering it (no connection, a 5xx, a throttle), rather than refused it."""
    if isinstance(error, BotoCoreError):
        return True
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return status >= 500 or status == 429 or error_code(error) in _SQS_THROTTLING_CODES


def _count(raw: object) -> int:
    """A hand-back count as written by an earlier re-send; anything else (another producer's value, a hand-made
    replay) counts as none, so the record is still re-sent."""
    text = str(raw or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else 0
