"""Hostile message bodies against the linker's parsing and validation (pure: no network).

Properties:
- every body is classified (ignore, link a contact, create an item, or a DLQ reason); nothing raises;
- a DLQ reason has one of our codes and a message naming the field, never echoing a value;
- our validation agrees with the Cases API model: what we accept the model accepts (soundness), and a
  request the model accepts (with a matching type and no unknown keys) we accept (completeness).
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from case_linker.mapping import (
    INVALID_JSON,
    UNKNOWN_MESSAGE_SHAPE,
    VALIDATION,
    CreateItem,
    Decision,
    Ignore,
    Invalid,
    LinkContact,
    classify,
    contact_item,
)
from case_linker.models import CONTENT_MEMBER, RELATED_ITEM_TYPES
from hypothesis import example, given
from hypothesis import strategies as st

from tests.hostile.strategies import (
    DLQ_CODES,
    FEW,
    HOSTILE,
    INSTANCE_ARN,
    REQUEST_DETAIL_TYPE,
    SETTINGS,
    any_json,
    any_text,
    api_errors,
    api_params,
    body_of,
    contact_shaped,
    envelope,
    request_shaped,
    valid_request,
)

DELETE = object()
SECRET = "SECRET-VALUE-7c1f"


def check_decision(decision: Decision) -> None:
    """The invariant every body must meet, whatever it holds."""
    assert isinstance(decision, Ignore | LinkContact | CreateItem | Invalid), decision
    if isinstance(decision, Invalid):
        assert decision.code in DLQ_CODES, decision
        assert decision.message.strip(), decision
    if isinstance(decision, CreateItem):
        # Soundness: whatever we are about to send, the API model accepts.
        errors = api_errors(decision.item.api_params())
        assert errors == [], f"we accepted what the Cases API model rejects: {errors}"
    if isinstance(decision, LinkContact):
        for case_id in (decision.tag_case_id or "case-1", "case-1"):
            item = contact_item(decision, case_id, SETTINGS)
            if isinstance(item, Invalid):
                assert item.code == VALIDATION
                assert "caseId" in item.message or "contactArn" in item.message, item
            else:
                assert api_errors(item.api_params()) == [], item


# --- anything at all -----------------------------------------------------------------------------------------


@HOSTILE
@given(body=st.one_of(any_text, st.binary(max_size=80).map(lambda b: b.decode("latin-1"))))
@example(body="")
@example(body="\ufeff{}")
@example(body="[" * 50_000)
@example(body='{"a":' * 5_000)
@example(body="NaN")
@example(body='{"detail-type": "Amazon Connect Contact Event", "detail": {"contactId": 1}}')
def test_given_any_text_as_a_body_when_classified_then_a_decision_and_never_an_exception(body: str) -> None:
    check_decision(classify(body, SETTINGS))


@HOSTILE
@given(document=any_json, ascii_only=st.booleans())
def test_given_arbitrary_json_when_classified_then_a_decision_and_never_an_exception(
    document: Any, ascii_only: bool
) -> None:
    check_decision(classify(body_of(document, ascii_only), SETTINGS))


@HOSTILE
@given(
    detail=any_json,
    detail_type=st.sampled_from(["Amazon Connect Contact Event", REQUEST_DETAIL_TYPE, "Other", ""])
    | any_json,
    event_id=any_json,
)
def test_given_an_envelope_with_an_arbitrary_detail_when_classified_then_never_an_exception(
    detail: Any, detail_type: Any, event_id: Any
) -> None:
    document = envelope(detail, detail_type, event_id)
    check_decision(classify(body_of(document), SETTINGS))


@HOSTILE
@given(document=request_shaped(), wrapped=st.booleans(), ascii_only=st.booleans())
def test_given_a_request_with_arbitrary_members_when_classified_then_valid_ones_pass_the_api_model(
    document: dict[str, Any], wrapped: bool, ascii_only: bool
) -> None:
    check_decision(classify(body_of(envelope(document) if wrapped else document, ascii_only), SETTINGS))


@HOSTILE
@given(document=contact_shaped())
def test_given_a_contact_event_with_arbitrary_members_when_classified_then_never_an_exception(
    document: dict[str, Any],
) -> None:
    check_decision(classify(body_of(document), SETTINGS))


def test_given_a_body_nested_deeper_than_the_parser_allows_when_classified_then_invalid_json() -> None:
    decision = classify('{"caseId": ' + "[" * 100_000 + "]" * 100_000 + "}", SETTINGS)

    assert isinstance(decision, Invalid)
    assert decision.code == INVALID_JSON


@pytest.mark.parametrize("size", [256 * 1024, 1024 * 1024])
def test_given_a_huge_comment_when_classified_then_rejected_naming_the_body(size: int) -> None:
    document = {
        "caseId": "c",
        "type": "Comment",
        "content": {"comment": {"body": "x" * size, "contentType": "Text/Plain"}},
    }

    decision = classify(json.dumps(document), SETTINGS)

    assert isinstance(decision, Invalid)
    assert "content.comment.body" in decision.message


def test_given_a_huge_unknown_body_when_classified_then_unknown_shape_without_echoing_it() -> None:
    decision = classify(json.dumps({"note": SECRET * 20_000}), SETTINGS)

    assert isinstance(decision, Invalid)
    assert decision.code == UNKNOWN_MESSAGE_SHAPE
    assert SECRET not in decision.message


# --- valid requests: agreement with the API model -------------------------------------------------------------


@HOSTILE
@given(document=valid_request(), wrapped=st.booleans(), ascii_only=st.booleans())
def test_given_a_request_within_every_api_constraint_when_classified_then_created_as_asked(
    document: dict[str, Any], wrapped: bool, ascii_only: bool
) -> None:
    assert api_errors(api_params(document)) == []  # the strategy's own promise

    decision = classify(body_of(envelope(document) if wrapped else document, ascii_only), SETTINGS)

    assert isinstance(decision, CreateItem), decision
    params = decision.item.api_params()
    assert api_errors(params) == []
    assert params["caseId"] == document["caseId"]
    assert params["domainId"] == (document.get("domainId") or SETTINGS.cases_domain_id)
    assert params["type"] == document["type"]
    assert params["content"] == document["content"]
    assert decision.item.idempotency_key == document.get("idempotencyKey")


@HOSTILE
@given(document=request_shaped())
def test_given_a_request_the_api_model_accepts_when_classified_then_we_accept_it_too(
    document: dict[str, Any],
) -> None:
    """Completeness: no false rejections of API-valid requests (type matching content, no unknown keys)."""
    params = api_params(document)
    content = document.get("content")
    kind = document.get("type")
    matching = (
        isinstance(kind, str) and isinstance(content, dict) and list(content) == [CONTENT_MEMBER.get(kind)]
    )
    key = document.get("idempotencyKey")
    plain_keys = key is None or (isinstance(key, str) and 1 <= len(key) <= 256)
    domain = document.get("domainId")
    contact = (content or {}).get("contact") if isinstance(content, dict) else None
    within_role = domain in (None, SETTINGS.cases_domain_id) and (
        not isinstance(contact, dict)
        or str(contact.get("contactArn", "")).startswith(f"{INSTANCE_ARN}/contact/")
    )
    if not (matching and plain_keys and api_errors(params) == [] and within_role):
        return
    decision = classify(body_of(document), SETTINGS)
    assert isinstance(decision, CreateItem), decision


# --- each constraint's edge: the reason names the field -------------------------------------------------------

# (id, type of the base request, path, bad value or DELETE, text the DLQ message must contain,
#  whether the API model rejects it as well)
MUTATIONS: list[tuple[str, str, tuple[str | int, ...], Any, str, bool]] = [
    ("caseId empty", "Comment", ("caseId",), "", "caseId", True),
    ("caseId 501", "Comment", ("caseId",), "c" * 501, "caseId", True),
    ("caseId space", "Comment", ("caseId",), "has space", "caseId", True),
    ("caseId sql", "Comment", ("caseId",), "1' OR '1'='1", "caseId", True),
    ("caseId unicode", "Comment", ("caseId",), "caseé", "caseId", True),
    ("caseId newline", "Comment", ("caseId",), "case\n", "caseId", True),
    ("caseId number", "Comment", ("caseId",), 42, "caseId", True),
    ("caseId list", "Comment", ("caseId",), ["a"], "caseId", True),
    ("caseId missing", "Comment", ("caseId",), DELETE, "caseId", True),
    ("domainId 501", "Comment", ("domainId",), "d" * 501, "domainId", True),
    ("domainId number", "Comment", ("domainId",), 7, "domainId", True),
    ("type lowercase", "Comment", ("type",), "comment", "type", True),
    ("type empty", "Comment", ("type",), "", "type", True),
    ("type number", "Comment", ("type",), 1, "type", True),
    ("type missing", "Comment", ("type",), DELETE, "type", True),
    ("type mismatch", "Comment", ("type",), "File", "content.file", False),
    ("content empty union", "Comment", ("content",), {}, "content", True),
    ("content two members", "Comment", ("content", "file"), {"fileArn": "arn:f"}, "content", True),
    ("content string", "Comment", ("content",), "hello", "content", True),
    ("content unknown member", "Comment", ("content", "note"), {"x": 1}, "content.<unexpected key>", True),
    ("comment empty", "Comment", ("content", "comment", "body"), "", "content.comment.body", True),
    ("comment 15001", "Comment", ("content", "comment", "body"), "x" * 15001, "content.comment.body", True),
    ("comment number", "Comment", ("content", "comment", "body"), 5, "content.comment.body", True),
    ("comment missing", "Comment", ("content", "comment", "body"), DELETE, "content.comment.body", True),
    ("contentType case", "Comment", ("content", "comment", "contentType"), "text/plain", "contentType", True),
    ("contentType html", "Comment", ("content", "comment", "contentType"), "Text/HTML", "contentType", True),
    ("contentType missing", "Comment", ("content", "comment", "contentType"), DELETE, "contentType", True),
    ("performedBy empty", "Comment", ("performedBy",), {}, "performedBy", True),
    (
        "performedBy both",
        "Comment",
        ("performedBy",),
        {"userArn": "arn:u", "customEntity": "x"},
        "performedBy",
        True,
    ),
    ("userArn empty", "Comment", ("performedBy",), {"userArn": ""}, "performedBy.userArn", True),
    ("userArn 501", "Comment", ("performedBy",), {"userArn": "u" * 501}, "performedBy.userArn", True),
    (
        "customEntity trailing space",
        "Comment",
        ("performedBy",),
        {"customEntity": "crm "},
        "customEntity",
        True,
    ),
    ("customEntity semicolon", "Comment", ("performedBy",), {"customEntity": "a;b"}, "customEntity", True),
    ("customEntity 501", "Comment", ("performedBy",), {"customEntity": "e" * 501}, "customEntity", True),
    ("contactArn empty", "Contact", ("content", "contact", "contactArn"), "", "contactArn", True),
    ("contactArn 501", "Contact", ("content", "contact", "contactArn"), "a" * 501, "contactArn", True),
    ("fileArn object", "File", ("content", "file", "fileArn"), {"a": 1}, "fileArn", True),
    (
        "connectCase caseId",
        "ConnectCase",
        ("content", "connectCase", "caseId"),
        "bad id",
        "connectCase.caseId",
        True,
    ),
    ("custom no fields", "Custom", ("content", "custom", "fields"), [], "fields", True),
    (
        "custom 51 fields",
        "Custom",
        ("content", "custom", "fields"),
        [{"id": f"f{i}", "value": {"booleanValue": True}} for i in range(51)],
        "fields",
        True,
    ),
    (
        "custom value two members",
        "Custom",
        ("content", "custom", "fields", 0, "value"),
        {"booleanValue": True, "stringValue": "s"},
        "value",
        True,
    ),
    ("custom value empty", "Custom", ("content", "custom", "fields", 0, "value"), {}, "value", True),
    (
        "custom string 4101",
        "Custom",
        ("content", "custom", "fields", 0, "value"),
        {"stringValue": "s" * 4101},
        "stringValue",
        True,
    ),
    ("custom id empty", "Custom", ("content", "custom", "fields", 0, "id"), "", "id", True),
    (
        "custom double string",
        "Custom",
        ("content", "custom", "fields", 0, "value"),
        {"doubleValue": "1.5"},
        "doubleValue",
        True,
    ),
    (
        "custom boolean string",
        "Custom",
        ("content", "custom", "fields", 0, "value"),
        {"booleanValue": "true"},
        "booleanValue",
        True,
    ),
    (
        "custom double NaN",
        "Custom",
        ("content", "custom", "fields", 0, "value"),
        {"doubleValue": float("nan")},
        "doubleValue",
        True,
    ),
    (
        "custom double Infinity",
        "Custom",
        ("content", "custom", "fields", 0, "value"),
        {"doubleValue": float("inf")},
        "doubleValue",
        True,
    ),
    (
        "custom double 1e400",
        "Custom",
        ("content", "custom", "fields", 0, "value"),
        {"doubleValue": 10**400},
        "doubleValue",
        True,
    ),
    (
        "sla minutes 0",
        "Sla",
        ("content", "sla", "slaInputConfiguration", "targetSlaMinutes"),
        0,
        "targetSlaMinutes",
        True,
    ),
    (
        "sla minutes max+1",
        "Sla",
        ("content", "sla", "slaInputConfiguration", "targetSlaMinutes"),
        1051201,
        "targetSlaMinutes",
        True,
    ),
    (
        "sla minutes float",
        "Sla",
        ("content", "sla", "slaInputConfiguration", "targetSlaMinutes"),
        1.5,
        "targetSlaMinutes",
        True,
    ),
    (
        "sla minutes bool",
        "Sla",
        ("content", "sla", "slaInputConfiguration", "targetSlaMinutes"),
        True,
        "targetSlaMinutes",
        True,
    ),
    ("sla name blank", "Sla", ("content", "sla", "slaInputConfiguration", "name"), "   ", "name", True),
    (
        "sla name trailing space",
        "Sla",
        ("content", "sla", "slaInputConfiguration", "name"),
        "First ",
        "name",
        True,
    ),
    ("sla type", "Sla", ("content", "sla", "slaInputConfiguration", "type"), "Other", "type", True),
    (
        "sla two targets",
        "Sla",
        ("content", "sla", "slaInputConfiguration", "targetFieldValues"),
        [{"booleanValue": True}, {"booleanValue": False}],
        "targetFieldValues",
        True,
    ),
    ("sla empty union", "Sla", ("content", "sla"), {}, "content.sla", True),
    ("unknown top-level key", "Comment", ("comments",), "x", "<unexpected key>", False),
    ("idempotencyKey empty", "Comment", ("idempotencyKey",), "", "idempotencyKey", False),
    ("idempotencyKey 257", "Comment", ("idempotencyKey",), "k" * 257, "idempotencyKey", False),
]


def mutate(document: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    mutated = copy.deepcopy(document)
    target: Any = mutated
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return mutated


@pytest.mark.parametrize(
    ("item_type", "path", "value", "named", "api_rejects"),
    [pytest.param(*m[1:], id=m[0]) for m in MUTATIONS],
)
@FEW
@given(data=st.data())
def test_given_one_constraint_broken_when_classified_then_dead_lettered_naming_that_field(
    item_type: str,
    path: tuple[str | int, ...],
    value: Any,
    named: str,
    api_rejects: bool,
    data: st.DataObject,
) -> None:
    document = mutate(data.draw(valid_request(item_type)), path, value)
    if path[0] == "performedBy" or path == ("domainId",):
        document[str(path[0])] = value  # set even when the base request had none

    decision = classify(body_of(document), SETTINGS)

    assert isinstance(decision, Invalid), f"accepted a broken {'.'.join(map(str, path))}: {decision}"
    if _holds_nan_or_infinity(value):
        # json.dumps writes NaN/Infinity bare: not JSON (RFC 8259), so the body itself is rejected.
        assert decision.code == INVALID_JSON
        assert "not a JSON value" in decision.message, decision.message
        return
    # A request missing its type is still a request (it has caseId and content): the error names the field.
    assert decision.code == VALIDATION
    assert named in decision.message, decision.message
    if api_rejects:
        assert api_errors(api_params(document)) != [], "the API model accepts what we reject"


@pytest.mark.parametrize("item_type", RELATED_ITEM_TYPES)
@FEW
@given(
    data=st.data(), planted=st.sampled_from(["+1 206 555 0100", "jane.doe@example.com", "SECRET-VALUE-7c1f"])
)
def test_given_a_bad_value_when_dead_lettered_then_the_reason_never_echoes_the_value(
    item_type: str, data: st.DataObject, planted: str
) -> None:
    document = data.draw(valid_request(item_type))
    document["caseId"] = f"{planted} {planted}"  # invalid: spaces are outside the caseId pattern
    content = document["content"][CONTENT_MEMBER[item_type]]
    content["planted"] = planted  # an unknown member holding the value

    decision = classify(body_of(document), SETTINGS)

    assert isinstance(decision, Invalid)
    assert planted not in decision.message
    assert "caseId" in decision.message


def test_given_a_lone_surrogate_in_a_comment_when_classified_then_rejected_naming_the_body() -> None:
    body = (
        '{"caseId":"c","type":"Comment","content":{"comment":{"body":"\\ud800","contentType":"Text/Plain"}}}'
    )

    decision = classify(body, SETTINGS)

    assert isinstance(decision, Invalid)
    assert "content.comment.body" in decision.message


def _holds_nan_or_infinity(value: Any) -> bool:
    return isinstance(value, dict) and any(
        isinstance(member, float) and not math.isfinite(member) for member in value.values()
    )
