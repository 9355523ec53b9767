"""Hypothesis strategies for hostile message bodies, and the API model's own verdict on a request.

The API model's verdict comes from the emulator's validator (botocore's `connectcases` model, every
constraint: lengths, patterns, enums, unions), run in-process: no network.
"""

from __future__ import annotations

import json
import string
from typing import Any, Literal

from case_linker.mapping import INVALID_JSON, UNKNOWN_MESSAGE_SHAPE, VALIDATION
from case_linker.models import CONTENT_MEMBER, CUSTOM_FIELDS_MAX, RELATED_ITEM_TYPES
from case_linker.settings import Settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from emulator import model

# CI-friendly and reproducible: the same examples on every run, no example database, no deadline (CI
# machines are shared and slow).
HOSTILE = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
FEW = settings(HOSTILE, max_examples=25)

# Agent mode, so a performedBy.userArn is within the role (no instance configured: any agent ARN).
SETTINGS = Settings(
    cases_domain_id="domain-1",
    dead_letter_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
    idempotency_table_name="idempotency",
    performed_by_agent=True,
)
INSTANCE_ARN = "arn:aws:connect:us-east-1:123456789012:instance/4b3f5c2e-8d1a-4e6f-9a7b-2c1d0e9f8a7b"
CONTACT_DETAIL_TYPE = "Amazon Connect Contact Event"
REQUEST_DETAIL_TYPE = "Case Related Item Request"
DLQ_CODES = frozenset({INVALID_JSON, UNKNOWN_MESSAGE_SHAPE, VALIDATION})

_CREATE = model.service_model("connectcases").operation_model("CreateRelatedItem")


def api_errors(params: dict[str, Any]) -> list[str]:
    """The Cases API model's constraint violations for CreateRelatedItem params ([] = valid)."""
    return model.validate(_CREATE.input_shape, params)


def api_params(document: dict[str, Any], default_domain: str = SETTINGS.cases_domain_id) -> dict[str, Any]:
    """The CreateRelatedItem params a request document asks for (as the API would receive them)."""
    params = {
        "domainId": document.get("domainId") or default_domain,
        "caseId": document.get("caseId"),
        "type": document.get("type"),
        "content": document.get("content"),
        "performedBy": document.get("performedBy"),
    }
    return {key: value for key, value in params.items() if value is not None}


def body_of(document: Any, ascii_only: bool = True) -> str:
    """A document as an SQS body (NaN and Infinity kept as Python's json writes them)."""
    return json.dumps(document, ensure_ascii=ascii_only)


# --- text ---------------------------------------------------------------------------------------------------

NO_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
# Anything Python can hold in a str: lone surrogates and control characters included.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)
# What a well-behaved producer sends: valid Unicode (no lone surrogates), controls included.
unicode_text = st.text(st.characters(exclude_categories=NO_SURROGATES), max_size=60)
INJECTIONS = (
    "'; DROP TABLE cases; --",
    "1' OR '1'='1",
    "../../../../etc/passwd",
    "..%2F..%2Fdomains",
    "<script>alert(1)</script>",
    "${jndi:ldap://127.0.0.1/a}",
    "{{7*7}}",
    "%s%s%s%n",
    "\r\nX-Injected: 1",
    '{"level":"CRITICAL","message":"forged log line"}',
    "\u202e\u0000\u200b",
    "$(reboot)",
)
injection = st.sampled_from(INJECTIONS)
hostile_text = st.one_of(any_text, injection, unicode_text)

# Values of a member declared 1..500 characters with no pattern.
id500 = st.one_of(
    st.text(st.characters(exclude_categories=NO_SURROGATES), min_size=1, max_size=40),
    st.sampled_from(["x", "y" * 500, "\U0001f600" * 500]),
    injection,
)
case_id = st.one_of(
    st.from_regex(r"[A-Za-z0-9\-._/:#=+]{1,60}", fullmatch=True),
    st.sampled_from(["a", "c" * 500, "../../domains", "a#b=c+d", "-", "::"]),
)
custom_entity = st.one_of(
    st.from_regex(r"[a-zA-Z0-9_\-.@: /]{0,40}[a-zA-Z0-9_\-.@:/]", fullmatch=True),
    st.sampled_from(["a", "e" * 500, "crm sync@example.com", "/"]),
)
# Printable, not whitespace-like in any regex dialect (Python, Rust, Java), ending in an ASCII letter.
_SAFE = st.characters(categories=("L", "N", "P", "S"), exclude_characters="\x85\u2028\u2029")
sla_name = st.one_of(
    st.builds(
        lambda s, e: s + e, st.text(st.one_of(_SAFE, st.just(" ")), max_size=40), st.sampled_from("aZ9")
    ),
    st.just("n" * 500),
)
comment_body = st.one_of(
    st.text(st.characters(exclude_categories=NO_SURROGATES), min_size=1, max_size=200),
    st.integers(min_value=1, max_value=15000).map(lambda n: "x" * n),
    st.sampled_from(["y" * 15000, "\U0001f600" * 15000, "a"]),
    injection,
)
finite_double = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**53), max_value=2**53),
)


@st.composite
def field_value_union(draw: st.DrawFn) -> dict[str, Any]:
    member = draw(
        st.sampled_from(["stringValue", "doubleValue", "booleanValue", "emptyValue", "userArnValue"])
    )
    value: Any = {
        "stringValue": st.one_of(st.text(max_size=50), st.just(""), st.just("s" * 4100)),
        "doubleValue": finite_double,
        "booleanValue": st.booleans(),
        "emptyValue": st.just({}),
        "userArnValue": st.text(max_size=50),
    }[member]
    return {member: draw(value)}


@st.composite
def valid_content(draw: st.DrawFn, item_type: str) -> dict[str, Any]:
    if item_type == "Contact":
        # The role may describe only contacts (instance ARN + /contact/ + id): those are what it can link.
        contact_id = draw(st.from_regex(r"[A-Za-z0-9-]{1,100}", fullmatch=True))
        return {"contact": {"contactArn": f"{INSTANCE_ARN}/contact/{contact_id}"}}
    if item_type == "Comment":
        return {"comment": {"body": draw(comment_body), "contentType": "Text/Plain"}}
    if item_type == "File":
        return {"file": {"fileArn": draw(id500)}}
    if item_type == "ConnectCase":
        return {"connectCase": {"caseId": draw(case_id)}}
    if item_type == "Custom":
        fields = draw(
            st.lists(
                st.fixed_dictionaries({"id": id500, "value": field_value_union()}),
                min_size=1,
                max_size=CUSTOM_FIELDS_MAX,
            )
            | st.just([{"id": f"f{i}", "value": {"booleanValue": True}} for i in range(CUSTOM_FIELDS_MAX)])
        )
        return {"custom": {"fields": fields}}
    config: dict[str, Any] = {
        "name": draw(sla_name),
        "type": "CaseField",
        "targetSlaMinutes": draw(st.sampled_from([1, 1051200]) | st.integers(1, 1051200)),
    }
    if draw(st.booleans()):
        config["fieldId"] = draw(id500)
    if draw(st.booleans()):
        config["targetFieldValues"] = [draw(field_value_union())]
    return {"sla": {"slaInputConfiguration": config}}


@st.composite
def valid_request(draw: st.DrawFn, item_type: str | None = None) -> dict[str, Any]:
    """A related-item request that satisfies every API constraint (and ours)."""
    kind = item_type or draw(st.sampled_from(RELATED_ITEM_TYPES))
    document: dict[str, Any] = {"caseId": draw(case_id), "type": kind, "content": draw(valid_content(kind))}
    if draw(st.booleans()):
        document["domainId"] = SETTINGS.cases_domain_id  # the only domain the role may write
    performed_by = draw(
        st.none()
        | st.fixed_dictionaries({"userArn": id500})
        | st.fixed_dictionaries({"customEntity": custom_entity})
    )
    if performed_by is not None:
        document["performedBy"] = performed_by
    if draw(st.booleans()):
        document["idempotencyKey"] = draw(
            st.text(min_size=1, max_size=256).filter(lambda s: "\ud800" not in s)
        )
    return document


def envelope(detail: Any, detail_type: str = REQUEST_DETAIL_TYPE, event_id: Any = "evt-1") -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": "com.example.crm",
        "detail": detail,
    }


# --- arbitrary JSON -----------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and +-Infinity too: Python's json reads and writes them
    hostile_text,
)
any_json = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(hostile_text, st.sampled_from(["caseId", "type", "content", "detail"])),
            children,
            max_size=5,
        ),
    ),
    max_leaves=25,
)


@st.composite
def request_shaped(draw: st.DrawFn) -> dict[str, Any]:
    """Looks like a request (type + content), with arbitrary values in any member."""
    kind = draw(st.sampled_from([*RELATED_ITEM_TYPES, "comment", ""]) | any_json)
    member = CONTENT_MEMBER.get(kind, "comment") if isinstance(kind, str) else "comment"
    document: dict[str, Any] = {
        "caseId": draw(case_id | any_json),
        "type": kind,
        "content": draw(st.one_of(any_json, st.fixed_dictionaries({member: any_json}))),
    }
    for key in ("domainId", "performedBy", "idempotencyKey"):
        if draw(st.booleans()):
            document[key] = draw(any_json)
    return document


@st.composite
def contact_shaped(draw: st.DrawFn) -> dict[str, Any]:
    """A Connect contact event envelope whose detail members are arbitrary (and sometimes right)."""
    detail: dict[str, Any] = {
        "eventType": draw(
            st.sampled_from(["COMPLETED", " completed ", "Completed", "DISCONNECTED"]) | any_json
        ),
        "contactId": draw(st.uuids().map(str) | any_json),
        "instanceArn": draw(st.just(INSTANCE_ARN) | any_json),
    }
    for key in ("initialContactId", "channel", "agentInfo", "tags", "ContactId", "AgentInfo", "queueInfo"):
        if draw(st.booleans()):
            detail[key] = draw(any_json)
    if draw(st.booleans()):
        detail["tags"] = {"caseId": draw(case_id | hostile_text | any_json)}
    return envelope(detail, CONTACT_DETAIL_TYPE, draw(st.uuids().map(str) | any_json))


def printable_ascii(size: int) -> str:
    return (string.ascii_letters * (size // len(string.ascii_letters) + 1))[:size]
