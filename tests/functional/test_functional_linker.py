"""The linker end to end: the real handler, moto's SQS and DynamoDB, and the emulator, over HTTP."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from case_linker.handler import App, Tuning, build_app, make_lambda_handler
from case_linker.ledger import LedgerUnavailable
from case_linker.settings import Settings, SettingsError
from case_linker.telemetry import (
    ALREADY_LINKED,
    DEAD_LETTERED,
    EVENT_IGNORED,
    NO_CASE_ID,
    RELATED_ITEM_CREATED,
    RETRIED,
    THROTTLED,
)

from emulator import Emulator
from tests.functional.conftest import (
    DOMAIN_ID,
    EXPECTED,
    FAST,
    INSTANCE_ID,
    Aws,
    comment_request,
    count,
    event_body,
    failed_ids,
    lambda_context,
    sqs_event,
    sqs_record,
)

CASES = {name: spec["case"] for name, spec in EXPECTED["events"].items() if "case" in spec}
COMMENT_CASE = CASES["request-comment.json"]
VOICE_CASE = CASES["contact-completed-voice.json"]
MISSING_CASE = json.loads(event_body("bad/request-comment-unknown-case.json"))["caseId"]


def contact_items(emu: Emulator, case_id: str) -> list[str]:
    return [
        i.content["contact"]["contactArn"]
        for i in emu.related_items(DOMAIN_ID, case_id)
        if i.type == "Contact"
    ]


def test_given_every_sample_event_in_one_batch_when_handled_then_each_has_its_expected_outcome(
    make_app: Callable[..., App], emu: Emulator, aws: Aws
) -> None:
    # GIVEN the seeded world and one SQS record per sample file
    names = sorted(EXPECTED["events"])
    records = {name: sqs_record(event_body(name)) for name in names}
    before = {i.related_item_id for i in emu.related_items()}

    # WHEN one batch carries them all
    result = make_app().run_batch(sqs_event(*records.values()), lambda_context())

    # THEN nothing is handed back, and each file did what expected.json says
    calls = [(c.operation, c.outcome, c.error_code) for c in emu.calls]
    assert result.response == {"batchItemFailures": []}, (result.counts, calls)
    created = [i for i in emu.related_items() if i.related_item_id not in before]
    dead = {m["MessageAttributes"]["SOURCE_MESSAGE_ID"]["StringValue"]: m for m in aws.dead_letters()}
    for name in names:
        expected, message_id = EXPECTED["events"][name], records[name]["messageId"]
        if expected["outcome"] == "linked":
            matching = [i for i in created if i.case_id == expected["case"] and i.type == expected["type"]]
            if "contactArn" in expected:
                matching = [
                    i for i in matching if i.content["contact"]["contactArn"] == expected["contactArn"]
                ]
            assert len(matching) >= 1, name
        if expected["outcome"] == "dead_lettered":
            assert (
                dead[message_id]["MessageAttributes"]["ERROR_CODE"]["StringValue"] == expected["error_code"]
            ), name
            assert dead[message_id]["Body"] == records[name]["body"], name
        else:
            assert message_id not in dead, name
    linked = [n for n in names if EXPECTED["events"][n]["outcome"] == "linked"]
    assert len(created) == len(linked), calls
    assert count(result.counts, RELATED_ITEM_CREATED) == len(linked)
    assert count(result.counts, RELATED_ITEM_CREATED, ("type", "Comment")) == 2
    assert count(result.counts, EVENT_IGNORED) == 2
    assert count(result.counts, NO_CASE_ID) == 1
    assert count(result.counts, ALREADY_LINKED) == 1
    assert count(result.counts, DEAD_LETTERED) == 4
    assert count(result.counts, DEAD_LETTERED, ("errorCode", "ResourceNotFoundException")) == 1


def test_given_a_contact_already_linked_by_a_flow_when_handled_then_no_create_is_made(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    result = make_app().run_batch(
        sqs_event(sqs_record(event_body("contact-completed-already-linked.json"))), lambda_context()
    )

    assert result.response == {"batchItemFailures": []}
    assert emu.calls_to("CreateRelatedItem") == []
    assert len(emu.calls_to("ListCasesForContact")) == 1
    assert count(result.counts, ALREADY_LINKED) == 1


def test_given_a_case_id_tag_when_handled_then_the_tag_wins_and_attributes_are_not_read(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    name = "contact-completed-tag-case-id.json"

    make_app().run_batch(sqs_event(sqs_record(event_body(name))), lambda_context())

    assert emu.calls_to("GetContactAttributes") == []
    assert contact_items(emu, CASES[name]) == [EXPECTED["events"][name]["contactArn"]]
    assert contact_items(emu, VOICE_CASE) == []


def test_given_a_contact_without_case_id_when_handled_then_acknowledged_unlinked_and_not_dead_lettered(
    make_app: Callable[..., App], emu: Emulator, aws: Aws
) -> None:
    result = make_app().run_batch(
        sqs_event(sqs_record(event_body("contact-completed-no-case-id.json"))), lambda_context()
    )

    assert result.response == {"batchItemFailures": []}
    assert emu.calls_to("CreateRelatedItem") == []
    assert aws.dead_letters() == []
    assert count(result.counts, NO_CASE_ID) == 1


def test_given_throttling_three_times_when_a_comment_is_created_then_exactly_one_item(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    emu.script("BatchCreateRelatedItem", ["ThrottlingException"] * 3)

    result = make_app().run_batch(sqs_event(sqs_record(comment_request(COMMENT_CASE))), lambda_context())

    assert result.response == {"batchItemFailures": []}
    assert [c.error_code for c in emu.calls_to("BatchCreateRelatedItem")] == ["ThrottlingException"] * 3 + [
        None
    ]
    assert len(emu.related_items(DOMAIN_ID, COMMENT_CASE)) == 1
    assert count(result.counts, THROTTLED) == 3
    assert count(result.counts, RETRIED) == 3


def test_given_a_comment_create_answered_throttled_for_its_case_then_counted_and_the_fleet_slows_down(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    # GIVEN the account's quota shared in the table, and Cases refusing two comment creates for the rate the way
    # BatchCreateRelatedItem does: HTTP 200, the case in failedItems with THROTTLED
    emu.script("BatchCreateRelatedItem", ["item_failure:THROTTLED"] * 2)
    app = make_app(cases_quota_rps=2.0, cases_quota_burst=10.0)

    result = app.run_batch(sqs_event(sqs_record(comment_request(COMMENT_CASE))), lambda_context())

    assert result.response == {"batchItemFailures": []}
    assert len(emu.related_items(DOMAIN_ID, COMMENT_CASE)) == 1
    # THEN both refusals count as throttles (what the ThrottlingPersists alarm watches) and slow the fleet down
    assert count(result.counts, THROTTLED) == 2
    assert app.budget is not None
    rate = app.budget.fleet_rate("CreateRelatedItem")
    assert rate is not None
    assert rate < 2.0


def test_given_throttled_reads_when_a_contact_is_linked_then_botocore_retries_them_paced_and_counted(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    emu.script("ListCasesForContact", ["ThrottlingException"] * 2)

    result = make_app().run_batch(
        sqs_event(sqs_record(event_body("contact-completed-voice.json"))), lambda_context()
    )

    assert result.response == {"batchItemFailures": []}
    assert len(emu.calls_to("ListCasesForContact")) == 3
    assert count(result.counts, THROTTLED) == 2
    assert count(result.counts, RETRIED) == 2
    assert len(contact_items(emu, VOICE_CASE)) == 1


def test_given_cases_always_throttles_when_a_batch_is_handled_then_all_fail_fast_none_dead_lettered_in_time(
    make_app: Callable[..., App], emu: Emulator, aws: Aws
) -> None:
    # GIVEN Cases throttles every create, and the invocation has 3 s left; real (1 s base) backoff
    emu.script("BatchCreateRelatedItem", ["ThrottlingException"] * 1000)
    app = make_app(Tuning(connect_timeout=0.5, read_timeout=1.0, safety_margin=0.5, create_attempts=4))
    records = [sqs_record(comment_request(COMMENT_CASE, f"note {i}")) for i in range(6)]

    # WHEN the batch is handled
    started = time.monotonic()
    result = app.run_batch(sqs_event(*records), lambda_context(remaining_ms=3000))
    elapsed = time.monotonic() - started

    # THEN every record is handed back, nothing is dead-lettered, and the handler returned in time
    assert failed_ids(result.response) == {r["messageId"] for r in records}
    assert aws.dead_letters() == []
    assert emu.related_items(DOMAIN_ID, COMMENT_CASE) == []
    assert elapsed < 3.0
    assert len(emu.calls_to("BatchCreateRelatedItem")) <= 6 * 4


def test_given_the_breaker_tripped_when_more_records_follow_then_they_fail_without_calling_cases(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    # GIVEN one worker, so records run one after another, and a create that keeps being throttled
    emu.script("BatchCreateRelatedItem", ["ThrottlingException"] * 1000)
    app = make_app(dataclasses.replace(FAST, max_workers=1, create_attempts=2))
    records = [sqs_record(comment_request(COMMENT_CASE, f"note {i}")) for i in range(4)]

    result = app.run_batch(sqs_event(*records), lambda_context())

    assert failed_ids(result.response) == {r["messageId"] for r in records}
    assert len(emu.calls_to("BatchCreateRelatedItem")) == 2
    assert app.guard.tripped


def test_given_the_same_message_delivered_twice_when_handled_then_one_item(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    app = make_app()
    body = comment_request(COMMENT_CASE, "Duplicate me once")

    first = app.run_batch(sqs_event(sqs_record(body)), lambda_context())
    second = app.run_batch(sqs_event(sqs_record(body, receive_count=1)), lambda_context())

    assert first.response == second.response == {"batchItemFailures": []}
    assert len(emu.related_items(DOMAIN_ID, COMMENT_CASE)) == 1
    assert count(second.counts, ALREADY_LINKED) == 1
    assert len(emu.calls_to("BatchCreateRelatedItem")) == 1


def test_given_a_duplicate_inside_one_batch_when_handled_then_one_item_and_the_twin_at_most_handed_back(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    body = event_body("contact-completed-voice.json")
    records = [sqs_record(body), sqs_record(body)]

    result = make_app().run_batch(sqs_event(*records), lambda_context())

    assert len(contact_items(emu, VOICE_CASE)) == 1
    assert len(failed_ids(result.response)) <= 1


def test_given_the_ledger_holds_the_item_as_created_when_redelivered_then_no_cases_call_at_all(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    app = make_app()
    body = comment_request(COMMENT_CASE, "Created once")
    app.run_batch(sqs_event(sqs_record(body)), lambda_context())
    calls = len(emu.calls)

    result = app.run_batch(sqs_event(sqs_record(body, receive_count=3)), lambda_context())

    assert result.response == {"batchItemFailures": []}
    assert len(emu.calls) == calls
    assert count(result.counts, ALREADY_LINKED) == 1


def test_given_a_comment_replayed_after_its_create_was_lost_when_handled_then_no_second_item(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    # GIVEN an earlier delivery whose create committed but whose answer was lost, until SQS redrove it
    emu.script("BatchCreateRelatedItem", ["drop_after_commit"])
    app = make_app(dataclasses.replace(FAST, create_attempts=1))
    body = comment_request(COMMENT_CASE, "Created before an outage")
    first = app.run_batch(sqs_event(sqs_record(body, receive_count=10)), lambda_context())
    assert len(first.response["batchItemFailures"]) == 1
    replayed = {"REPLAYED": {"dataType": "String", "stringValue": "dlq"}}

    # WHEN `ops dlq replay` sends it back (receive count 1)
    result = app.run_batch(sqs_event(sqs_record(body, attributes=replayed)), lambda_context())

    # THEN the service's client token returns the item the lost create made
    assert result.response == {"batchItemFailures": []}
    assert len(emu.related_items(DOMAIN_ID, COMMENT_CASE)) == 1
    tokens = {c.params["clientToken"] for c in emu.calls_to("BatchCreateRelatedItem")}
    assert len(tokens) == 1


@pytest.mark.parametrize("fault", ["drop_after_commit", "slow_after_commit", "drop"])
def test_given_a_create_whose_response_is_lost_when_handled_then_exactly_one_comment(
    make_app: Callable[..., App], emu: Emulator, fault: str
) -> None:
    emu.configure(slow_response_s=1.5)  # longer than the read timeout below
    emu.script("BatchCreateRelatedItem", [fault])

    result = make_app(dataclasses.replace(FAST, read_timeout=0.5)).run_batch(
        sqs_event(sqs_record(comment_request(COMMENT_CASE))), lambda_context()
    )

    # THEN the retry carries the same client token: one comment, and nothing was looked for
    assert result.response == {"batchItemFailures": []}
    assert len(emu.related_items(DOMAIN_ID, COMMENT_CASE)) == 1
    creates = emu.calls_to("BatchCreateRelatedItem")
    assert len(creates) == 2
    assert creates[0].params["clientToken"] == creates[1].params["clientToken"]
    assert emu.calls_to("SearchRelatedItems") == []
    assert count(result.counts, RELATED_ITEM_CREATED, ("type", "Comment")) == 1


def test_given_a_contact_create_whose_connection_drops_after_commit_when_handled_then_exactly_one_link(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    emu.script("CreateRelatedItem", ["drop_after_commit"])

    result = make_app().run_batch(
        sqs_event(sqs_record(event_body("contact-completed-voice.json"))), lambda_context()
    )

    assert result.response == {"batchItemFailures": []}
    assert len(contact_items(emu, VOICE_CASE)) == 1
    assert len(emu.calls_to("CreateRelatedItem")) == 1


def test_given_an_unknown_case_when_handled_then_dead_lettered_with_resource_not_found_and_acknowledged(
    make_app: Callable[..., App], aws: Aws
) -> None:
    original = {
        "traceparent": {"stringValue": "00-4bf92f3577b34da6-00f067aa0ba902b7-01", "dataType": "String"}
    }
    record = sqs_record(
        event_body("bad/request-comment-unknown-case.json"), receive_count=2, attributes=original
    )

    result = make_app().run_batch(sqs_event(record), lambda_context())

    assert result.response == {"batchItemFailures": []}
    [message] = aws.dead_letters()
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert message["Body"] == record["body"]
    assert attributes["ERROR_CODE"] == "ResourceNotFoundException"
    assert attributes["SOURCE_MESSAGE_ID"] == record["messageId"]
    assert attributes["RECEIVE_COUNT"] == "2"
    assert attributes["traceparent"] == original["traceparent"]["stringValue"]
    assert "This case does not exist" not in attributes["ERROR_MESSAGE"]


FILE_ARN = "arn:aws:connect:us-east-1:123456789012:instance/4b3f5c2e-8d1a-4e6f-9a7b-2c1d0e9f8a7b/file/f-1"


def file_by_reference(reference_id: str) -> str:
    return json.dumps(
        {"referenceId": reference_id, "type": "File", "content": {"file": {"fileArn": FILE_ARN}}}
    )


def test_given_a_case_created_a_moment_ago_when_a_file_names_it_by_reference_id_then_linked_once_search_shows_it(
    make_app: Callable[..., App], emu: Emulator, aws: Aws
) -> None:
    # GIVEN a case the CRM has just created, which SearchCases shows only a second later
    emu.configure(search_lag_s=1.0)
    cases = boto3.client("connectcases", endpoint_url=emu.endpoint_url)
    template = cases.get_case(domainId=DOMAIN_ID, caseId=COMMENT_CASE, fields=[{"id": "title"}])["templateId"]
    fields = [{"id": "title", "value": {"stringValue": "Just opened"}}]
    case_id = cases.create_case(domainId=DOMAIN_ID, templateId=template, fields=fields)["caseId"]
    record = sqs_record(file_by_reference(str(emu.reference_id(DOMAIN_ID, case_id))))
    record["attributes"]["SentTimestamp"] = str(int(time.time() * 1000))
    app = make_app(dataclasses.replace(FAST, backoff=dataclasses.replace(FAST.backoff, settle=5.0)))

    # WHEN a File naming it by its reference id arrives at once, and comes again once search shows the case
    first = app.run_batch(sqs_event(record), lambda_context())
    time.sleep(1.0)
    again = {**record, "attributes": {**record["attributes"], "ApproximateReceiveCount": "2"}}
    second = app.run_batch(sqs_event(again), lambda_context())

    # THEN it is handed back rather than dead-lettered as an unknown case, and linked on the next delivery
    assert failed_ids(first.response) == {record["messageId"]}
    assert second.response == {"batchItemFailures": []}
    assert aws.dead_letters() == []
    assert [i.type for i in emu.related_items(DOMAIN_ID, case_id)] == ["File"]


def test_given_a_reference_id_no_case_has_when_its_message_is_older_than_search_lags_then_dead_lettered_naming_it(
    make_app: Callable[..., App], emu: Emulator, aws: Aws
) -> None:
    result = make_app().run_batch(sqs_event(sqs_record(file_by_reference("NO-SUCH-REF-1"))), lambda_context())

    assert result.response == {"batchItemFailures": []}
    [message] = aws.dead_letters()
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "ResourceNotFoundException"
    assert attributes["ERROR_MESSAGE"].startswith("referenceId:")
    assert "NO-SUCH-REF-1" not in attributes["ERROR_MESSAGE"]


def _voice_event(*, case_tag: str | None = None, contact_id: str | None = None) -> str:
    event = json.loads(event_body("contact-completed-voice.json"))
    if case_tag is not None:
        event["detail"]["tags"]["caseId"] = case_tag
    if contact_id is not None:
        event["detail"]["contactId"] = event["detail"]["initialContactId"] = contact_id
    return json.dumps(event)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        # Cases answers 404 for the case: dead-lettered after the call
        (_voice_event(case_tag=MISSING_CASE), "ResourceNotFoundException"),
        # Connect does not know the contact: dead-lettered before any Cases call
        (_voice_event(contact_id=str(uuid.uuid4())), "ResourceNotFoundException"),
    ],
)
def test_given_the_ledger_fails_once_when_a_contact_is_dead_lettered_then_one_dlq_message_over_two_deliveries(
    make_app: Callable[..., App], aws: Aws, monkeypatch: pytest.MonkeyPatch, body: str, code: str
) -> None:
    # GIVEN a contact event that must be dead-lettered, and a ledger whose first contact write fails
    app = make_app()
    ledger = app.records._ledger
    real, failures = ledger.record_contact, [LedgerUnavailable("contact record", ConnectionError("down"))]

    def flaky(*args: Any, **kwargs: Any) -> None:
        if failures:
            raise failures.pop()
        real(*args, **kwargs)

    monkeypatch.setattr(ledger, "record_contact", flaky)
    message_id = str(uuid.uuid4())

    # WHEN its first delivery meets the failure and SQS delivers it again
    first = app.run_batch(sqs_event(sqs_record(body, message_id=message_id)), lambda_context())
    second = app.run_batch(
        sqs_event(sqs_record(body, message_id=message_id, receive_count=2)), lambda_context()
    )

    # THEN the message ends as exactly one DLQ message: handed back at most once, never dead-lettered twice
    assert not failures
    assert failed_ids(first.response) <= {message_id}
    assert second.response == {"batchItemFailures": []}
    dead = aws.dead_letters()
    assert [m["MessageAttributes"]["ERROR_CODE"]["StringValue"] for m in dead] == [code]
    assert dead[0]["MessageAttributes"]["SOURCE_MESSAGE_ID"]["StringValue"] == message_id


@pytest.mark.parametrize(
    ("name", "code"),
    [("bad/malformed-body.txt", "InvalidJson"), ("bad/request-comment-too-long.json", "ValidationException")],
)
def test_given_a_body_the_api_would_reject_when_handled_then_dead_lettered_before_any_call(
    make_app: Callable[..., App], emu: Emulator, aws: Aws, name: str, code: str
) -> None:
    result = make_app().run_batch(sqs_event(sqs_record(event_body(name))), lambda_context())

    assert result.response == {"batchItemFailures": []}
    [message] = aws.dead_letters()
    assert message["MessageAttributes"]["ERROR_CODE"]["StringValue"] == code
    assert "xxxx" not in message["MessageAttributes"]["ERROR_MESSAGE"]["StringValue"]
    assert emu.calls == []


def test_given_a_producers_own_unreadable_original_attributes_when_dead_lettered_then_kept_whole_with_the_reason(
    make_app: Callable[..., App], aws: Aws
) -> None:
    # GIVEN a bad message whose producer sent an ORIGINAL_ATTRIBUTES of its own, not ours (a broken binary)
    packed = '{"b": {"DataType": "Binary", "BinaryValue": "A"}}'
    attributes = {"ORIGINAL_ATTRIBUTES": {"dataType": "String", "stringValue": packed}}
    record = sqs_record(event_body("bad/unknown-shape.json"), attributes=attributes)

    # WHEN it is handled
    result = make_app().run_batch(sqs_event(record), lambda_context())

    # THEN it is dead-lettered with its reason, the attribute kept as it came
    assert result.response == {"batchItemFailures": []}
    [message] = aws.dead_letters()
    assert message["MessageAttributes"]["ERROR_CODE"]["StringValue"]
    assert message["MessageAttributes"]["ORIGINAL_ATTRIBUTES"]["StringValue"] == packed


def test_given_a_mixed_batch_when_handled_then_exactly_the_transient_failure_is_handed_back(
    make_app: Callable[..., App], emu: Emulator, aws: Aws
) -> None:
    # GIVEN a create that fails with 500s on every attempt, among records that succeed, skip or dead-letter
    emu.script("BatchCreateRelatedItem", ["InternalServerException"] * 4)
    transient = sqs_record(comment_request(COMMENT_CASE, "fails for now"))
    others = [
        sqs_record(event_body("bad/malformed-body.txt")),
        sqs_record(event_body("contact-queued.json")),
        sqs_record(event_body("contact-completed-no-case-id.json")),
        sqs_record(event_body("contact-completed-already-linked.json")),
    ]

    result = make_app().run_batch(sqs_event(transient, *others), lambda_context())

    assert result.response == {"batchItemFailures": [{"itemIdentifier": transient["messageId"]}]}
    assert [m["MessageAttributes"]["ERROR_CODE"]["StringValue"] for m in aws.dead_letters()] == [
        "InvalidJson"
    ]


def test_given_the_dead_letter_queue_is_unavailable_when_a_record_must_be_dead_lettered_then_it_is_handed_back(
    make_app: Callable[..., App],
) -> None:
    app = make_app(dead_letter_queue_url="http://127.0.0.1:1/123456789012/missing-dlq")
    good, bad = sqs_record(comment_request(COMMENT_CASE)), sqs_record(event_body("bad/malformed-body.txt"))

    result = app.run_batch(sqs_event(good, bad), lambda_context())

    assert failed_ids(result.response) == {bad["messageId"]}


def test_given_an_idempotency_key_reused_for_other_content_when_handled_then_dead_lettered_as_conflict(
    make_app: Callable[..., App], emu: Emulator, aws: Aws
) -> None:
    app = make_app()
    app.run_batch(
        sqs_event(sqs_record(comment_request(COMMENT_CASE, "first", idempotencyKey="k-1"))), lambda_context()
    )

    result = app.run_batch(
        sqs_event(sqs_record(comment_request(COMMENT_CASE, "second", idempotencyKey="k-1"))), lambda_context()
    )

    assert result.response == {"batchItemFailures": []}
    assert [m["MessageAttributes"]["ERROR_CODE"]["StringValue"] for m in aws.dead_letters()] == [
        "IdempotencyKeyConflict"
    ]
    assert len(emu.related_items(DOMAIN_ID, COMMENT_CASE)) == 1


def test_given_performed_by_agent_when_a_contact_with_an_agent_is_linked_then_the_agent_is_recorded(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    make_app(performed_by_agent=True).run_batch(
        sqs_event(sqs_record(event_body("contact-completed-voice.json"))), lambda_context()
    )

    [item] = emu.related_items(DOMAIN_ID, VOICE_CASE)
    assert item.performed_by == {
        "userArn": json.loads(event_body("contact-completed-voice.json"))["detail"]["agentInfo"]["agentArn"]
    }


def test_given_ten_records_and_latency_when_handled_then_the_creates_overlap(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    # GIVEN 500 ms per create: one after another, ten creates would take at least 5 s
    latency = 0.5
    emu.configure(op_latency_s={"BatchCreateRelatedItem": latency})
    records = [sqs_record(comment_request(COMMENT_CASE, f"note {i}")) for i in range(10)]

    started = time.monotonic()
    result = make_app().run_batch(sqs_event(*records), lambda_context())
    elapsed = time.monotonic() - started

    # THEN the creates were in flight together (a sequential handler would never have two at once)
    assert result.response == {"batchItemFailures": []}
    arrivals = sorted(c.monotonic for c in emu.calls_to("BatchCreateRelatedItem"))
    assert len(arrivals) == 10
    most_at_once = max(sum(1 for a in arrivals if a <= t < a + latency) for t in arrivals)
    assert most_at_once >= 5
    assert elapsed < 10 * latency * 0.75


def test_given_a_request_rate_when_creates_are_sent_then_they_are_paced(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    # GIVEN CASES_MAX_RPS=10 and a bucket of one: creates get slots 0, 100, ..., 700 ms from the first
    rate, records = 10.0, [sqs_record(comment_request(COMMENT_CASE, f"note {i}")) for i in range(8)]
    app = make_app(dataclasses.replace(FAST, bucket_capacity=1.0), cases_max_rps=rate)

    # WHEN eight records run concurrently
    started = time.monotonic()
    result = app.run_batch(sqs_event(*records), lambda_context())
    elapsed = time.monotonic() - started

    # THEN the last create could not be sent before its slot, although the emulator would take them all at once
    assert result.response == {"batchItemFailures": []}
    assert len(emu.calls_to("BatchCreateRelatedItem")) == 8
    assert elapsed >= (8 - 1) / rate * 0.95


def test_given_the_lambda_entry_point_when_invoked_then_it_builds_once_and_emits_metrics_without_customer_data(
    settings: Settings, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    builds: list[int] = []

    def factory() -> App:
        builds.append(1)
        return build_app(settings, tuning=FAST)

    handler = make_lambda_handler(factory)
    secret_body = "Please call me on +1 555 0100 or jane@example.com"
    event = sqs_event(
        sqs_record(comment_request(COMMENT_CASE, secret_body)),
        sqs_record(event_body("contact-completed-voice.json")),
    )

    first = handler(event, lambda_context())
    second = handler(sqs_event(sqs_record(event_body("contact-queued.json"))), lambda_context())

    output = capsys.readouterr().out
    assert first == second == {"batchItemFailures": []}
    assert builds == [1]
    assert '"RelatedItemCreated"' in output
    assert '"type":"Comment"' in output
    assert "555 0100" not in output
    assert "example.com" not in output
    assert "+15555550100" not in output


def test_given_powertools_event_logging_switched_on_when_the_entry_point_runs_then_no_body_is_logged(
    settings: Settings, emu: Emulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Powertools variable that logs every invocation's event, set as one might while debugging
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    handler = make_lambda_handler(lambda: build_app(settings, tuning=FAST))
    secret_body = "Please call me on +1 555 0100 or jane@example.com"

    # WHEN a batch is handled
    response = handler(sqs_event(sqs_record(comment_request(COMMENT_CASE, secret_body))), lambda_context())

    # THEN the event (its bodies) never reaches the log
    assert response == {"batchItemFailures": []}
    assert [r for r in caplog.records if r.getMessage() == "batch done"]
    assert not [r for r in caplog.records if "555 0100" in str(vars(r)) or "example.com" in str(vars(r))]


def app_logging_to_a_string(settings: Settings) -> tuple[App, io.StringIO]:
    """An app whose log lines are written to the returned stream."""
    stream = io.StringIO()
    app_logger = Logger(
        service=f"case-linker-test-{uuid.uuid4()}", logger_handler=logging.StreamHandler(stream)
    )
    return build_app(settings, tuning=FAST, app_logger=app_logger), stream


def test_given_customer_data_in_bodies_and_tags_when_handled_then_logs_carry_ids_but_none_of_it(
    settings: Settings, emu: Emulator
) -> None:
    app, stream = app_logging_to_a_string(settings)
    secret = "Please call me on +1 555 0100 or jane@example.com"
    records = [
        sqs_record(comment_request(COMMENT_CASE, secret)),
        sqs_record(comment_request(COMMENT_CASE, secret * 400)),  # too long: dead-lettered
        sqs_record(event_body("contact-completed-voice.json")),  # its tags carry a phone number
    ]

    app.run_batch(sqs_event(*records), lambda_context())

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    text = stream.getvalue()
    assert "555 0100" not in text
    assert "+15555550100" not in text
    assert "example.com" not in text
    assert {r["messageId"] for r in records} <= {line.get("message_id") for line in lines}
    contact_lines = [line for line in lines if line.get("contact_id")]
    assert contact_lines
    assert all(line["case_id"] == VOICE_CASE for line in contact_lines)


def test_given_a_phone_number_where_the_case_id_goes_when_handled_then_dead_lettered_and_never_logged(
    settings: Settings, emu: Emulator, aws: Aws
) -> None:
    # GIVEN producers and flows that put the customer's number where the case id goes: it fits the API's caseId
    # pattern, so only Cases can tell it is no case
    app, stream = app_logging_to_a_string(settings)
    voice = json.loads(event_body("contact-completed-voice.json"))
    voice["detail"]["tags"] = {"caseId": "+12065550199"}
    records = [
        sqs_record(comment_request("+12065550188", "hello")),
        sqs_record(comment_request("206.555.0177", "hello", idempotencyKey="k-206")),
        sqs_record(json.dumps(voice)),
    ]

    result = app.run_batch(sqs_event(*records), lambda_context())

    # THEN each is dead-lettered as Cases answered, and no log line carries the number
    assert result.response == {"batchItemFailures": []}
    assert count(result.counts, DEAD_LETTERED, ("errorCode", "ResourceNotFoundException")) == 3
    text = stream.getvalue()
    for number in ("2065550199", "2065550188", "206.555.0177"):
        assert number not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert {r["messageId"] for r in records} <= {line.get("message_id") for line in lines}


def test_given_a_phone_number_where_the_contact_id_goes_when_handled_then_dead_lettered_and_never_logged(
    settings: Settings, emu: Emulator
) -> None:
    # GIVEN contact events whose contactId is a phone number: digits and hyphens fit Connect's id pattern, so
    # only Connect can tell it is no contact
    app, stream = app_logging_to_a_string(settings)
    records = []
    for number in ("206-555-0166", "2065550155"):
        voice = json.loads(event_body("contact-completed-voice.json"))
        voice["detail"]["contactId"] = voice["detail"]["initialContactId"] = number
        records.append(sqs_record(json.dumps(voice)))

    result = app.run_batch(sqs_event(*records), lambda_context())

    # THEN each is dead-lettered as Connect answered, and no log line carries the number
    assert result.response == {"batchItemFailures": []}
    assert count(result.counts, DEAD_LETTERED, ("errorCode", "ResourceNotFoundException")) == 2
    text = stream.getvalue()
    for number in ("0166", "2065550155"):
        assert number not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert {r["messageId"] for r in records} <= {line.get("message_id") for line in lines}
    assert any(line.get("contact_id") for line in lines)


def test_given_a_missing_setting_when_the_entry_point_first_runs_then_it_fails_naming_the_variable() -> None:
    handler = make_lambda_handler(lambda: build_app(Settings.from_env({})))

    with pytest.raises(SettingsError, match="CASES_DOMAIN_ID"):
        handler(sqs_event(), lambda_context())


def test_emulator_contact_helper_is_consistent_with_the_sample_instance(emu: Emulator) -> None:
    assert emu.instance_arn(INSTANCE_ID) == EXPECTED["connectInstanceArn"]


def test_given_the_root_logger_at_debug_as_lambdas_json_log_format_sets_it_then_no_request_body_is_logged(
    make_app: Callable[..., App], emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN Lambda's JSON log format with the application log level at DEBUG: the runtime sets the root logger to
    # DEBUG, and botocore logs every request's parameters and body there
    caplog.set_level(logging.DEBUG)
    secret = "SENTINEL-BOTOCORE-BODY-41d7"

    # WHEN a comment is linked
    app = make_app()
    result = app.run_batch(sqs_event(sqs_record(comment_request(COMMENT_CASE, secret))), lambda_context())

    # THEN the comment was made, and no log record carries its text (botocore's debug lines are not emitted)
    assert result.response == {"batchItemFailures": []}
    assert len(emu.related_items(case_id=COMMENT_CASE)) == 1
    assert caplog.records
    assert secret not in caplog.text
    assert not [
        r for r in caplog.records if r.name.startswith(("botocore", "urllib3")) and r.levelno < logging.INFO
    ]
