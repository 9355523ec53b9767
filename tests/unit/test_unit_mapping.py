"""Mapping a message body to a decision, and a decision to a related item; no network."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from case_linker.mapping import (
    CreateItem,
    Ignore,
    Invalid,
    LinkContact,
    RelatedItem,
    case_id_from,
    classify,
    contact_item,
    idempotency_data,
    same_item,
    search_filter,
)
from case_linker.settings import Settings

from tests.conftest import load_event

SETTINGS = Settings(
    cases_domain_id="domain-1",
    dead_letter_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
    idempotency_table_name="idempotency",
)
INSTANCE_ARN = "arn:aws:connect:us-east-1:123456789012:instance/4b3f5c2e-8d1a-4e6f-9a7b-2c1d0e9f8a7b"
AGENT_ARN = f"{INSTANCE_ARN}/agent/agent-1"


def contact_event(**detail: Any) -> str:
    base = {
        "eventType": "COMPLETED",
        "contactId": "contact-1",
        "instanceArn": INSTANCE_ARN,
        "channel": "VOICE",
    }
    return json.dumps(
        {
            "id": "event-1",
            "detail-type": "Amazon Connect Contact Event",
            "source": "aws.connect",
            "detail": {**base, **detail},
        }
    )


def link(body: str, settings: Settings = SETTINGS) -> LinkContact:
    decision = classify(body, settings)
    assert isinstance(decision, LinkContact), decision
    return decision


def test_given_a_completed_contact_event_when_classified_then_it_links_the_built_contact_arn() -> None:
    decision = link(contact_event())

    assert decision.contact_arn == f"{INSTANCE_ARN}/contact/contact-1"
    assert decision.instance_id == "4b3f5c2e-8d1a-4e6f-9a7b-2c1d0e9f8a7b"
    assert decision.event_id == "event-1"
    assert decision.tag_case_id is None


@pytest.mark.parametrize("event_type", ["DISCONNECTED", "QUEUED", "SOMETHING_NEW_2030"])
def test_given_an_event_type_not_configured_when_classified_then_ignored(event_type: str) -> None:
    assert isinstance(classify(contact_event(eventType=event_type), SETTINGS), Ignore)


def test_given_an_ignored_event_type_with_missing_fields_when_classified_then_still_just_ignored() -> None:
    body = json.dumps({"detail-type": "Amazon Connect Contact Event", "detail": {"eventType": "QUEUED"}})
    assert isinstance(classify(body, SETTINGS), Ignore)


def test_given_configured_event_types_when_a_lowercase_type_arrives_then_it_matches() -> None:
    settings = replace(SETTINGS, contact_event_types=frozenset({"DISCONNECTED"}))
    assert isinstance(classify(contact_event(eventType="disconnected"), settings), LinkContact)


def test_given_the_case_id_in_tags_when_classified_then_the_tag_is_used() -> None:
    assert link(contact_event(tags={"caseId": " case-9 ", "other": "x"})).tag_case_id == "case-9"


def test_given_a_custom_case_id_attribute_when_the_tag_has_that_name_then_it_is_used() -> None:
    settings = replace(SETTINGS, case_id_attribute="ticket")
    assert link(contact_event(tags={"caseId": "no", "ticket": "yes"}), settings).tag_case_id == "yes"


def test_given_a_transfer_when_attributes_are_needed_then_the_initial_contact_is_asked() -> None:
    assert link(contact_event(initialContactId="first")).attributes_contact_id == "first"
    assert link(contact_event(initialContactId="")).attributes_contact_id == "contact-1"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (None, None),
        ({}, None),
        ({"caseId": ""}, None),
        ({"caseId": "  "}, None),
        ({"caseId": 5}, None),
        ({"caseId": " c "}, "c"),
    ],
)
def test_case_id_from_tags_or_attributes(values: dict[str, Any] | None, expected: str | None) -> None:
    assert case_id_from(values, "caseId") == expected


def test_given_a_contact_detail_without_envelope_when_classified_then_it_is_still_a_contact_event() -> None:
    body = json.dumps({"EventType": "COMPLETED", "ContactId": "c", "InstanceArn": INSTANCE_ARN})
    assert isinstance(classify(body, SETTINGS), LinkContact)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "InvalidJson"),
        ("", "InvalidJson"),
        ("[" * 100000, "InvalidJson"),
        ("[1, 2]", "UnknownMessageShape"),
        ('"text"', "UnknownMessageShape"),
        ('{"hello": "world"}', "UnknownMessageShape"),
        ('{"detail-type": "Something Else", "detail": {}}', "UnknownMessageShape"),
        ('{"detail-type": "Amazon Connect Contact Event", "detail": "nope"}', "UnknownMessageShape"),
        (contact_event(contactId=None), "ValidationException"),
        (contact_event(instanceArn="arn:aws:connect:us-east-1:123456789012:queue/x"), "ValidationException"),
    ],
)
def test_given_a_body_we_cannot_use_when_classified_then_it_is_invalid_with_a_code(
    body: str, code: str
) -> None:
    decision = classify(body, SETTINGS)
    assert isinstance(decision, Invalid)
    assert decision.code == code


def test_given_an_invalid_request_when_classified_then_the_message_names_the_field_but_not_the_value() -> (
    None
):
    secret = "call me at +1 555 0100, jane@example.com " * 500
    body = json.dumps(
        {
            "caseId": "c",
            "type": "Comment",
            "content": {"comment": {"body": secret, "contentType": "Text/Plain"}},
        }
    )

    decision = classify(body, SETTINGS)

    assert isinstance(decision, Invalid)
    assert decision.code == "ValidationException"
    assert "content.comment.body" in decision.message
    assert "555 0100" not in decision.message
    assert "example.com" not in decision.message


def test_given_a_bare_request_when_classified_then_domain_and_performer_default_from_settings() -> None:
    decision = classify(json.dumps(load_event("request-comment.json")), SETTINGS)

    assert isinstance(decision, CreateItem)
    assert decision.item.domain_id == "domain-1"
    assert decision.item.performed_by == {"customEntity": "case-linker"}
    assert decision.item.idempotency_key == "crm-note-000123"
    assert decision.item.api_params()["content"] == {
        "comment": {"body": "Customer asked for a callback after 5 pm.", "contentType": "Text/Plain"}
    }


def test_given_a_request_in_an_envelope_when_classified_then_its_own_domain_and_performer_are_kept() -> None:
    decision = classify(json.dumps(load_event("request-comment-envelope.json")), SETTINGS)

    assert isinstance(decision, CreateItem)
    assert decision.item.domain_id == "9f8e7d6c-5b4a-4392-8e1f-0a1b2c3d4e5f"
    assert decision.item.performed_by == {"customEntity": "crm-sync"}
    assert decision.event_id == "6b2a4d3f-7c8e-4f9a-8b1c-2d3e4f5a6b01"


def test_given_performed_by_agent_when_the_contact_has_an_agent_then_the_agent_is_the_user() -> None:
    settings = replace(SETTINGS, performed_by_agent=True)
    item = contact_item(link(contact_event(agentInfo={"agentArn": AGENT_ARN})), "case-1", settings)

    assert isinstance(item, RelatedItem)
    assert item.performed_by == {"userArn": AGENT_ARN}


def test_given_performed_by_agent_when_the_contact_has_no_agent_then_the_custom_entity_is_used() -> None:
    settings = replace(SETTINGS, performed_by_agent=True)
    item = contact_item(link(contact_event()), "case-1", settings)

    assert isinstance(item, RelatedItem)
    assert item.performed_by == {"customEntity": "case-linker"}


def test_given_the_default_performer_when_the_contact_has_an_agent_then_the_custom_entity_is_used() -> None:
    item = contact_item(link(contact_event(agentInfo={"agentArn": AGENT_ARN})), "case-1", SETTINGS)
    assert isinstance(item, RelatedItem)
    assert item.performed_by == {"customEntity": "case-linker"}
    assert item.api_params() == {
        "domainId": "domain-1",
        "caseId": "case-1",
        "type": "Contact",
        "content": {"contact": {"contactArn": f"{INSTANCE_ARN}/contact/contact-1"}},
        "performedBy": {"customEntity": "case-linker"},
    }


def test_given_a_case_id_attribute_the_api_would_reject_when_mapped_then_invalid() -> None:
    item = contact_item(link(contact_event()), "not a case id!", SETTINGS)
    assert isinstance(item, Invalid)
    assert item.code == "ValidationException"


def _comment(case_id: str = "case-1", body: str = "hi", key: str | None = None) -> RelatedItem:
    content = {"comment": {"body": body, "contentType": "Text/Plain"}}
    return RelatedItem("domain-1", case_id, "Comment", content, {"customEntity": "case-linker"}, key)


def test_idempotency_key_of_a_contact_is_domain_case_and_contact_arn() -> None:
    item = contact_item(link(contact_event()), "case-1", SETTINGS)
    assert isinstance(item, RelatedItem)

    assert idempotency_data(item) == {
        "key": {
            "domainId": "domain-1",
            "caseId": "case-1",
            "type": "Contact",
            "content": {"contact": {"contactArn": f"{INSTANCE_ARN}/contact/contact-1"}},
        },
        "payload": None,
    }


def test_idempotency_key_does_not_depend_on_performer_or_message() -> None:
    a, b = _comment(), replace(_comment(), performed_by={"customEntity": "other"})
    assert idempotency_data(a) == idempotency_data(b)


def test_idempotency_key_differs_by_case_and_content() -> None:
    keys = {
        json.dumps(idempotency_data(i)["key"], sort_keys=True)
        for i in (_comment(), _comment("case-2"), _comment(body="bye"))
    }
    assert len(keys) == 3


def test_given_an_idempotency_key_when_keyed_then_it_alone_is_the_key_and_the_content_is_the_payload() -> (
    None
):
    data = idempotency_data(_comment(key="crm-1"))
    other = idempotency_data(_comment(case_id="case-2", key="crm-1"))

    assert data["key"] == other["key"] == {"idempotencyKey": "crm-1"}
    assert data["payload"] != other["payload"]


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ({"type": "Comment", "content": {"comment": {"body": "hi", "contentType": "Text/Plain"}}}, True),
        (
            {
                "type": "Comment",
                "content": {"comment": {"body": "hi", "contentType": "Text/Plain"}},
                "performedBy": {"customEntity": "case-linker"},
            },
            True,
        ),
        (
            {
                "type": "Comment",
                "content": {"comment": {"body": "hi", "contentType": "Text/Plain"}},
                "performedBy": {"customEntity": "x"},
            },
            False,
        ),
        ({"type": "Comment", "content": {"comment": {"body": "hi!", "contentType": "Text/Plain"}}}, False),
        ({"type": "File", "content": {"file": {"fileArn": "a"}}}, False),
    ],
)
def test_same_item_compares_type_content_and_performer(found: dict[str, Any], expected: bool) -> None:
    assert same_item(_comment(), found) is expected


def test_same_item_compares_an_sla_by_its_configuration_not_its_computed_target_time() -> None:
    content = {
        "sla": {
            "slaInputConfiguration": {"name": "First response", "type": "CaseField", "targetSlaMinutes": 60}
        }
    }
    item = RelatedItem("d", "c", "Sla", content)
    found = {
        "type": "Sla",
        "content": {
            "sla": {
                "slaConfiguration": {
                    "name": "First response",
                    "type": "CaseField",
                    "status": "Active",
                    "targetTime": "2025-01-01T00:00:00Z",
                }
            }
        },
    }

    assert same_item(item, found)
    assert search_filter(item) == {"sla": {"name": "First response"}}


@pytest.mark.parametrize(
    ("type_", "content", "expected"),
    [
        ("Comment", {"comment": {"body": "b", "contentType": "Text/Plain"}}, {"comment": {}}),
        ("File", {"file": {"fileArn": "f"}}, {"file": {"fileArn": "f"}}),
        ("ConnectCase", {"connectCase": {"caseId": "c2"}}, {"connectCase": {"caseId": "c2"}}),
        ("Custom", {"custom": {"fields": []}}, {"custom": {}}),
        ("Contact", {"contact": {"contactArn": "a"}}, {"contact": {"contactArn": "a"}}),
    ],
)
def test_search_filter_is_as_narrow_as_the_api_allows(
    type_: str, content: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert search_filter(RelatedItem("d", "c", type_, content)) == expected
