"""Pure logic: what a message body asks for, and the related item it becomes. No I/O here."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from case_linker.identity import Identity, identity_of
from case_linker.models import ContactDetail, RelatedItemRequest
from case_linker.settings import Settings

CONTACT_DETAIL_TYPE = "Amazon Connect Contact Event"
REQUEST_DETAIL_TYPE = "Case Related Item Request"

# Error codes for our own rejections (ERROR_CODE on the dead-letter queue).
INVALID_JSON = "InvalidJson"
UNKNOWN_MESSAGE_SHAPE = "UnknownMessageShape"
VALIDATION = "ValidationException"

_EVENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_INSTANCE_ARN = re.compile(r"arn:aws[a-z-]*:connect:[a-z0-9-]+:\d{12}:instance/([A-Za-z0-9-]{1,100})")
_CONTACT_ARN = re.compile(
    r"(arn:aws[a-z-]*:connect:[a-z0-9-]+:\d{12}:instance/[A-Za-z0-9-]{1,100})/contact/([A-Za-z0-9-]{1,256})"
)

# Where a message came from (logs, metrics, priority): the envelope's `source`, else a producer's request.
CONNECT_SOURCE = "aws.connect"
# The sources of the contact messages the sweeper and `ops backfill` (ops/backfill.py: SOURCE) enqueue.
SWEEPER_SOURCE = "case-linker.sweeper"
BACKFILL_SOURCE = "case-linker.backfill"
ORIGIN_EVENT = "event"
ORIGIN_REQUEST = "request"
ORIGIN_SWEEPER = "sweeper"
ORIGIN_BACKFILL = "backfill"
ORIGIN_BY_SOURCE = {
    CONNECT_SOURCE: ORIGIN_EVENT,
    SWEEPER_SOURCE: ORIGIN_SWEEPER,
    BACKFILL_SOURCE: ORIGIN_BACKFILL,
}


@dataclass(frozen=True)
class RelatedItem:
    """A validated related item to create, plus the request's idempotency key if it had one.

    The case is `case_id`, or `reference_id` until the case id has been looked up (only Comments, which go
    through BatchCreateRelatedItem, can be created with a reference id alone).
    """

    domain_id: str
    case_id: str | None
    type: str
    content: dict[str, Any]
    performed_by: dict[str, str] | None = None
    idempotency_key: str | None = None
    reference_id: str | None = None
    # False when `performed_by` is the deployment's default (PERFORMED_BY), not the producer's.
    performer_given: bool = True

    @property
    def identity(self) -> Identity:
        """What the ledger and the client token hang on; stable whether or not the reference is resolved."""
        case = f"ref:{self.reference_id.lower()}" if self.reference_id is not None else str(self.case_id)
        return identity_of(
            domain_id=self.domain_id,
            case=case,
            type_=self.type,
            content=self.content,
            performed_by=self.performed_by,
            idempotency_key=self.idempotency_key,
            performer_given=self.performer_given,
        )

    @property
    def uses_client_token(self) -> bool:
        """Comments go through BatchCreateRelatedItem, whose clientToken makes a retried create safe."""
        return self.type == "Comment"

    def case_identifier(self) -> dict[str, str]:
        """CaseIdentifierUnion: the case id when known, else the reference id."""
        if self.case_id is not None:
            return {"caseId": self.case_id}
        return {"referenceId": str(self.reference_id)}

    def api_params(self) -> dict[str, Any]:
        """Keyword arguments for CreateRelatedItem (the case id must be known)."""
        if self.case_id is None:
            raise ValueError("the case id must be resolved before CreateRelatedItem")
        params: dict[str, Any] = {
            "domainId": self.domain_id,
            "caseId": self.case_id,
            "type": self.type,
            "content": self.content,
        }
        if self.performed_by is not None:
            params["performedBy"] = self.performed_by
        return params

    def batch_params(self, client_token: str) -> dict[str, Any]:
        """Keyword arguments for BatchCreateRelatedItem with this one case (Comments only)."""
        params: dict[str, Any] = {
            "domainId": self.domain_id,
            "content": self.content,
            "cases": [{"caseIdentifier": self.case_identifier()}],
            "clientToken": client_token,
        }
        if self.performed_by is not None:
            params["performedBy"] = self.performed_by
        return params

    @property
    def contact_arn(self) -> str | None:
        contact = self.content.get("contact")
        return contact["contactArn"] if isinstance(contact, dict) else None


@dataclass(frozen=True)
class Ignore:
    """Acknowledge without any call (an event type we do not link)."""

    reason: str


@dataclass(frozen=True)
class LinkContact:
    """A contact event to link; the case id may still have to come from the contact's attributes."""

    detail: ContactDetail
    event_id: str | None
    instance_id: str
    contact_arn: str
    tag_case_id: str | None
    origin: str = ORIGIN_EVENT

    @property
    def attributes_contact_id(self) -> str:
        """The contact whose user-defined attributes hold the case id."""
        return self.detail.initialContactId or self.detail.contactId


@dataclass(frozen=True)
class CreateItem:
    """A related-item request, already validated."""

    item: RelatedItem
    event_id: str | None
    origin: str = ORIGIN_REQUEST


@dataclass(frozen=True)
class Invalid:
    """A permanent rejection: goes to the dead-letter queue with this code and message."""

    code: str
    message: str


Decision = Ignore | LinkContact | CreateItem | Invalid


# Keys only a related-item request has at its top level (a bare contact event has contactId and eventType).
_REQUEST_KEYS = ("caseId", "referenceId", "type", "content")


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (RFC 8259) and the Cases API do not.
    raise ValueError(f"{name} is not a JSON value")


def classify(body: str, settings: Settings) -> Decision:
    """Decide what an SQS message body asks for."""
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        if isinstance(error, json.JSONDecodeError):
            where = f"{error.msg} at position {error.pos}"
        else:
            where = "too deep" if isinstance(error, RecursionError) else str(error)
        return Invalid(INVALID_JSON, f"body is not valid JSON: {where}")
    if not isinstance(document, dict):
        return Invalid(UNKNOWN_MESSAGE_SHAPE, f"body is a JSON {type(document).__name__}, not an object")

    keys = {_squash(key): key for key in document if isinstance(key, str)}
    if "detailtype" in keys:
        detail_type = document[keys["detailtype"]]
        detail = document.get(keys.get("detail", "detail"))
        event_id = _event_id(document.get(keys.get("id", "id")))
        source = document.get(keys.get("source", "source"))
        if detail_type == CONTACT_DETAIL_TYPE and isinstance(detail, dict):
            origin = ORIGIN_BY_SOURCE.get(source, ORIGIN_EVENT) if isinstance(source, str) else ORIGIN_EVENT
            return _contact_event(detail, event_id, settings, origin)
        if detail_type == REQUEST_DETAIL_TYPE and isinstance(detail, dict):
            return _request(detail, event_id, settings)
        if detail_type in (CONTACT_DETAIL_TYPE, REQUEST_DETAIL_TYPE):
            # A known detail-type: the detail is what is wrong (often JSON encoded twice, as a string).
            if keys.get("detail") is None:
                return Invalid(UNKNOWN_MESSAGE_SHAPE, "envelope detail is missing")
            return Invalid(UNKNOWN_MESSAGE_SHAPE, f"envelope detail is {_json_kind(detail)}, not an object")
        # The detail-type is input: say which ones are handled instead of echoing it.
        return Invalid(
            UNKNOWN_MESSAGE_SHAPE,
            f"envelope detail-type is neither {CONTACT_DETAIL_TYPE!r} nor {REQUEST_DETAIL_TYPE!r} "
            "with a detail object",
        )
    if "type" in document and "content" in document:
        return _request(document, None, settings)
    if "contactid" in keys and "eventtype" in keys:
        return _contact_event(document, None, settings, ORIGIN_EVENT)
    if any(key in document for key in _REQUEST_KEYS):
        # A request with a field missing: its validation names the field, where "unknown shape" would not.
        return _request(document, None, settings)
    return Invalid(
        UNKNOWN_MESSAGE_SHAPE,
        "neither a Connect contact event nor a related-item request (no detail-type, type/content or contactId)",
    )


def _json_kind(value: Any) -> str:
    """What a JSON value is, in JSON's words (never the value)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a JSON boolean"
    if isinstance(value, str):
        return "a JSON string"
    return "a JSON array" if isinstance(value, list) else "a JSON number"


def _contact_event(detail: dict[str, Any], event_id: str | None, settings: Settings, origin: str) -> Decision:
    # The exact spelling first, else the first other one: as ContactDetail's validation picks it.
    raw_type = (
        detail.get("eventType")
        if "eventType" in detail
        else next((v for k, v in detail.items() if isinstance(k, str) and _squash(k) == "eventtype"), None)
    )
    # A blank type is left to validation, which names it: no event type is not one we may skip.
    event_type = raw_type.strip().upper() if isinstance(raw_type, str) and raw_type.strip() else None
    if event_type is not None and event_type not in settings.contact_event_types:
        shown = event_type if _EVENT_TYPE.fullmatch(event_type) else "(not an event type name)"
        return Ignore(f"event type {shown} is not in CONTACT_EVENT_TYPES")
    try:
        parsed = ContactDetail.model_validate(detail)
    except ValidationError as error:
        return Invalid(VALIDATION, "contact event " + describe(error, prefix="detail"))
    match = _INSTANCE_ARN.fullmatch(parsed.instanceArn)
    if match is None:
        return Invalid(VALIDATION, "contact event detail.instanceArn is not an Amazon Connect instance ARN")
    if settings.connect_instance_arn is not None and parsed.instanceArn != settings.connect_instance_arn:
        return Invalid(
            VALIDATION,
            "contact event detail.instanceArn is not the configured Connect instance (CONNECT_INSTANCE_ARN); "
            "this deployment may only read that instance's contacts",
        )
    return LinkContact(
        detail=parsed,
        event_id=event_id,
        instance_id=match.group(1),
        contact_arn=f"{parsed.instanceArn}/contact/{parsed.contactId}",
        tag_case_id=case_id_from(parsed.tags, settings.case_id_attribute),
        origin=origin,
    )


def _request(document: dict[str, Any], event_id: str | None, settings: Settings) -> Decision:
    try:
        request = RelatedItemRequest.model_validate(document)
    except ValidationError as error:
        return Invalid(VALIDATION, "related-item request " + describe(error))
    refused = _beyond_the_role(request, settings)
    if refused is not None:
        return Invalid(VALIDATION, "related-item request " + refused)
    dumped = request.model_dump(mode="json", exclude_none=True)
    return CreateItem(
        item=RelatedItem(
            domain_id=settings.cases_domain_id,
            case_id=request.caseId,
            type=request.type,
            content=dumped["content"],
            performed_by=dumped.get("performedBy") or {"customEntity": settings.performed_by_entity},
            idempotency_key=request.idempotencyKey,
            reference_id=request.referenceId,
            performer_given=bool(dumped.get("performedBy")),
        ),
        event_id=event_id,
    )


def _beyond_the_role(request: RelatedItemRequest, settings: Settings) -> str | None:
    """Why the function's role cannot serve this request (it would end as AccessDenied), if it cannot.

    The stack grants Cases access to the configured domain only, connect:DescribeContact on the configured
    instance's contacts, and connect:DescribeUser (needed for performedBy.userArn) only in agent mode.
    """
    if request.domainId is not None and request.domainId != settings.cases_domain_id:
        return (
            "domainId: only the configured Cases domain (CASES_DOMAIN_ID) can be written by this deployment"
        )
    user_arn = request.performedBy.userArn if request.performedBy is not None else None
    instance = settings.connect_instance_arn
    if user_arn is not None:
        if not settings.performed_by_agent:
            return (
                "performedBy.userArn: this deployment is not granted connect:DescribeUser, which a userArn "
                "needs (deploy with performedBy=agent, or send performedBy.customEntity)"
            )
        if instance is not None and not user_arn.startswith(f"{instance}/agent/"):
            return (
                "performedBy.userArn: not an agent of the configured Connect instance (CONNECT_INSTANCE_ARN)"
            )
    contact = request.content.contact
    if contact is not None:
        match = _CONTACT_ARN.fullmatch(contact.contactArn)
        if match is None:
            return (
                "content.contact.contactArn: not an Amazon Connect contact ARN (<instance ARN>/contact/<id>)"
            )
        if instance is not None and match.group(1) != instance:
            return (
                "content.contact.contactArn: not a contact of the configured Connect instance "
                "(CONNECT_INSTANCE_ARN); this deployment may only link that instance's contacts"
            )
    return None


# Connect's contact ids and Cases' case ids are UUIDs. Any other id with this many digits may be a phone number put
# where the id goes (the API's caseId pattern takes "+12065550142" and "tel:+12065550142", Connect's contact id
# pattern "206-555-0166"): logs carry a placeholder instead. Hiding a producer's own id (say "case-2026-0001234")
# costs a look-up; logging a phone number would leak it.
_PHONE_DIGITS = 7
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
HIDDEN_ID = "(hidden: not a UUID and seven digits or more, may be a phone number)"


def _phone_like(value: str) -> bool:
    """Not a UUID and enough digits to be a phone number."""
    return sum(c.isdigit() for c in value) >= _PHONE_DIGITS and _UUID.fullmatch(value) is None


def loggable_id(value: str | None) -> str | None:
    """A case or contact id as logs may carry it: the id, never a phone number that a producer sent in its place."""
    return HIDDEN_ID if value is not None and _phone_like(value) else value


def contact_of(contact_arn: str) -> tuple[str, str] | None:
    """(instance id, contact id) of a contact ARN, if it is one."""
    match = _CONTACT_ARN.fullmatch(contact_arn)
    if match is None:
        return None
    return match.group(1).rsplit("/", 1)[-1], match.group(2)


def case_id_from(values: Mapping[str, Any] | None, name: str) -> str | None:
    """The case id in contact tags or attributes, if there is a non-blank one."""
    if not values:
        return None
    value = values.get(name)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def contact_item(link: LinkContact, case_id: str, settings: Settings) -> RelatedItem | Invalid:
    """The Contact related item for a contact event, validated like any request."""
    agent_arn = link.detail.agentInfo.agentArn if link.detail.agentInfo else None
    performed_by = (
        {"userArn": agent_arn}
        if settings.performed_by_agent and agent_arn
        else {"customEntity": settings.performed_by_entity}
    )
    content: dict[str, Any] = {"contact": {"contactArn": link.contact_arn}}
    candidate = {
        "caseId": case_id,
        "domainId": settings.cases_domain_id,
        "type": "Contact",
        "content": content,
        "performedBy": performed_by,
    }
    try:
        RelatedItemRequest.model_validate(candidate)
    except ValidationError as error:
        return Invalid(
            VALIDATION, f"contact {settings.case_id_attribute} or ARN rejected: " + describe(error)
        )
    return RelatedItem(
        domain_id=settings.cases_domain_id,
        case_id=case_id,
        type="Contact",
        content=content,
        performed_by=performed_by,
    )


def describe(error: ValidationError, prefix: str = "", limit: int = 3) -> str:
    """Which fields failed and why, without echoing any input value or any key taken from the input."""
    parts = []
    for entry in error.errors(include_input=False, include_url=False, include_context=False)[:limit]:
        where = list(entry["loc"])
        if entry["type"] == "extra_forbidden" and where:
            # The last part is the sender's own key: it can be anything, an e-mail address included.
            where[-1] = "<unexpected key>"
        location = ".".join(str(part) for part in (prefix, *where) if part != "")
        parts.append(f"{location or 'body'}: {entry['msg']}")
    more = error.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


_EVENT_TYPE = re.compile(r"[A-Z_]{1,64}")


def _squash(key: str) -> str:
    return key.replace("-", "").replace("_", "").lower()


def _event_id(value: Any) -> str | None:
    """The envelope's id, for the logs only: EventBridge's are UUIDs; anything else a producer put there may be
    customer data, and is not kept."""
    return value if isinstance(value, str) and _EVENT_ID.fullmatch(value) and not _phone_like(value) else None


# --- Finding an item that may already exist (after a lost response or on redelivery) -------------


def search_filter(item: RelatedItem) -> dict[str, Any]:
    """The narrowest SearchRelatedItems filter that still finds `item`."""
    content = item.content
    if item.type == "File":
        return {"file": {"fileArn": content["file"]["fileArn"]}}
    if item.type == "ConnectCase":
        return {"connectCase": {"caseId": content["connectCase"]["caseId"]}}
    if item.type == "Sla":
        return {"sla": {"name": content["sla"]["slaInputConfiguration"]["name"]}}
    if item.type == "Contact":
        return {"contact": {"contactArn": content["contact"]["contactArn"]}}
    return {"comment": {}} if item.type == "Comment" else {"custom": {}}


def same_item(item: RelatedItem, found: Mapping[str, Any]) -> bool:
    """Whether a SearchRelatedItems result is `item` (same type, content and, if shown, performedBy)."""
    if found.get("type") != item.type:
        return False
    performed_by = found.get("performedBy")
    if performed_by and item.performed_by is not None and performed_by != item.performed_by:
        return False
    mine, theirs = item.content, found.get("content") or {}
    if item.type == "Sla":
        wanted = mine["sla"]["slaInputConfiguration"]
        got = (theirs.get("sla") or {}).get("slaConfiguration") or {}
        keys = ("name", "type", "fieldId", "targetFieldValues")
        return all(wanted.get(key) == got.get(key) for key in keys)
    if item.type == "Contact":
        return (theirs.get("contact") or {}).get("contactArn") == item.contact_arn
    member = next(iter(mine))
    return theirs.get(member) == mine[member]
