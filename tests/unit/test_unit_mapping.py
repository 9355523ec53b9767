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
    loggable_id,
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


@pytest.mark.parametrize("event_type", ["", "   "])
def test_given_a_blank_event_type_when_classified_then_rejected_naming_it_not_skipped(
    event_type: str,
) -> None:
    # A blank type is no event type at all: a bad input, as a missing one is, not a counted skip
    decision = classify(contact_event(eventType=event_type), SETTINGS)

    assert isinstance(decision, Invalid)
    assert decision.code == "ValidationException"
    assert "detail.eventType" in decision.message


def test_given_an_event_type_spelled_twice_when_classified_then_the_exact_spelling_decides_as_in_validation() -> (
    None
):
    # GIVEN a detail with "EventType" first and the exact "eventType" second (the model takes the exact one)
    detail = json.loads(contact_event())["detail"]
    detail = {"EventType": "DISCONNECTED", **detail}
    body = json.dumps({"detail-type": "Amazon Connect Contact Event", "id": "event-1", "detail": detail})

    # THEN the contact is linked as COMPLETED, not skipped as DISCONNECTED
    assert isinstance(classify(body, SETTINGS), LinkContact)


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


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"caseId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "type": "Comment"}, "content"),
        ({"caseId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "content": {"comment": {"body": "x"}}}, "type"),
        ({"referenceId": "CRM-1", "type": "Comment"}, "content"),
    ],
)
def test_given_a_bare_request_missing_type_or_content_when_classified_then_the_error_names_the_field(
    body: dict[str, Any], field: str
) -> None:
    decision = classify(json.dumps(body), SETTINGS)

    assert isinstance(decision, Invalid)
    assert decision.code == "ValidationException"
    assert field in decision.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("contactId", "jane.doe@example.com"),
        ("initialContactId", "+1 555 0100"),
    ],
)
def test_given_a_contact_event_whose_ids_are_not_ids_when_classified_then_rejected_without_echoing_them(
    field: str, value: str
) -> None:
    # Connect's ids are letters, digits and hyphens: anything else is not a contact of the instance, and would
    # otherwise reach the logs (contact_id, chain_case_id) and the contact ARN sent to Cases as it came.
    decision = classify(contact_event(**{field: value}), SETTINGS)

    assert isinstance(decision, Invalid)
    assert decision.code == "ValidationException"
    assert f"detail.{field}" in decision.message
    assert "example.com" not in decision.message
    assert "555" not in decision.message


def test_given_a_chain_case_that_is_not_a_case_id_when_classified_then_only_the_hint_is_dropped() -> None:
    # The sweeper's hint is used only when the contact names no case itself: a bad one must not refuse a
    # contact that has its own case.
    decision = link(contact_event(chainCaseId="jane.doe@example.com"))

    assert decision.detail.chainCaseId is None


@pytest.mark.parametrize("value", ["jane.doe@example.com", "+12065550100", "2065550100"])
def test_given_an_envelope_id_that_is_not_an_id_when_classified_then_it_is_not_kept_for_the_logs(
    value: str,
) -> None:
    body = json.loads(contact_event())
    body["id"] = value

    decision = link(json.dumps(body))

    assert decision.event_id is None


def test_given_an_unexpected_key_that_is_an_email_when_classified_then_the_reason_does_not_echo_it() -> None:
    body = json.loads(request(content={"comment": {"body": "hi", "contentType": "Text/Plain"}}))
    body["jane.roe@example.com"] = 1
    body["content"]["comment"]["+1 555 0100"] = 2

    decision = classify(json.dumps(body), SETTINGS)

    assert isinstance(decision, Invalid)
    assert "jane.roe" not in decision.message
    assert "555" not in decision.message
    assert "<unexpected key>" in decision.message
    assert "content.comment.<unexpected key>" in decision.message


def test_given_an_unknown_detail_type_when_classified_then_the_reason_does_not_echo_it() -> None:
    decision = classify(json.dumps({"detail-type": "jane.roe@example.com", "detail": {}}), SETTINGS)
    assert isinstance(decision, Invalid)
    assert "jane.roe" not in decision.message


@pytest.mark.parametrize("detail_type", ["Amazon Connect Contact Event", "Case Related Item Request"])
@pytest.mark.parametrize(
    ("detail", "kind"),
    [
        ('"{\\"caseId\\": \\"c\\"}"', "a JSON string"),
        ("[]", "a JSON array"),
        ("null", "null"),
        ("7", "a JSON number"),
    ],
)
def test_given_an_envelope_whose_detail_is_not_an_object_when_classified_then_the_reason_names_the_detail(
    detail_type: str, detail: str, kind: str
) -> None:
    # A double-encoded detail is a producer's usual mistake: the detail-type is right, the detail is not
    body = '{"detail-type": "%s", "detail": %s}' % (detail_type, detail)  # noqa: UP031

    decision = classify(body, SETTINGS)

    assert isinstance(decision, Invalid)
    assert decision.code == "UnknownMessageShape"
    assert decision.message == f"envelope detail is {kind}, not an object"


def test_given_an_envelope_without_a_detail_when_classified_then_the_reason_says_so() -> None:
    decision = classify(json.dumps({"detail-type": "Case Related Item Request"}), SETTINGS)

    assert isinstance(decision, Invalid)
    assert decision.message == "envelope detail is missing"


@pytest.mark.parametrize(
    ("case_id", "shown"),
    [
        ("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", True),
        ("case-sec-a", True),
        ("12345", True),
        (None, True),
        ("+12065550100", False),
        ("206-555-0100", False),
        ("0044.20.7946.0958", False),
        ("tel:+12065550100", False),
        ("case-2065550100", False),
        ("x2065550100", False),
        ("7C9E6679-7425-40DE-944B-E07FC1F90AE7", True),
        ("12345678-1234-1234-1234-123456789012", True),
    ],
)
def test_a_case_id_is_logged_unless_it_is_not_a_uuid_and_carries_a_phone_numbers_digits(
    case_id: str | None, shown: bool
) -> None:
    assert (loggable_id(case_id) == case_id) is shown
    assert case_id is None or shown or not any(c.isdigit() for c in str(loggable_id(case_id)))


INSTANCE_SETTINGS = replace(SETTINGS, connect_instance_arn=INSTANCE_ARN)
OTHER_INSTANCE = "arn:aws:connect:us-east-1:123456789012:instance/00000000-1111-2222-3333-444444444444"


def request(**fields: Any) -> str:
    return json.dumps({"caseId": "case-1", "type": "Comment", **fields})


@pytest.mark.parametrize(
    ("body", "settings", "field"),
    [
        (
            request(domainId="other", content={"comment": {"body": "b", "contentType": "Text/Plain"}}),
            SETTINGS,
            "domainId",
        ),
        (
            request(
                content={"comment": {"body": "b", "contentType": "Text/Plain"}},
                performedBy={"userArn": AGENT_ARN},
            ),
            SETTINGS,
            "performedBy.userArn",
        ),
        (
            request(
                content={"comment": {"body": "b", "contentType": "Text/Plain"}},
                performedBy={"userArn": f"{OTHER_INSTANCE}/agent/a"},
            ),
            replace(INSTANCE_SETTINGS, performed_by_agent=True),
            "performedBy.userArn",
        ),
        (
            json.dumps(
                {
                    "caseId": "c",
                    "type": "Contact",
                    "content": {"contact": {"contactArn": f"{OTHER_INSTANCE}/contact/x"}},
                }
            ),
            INSTANCE_SETTINGS,
            "content.contact.contactArn",
        ),
        (
            json.dumps(
                {"caseId": "c", "type": "Contact", "content": {"contact": {"contactArn": "not-an-arn"}}}
            ),
            SETTINGS,
            "content.contact.contactArn",
        ),
        (contact_event(instanceArn=OTHER_INSTANCE), INSTANCE_SETTINGS, "detail.instanceArn"),
    ],
    ids=[
        "other-domain",
        "user-arn-not-granted",
        "agent-of-another-instance",
        "contact-of-another-instance",
        "contact-arn-malformed",
        "event-of-another-instance",
    ],
)
def test_given_what_the_role_cannot_do_when_classified_then_rejected_up_front_naming_the_field(
    body: str, settings: Settings, field: str
) -> None:
    decision = classify(body, settings)

    assert isinstance(decision, Invalid)
    assert decision.code == "ValidationException"
    assert field in decision.message
    assert "00000000-1111" not in decision.message


def test_given_the_configured_instance_and_agent_mode_when_a_user_arn_of_it_is_sent_then_accepted() -> None:
    settings = replace(INSTANCE_SETTINGS, performed_by_agent=True)
    body = request(
        content={"comment": {"body": "b", "contentType": "Text/Plain"}}, performedBy={"userArn": AGENT_ARN}
    )
    assert isinstance(classify(body, settings), CreateItem)


def test_given_a_reference_id_instead_of_a_case_id_when_classified_then_the_item_names_the_case_by_it() -> (
    None
):
    body = json.dumps(
        {
            "referenceId": "CASE-0042",
            "type": "Comment",
            "content": {"comment": {"body": "b", "contentType": "Text/Plain"}},
        }
    )
    decision = classify(body, SETTINGS)
    assert isinstance(decision, CreateItem)
    assert decision.item.case_identifier() == {"referenceId": "CASE-0042"}
    assert decision.item.batch_params("t")["cases"] == [{"caseIdentifier": {"referenceId": "CASE-0042"}}]


@pytest.mark.parametrize("both", [True, False])
def test_given_both_or_neither_case_identifier_when_classified_then_invalid(both: bool) -> None:
    fields = {"caseId": "c", "referenceId": "R"} if both else {}
    body = json.dumps(
        {**fields, "type": "Comment", "content": {"comment": {"body": "b", "contentType": "Text/Plain"}}}
    )
    decision = classify(body, SETTINGS)
    assert isinstance(decision, Invalid)
    assert "caseId, referenceId" in decision.message


@pytest.mark.parametrize(
    ("source", "origin"),
    [("aws.connect", "event"), ("case-linker.sweeper", "sweeper"), ("case-linker.backfill", "backfill")],
)
def test_the_envelope_source_says_where_a_contact_event_came_from(source: str, origin: str) -> None:
    envelope = {
        "source": source,
        "detail-type": "Amazon Connect Contact Event",
        "detail": json.loads(contact_event())["detail"],
    }
    decision = classify(json.dumps(envelope), SETTINGS)
    assert isinstance(decision, LinkContact)
    assert decision.origin == origin


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
    settings = replace(SETTINGS, cases_domain_id="9f8e7d6c-5b4a-4392-8e1f-0a1b2c3d4e5f")
    decision = classify(json.dumps(load_event("request-comment-envelope.json")), settings)

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


def test_a_contact_identity_is_its_domain_case_and_contact_arn_not_the_performer() -> None:
    item = contact_item(link(contact_event()), "case-1", SETTINGS)
    assert isinstance(item, RelatedItem)
    same = replace(item, performed_by={"userArn": AGENT_ARN})

    assert item.identity.key == same.identity.key
    assert item.identity.payload == same.identity.payload  # no producer key: nothing can conflict
    assert item.identity.key != replace(item, case_id="case-2").identity.key


def test_identity_differs_by_case_and_content_and_not_by_message() -> None:
    keys = {i.identity.key for i in (_comment(), _comment("case-2"), _comment(body="bye"), _comment())}
    assert len(keys) == 3


def test_given_an_idempotency_key_when_identified_then_it_alone_is_the_key_and_the_rest_must_match() -> None:
    first = _comment(key="crm-1")
    other_case = _comment(case_id="case-2", key="crm-1")
    other_performer = replace(first, performed_by={"customEntity": "billing"})

    assert first.identity.key == other_case.identity.key == other_performer.identity.key
    assert len({first.identity.payload, other_case.identity.payload, other_performer.identity.payload}) == 3


def test_two_requests_with_the_same_words_and_different_keys_are_different_items() -> None:
    assert _comment(key="pay-1001").identity.key != _comment(key="pay-2002").identity.key


def test_the_client_token_fits_the_api_and_follows_every_parameter() -> None:
    token = _comment().identity.client_token
    assert len(token) <= 64
    assert token == _comment().identity.client_token
    assert token != replace(_comment(), performed_by={"customEntity": "other"}).identity.client_token


def test_a_reference_id_is_part_of_the_identity_whatever_its_letter_case() -> None:
    by_reference = replace(_comment(), case_id=None, reference_id="CASE-0042")
    assert by_reference.identity.key == replace(by_reference, reference_id="case-0042").identity.key
    assert by_reference.identity.key != _comment().identity.key


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
