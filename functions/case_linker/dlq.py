"""Dead-lettering permanent failures: the original body, byte for byte, every original attribute, and why.

SQS allows 10 message attributes and a maximum message size (body plus attributes) per queue. Our reason
takes four attributes; the originals keep their own names when they fit beside it, else all of them travel
packed in one `ORIGINAL_ATTRIBUTES` attribute (JSON) that `ops dlq replay` unpacks. When the body is so large
that the reason does not fit, the reason shrinks (ERROR_MESSAGE shortened, then dropped) rather than the
message failing to reach the DLQ and being redriven without any reason.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from case_linker.errors import TransientError, error_code

MAX_ATTRIBUTES = 10
MAX_ERROR_MESSAGE = 1000
# The smallest maximum message size a queue of ours may have had by default (256 KiB): assumed until the
# DLQ's own MaximumMessageSize has been read.
DEFAULT_MAX_MESSAGE_BYTES = 262_144
ERROR_CODE = "ERROR_CODE"
ERROR_MESSAGE = "ERROR_MESSAGE"
SOURCE_MESSAGE_ID = "SOURCE_MESSAGE_ID"
RECEIVE_COUNT = "RECEIVE_COUNT"
ORIGINAL_ATTRIBUTES = "ORIGINAL_ATTRIBUTES"
REASON_ATTRIBUTES = (ERROR_CODE, ERROR_MESSAGE, SOURCE_MESSAGE_ID, RECEIVE_COUNT)

Attributes = dict[str, dict[str, Any]]


class DeadLetterQueue:
    """Sends a failed SQS record to the dead-letter queue."""

    def __init__(self, sqs: Any, queue_url: str, logger: Logger) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._logger = logger
        self._max_bytes: int | None = None
        self._lock = threading.Lock()

    def send(self, record: dict[str, Any], code: str, message: str) -> None:
        """Send `record` (a raw SQS event record) with the reason; TransientError if SQS fails."""
        body = str(record["body"])
        attributes = plan_attributes(record, code, message, self._max_message_bytes())
        left_out = attributes_left_out(record, attributes)
        if left_out:
            # A count only: attribute names are the producer's own and may be customer data.
            self._logger.warning(
                "original attributes left out of a dead-letter message", extra={"count": left_out}
            )
        try:
            self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=body, MessageAttributes=attributes)
        except (ClientError, BotoCoreError) as error:
            detail = error_code(error)
            raise TransientError(
                "DeadLetterSendFailed",
                f"could not send to the dead-letter queue: {detail or type(error).__name__}",
            ) from error

    def _max_message_bytes(self) -> int:
        """The DLQ's MaximumMessageSize, read once; the SQS default until it can be read."""
        with self._lock:
            if self._max_bytes is None:
                try:
                    attributes = self._sqs.get_queue_attributes(
                        QueueUrl=self._queue_url, AttributeNames=["MaximumMessageSize"]
                    )["Attributes"]
                    self._max_bytes = int(attributes["MaximumMessageSize"])
                except (ClientError, BotoCoreError, KeyError, ValueError):
                    return DEFAULT_MAX_MESSAGE_BYTES
            return self._max_bytes


def plan_attributes(record: dict[str, Any], code: str, message: str, max_bytes: int) -> Attributes:
    """The attributes to send with `record`'s body: the reason plus every original, within SQS's limits.

    Only when not even ERROR_CODE fits beside the originals are they left out (`attributes_left_out` says).
    """
    body_bytes = len(str(record.get("body", "")).encode())

    def fits(attributes: Attributes) -> bool:
        return len(attributes) <= MAX_ATTRIBUTES and body_bytes + attributes_size(attributes) <= max_bytes

    originals = original_attributes(record)
    message = message[:MAX_ERROR_MESSAGE] or "-"
    full = {
        ERROR_CODE: code,
        ERROR_MESSAGE: message,
        SOURCE_MESSAGE_ID: str(record.get("messageId", "")) or "-",
        RECEIVE_COUNT: str((record.get("attributes") or {}).get("ApproximateReceiveCount", "")) or "-",
    }
    code_only = {ERROR_CODE: code}
    room = max_bytes - body_bytes - attributes_size(_combine(originals, code_only, packed=False))
    room -= len(ERROR_MESSAGE) + len("String")
    # Too large for the whole reason: shorten ERROR_MESSAGE to what is left, then give it up for ERROR_CODE.
    shortened = {**code_only, ERROR_MESSAGE: message.encode()[: max(room, 0)].decode(errors="ignore")}
    for reason in (full, shortened, code_only):
        if reason is shortened and room < 16:
            continue
        for packed in (False, True):
            candidate = _combine(originals, reason, packed)
            if fits(candidate):
                return candidate
    # Not even the error code fits beside the originals: the reason wins.
    return _combine({}, code_only, packed=False)


def attributes_left_out(record: dict[str, Any], attributes: Attributes) -> int:
    """How many of the record's original attributes a planned message does not carry."""
    carried = set(attributes)
    if ORIGINAL_ATTRIBUTES in attributes:
        carried |= set(unpack(attributes[ORIGINAL_ATTRIBUTES]["StringValue"]))
    return len(set(original_attributes(record)) - carried)


def _combine(originals: Attributes, reason: dict[str, str], packed: bool) -> Attributes:
    attributes: Attributes = {}
    if packed and originals:
        attributes[ORIGINAL_ATTRIBUTES] = {"DataType": "String", "StringValue": pack(originals)}
    elif not packed:
        attributes.update(originals)
    for name, value in reason.items():
        attributes[name] = {"DataType": "String", "StringValue": value}
    return attributes


def attributes_as_received(record: dict[str, Any]) -> Attributes:
    """The record's attributes in SendMessage's shape, exactly as they arrived (nothing unpacked or dropped)."""
    attributes: Attributes = {}
    for name, value in (record.get("messageAttributes") or {}).items():
        converted = _send_format(value)
        if converted is not None:
            attributes[name] = converted
    return attributes


def original_attributes(record: dict[str, Any]) -> Attributes:
    """The record's own attributes in SendMessage's shape: packed ones unpacked, earlier reasons dropped."""
    attributes: Attributes = {}
    for name, converted in sorted(attributes_as_received(record).items()):
        if name in REASON_ATTRIBUTES:
            continue
        if name == ORIGINAL_ATTRIBUTES and "StringValue" in converted:
            attributes.update(unpack(converted["StringValue"]))
        else:
            attributes[name] = converted
    return attributes


def pack(attributes: Attributes) -> str:
    """ORIGINAL_ATTRIBUTES' value: JSON, binary values base64-encoded."""
    document = {}
    for name, value in sorted(attributes.items()):
        if "BinaryValue" in value:
            encoded = base64.b64encode(value["BinaryValue"]).decode()
            document[name] = {"DataType": value["DataType"], "BinaryValue": encoded}
        else:
            document[name] = {"DataType": value["DataType"], "StringValue": value["StringValue"]}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def unpack(value: str) -> Attributes:
    """The attributes packed by `pack` (anything unreadable, or that SQS would refuse, is kept packed under its
    own name as it came: a producer may send an ORIGINAL_ATTRIBUTES of its own)."""
    kept_whole: Attributes = {ORIGINAL_ATTRIBUTES: {"DataType": "String", "StringValue": value}}
    try:
        document = json.loads(value)
    except (ValueError, RecursionError):
        return kept_whole
    attributes: Attributes = {}
    for name, entry in document.items() if isinstance(document, dict) else ():
        attribute = _sendable(name, entry)
        if attribute is None:
            return kept_whole
        attributes[name] = attribute
    return attributes


# What SendMessage takes (SQS message attributes): names, data types, and the characters of a string value.
_ATTRIBUTE_NAME = re.compile(r"(?!\.)(?!.*\.\.)(?!.*\.$)(?!(?i:aws|amazon)\.)[A-Za-z0-9_.-]{1,256}")
_DATA_TYPE = re.compile(r"(String|Number|Binary)(\.[A-Za-z0-9_.-]+)?")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_NOT_SENDABLE = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _sendable(name: str, entry: Any) -> dict[str, Any] | None:
    """A packed entry in SendMessage's shape, or None when it is not one SQS would take."""
    if not isinstance(entry, dict) or not isinstance(entry.get("DataType"), str):
        return None
    data_type = entry["DataType"]
    if not _ATTRIBUTE_NAME.fullmatch(name) or len(data_type) > 256 or not _DATA_TYPE.fullmatch(data_type):
        return None
    if data_type.startswith("Binary"):
        if not isinstance(entry.get("BinaryValue"), str):
            return None
        try:
            binary = base64.b64decode(entry["BinaryValue"], validate=True)
        except ValueError:  # binascii.Error: not base64
            return None
        return {"DataType": data_type, "BinaryValue": binary} if binary else None
    text = entry.get("StringValue")
    if not isinstance(text, str) or not text or _NOT_SENDABLE.search(text):
        return None
    if data_type.startswith("Number") and not _NUMBER.fullmatch(text):
        return None
    return {"DataType": data_type, "StringValue": text}


def attributes_size(attributes: Attributes) -> int:
    """Bytes SQS counts for attributes: each name, data type and value."""
    size = 0
    for name, value in attributes.items():
        size += len(name.encode()) + len(str(value["DataType"]).encode())
        if "BinaryValue" in value:
            size += len(value["BinaryValue"])
        else:
            size += len(str(value.get("StringValue", "")).encode())
    return size


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
