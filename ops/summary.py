"""What a dead-lettered message is about, without its customer data. Pure functions, no AWS.

A summary holds type and ids only: never a comment body, a phone number or an email address.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from ops.attributes import (
    ERROR_CODE,
    ERROR_MESSAGE,
    ORIGINAL_ATTRIBUTES,
    RECEIVE_COUNT,
    SOURCE_MESSAGE_ID,
    UnreadableOriginals,
    originals,
    string_attribute,
)

# The label for messages SQS itself moved to the DLQ after maxReceiveCount: they carry no error attributes.
REDRIVEN_LABEL = "(redriven: maxReceiveCount)"

CONNECT_DETAIL_TYPE = "Amazon Connect Contact Event"
CASE_ID_KEY = "caseId"  # the linker's default CASE_ID_ATTRIBUTE
REQUEST_DETAIL_TYPE = "Case Related Item Request"

_MAX_ERROR_MESSAGE = 160
# Summary fields read out of the body (the rest come from attributes SQS or the linker set).
_FROM_BODY = frozenset({"event_type", "item_type", "contact_id", "case_id"})
# Attributes the linker sets, which a producer may have set too (a message SQS moved without the linker's reason).
_FROM_PRODUCER = frozenset({"error_code", "source_message_id"})
# An address with or without a dot in its domain (jane@localhost too).
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*")
# Phone-like: 9..15 digits, with up to two separators between digits, so "(206) 555-0142" and
# "+1 (206) 555-0142" are caught; may open with "+" or "(". Not inside a longer token (a UUID, an id), and not
# joined by ":" to what follows (the date and hour of a timestamp, an account id inside an ARN); a number that
# ends a phrase ("caller +12065550142: unknown") is masked.
_PHONE = re.compile(r"(?<![\w-])(?:\+|\((?=\d))?\d(?:[\s().-]{0,2}\d){8,14}(?![\w-]|:\w)")
# An id read from the body that is not a UUID (Connect's and Cases' own ids are) and has this many digits is taken
# for a phone number, however short (a local one) or wrapped ("tel:+1..."), as the linker's logs take it
# (case_linker.mapping.loggable_id: ops ships without the function's code, so the rule is written twice; a test
# checks they agree).
_ID_PHONE_DIGITS = 7
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")


@dataclass(frozen=True, kw_only=True)
class MessageSummary:
    """One dead-lettered message: ids and types only."""

    message_id: str
    kind: str  # connect-event | related-item-request | request | other-json | unparseable
    error_code: str | None
    error_message: str | None  # redacted and truncated
    event_type: str | None  # detail.eventType of a Connect contact event
    item_type: str | None  # related-item type of a request (Contact, Comment, ...)
    contact_id: str | None
    case_id: str | None
    sent_at: str | None  # ISO 8601, from SentTimestamp
    age_seconds: float | None
    receive_count: int | None  # RECEIVE_COUNT the linker recorded (receives on the main queue)
    dlq_receive_count: int | None  # ApproximateReceiveCount on the DLQ, this read included
    size_bytes: int
    source_message_id: str | None  # the main queue's message id the linker recorded (SOURCE_MESSAGE_ID)
    original_attributes: (
        int | None
    )  # the producer's attributes, unpacked; None when ORIGINAL_ATTRIBUTES is unreadable
    originals_packed: bool  # they arrived packed in ORIGINAL_ATTRIBUTES (they did not fit beside the reason)

    @property
    def error_label(self) -> str:
        # ERROR_CODE is the linker's, or, on a message SQS moved itself, whatever its producer set: masked.
        return mask(self.error_code) if self.error_code else REDRIVEN_LABEL

    @property
    def what(self) -> str:
        """The event type or, for a request, the related-item type."""
        return self.event_type or self.item_type or "-"

    def to_json(self) -> dict[str, Any]:
        """The fields in the order docs/operations.md documents (`--output text` prints them so): `error_label`
        after `error_code`, `what` after `item_type`. New keys go at the end, never between.

        The ids and types come from the body as the producer wrote it: a hostile or mistaken one (a case id that
        is an email address or a phone number) is masked as an error message is; filters match the value as is.
        """
        data: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if key in _FROM_BODY and value is not None:
                value = mask_id(value)
            elif key in _FROM_PRODUCER and value is not None:
                value = mask(value)
            data[key] = value
            if key == "error_code":
                data["error_label"] = self.error_label
            elif key == "item_type":
                data["what"] = mask_id(self.what)
        return data


def mask(text: str) -> str:
    """Mask email addresses and phone numbers in text."""
    return _PHONE.sub("<number>", _EMAIL.sub("<email>", text))


def mask_id(text: str) -> str:
    """Mask an id or type read from the body: whole when it is not a UUID and has seven digits or more, else as
    `mask`."""
    if sum(c.isdigit() for c in text) >= _ID_PHONE_DIGITS and _UUID.fullmatch(text) is None:
        return "<number>"
    return mask(text)


def redact(text: str) -> str:
    """Mask email addresses and phone numbers in free text, and cut it short."""
    masked = mask(text)
    return masked if len(masked) <= _MAX_ERROR_MESSAGE else masked[: _MAX_ERROR_MESSAGE - 1] + "…"


def summarise(message: Mapping[str, Any], now: datetime | None = None) -> MessageSummary:
    """Summarise an SQS message as received (with MessageAttributes and Attributes), leniently."""
    now = now or datetime.now(UTC)
    body = str(message.get("Body", ""))
    system = message.get("Attributes", {})
    kind, event_type, item_type, contact_id, case_id = _parse_body(body)

    sent_at: str | None = None
    age: float | None = None
    sent_ms = _to_int(system.get("SentTimestamp"))
    if sent_ms is not None:
        sent = datetime.fromtimestamp(sent_ms / 1000, UTC)
        sent_at = sent.isoformat(timespec="seconds")
        age = max(0.0, (now - sent).total_seconds())

    error_message = string_attribute(message, ERROR_MESSAGE)
    attributes = message.get("MessageAttributes", {})
    try:
        original_count: int | None = len(originals(attributes))
    except UnreadableOriginals:
        original_count = None
    return MessageSummary(
        message_id=str(message.get("MessageId", "")),
        kind=kind,
        error_code=string_attribute(message, ERROR_CODE),
        error_message=redact(error_message) if error_message else None,
        event_type=event_type,
        item_type=item_type,
        contact_id=contact_id,
        case_id=case_id,
        sent_at=sent_at,
        age_seconds=age,
        receive_count=_to_int(string_attribute(message, RECEIVE_COUNT)),
        dlq_receive_count=_to_int(system.get("ApproximateReceiveCount")),
        size_bytes=len(body.encode("utf-8")),
        source_message_id=string_attribute(message, SOURCE_MESSAGE_ID),
        original_attributes=original_count,
        originals_packed=ORIGINAL_ATTRIBUTES in attributes,
    )


def _parse_body(body: str) -> tuple[str, str | None, str | None, str | None, str | None]:
    """(kind, event_type, item_type, contact_id, case_id) from a body we may not understand."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return "unparseable", None, None, None, None
    if not isinstance(doc, dict):
        return "other-json", None, None, None, None
    detail = _get(doc, "detail")
    detail_type = _str(_get(doc, "detail-type", "detailType"))
    if isinstance(detail, dict):
        if detail_type == REQUEST_DETAIL_TYPE or (_get(detail, "caseId") is not None and "type" in detail):
            return ("related-item-request", None, *_request_fields(detail))
        if detail_type == CONNECT_DETAIL_TYPE or _get(detail, "eventType") is not None:
            tags = _get(detail, "tags")
            # The case id usually sits in a contact attribute (not in the event); a flow may tag it instead.
            tagged_case = _str(_get(tags, CASE_ID_KEY)) if isinstance(tags, dict) else None
            return (
                "connect-event",
                _str(_get(detail, "eventType")),
                None,
                _str(_get(detail, "contactId")),
                _str(_get(detail, CASE_ID_KEY)) or tagged_case,
            )
        return "other-json", None, None, None, None
    if _get(doc, "caseId") is not None:
        return ("request", None, *_request_fields(doc))
    return "other-json", None, None, None, None


def _request_fields(request: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(item_type, contact_id, case_id) of a related-item request; the content itself is never read out."""
    contact_id: str | None = None
    content = _get(request, "content")
    if isinstance(content, dict):
        contact = _get(content, "contact")
        if isinstance(contact, dict):
            arn = _str(_get(contact, "contactArn"))
            if arn and "/contact/" in arn:
                contact_id = arn.rsplit("/contact/", 1)[-1]
    return (
        _str(_get(request, "type")),
        contact_id or _str(_get(request, "contactId")),
        _str(_get(request, "caseId")),
    )


def _get(doc: Mapping[str, Any], *names: str) -> Any:
    """A key by any of its names, camelCase or PascalCase (AWS's samples use both)."""
    for name in names:
        for key in (name, name[:1].upper() + name[1:]):
            if key in doc:
                return doc[key]
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _to_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- filters -----------------------------------------------------------------------------------------------

# Filter keys, normalised (case-insensitive; "_" and "-" ignored) -> the summary field they test.
FILTER_KEYS: dict[str, str] = {
    "errorcode": "error_code",
    "eventtype": "event_type",
    "caseid": "case_id",
    "contactid": "contact_id",
    "type": "item_type",
}
FILTER_HELP = (
    "KEY=VALUE, exact match. Keys: ERROR_CODE, eventType (Connect detail.eventType), caseId, contactId, "
    "type (related-item type, e.g. Comment). ERROR_CODE= (empty) matches messages SQS redrove without an "
    "error code. Repeat a key to accept any of its values; different keys must all match."
)


@dataclass(frozen=True)
class MessageFilter:
    """Parsed --filter options: same key OR, different keys AND."""

    accepted: Mapping[str, frozenset[str]]

    def matches(self, summary: MessageSummary) -> bool:
        for field_name, values in self.accepted.items():
            actual = getattr(summary, field_name) or ""
            if actual not in values:
                return False
        return True

    @property
    def empty(self) -> bool:
        return not self.accepted


def parse_filters(specs: Sequence[str] | None) -> MessageFilter:
    """Parse KEY=VALUE specs; ValueError with a readable message on a bad one."""
    accepted: dict[str, set[str]] = {}
    expected = f"expected KEY=VALUE with KEY one of {', '.join(_KEY_NAMES)}"
    for spec in specs or ():
        key, sep, value = spec.partition("=")
        normalised = key.strip().lower().replace("_", "").replace("-", "")
        # Never the value back (a phone number, a case id): the key when it looks like one, else the problem.
        if not sep:
            raise ValueError(f"bad --filter: no '=' in it; {expected}")
        if normalised not in FILTER_KEYS:
            shown = f" {key.strip()}" if _KEY_LIKE.fullmatch(key.strip()) else ""
            raise ValueError(f"bad --filter: unknown key{shown}; {expected}")
        accepted.setdefault(FILTER_KEYS[normalised], set()).add(value.strip())
    return MessageFilter({k: frozenset(v) for k, v in accepted.items()})


_KEY_NAMES = ("ERROR_CODE", "eventType", "caseId", "contactId", "type")
_KEY_LIKE = re.compile(r"[A-Za-z][A-Za-z_-]{0,39}")


def count_by_error(summaries: Iterable[MessageSummary]) -> dict[str, int]:
    """Counts by error label, most frequent first."""
    counts: dict[str, int] = {}
    for s in summaries:
        counts[s.error_label] = counts.get(s.error_label, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
