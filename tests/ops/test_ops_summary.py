"""Unit: summarising dead-lettered messages, filters, batching. No network."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ops.replay import MAX_BATCH_BYTES, entry_size, pack_batches
from ops.send import NOT_EVENTS
from ops.summary import REDRIVEN_LABEL, count_by_error, mask_id, parse_filters, redact, summarise
from tests.conftest import EVENTS_DIR
from tests.ops.helpers import (
    EMAIL,
    PHONE,
    SECRET_COMMENT,
    bare_contact_request,
    comment_request,
    connect_event,
    error_attributes,
)

NOW = datetime(2026, 1, 2, 3, 0, 0, tzinfo=UTC)


def message(
    body: str, attributes: dict[str, Any] | None = None, sent_seconds_ago: int = 90
) -> dict[str, Any]:
    sent_ms = int((NOW.timestamp() - sent_seconds_ago) * 1000)
    return {
        "MessageId": "m-1",
        "Body": body,
        "MessageAttributes": attributes or {},
        "Attributes": {"SentTimestamp": str(sent_ms), "ApproximateReceiveCount": "2"},
    }


def test_a_connect_event_is_summarised_by_event_type_and_contact_id() -> None:
    s = summarise(message(connect_event("c-1"), error_attributes("ValidationException")), NOW)
    assert (s.kind, s.event_type, s.contact_id, s.error_code) == (
        "connect-event",
        "COMPLETED",
        "c-1",
        "ValidationException",
    )
    assert s.receive_count == 3
    assert s.dlq_receive_count == 2
    assert s.age_seconds == pytest.approx(90)


def test_pascal_case_sample_events_are_read_too() -> None:
    body = json.dumps(
        {
            "detail-type": "Amazon Connect Contact Event",
            "Detail": {"EventType": "COMPLETED", "ContactId": "c-9"},
        }
    )
    s = summarise(message(body), NOW)
    assert (s.event_type, s.contact_id) == ("COMPLETED", "c-9")


def test_a_comment_request_shows_type_and_case_but_never_its_body() -> None:
    s = summarise(message(comment_request("case-7")), NOW)
    assert (s.kind, s.item_type, s.case_id) == ("related-item-request", "Comment", "case-7")
    dumped = json.dumps(s.to_json())
    assert SECRET_COMMENT not in dumped
    assert PHONE not in dumped
    assert EMAIL not in dumped


def test_a_bare_contact_request_yields_the_contact_id_from_its_arn() -> None:
    s = summarise(message(bare_contact_request("case-1", "c-42")), NOW)
    assert (s.kind, s.item_type, s.case_id, s.contact_id) == ("request", "Contact", "case-1", "c-42")


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("not json {", "unparseable"),
        ("[1, 2]", "other-json"),
        ('{"a": 1}', "other-json"),
        # nested deeper than the parser goes (the linker dead-letters it as InvalidJson): peek must not crash
        ("[" * 100_000 + "]" * 100_000, "unparseable"),
    ],
)
def test_garbage_is_summarised_not_raised(body: str, kind: str) -> None:
    s = summarise(message(body), NOW)
    assert s.kind == kind
    assert s.what == "-"


def test_a_message_without_error_code_is_labelled_as_redriven_by_sqs() -> None:
    s = summarise(message(connect_event("c-1")), NOW)
    assert s.error_code is None
    assert s.error_label == REDRIVEN_LABEL


def test_error_messages_are_redacted_but_ids_survive() -> None:
    text = redact(f"bad comment from {EMAIL} / {PHONE} on contact 12345678-1234-1234-1234-123456789012")
    assert EMAIL not in text
    assert "555" not in text
    assert "12345678-1234-1234-1234-123456789012" in text


def test_filters_or_within_a_key_and_across_keys() -> None:
    validation = summarise(message(connect_event("c-1"), error_attributes("ValidationException")), NOW)
    throttled = summarise(message(connect_event("c-2"), error_attributes("ThrottlingException")), NOW)
    redriven = summarise(message(connect_event("c-3")), NOW)
    either = parse_filters(["ERROR_CODE=ValidationException", "error_code=ThrottlingException"])
    assert [either.matches(s) for s in (validation, throttled, redriven)] == [True, True, False]
    both = parse_filters(["ERROR_CODE=ValidationException", "contactId=c-2"])
    assert not both.matches(validation)
    assert parse_filters(["ERROR_CODE="]).matches(redriven)
    assert parse_filters(["eventType=COMPLETED"]).matches(redriven)


@pytest.mark.parametrize("spec", ["nope=1", "ERROR_CODE", "body=x"])
def test_an_unknown_filter_key_is_rejected(spec: str) -> None:
    with pytest.raises(ValueError, match="bad --filter"):
        parse_filters([spec])


def test_counts_by_error_are_sorted_by_frequency() -> None:
    summaries = [summarise(message("x", error_attributes(c)), NOW) for c in ("B", "A", "A")]
    summaries.append(summarise(message("x"), NOW))
    assert count_by_error(summaries) == {"A": 2, "B": 1, REDRIVEN_LABEL: 1}


def test_batches_hold_at_most_ten_entries() -> None:
    entries = [{"Id": str(i), "MessageBody": "x"} for i in range(23)]
    assert [len(b) for b in pack_batches(entries)] == [10, 10, 3]


def test_batches_stay_under_256_kib_with_60_kb_bodies() -> None:
    entries = [
        {
            "Id": str(i),
            "MessageBody": "x" * 60_000,
            "MessageAttributes": {"a": {"DataType": "String", "StringValue": "v"}},
        }
        for i in range(9)
    ]
    batches = list(pack_batches(entries))
    assert [len(b) for b in batches] == [4, 4, 1]
    assert all(sum(entry_size(e) for e in b) <= MAX_BATCH_BYTES for b in batches)


def test_an_entry_over_the_limit_goes_alone() -> None:
    entries = [
        {"Id": "0", "MessageBody": "x"},
        {"Id": "1", "MessageBody": "y" * 300_000},
        {"Id": "2", "MessageBody": "z"},
    ]
    assert [[e["Id"] for e in b] for b in pack_batches(entries)] == [["0"], ["1"], ["2"]]


SAMPLE_EVENTS = sorted(p for p in EVENTS_DIR.rglob("*.json") if p.name not in NOT_EVENTS)


@pytest.mark.parametrize("path", SAMPLE_EVENTS, ids=lambda p: p.name)
def test_no_sample_event_leaks_its_comment_into_a_summary(path: Path) -> None:
    body = path.read_text()
    s = summarise(message(body), NOW)
    comment = json.loads(body)
    comment = comment.get("detail", comment).get("content", {}).get("comment", {}).get("body")
    if comment:
        assert comment not in json.dumps(s.to_json())
        assert s.item_type == "Comment"


def test_a_case_id_tagged_on_the_contact_is_shown() -> None:
    path = EVENTS_DIR / "contact-completed-tag-case-id.json"
    if not path.exists():
        pytest.skip("sample not present")
    s = summarise(message(path.read_text()), NOW)
    assert (s.event_type, s.case_id) == ("COMPLETED", "d6e5f4a3-2b1c-4d0e-9f8a-7b6c5d4e3f2a")


@pytest.mark.parametrize(
    "contact",
    [
        "(206) 555-0142",
        "+1 (206) 555-0142",
        "206-555-0142",
        "206.555.0142",
        "+12065550142",
        "+44 20 7946 0958",
        "jane@localhost",
        "jane.roe+dlq@mail.example.co.uk",
    ],
)
def test_common_phone_and_email_forms_are_masked(contact: str) -> None:
    text = redact(f"could not link contact: caller {contact} unknown")
    assert contact not in text
    for part in ("555", "7946", "jane"):
        assert part not in text
    assert text.startswith("could not link contact: caller <")


@pytest.mark.parametrize(
    "reason",
    [
        "gave up on the last delivery (10 of maxReceiveCount 10): ThrottlingException",
        "gave up on the last delivery (3 of maxReceiveCount 5): HTTP 503 from connectcases",
        "content.comment.body: too long (4097 > 4096 characters)",
        "case 12345678-1234-1234-1234-123456789012 not found in domain d6e5f4a3-2b1c-4d0e-9f8a-7b6c5d4e3f2a",
        "the ledger was unavailable at 2026-01-02T03:00:00Z (retried 3 times)",
        "the ledger was unavailable at 2026-01-02 03:00:00.123 (retried 3 times)",
        "HTTP 429, 500, 502, 503, 504 after 8 attempts in 1200 ms",
        "UnexpectedError: RuntimeError",
        "detail.instanceArn arn:aws:connect:us-east-1:123456789012:instance/inst-1 is not this instance",
    ],
)
def test_the_linkers_own_reasons_are_not_masked(reason: str) -> None:
    assert redact(reason) == reason


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("phone=+12065550142", "phone"),
        ("+12065550142", "no '='"),
        ("jane@example.com=x", "unknown key"),
    ],
)
def test_a_bad_filter_names_its_key_or_problem_never_its_value(spec: str, named: str) -> None:
    with pytest.raises(ValueError, match="bad --filter") as raised:
        parse_filters(["ERROR_CODE=X", spec])
    assert named in str(raised.value)
    for value in ("2065550142", "jane"):
        assert value not in str(raised.value)


@pytest.mark.parametrize(
    "reason",
    [
        "caller +12065550142: unknown",
        "caller +1 (206) 555-0142: unknown",
        "no contact for 206-555-0142:",
    ],
)
def test_a_phone_number_that_ends_a_phrase_before_a_colon_is_masked(reason: str) -> None:
    text = redact(reason)
    assert "555" not in text
    assert "<number>:" in text


@pytest.mark.parametrize("value", [EMAIL, PHONE, "+12065550142", "jane@localhost"])
def test_ids_and_types_read_from_the_body_never_show_an_email_or_a_phone_number(value: str) -> None:
    # GIVEN dead-lettered requests whose case id, contact id or type is an email address or a phone number
    # (hostile input, or a producer's mistake: exactly what lands in a DLQ)
    request = json.dumps({"caseId": value, "type": value, "contactId": value})
    event = json.dumps({"detail-type": "Amazon Connect Contact Event", "detail": {"eventType": value}})
    for body in (request, event):
        # WHEN peek summarises them for its output
        shown = json.dumps(summarise(message(body), NOW).to_json())
        # THEN the value is masked, as in ERROR_MESSAGE
        assert "555" not in shown
        assert "jane" not in shown
    # AND a filter still matches the value the operator typed
    assert parse_filters([f"caseId={value}"]).matches(summarise(message(request), NOW))


@pytest.mark.parametrize("value", ["5550142", "555-0142", "6123 4567", "0044.20.7946"])
def test_an_id_without_a_letter_and_with_seven_digits_is_masked_as_the_linkers_logs_hide_it(
    value: str,
) -> None:
    # GIVEN a local phone number (7 or 8 digits) where the case id or contact id goes: the linker logs it as a
    # placeholder, however short
    request = json.dumps({"caseId": value, "type": "Comment", "contactId": value})

    # WHEN peek summarises it
    shown = summarise(message(request), NOW).to_json()

    # THEN neither id shows it, and a filter still matches the value the operator typed
    assert (shown["case_id"], shown["contact_id"]) == ("<number>", "<number>")
    assert parse_filters([f"caseId={value}"]).matches(summarise(message(request), NOW))


@pytest.mark.parametrize(
    "value",
    ["12345", "case-555014", "7c9e6679-7425-40de-944b-e07fc1f90ae7", "12345678-1234-1234-1234-123456789012"],
)
def test_a_uuid_or_an_id_with_few_digits_is_shown_as_it_is(value: str) -> None:
    shown = summarise(message(json.dumps({"caseId": value, "type": "Comment"})), NOW).to_json()
    assert shown["case_id"] == value


def test_attributes_a_producer_may_have_set_are_masked_in_what_peek_and_stats_show() -> None:
    # GIVEN a message SQS moved itself, whose producer had set ERROR_CODE and SOURCE_MESSAGE_ID of its own
    attributes = error_attributes("jane.doe@example.com")
    attributes["SOURCE_MESSAGE_ID"] = {"DataType": "String", "StringValue": "+1 (206) 555-0142"}
    summary = summarise(message(connect_event("c-1"), attributes), NOW)

    # THEN neither peek's fields nor stats' counts carry them
    shown = json.dumps(summary.to_json()) + json.dumps(count_by_error([summary]))
    assert "jane.doe" not in shown
    assert "555-0142" not in shown
    assert summary.error_code == "jane.doe@example.com"  # filters still match the value as SQS holds it


@pytest.mark.parametrize(
    "value",
    [
        "5550142",
        "555-0142",
        "+1 (206) 555-0142",
        "123456",
        "case-5550142",
        "tel:5550142",
        "tel:+12065550142",
        "7c9e-6679",
        "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    ],
)
def test_peek_hides_an_id_exactly_when_the_linkers_logs_do(value: str) -> None:
    # The rule is written twice: ops ships without the function's code (mask_id beside mapping.loggable_id).
    from case_linker.mapping import HIDDEN_ID, loggable_id

    assert (mask_id(value) == "<number>") == (loggable_id(value) == HIDDEN_ID)
