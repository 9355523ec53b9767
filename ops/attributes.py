"""The dead-letter message attributes (docs/CONTRACTS.md), as the ops tool reads them and replay rewrites them.

On a DLQ message:
- the reason: the linker's `ERROR_CODE`, `ERROR_MESSAGE`, `SOURCE_MESSAGE_ID`, `RECEIVE_COUNT`, or EventBridge's
  `RULE_ARN`, `TARGET_ARN`, `ERROR_CODE`, `ERROR_MESSAGE`, `EXHAUSTED_RETRY_CONDITION`, `RETRY_ATTEMPTS`;
  none when SQS redrove the message after maxReceiveCount. `ERROR_MESSAGE` may be missing (a message too large to
  dead-letter with it keeps only `ERROR_CODE`).
- the producer's original attributes: as they were, or, when they did not fit beside the reason (SQS allows 10),
  all of them packed as JSON into the one String attribute `ORIGINAL_ATTRIBUTES`.

Replay drops the reason, unpacks the originals and always adds `REPLAYED=dlq`; when the originals plus `REPLAYED`
exceed 10 it sends them packed again (`ORIGINAL_ATTRIBUTES` + `REPLAYED`). A message whose `ORIGINAL_ATTRIBUTES`
cannot be read is refused, never sent unmarked.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

ERROR_CODE = "ERROR_CODE"
ERROR_MESSAGE = "ERROR_MESSAGE"
SOURCE_MESSAGE_ID = "SOURCE_MESSAGE_ID"
RECEIVE_COUNT = "RECEIVE_COUNT"
RULE_ARN = "RULE_ARN"
TARGET_ARN = "TARGET_ARN"
EXHAUSTED_RETRY_CONDITION = "EXHAUSTED_RETRY_CONDITION"
RETRY_ATTEMPTS = "RETRY_ATTEMPTS"

# Dropped on replay, kept in the backup. They describe the failure that sent the message to a DLQ; carried back
# to the main queue they would be stale, and if SQS then redrove the message after maxReceiveCount (no linker
# involved) it would land in the DLQ labelled with the old failure.
REASON_ATTRIBUTES = frozenset(
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
ORIGINAL_ATTRIBUTES = "ORIGINAL_ATTRIBUTES"
# Where a message came from, for the linker's logs and metrics; same name as the linker reads.
REPLAYED_ATTRIBUTE = "REPLAYED"
REPLAYED_VALUE = "dlq"
MAX_MESSAGE_ATTRIBUTES = 10

SendAttributes = dict[str, dict[str, Any]]
# The attribute names SendMessage takes (letters, digits, "_", "-", "."; no leading, trailing or doubled "."; not
# "AWS." or "Amazon."). A producer's own ORIGINAL_ATTRIBUTES, or a backup, may hold others: SQS would refuse the
# batch, quoting the name, which may be customer data. The linker's dlq.py has the same pattern (ops ships without
# the function's code; a test checks they agree).
ATTRIBUTE_NAME = re.compile(r"(?!\.)(?!.*\.\.)(?!.*\.$)(?!(?i:aws|amazon)\.)[A-Za-z0-9_.-]{1,256}")


class UnreadableOriginals(ValueError):
    """`ORIGINAL_ATTRIBUTES` is not the documented JSON; the message says what is wrong, never what it holds."""


def sendable(value: Mapping[str, Any]) -> dict[str, Any]:
    """An attribute as received (or as a backup holds it) in the shape SendMessage takes.

    BinaryValue is bytes as boto3 returns it, or base64 text as a JSON backup holds it.
    """
    data_type = str(value.get("DataType", "String"))
    if "BinaryValue" in value and value["BinaryValue"] is not None:
        binary = value["BinaryValue"]
        if isinstance(binary, str):
            binary = base64.b64decode(binary, validate=True)
        return {"DataType": data_type, "BinaryValue": bytes(binary)}
    return {"DataType": data_type, "StringValue": str(value.get("StringValue", ""))}


def originals(attributes: Mapping[str, Mapping[str, Any]]) -> SendAttributes:
    """The producer's attributes: everything but the reason and REPLAYED, with ORIGINAL_ATTRIBUTES unpacked.

    Raises UnreadableOriginals when ORIGINAL_ATTRIBUTES is not the documented JSON.
    """
    found: SendAttributes = {}
    for name, value in attributes.items():
        if name in REASON_ATTRIBUTES or name in (REPLAYED_ATTRIBUTE, ORIGINAL_ATTRIBUTES):
            continue
        found[name] = sendable(value)
    packed = attributes.get(ORIGINAL_ATTRIBUTES)
    if packed is not None:
        found.update(unpack(str(packed.get("StringValue", ""))))
    found.pop(REPLAYED_ATTRIBUTE, None)
    return found


def unpack(text: str) -> SendAttributes:
    """ORIGINAL_ATTRIBUTES' JSON back into separate attributes."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise UnreadableOriginals(f"{ORIGINAL_ATTRIBUTES} is not valid JSON") from None
    if not isinstance(document, dict):
        raise UnreadableOriginals(f"{ORIGINAL_ATTRIBUTES} is not a JSON object")
    unpacked: SendAttributes = {}
    for position, (name, value) in enumerate(document.items(), start=1):
        if not ATTRIBUTE_NAME.fullmatch(name):
            raise UnreadableOriginals(f"{ORIGINAL_ATTRIBUTES} entry {position} has a name SQS does not take")
        if not isinstance(value, dict) or not isinstance(value.get("DataType"), str):
            raise UnreadableOriginals(f"{ORIGINAL_ATTRIBUTES} entry {position} has no DataType")
        has_string = isinstance(value.get("StringValue"), str)
        has_binary = isinstance(value.get("BinaryValue"), str)
        if has_string == has_binary:
            raise UnreadableOriginals(
                f"{ORIGINAL_ATTRIBUTES} entry {position} needs exactly one of StringValue, BinaryValue"
            )
        try:
            unpacked[str(name)] = sendable(value)
        except (binascii.Error, ValueError):
            raise UnreadableOriginals(
                f"{ORIGINAL_ATTRIBUTES} entry {position}: BinaryValue is not base64"
            ) from None
    return unpacked


def pack(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """Attributes as ORIGINAL_ATTRIBUTES' JSON (binary values base64), keys sorted so equal sets pack equal."""
    document: dict[str, dict[str, str]] = {}
    for name, value in sorted(attributes.items()):
        if "BinaryValue" in value:
            encoded = base64.b64encode(bytes(value["BinaryValue"])).decode("ascii")
            document[name] = {"DataType": str(value["DataType"]), "BinaryValue": encoded}
        else:
            document[name] = {"DataType": str(value["DataType"]), "StringValue": str(value["StringValue"])}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def replay_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> SendAttributes:
    """What replay sends: the originals and REPLAYED, packed when together they exceed SQS's 10."""
    kept = originals(attributes)
    marked = {REPLAYED_ATTRIBUTE: {"DataType": "String", "StringValue": REPLAYED_VALUE}}
    if len(kept) + len(marked) <= MAX_MESSAGE_ATTRIBUTES:
        return {**kept, **marked}
    return {ORIGINAL_ATTRIBUTES: {"DataType": "String", "StringValue": pack(kept)}, **marked}


def string_attribute(message: Mapping[str, Any], name: str) -> str | None:
    """A String message attribute's value, or None."""
    value = message.get("MessageAttributes", {}).get(name, {}).get("StringValue")
    return str(value) if value is not None else None
