"""Dead-lettering permanent failures: the original body, byte for byte, plus why it failed."""

from __future__ import annotations

import base64
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from case_linker.errors import TransientError

# SQS allows 10 message attributes; ours take 4 and win over originals of the same name.
MAX_ATTRIBUTES = 10
MAX_ERROR_MESSAGE = 1000
ERROR_CODE = "ERROR_CODE"
ERROR_MESSAGE = "ERROR_MESSAGE"
SOURCE_MESSAGE_ID = "SOURCE_MESSAGE_ID"
RECEIVE_COUNT = "RECEIVE_COUNT"


class DeadLetterQueue:
    """Sends a failed SQS record to the dead-letter queue."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def send(self, record: dict[str, Any], code: str, message: str) -> None:
        """Send `record` (a raw SQS event record) with the error attributes; TransientError if SQS fails."""
        try:
            self._sqs.send_message(
                QueueUrl=self._queue_url,
                MessageBody=record["body"],
                MessageAttributes=dead_letter_attributes(record, code, message),
            )
        except (ClientError, BotoCoreError) as error:
            raise TransientError(
                "DeadLetterSendFailed", f"could not send to the dead-letter queue: {error}"
            ) from error


def dead_letter_attributes(record: dict[str, Any], code: str, message: str) -> dict[str, dict[str, Any]]:
    """Our four String attributes plus as many original ones (by name) as the SQS limit leaves room for."""
    ours = {
        ERROR_CODE: code,
        ERROR_MESSAGE: message[:MAX_ERROR_MESSAGE],
        SOURCE_MESSAGE_ID: str(record.get("messageId", "")),
        RECEIVE_COUNT: str((record.get("attributes") or {}).get("ApproximateReceiveCount", "")),
    }
    attributes: dict[str, dict[str, Any]] = {}
    originals = record.get("messageAttributes") or {}
    room = MAX_ATTRIBUTES - len(ours)
    for name in sorted(originals):
        if name in ours:
            continue
        if room == 0:
            break
        converted = _send_format(originals[name])
        if converted is not None:
            attributes[name] = converted
            room -= 1
    for name, value in ours.items():
        attributes[name] = {"DataType": "String", "StringValue": value or "-"}
    return attributes


def _send_format(attribute: dict[str, Any]) -> dict[str, Any] | None:
    """An attribute as Lambda's SQS event shows it -> as SendMessage takes it."""
    data_type = attribute.get("dataType")
    if not data_type:
        return None
    if attribute.get("stringValue") is not None:
        return {"DataType": data_type, "StringValue": attribute["stringValue"]}
    if attribute.get("binaryValue") is not None:
        return {"DataType": data_type, "BinaryValue": base64.b64decode(attribute["binaryValue"])}
    return None
