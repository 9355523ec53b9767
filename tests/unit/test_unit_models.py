"""The request model enforces every CreateRelatedItem constraint, and agrees with botocore's model."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from case_linker import models
from case_linker.models import ContactDetail, RelatedItemRequest
from pydantic import ValidationError


def comment(body: str = "hello", **extra: Any) -> dict[str, Any]:
    return {
        "caseId": "case-1",
        "type": "Comment",
        "content": {"comment": {"body": body, "contentType": "Text/Plain"}},
        **extra,
    }


def custom(*values: dict[str, Any]) -> dict[str, Any]:
    fields = [{"id": f"field{i}", "value": v} for i, v in enumerate(values)]
    return {"caseId": "case-1", "type": "Custom", "content": {"custom": {"fields": fields}}}


def sla(**config: Any) -> dict[str, Any]:
    base = {"name": "First response", "type": "CaseField", "targetSlaMinutes": 60}
    return {
        "caseId": "case-1",
        "type": "Sla",
        "content": {"sla": {"slaInputConfiguration": {**base, **config}}},
    }


def failed_fields(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        RelatedItemRequest.model_validate(document)
    return [".".join(str(p) for p in e["loc"]) for e in caught.value.errors()]


@pytest.mark.parametrize("length", [1, 15000])
def test_given_a_comment_at_the_length_limits_when_validated_then_accepted(length: int) -> None:
    RelatedItemRequest.model_validate(comment("x" * length))


@pytest.mark.parametrize(("length", "field"), [(0, "content.comment.body"), (15001, "content.comment.body")])
def test_given_a_comment_outside_the_limits_when_validated_then_the_body_is_named(
    length: int, field: str
) -> None:
    assert failed_fields(comment("x" * length)) == [field]


def test_given_a_comment_of_15000_astral_characters_when_validated_then_counted_as_characters() -> None:
    RelatedItemRequest.model_validate(comment("\U0001f600" * 15000))


def test_given_a_content_type_other_than_text_plain_when_validated_then_rejected() -> None:
    document = comment()
    document["content"]["comment"]["contentType"] = "text/plain"
    assert failed_fields(document) == ["content.comment.contentType"]


@pytest.mark.parametrize("case_id", ["a", "A-z0.9_/:#=+-", "x" * 500])
def test_given_a_valid_case_id_when_validated_then_accepted(case_id: str) -> None:
    RelatedItemRequest.model_validate({**comment(), "caseId": case_id})


@pytest.mark.parametrize("case_id", ["", "x" * 501, "has space", "semi;colon", "new\nline", "é"])
def test_given_an_invalid_case_id_when_validated_then_case_id_is_named(case_id: str) -> None:
    assert failed_fields({**comment(), "caseId": case_id}) == ["caseId"]


def test_given_an_unknown_type_when_validated_then_rejected() -> None:
    assert failed_fields({**comment(), "type": "comment"}) == ["type"]


def test_given_content_of_another_type_when_validated_then_rejected() -> None:
    assert failed_fields({**comment(), "type": "File"}) == [""]


def test_given_two_content_members_when_validated_then_the_union_is_rejected() -> None:
    document = comment()
    document["content"]["file"] = {"fileArn": "arn:aws:cases:us-east-1:123456789012:domain/d/file/f"}
    assert failed_fields(document) == ["content"]


def test_given_no_content_member_when_validated_then_the_union_is_rejected() -> None:
    assert failed_fields({**comment(), "content": {}}) == ["content"]


def test_given_an_unknown_field_when_validated_then_rejected() -> None:
    assert failed_fields(comment(priority="high")) == ["priority"]


@pytest.mark.parametrize(
    ("performed_by", "ok"),
    [
        ({"customEntity": "crm-sync"}, True),
        ({"customEntity": "a b.c@d:e/f_g-h"}, True),
        ({"customEntity": "x" * 500}, True),
        ({"customEntity": "x" * 501}, False),
        ({"customEntity": "trailing "}, False),
        ({"customEntity": "bang!"}, False),
        ({"customEntity": ""}, False),
        ({"userArn": "arn:aws:connect:us-east-1:123456789012:instance/i/agent/a"}, True),
        ({"userArn": "x" * 501}, False),
        ({"userArn": "a", "customEntity": "b"}, False),
        ({}, False),
    ],
)
def test_performed_by_is_a_union_of_user_arn_and_custom_entity(
    performed_by: dict[str, str], ok: bool
) -> None:
    document = comment(performedBy=performed_by)
    if ok:
        RelatedItemRequest.model_validate(document)
    else:
        assert failed_fields(document)[0].startswith("performedBy")


@pytest.mark.parametrize("length", [0, 257])
def test_given_an_idempotency_key_outside_1_to_256_when_validated_then_rejected(length: int) -> None:
    assert failed_fields(comment(idempotencyKey="k" * length)) == ["idempotencyKey"]


def test_given_each_field_value_kind_when_validated_then_accepted() -> None:
    RelatedItemRequest.model_validate(
        custom(
            {"stringValue": "x" * 4100},
            {"stringValue": ""},
            {"doubleValue": 1.5},
            {"doubleValue": 2},
            {"booleanValue": False},
            {"emptyValue": {}},
            {"userArnValue": "arn:aws:connect:us-east-1:123456789012:instance/i/agent/a"},
        )
    )


@pytest.mark.parametrize(
    "value",
    [
        {"stringValue": "x" * 4101},
        {"booleanValue": "true"},
        {"doubleValue": True},
        {},
        {"stringValue": "a", "doubleValue": 1},
    ],
)
def test_given_an_invalid_field_value_when_validated_then_rejected(value: dict[str, Any]) -> None:
    assert failed_fields(custom(value))[0].startswith("content.custom.fields.0.value")


@pytest.mark.parametrize(("count", "ok"), [(0, False), (1, True), (50, True), (51, False)])
def test_custom_fields_number_1_to_50(count: int, ok: bool) -> None:
    document = custom(*([{"stringValue": "v"}] * count))
    if ok:
        RelatedItemRequest.model_validate(document)
    else:
        assert failed_fields(document) == ["content.custom.fields"]


@pytest.mark.parametrize(
    ("config", "ok"),
    [
        ({}, True),
        ({"targetSlaMinutes": 1051200}, True),
        ({"targetSlaMinutes": 0}, False),
        ({"targetSlaMinutes": 1051201}, False),
        ({"name": "ends in space "}, False),
        ({"name": " leading space"}, True),
        ({"type": "Other"}, False),
        ({"fieldId": "status", "targetFieldValues": [{"stringValue": "closed"}]}, True),
        ({"targetFieldValues": []}, False),
        ({"targetFieldValues": [{"stringValue": "a"}, {"stringValue": "b"}]}, False),
    ],
)
def test_sla_input_configuration_constraints(config: dict[str, Any], ok: bool) -> None:
    if ok:
        RelatedItemRequest.model_validate(sla(**config))
    else:
        assert failed_fields(sla(**config))[0].startswith("content.sla.slaInputConfiguration")


def test_given_a_pascal_case_contact_detail_when_parsed_then_fields_and_values_are_normalised() -> None:
    detail = ContactDetail.model_validate(
        {
            "EventType": "completed",
            "ContactId": "c-1",
            "InstanceArn": "arn",
            "Channel": "Voice",
            "AgentInfo": {"AgentArn": "agent"},
            "SomethingNew": {"x": 1},
        }
    )

    assert (detail.eventType, detail.contactId, detail.channel) == ("COMPLETED", "c-1", "VOICE")
    assert detail.agentInfo is not None
    assert detail.agentInfo.agentArn == "agent"


def test_given_both_spellings_of_a_key_when_parsed_then_the_exact_camel_case_one_wins() -> None:
    detail = ContactDetail.model_validate(
        {"eventType": "COMPLETED", "ContactId": "pascal", "contactId": "camel", "instanceArn": "arn"}
    )
    assert detail.contactId == "camel"


def _shape(*path: str) -> Any:
    service = botocore.session.get_session().get_service_model("connectcases")
    shape: Any = service.operation_model("CreateRelatedItem").input_shape
    for name in path:
        shape = shape.members[name] if shape.type_name == "structure" else shape.member.members[name]
    return shape


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        (("caseId",), "pattern", models.CASE_ID_PATTERN),
        (("caseId",), "max", 500),
        (("domainId",), "max", 500),
        (("content", "contact", "contactArn"), "max", 500),
        (("content", "comment", "body"), "max", models.COMMENT_MAX),
        (("content", "file", "fileArn"), "max", 500),
        (("content", "connectCase", "caseId"), "pattern", models.CASE_ID_PATTERN),
        (("content", "custom", "fields"), "max", models.CUSTOM_FIELDS_MAX),
        (("performedBy", "customEntity"), "pattern", models.CUSTOM_ENTITY_PATTERN),
        (("performedBy", "customEntity"), "max", 500),
        (("performedBy", "userArn"), "max", 500),
        (("content", "sla", "slaInputConfiguration", "name"), "pattern", models.SLA_NAME_PATTERN),
        (
            ("content", "sla", "slaInputConfiguration", "targetSlaMinutes"),
            "max",
            models.TARGET_SLA_MINUTES_MAX,
        ),
        (("content", "custom", "fields", "value", "stringValue"), "max", models.STRING_VALUE_MAX),
    ],
)
def test_hard_coded_constraints_match_botocores_connectcases_model(
    path: tuple[str, ...], key: str, expected: Any
) -> None:
    assert _shape(*path).metadata[key] == expected


def test_related_item_types_and_content_members_match_botocores_model() -> None:
    assert tuple(_shape("type").enum) == models.RELATED_ITEM_TYPES
    assert set(_shape("content").members) == set(models.CONTENT_MEMBER.values())
    assert _shape("content", "comment", "contentType").enum == ["Text/Plain"]
