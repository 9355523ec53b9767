"""Exactly once by design (issue 11): each scenario that broke the heuristics, through the real handler.

Every test runs the real App against moto (SQS, DynamoDB) and the emulator over HTTP. The ledger, not the
receive count or a REPLAYED attribute, decides whether an earlier delivery may have created the item.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from case_linker.handler import App, build_app, build_clients
from case_linker.settings import Settings
from case_linker.telemetry import ALREADY_LINKED, DEAD_LETTERED, RELATED_ITEM_CREATED

from emulator import Emulator
from emulator import model as emulator_model
from tests.functional.conftest import (
    DOMAIN_ID,
    EXPECTED,
    FAST,
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
CREATES = ("CreateRelatedItem", "BatchCreateRelatedItem")
REFERENCE_CASE = "7e3f0c2a-5b1d-4c8e-9f6a-2d4b8c1e0a57"
COMMENT_CONTENT = {"comment": {"body": "Refund approved", "contentType": "Text/Plain"}}
REPO = Path(__file__).resolve().parents[2]


def script_creates(emu: Emulator, outcomes: list[str]) -> None:
    """Script whichever create operation the linker uses for the item (comments may go through the batch API)."""
    for operation in CREATES:
        if operation in emulator_model.ALL_OPERATIONS:
            emu.script(operation, list(outcomes))


def custom_request(case_id: str, value: str, **extra: Any) -> str:
    return json.dumps(
        {
            "caseId": case_id,
            "type": "Custom",
            "content": {"custom": {"fields": [{"id": "order", "value": {"stringValue": value}}]}},
            **extra,
        }
    )


def bodies(emu: Emulator, case_id: str, kind: str = "Comment") -> list[Any]:
    return [item.content for item in emu.related_items(DOMAIN_ID, case_id) if item.type == kind]


# --- A distinct request is never taken for a duplicate ------------------------------------------------


@pytest.mark.parametrize(
    ("make_body", "kind"),
    [
        (lambda key: comment_request(COMMENT_CASE, "Payment received", idempotencyKey=key), "Comment"),
        (lambda key: custom_request(COMMENT_CASE, "order-42", idempotencyKey=key), "Custom"),
    ],
    ids=["comment", "custom"],
)
def test_given_two_distinct_requests_with_identical_content_when_the_second_is_redelivered_then_both_land(
    make_app: Callable[..., App], emu: Emulator, make_body: Callable[[str], str], kind: str
) -> None:
    # GIVEN pay-1001 was created days ago
    app = make_app()
    first = app.run_batch(sqs_event(sqs_record(make_body("pay-1001"))), lambda_context())
    assert first.response == {"batchItemFailures": []}

    # WHEN pay-2002, same content, arrives on its second delivery (its first was throttled and handed back)
    second = app.run_batch(sqs_event(sqs_record(make_body("pay-2002"), receive_count=2)), lambda_context())

    # THEN it is a new item, not "already linked"
    assert second.response == {"batchItemFailures": []}
    assert len(bodies(emu, COMMENT_CASE, kind)) == 2
    assert count(second.counts, RELATED_ITEM_CREATED) == 1
    assert count(second.counts, ALREADY_LINKED) == 0


def test_given_a_twin_whose_create_was_lost_when_it_looks_for_its_item_then_it_does_not_take_the_others(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    # GIVEN order-9 asked for twice by two requests (their own keys): the first's create is lost before it
    # commits and handed back, then the second is created without a hitch (found by the chaos run)
    app = make_app(dataclasses.replace(FAST, create_attempts=1))
    emu.script("CreateRelatedItem", ["drop"])
    lost = app.run_batch(
        sqs_event(sqs_record(custom_request(COMMENT_CASE, "order-9", idempotencyKey="a"))), lambda_context()
    )
    assert len(lost.response["batchItemFailures"]) == 1
    plain = app.run_batch(
        sqs_event(sqs_record(custom_request(COMMENT_CASE, "order-9", idempotencyKey="b"))), lambda_context()
    )
    assert plain.response == {"batchItemFailures": []}

    # WHEN the first comes back, settles and looks for an item only it can have made
    time.sleep(FAST.backoff.settle)
    again = app.run_batch(
        sqs_event(sqs_record(custom_request(COMMENT_CASE, "order-9", idempotencyKey="a"), receive_count=2)),
        lambda_context(60_000),
    )

    # THEN the second's item is not taken for the first's: the case holds two
    assert again.response == {"batchItemFailures": []}
    assert len(bodies(emu, COMMENT_CASE, "Custom")) == 2


def test_given_a_comment_twin_whose_create_was_lost_when_replayed_after_the_token_is_trusted_then_both_land(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    # GIVEN pay-a's comment is lost before it commits, then pay-b (same words, its own key) is created
    hour_later = dataclasses.replace(
        FAST, create_attempts=1, backoff=dataclasses.replace(FAST.backoff, token_trust=0.2)
    )
    app = make_app(hour_later)
    emu.script("BatchCreateRelatedItem", ["drop"])
    pay_a = comment_request(COMMENT_CASE, "Payment received", idempotencyKey="pay-a")
    assert failed_ids(app.run_batch(sqs_event(sqs_record(pay_a)), lambda_context()).response)
    pay_b = comment_request(COMMENT_CASE, "Payment received", idempotencyKey="pay-b")
    assert app.run_batch(sqs_event(sqs_record(pay_b)), lambda_context()).response == {"batchItemFailures": []}

    # WHEN pay-a is replayed later than its client token is trusted (0.2 s here, an hour deployed), so it
    # looks for an item it may have made
    time.sleep(0.3)
    again = app.run_batch(sqs_event(sqs_record(pay_a, receive_count=2)), lambda_context())

    # THEN pay-b's comment is not taken for pay-a's: two requests, two comments
    assert again.response == {"batchItemFailures": []}
    assert len(bodies(emu, COMMENT_CASE)) == 2


def test_given_a_per_case_internal_error_when_the_comment_is_retried_then_a_new_token_creates_it(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    # GIVEN Cases answers the first create with a failure for the case (nothing created; the token keeps it)
    emu.script("BatchCreateRelatedItem", ["item_failure:INTERNAL_ERROR"])

    result = make_app().run_batch(
        sqs_event(sqs_record(comment_request(COMMENT_CASE, "Transient failure"))), lambda_context()
    )

    # THEN the retry takes the next token (the same one would only get the failure back) and the comment lands
    assert result.response == {"batchItemFailures": []}
    assert len(bodies(emu, COMMENT_CASE)) == 1
    tokens = [call.params["clientToken"] for call in emu.calls_to("BatchCreateRelatedItem")]
    assert len(tokens) == 2
    assert tokens[0] != tokens[1]


def test_given_a_replayed_request_never_attempted_before_when_handled_then_it_is_created_despite_a_twin(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    # GIVEN an identical comment from another request is on the case
    app = make_app()
    app.run_batch(
        sqs_event(sqs_record(comment_request(COMMENT_CASE, "Same words", idempotencyKey="a"))),
        lambda_context(),
    )
    replayed = {"REPLAYED": {"dataType": "String", "stringValue": "dlq"}}

    # WHEN another request with the same words is replayed from a DLQ (it was never attempted: bad input fixed)
    result = app.run_batch(
        sqs_event(
            sqs_record(comment_request(COMMENT_CASE, "Same words", idempotencyKey="b"), attributes=replayed)
        ),
        lambda_context(),
    )

    # THEN it lands too
    assert result.response == {"batchItemFailures": []}
    assert len(bodies(emu, COMMENT_CASE)) == 2


# --- An ambiguous create is remembered, whatever happens to the message --------------------------------


@pytest.mark.parametrize(
    "make_body", [comment_request, lambda case: custom_request(case, "order-7")], ids=["comment", "custom"]
)
def test_given_an_ambiguous_create_then_throttled_lookups_when_the_same_request_comes_as_a_new_message_then_one_item(
    make_app: Callable[..., App], emu: Emulator, make_body: Callable[[str], str]
) -> None:
    # GIVEN the create commits but its connection drops, and what follows is throttled: the retried create
    # (comments) or the look-up (other types), until the record is handed back
    script_creates(emu, ["drop_after_commit", "ThrottlingException"])
    emu.script("SearchRelatedItems", ["ThrottlingException"] * 4)
    app = make_app(dataclasses.replace(FAST, create_attempts=2))
    body = make_body(COMMENT_CASE)
    first = app.run_batch(sqs_event(sqs_record(body)), lambda_context())

    # WHEN the same request arrives again as another SQS message, receive count 1 (a producer retry)
    second = app.run_batch(sqs_event(sqs_record(body)), lambda_context(60_000))
    if second.response["batchItemFailures"]:  # it may be asked to wait until the first create settles
        second = app.run_batch(sqs_event(sqs_record(body)), lambda_context(60_000))

    # THEN the case holds exactly one item
    kind = json.loads(body)["type"]
    assert len(first.response["batchItemFailures"]) == 1
    assert second.response == {"batchItemFailures": []}
    assert len(bodies(emu, COMMENT_CASE, kind)) == 1


def test_given_an_ambiguous_create_then_a_5xx_lookup_when_redelivered_with_ten_attributes_then_one_item(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    # GIVEN an ambiguous create, then the look-up fails with 5xx and the record is handed back
    script_creates(emu, ["drop_after_commit"])
    emu.script("SearchRelatedItems", ["InternalServerException"] * 8)
    app = make_app(dataclasses.replace(FAST, create_attempts=2))
    body = custom_request(COMMENT_CASE, "order-9")
    app.run_batch(sqs_event(sqs_record(body)), lambda_context())
    # WHEN it is replayed with 10 producer attributes (no room for a REPLAYED marker), receive count 1
    attributes = {f"trace{i}": {"dataType": "String", "stringValue": f"v{i}"} for i in range(10)}
    result = app.run_batch(sqs_event(sqs_record(body, attributes=attributes)), lambda_context())
    if result.response["batchItemFailures"]:
        result = app.run_batch(sqs_event(sqs_record(body, attributes=attributes)), lambda_context())

    # THEN no second item
    assert result.response == {"batchItemFailures": []}
    assert len(bodies(emu, COMMENT_CASE, "Custom")) == 1


def test_given_search_results_without_their_performer_when_an_ambiguous_create_is_looked_for_then_it_is_found(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    # GIVEN Cases leaves performedBy out of SearchRelatedItems results (the API's model makes it optional)
    emu.configure(search_shows_performed_by=False)
    script_creates(emu, ["drop_after_commit"])

    # WHEN a Custom item's create commits but its answer is lost, and the retry looks for it
    result = make_app(dataclasses.replace(FAST, create_attempts=2)).run_batch(
        sqs_event(sqs_record(custom_request(COMMENT_CASE, "order-55"))), lambda_context()
    )

    # THEN it finds the item it made, instead of making a second
    assert result.response == {"batchItemFailures": []}
    assert len(bodies(emu, COMMENT_CASE, "Custom")) == 1


def test_given_an_ambiguous_comment_by_reference_id_when_it_comes_again_spelled_otherwise_then_one_comment(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    # GIVEN a comment on the case with reference id ACME-1 whose create commits but whose answer is lost
    emu.create_case(DOMAIN_ID, title="by reference", case_id=REFERENCE_CASE, reference_id="ACME-1")
    emu.script("BatchCreateRelatedItem", ["drop_after_commit"])
    app = make_app(dataclasses.replace(FAST, create_attempts=1))
    first = json.dumps({"referenceId": "ACME-1", "type": "Comment", "content": COMMENT_CONTENT})
    assert failed_ids(app.run_batch(sqs_event(sqs_record(first)), lambda_context()).response)

    # WHEN the same request comes as another message naming the case acme-1 (reference ids ignore case)
    again = json.dumps({"referenceId": "acme-1", "type": "Comment", "content": COMMENT_CONTENT})
    result = app.run_batch(sqs_event(sqs_record(again)), lambda_context())

    # THEN its create goes out as the first one did, and Cases answers with the comment already made
    assert result.response == {"batchItemFailures": []}
    assert len(bodies(emu, REFERENCE_CASE)) == 1


def test_given_a_contact_named_by_reference_id_when_it_comes_again_then_the_contacts_record_names_its_case(
    make_app: Callable[..., App], emu: Emulator, aws: Aws
) -> None:
    # GIVEN a Contact request naming its case by reference id, linked once
    emu.create_case(DOMAIN_ID, title="by reference", case_id=REFERENCE_CASE, reference_id="ACME-7")
    contact_arn = VOICE_ARN.rsplit("/", 1)[0] + "/c0ffee00-0000-4000-8000-00000000beef"
    body = json.dumps(
        {"referenceId": "ACME-7", "type": "Contact", "content": {"contact": {"contactArn": contact_arn}}}
    )
    app = make_app()
    assert app.run_batch(sqs_event(sqs_record(body)), lambda_context()).response == {"batchItemFailures": []}
    instance_id, contact_id = contact_arn.split("instance/", 1)[1].split("/contact/")
    key = {"id": {"S": f"case-linker#contact#v1#{instance_id}#{contact_id}"}}
    dynamodb = boto3.client("dynamodb")
    # ... and the contact's record lost (the invocation ended between the item's record and the contact's)
    dynamodb.delete_item(TableName=aws.table_name, Key=key)

    # WHEN the same request comes again as another message (the ledger holds its item)
    result = app.run_batch(sqs_event(sqs_record(body)), lambda_context())

    # THEN it is already linked, and the contact's record still names the case (chained contacts follow it there)
    assert result.response == {"batchItemFailures": []}
    assert len(bodies(emu, REFERENCE_CASE, "Contact")) == 1
    record = dynamodb.get_item(TableName=aws.table_name, Key=key)["Item"]
    assert record["state"]["S"] == "linked"
    assert record["caseIds"]["SS"] == [REFERENCE_CASE]


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        (
            json.dumps({"referenceId": "NO-SUCH-REF", "type": "Comment", "content": COMMENT_CONTENT}),
            "referenceId",
            "NO-SUCH-REF",
        ),
        (comment_request("no-such-case", "Customer called back"), "caseId", "no-such-case"),
        (custom_request("no-such-case", "order-88"), "caseId", "no-such-case"),
    ],
    ids=["comment by reference id", "comment by case id", "custom by case id"],
)
def test_given_an_item_for_a_case_that_does_not_exist_when_dead_lettered_then_the_reason_names_the_field(
    make_app: Callable[..., App], aws: Aws, body: str, field: str, value: str
) -> None:
    # GIVEN an item naming a case that no case in the domain is (Cases answers that it found no case)
    # WHEN it is processed
    make_app().run_batch(sqs_event(sqs_record(body)), lambda_context())

    # THEN it is dead-lettered with a reason that names the field the producer got wrong, not the API's code alone
    [message] = aws.dead_letters()
    attributes = message["MessageAttributes"]
    assert attributes["ERROR_CODE"]["StringValue"] == "ResourceNotFoundException"
    assert attributes["ERROR_MESSAGE"]["StringValue"].startswith(f"{field}: no case")
    assert value not in attributes["ERROR_MESSAGE"]["StringValue"]


@pytest.mark.parametrize("kind", ["Comment", "Custom"])
def test_given_an_ambiguous_create_when_redeployed_with_another_performer_then_the_item_is_not_made_twice(
    make_app: Callable[..., App], emu: Emulator, kind: str
) -> None:
    # GIVEN a create that commits but whose answer is lost, by a deployment recording "case-linker"
    script_creates(emu, ["drop_after_commit"])
    body = (
        comment_request(COMMENT_CASE, "Customer called back")
        if kind == "Comment"
        else custom_request(COMMENT_CASE, "order-88")
    )
    before = make_app(dataclasses.replace(FAST, create_attempts=1))
    assert failed_ids(before.run_batch(sqs_event(sqs_record(body)), lambda_context()).response)

    # WHEN the stack is redeployed with -c performedBy=crm-linker and the record comes back
    after = make_app(performed_by_entity="crm-linker")
    time.sleep(FAST.backoff.settle)
    result = after.run_batch(sqs_event(sqs_record(body, receive_count=2)), lambda_context())

    # THEN the retry goes out as the first attempt did (its client token, its look-up), and finds the item
    assert result.response == {"batchItemFailures": []}
    assert len(bodies(emu, COMMENT_CASE, kind)) == 1


def test_given_a_keyed_request_throttled_when_redeployed_with_another_performer_then_it_is_created_not_a_conflict(
    make_app: Callable[..., App], emu: Emulator, aws: Aws
) -> None:
    # GIVEN a keyed request naming no performer, throttled and handed back (nothing made)
    emu.script("CreateRelatedItem", ["ThrottlingException"])
    body = custom_request(COMMENT_CASE, "order-77", idempotencyKey="order-77")
    before = make_app(dataclasses.replace(FAST, create_attempts=1))
    assert failed_ids(before.run_batch(sqs_event(sqs_record(body)), lambda_context()).response)

    # WHEN it comes back after a redeploy with -c performedBy=crm-linker
    after = make_app(performed_by_entity="crm-linker")
    result = after.run_batch(sqs_event(sqs_record(body, receive_count=2)), lambda_context())

    # THEN the key was reused for the same request (the deployment's performer is not the producer's): created
    assert result.response == {"batchItemFailures": []}
    assert aws.dead_letters() == []
    assert len(bodies(emu, COMMENT_CASE, "Custom")) == 1


def test_given_a_key_reused_with_another_explicit_performer_then_it_is_still_a_conflict(
    make_app: Callable[..., App], emu: Emulator, aws: Aws
) -> None:
    app = make_app()
    first = custom_request(
        COMMENT_CASE, "order-78", idempotencyKey="k-78", performedBy={"customEntity": "crm"}
    )
    assert app.run_batch(sqs_event(sqs_record(first)), lambda_context()).response == {"batchItemFailures": []}

    other = custom_request(
        COMMENT_CASE, "order-78", idempotencyKey="k-78", performedBy={"customEntity": "erp"}
    )
    result = app.run_batch(sqs_event(sqs_record(other)), lambda_context())

    assert count(result.counts, DEAD_LETTERED) == 1
    assert [m["MessageAttributes"]["ERROR_CODE"]["StringValue"] for m in aws.dead_letters()] == [
        "IdempotencyKeyConflict"
    ]


@pytest.mark.parametrize("shows_performer", [True, False], ids=["performer-shown", "performer-not-shown"])
def test_given_an_identical_item_made_by_someone_else_after_our_create_could_land_then_it_is_not_taken(
    make_app: Callable[..., App], emu: Emulator, shows_performer: bool
) -> None:
    # GIVEN our create is lost before it commits (nothing made), and the record is handed back
    emu.configure(search_shows_performed_by=shows_performer)
    emu.script("CreateRelatedItem", ["drop"])
    settles = dataclasses.replace(
        FAST, create_attempts=1, backoff=dataclasses.replace(FAST.backoff, settle=0.3, clock_skew=0.1)
    )
    app = make_app(settles)
    body = custom_request(COMMENT_CASE, "order-501")
    assert failed_ids(app.run_batch(sqs_event(sqs_record(body)), lambda_context()).response)

    # WHEN, once our create can no longer land, someone else adds the same item, then our record comes back
    time.sleep(0.6)
    emu.add_related_item(
        DOMAIN_ID, COMMENT_CASE, "Custom", json.loads(body)["content"], performed_by={"userArn": "agent"}
    )
    result = app.run_batch(sqs_event(sqs_record(body, receive_count=2)), lambda_context())

    # THEN theirs is not taken for ours: ours is made
    assert result.response == {"batchItemFailures": []}
    assert len(bodies(emu, COMMENT_CASE, "Custom")) == 2


def test_given_a_create_refused_before_a_redeploy_with_another_performer_then_it_goes_out_as_deployed_now(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    # GIVEN a contact's link refused as a whole (throttled: nothing committed) by a deployment in agent mode
    emu.script("CreateRelatedItem", ["ThrottlingException"])
    before = make_app(dataclasses.replace(FAST, create_attempts=1), performed_by_agent=True)
    body = event_body("contact-completed-voice.json")
    assert failed_ids(before.run_batch(sqs_event(sqs_record(body)), lambda_context()).response)

    # WHEN it comes back after a redeploy without agent mode (the role may no longer describe users)
    after = make_app(performed_by_agent=False, performed_by_entity="crm-linker")
    result = after.run_batch(sqs_event(sqs_record(body, receive_count=2)), lambda_context())

    # THEN nothing earlier can have landed, so it goes out as this deployment says
    assert result.response == {"batchItemFailures": []}
    assert emu.calls_to("CreateRelatedItem")[-1].params["performedBy"] == {"customEntity": "crm-linker"}


# --- The dead-letter path keeps everything and leaks nothing -------------------------------------------


def attribute_names(message: dict[str, Any]) -> set[str]:
    return set(message.get("MessageAttributes", {}))


def test_given_ten_original_attributes_when_dead_lettered_then_none_is_dropped_and_the_reason_is_there(
    make_app: Callable[..., App], aws: Aws
) -> None:
    originals = {f"attr{i}": {"dataType": "String", "stringValue": f"value-{i}"} for i in range(10)}
    record = sqs_record(custom_request("missing-case", "order-1"), attributes=originals)

    make_app().run_batch(sqs_event(record), lambda_context())

    [message] = aws.dead_letters()
    attributes = message["MessageAttributes"]
    assert attributes["ERROR_CODE"]["StringValue"] == "ResourceNotFoundException"
    kept = dict(attributes)
    if "ORIGINAL_ATTRIBUTES" in kept:
        kept.update(json.loads(kept.pop("ORIGINAL_ATTRIBUTES")["StringValue"]))
    assert {f"attr{i}" for i in range(10)} <= set(kept)
    assert kept["attr7"]["StringValue"] == "value-7"


@pytest.mark.parametrize(
    "packed",
    [
        "[" * 50_000,  # deeper than the JSON parser goes
        '{"x": {"DataType": "String", "StringValue": "\\ud800"}}',  # a lone surrogate: no UTF-8 for SQS
        '{"x": {"DataType": "", "StringValue": "v"}}',  # no data type
        '{"x": {"DataType": "Text", "StringValue": "v"}}',  # not an SQS data type
        '{"x": {"DataType": "String", "StringValue": ""}}',  # SQS takes no empty value
        '{"AWS.x": {"DataType": "String", "StringValue": "v"}}',  # a name SQS reserves
        '{"x": 5}',  # not an attribute at all
        '{"x": {"DataType": "String"}}',  # no value
    ],
)
def test_given_a_producers_own_malformed_original_attributes_when_dead_lettered_then_it_arrives_with_the_reason(
    make_app: Callable[..., App], aws: Aws, packed: str
) -> None:
    # GIVEN a bad body whose producer sent an ORIGINAL_ATTRIBUTES of its own, which SQS accepted as one string
    original = {"ORIGINAL_ATTRIBUTES": {"dataType": "String", "stringValue": packed}}
    record = sqs_record('{"not json', attributes=original)

    result = make_app().run_batch(sqs_event(record), lambda_context())

    # THEN it reaches the DLQ with its reason, the attribute kept as it came, instead of failing on every
    # delivery until SQS moves it without one
    assert result.response == {"batchItemFailures": []}
    [message] = aws.dead_letters()
    attributes = message["MessageAttributes"]
    assert attributes["ERROR_CODE"]["StringValue"] == "InvalidJson"
    assert attributes["ORIGINAL_ATTRIBUTES"]["StringValue"] == packed


def test_given_an_unexpected_key_that_is_an_email_when_dead_lettered_then_neither_reason_nor_log_echo_it(
    make_app: Callable[..., App], aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    body = json.loads(comment_request(COMMENT_CASE))
    body["jane.roe@example.com"] = "x"

    make_app().run_batch(sqs_event(sqs_record(json.dumps(body))), lambda_context())

    [message] = aws.dead_letters()
    reason = message["MessageAttributes"]["ERROR_MESSAGE"]["StringValue"]
    assert message["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "ValidationException"
    assert "jane.roe" not in reason
    assert "example.com" not in reason
    assert "unexpected" in reason or "not permitted" in reason
    assert "jane.roe" not in capsys.readouterr().out


def message_size(message: dict[str, Any]) -> int:
    """Body plus attributes as SQS counts them: name, data type and value of each attribute."""
    size = len(message["Body"].encode())
    for name, value in message.get("MessageAttributes", {}).items():
        payload = value.get("StringValue")
        size += len(name.encode()) + len(value["DataType"].encode())
        size += len(payload.encode()) if payload is not None else len(value.get("BinaryValue", b""))
    return size


def test_given_a_body_near_the_size_limit_when_dead_lettered_then_it_still_fits_with_its_error_code(
    make_app: Callable[..., App], aws: Aws
) -> None:
    # GIVEN a DLQ whose maximum message size is nearly filled by the body and its attributes
    aws.sqs.set_queue_attributes(QueueUrl=aws.dlq_url, Attributes={"MaximumMessageSize": "2048"})
    original = {"producer": {"dataType": "String", "stringValue": "crm"}}
    padding = "x" * (2048 - 120 - len(custom_request("missing-case", "")))
    record = sqs_record(custom_request("missing-case", padding), attributes=original)
    assert len(record["body"]) < 2048 - 40

    result = make_app().run_batch(sqs_event(record), lambda_context())

    # THEN it reaches the DLQ within the limit, with its error code and the original attribute
    assert result.response == {"batchItemFailures": []}
    [message] = aws.dead_letters()
    assert message["Body"] == record["body"]
    assert message["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "ResourceNotFoundException"
    assert "producer" in attribute_names(message) or "ORIGINAL_ATTRIBUTES" in attribute_names(message)
    assert message_size(message) <= 2048


# --- What the role cannot do is rejected before any call -----------------------------------------------

OTHER_INSTANCE = "arn:aws:connect:us-east-1:123456789012:instance/00000000-1111-2222-3333-444444444444"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (comment_request(COMMENT_CASE, domainId="another-domain"), "domainId"),
        (
            comment_request(
                COMMENT_CASE, performedBy={"userArn": f"{EXPECTED['connectInstanceArn']}/agent/a1"}
            ),
            "performedBy.userArn",
        ),
        (
            json.dumps(
                {
                    "caseId": COMMENT_CASE,
                    "type": "Contact",
                    "content": {"contact": {"contactArn": f"{OTHER_INSTANCE}/contact/c1"}},
                }
            ),
            "content.contact.contactArn",
        ),
    ],
    ids=["other-domain", "user-arn-without-describe-user", "contact-of-another-instance"],
)
def test_given_a_request_the_role_cannot_serve_when_handled_then_dead_lettered_up_front_naming_the_field(
    make_app: Callable[..., App], emu: Emulator, aws: Aws, body: str, field: str
) -> None:
    result = make_app(connect_instance_arn=EXPECTED["connectInstanceArn"]).run_batch(
        sqs_event(sqs_record(body)), lambda_context()
    )

    assert result.response == {"batchItemFailures": []}
    [message] = aws.dead_letters()
    assert message["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "ValidationException"
    assert field in message["MessageAttributes"]["ERROR_MESSAGE"]["StringValue"]
    assert [c for c in emu.calls if c.operation in CREATES] == []
    assert count(result.counts, DEAD_LETTERED) == 1


def test_given_a_contact_event_of_another_instance_when_handled_then_dead_lettered_before_any_call(
    make_app: Callable[..., App], emu: Emulator, aws: Aws
) -> None:
    event = json.loads(event_body("contact-completed-voice.json"))
    event["detail"]["instanceArn"] = OTHER_INSTANCE

    make_app(connect_instance_arn=EXPECTED["connectInstanceArn"]).run_batch(
        sqs_event(sqs_record(json.dumps(event))), lambda_context()
    )

    [message] = aws.dead_letters()
    assert "detail.instanceArn" in message["MessageAttributes"]["ERROR_MESSAGE"]["StringValue"]
    assert emu.calls == []


# --- Case lifecycle ------------------------------------------------------------------------------------


def test_given_the_case_is_being_merged_when_a_comment_is_created_then_handed_back_not_dead_lettered(
    make_app: Callable[..., App], emu: Emulator, aws: Aws
) -> None:
    script_creates(emu, ["ConflictException"] * 4)

    record = sqs_record(custom_request(COMMENT_CASE, "order-1"))
    result = make_app().run_batch(sqs_event(record), lambda_context())

    assert failed_ids(result.response) == {record["messageId"]}
    assert aws.dead_letters() == []


VOICE_ARN = EXPECTED["events"]["contact-completed-voice.json"]["contactArn"]


def cases_holding_the_voice_contact(emu: Emulator) -> list[str]:
    return [
        item.case_id
        for item in emu.related_items(DOMAIN_ID)
        if item.type == "Contact" and item.content["contact"]["contactArn"] == VOICE_ARN
    ]


def test_given_a_contact_a_flow_linked_when_its_case_was_merged_into_another_then_it_is_not_linked_again(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    # GIVEN the flow linked the contact to its case, then an agent merged that case into another
    primary = emu.create_case(DOMAIN_ID, title="primary")
    emu.add_related_item(DOMAIN_ID, VOICE_CASE, "Contact", {"contact": {"contactArn": VOICE_ARN}})
    emu.merge_cases(DOMAIN_ID, primary, VOICE_CASE, duration_s=0)

    # WHEN COMPLETED arrives naming the merged-away case
    result = make_app().run_batch(
        sqs_event(sqs_record(event_body("contact-completed-voice.json"))), lambda_context()
    )

    # THEN the contact is where the merge put it, once
    assert result.response == {"batchItemFailures": []}
    assert count(result.counts, ALREADY_LINKED) == 1
    assert cases_holding_the_voice_contact(emu) == [primary]


def test_given_a_role_that_cannot_read_merge_status_when_the_case_was_merged_then_it_links_as_before(
    make_app: Callable[..., App], emu: Emulator, aws: Aws
) -> None:
    # GIVEN a stack from before cases:GetMergeCasesStatus was granted
    primary = emu.create_case(DOMAIN_ID, title="primary")
    emu.add_related_item(DOMAIN_ID, VOICE_CASE, "Contact", {"contact": {"contactArn": VOICE_ARN}})
    emu.merge_cases(DOMAIN_ID, primary, VOICE_CASE, duration_s=0)
    emu.script("GetMergeCasesStatus", ["AccessDeniedException"])

    result = make_app().run_batch(
        sqs_event(sqs_record(event_body("contact-completed-voice.json"))), lambda_context()
    )

    # THEN the contact is linked to the case named, as before, and nothing is dead-lettered
    assert result.response == {"batchItemFailures": []}
    assert aws.dead_letters() == []
    assert sorted(cases_holding_the_voice_contact(emu)) == sorted([primary, VOICE_CASE])


def test_given_our_link_in_doubt_when_its_case_was_merged_before_the_retry_then_it_is_not_linked_again(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    # GIVEN our link committed but its answer was lost, and then the case was merged into another
    primary = emu.create_case(DOMAIN_ID, title="primary")
    emu.script("CreateRelatedItem", ["drop_after_commit"])
    app = make_app(dataclasses.replace(FAST, create_attempts=1))
    body = event_body("contact-completed-voice.json")
    assert failed_ids(app.run_batch(sqs_event(sqs_record(body)), lambda_context()).response)
    emu.merge_cases(DOMAIN_ID, primary, VOICE_CASE, duration_s=0)

    # WHEN the record comes back
    result = app.run_batch(sqs_event(sqs_record(body, receive_count=2)), lambda_context())

    # THEN the link it made is found where the merge moved it
    assert result.response == {"batchItemFailures": []}
    assert cases_holding_the_voice_contact(emu) == [primary]


# --- An invocation killed mid-create ------------------------------------------------------------------

KILLED_SCRIPT = """
import json, os, sys
from case_linker.handler import build_app
from case_linker.settings import Settings
from tests.functional.conftest import FAST, lambda_context

app = build_app(Settings.from_env(os.environ), tuning=FAST)
print("ready", flush=True)
app.run_batch(json.loads(sys.stdin.readline()), lambda_context(int(os.environ["REMAINING_MS"])))
"""


def test_given_an_invocation_killed_mid_create_when_a_duplicate_arrives_after_its_lease_then_one_item(
    make_app: Callable[..., App], emu: Emulator, aws: Aws
) -> None:
    # GIVEN an invocation (its own process) whose create commits while the response is held back
    emu.configure(slow_response_s=30.0)
    script_creates(emu, ["slow_after_commit"])
    body = custom_request(COMMENT_CASE, "order-killed")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "functions"), str(REPO)]),
        "CASES_DOMAIN_ID": DOMAIN_ID,
        "DEAD_LETTER_QUEUE_URL": aws.dlq_url,
        "IDEMPOTENCY_TABLE_NAME": aws.table_name,
        "CASES_MAX_RPS": "100",
        "REMAINING_MS": "4000",
    }
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", KILLED_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        cwd=REPO,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdin is not None
        assert process.stdout.readline().strip() == "ready"
        process.stdin.write(json.dumps(sqs_event(sqs_record(body))) + "\n")
        process.stdin.flush()
        deadline = time.monotonic() + 30
        while not bodies(emu, COMMENT_CASE, "Custom") and time.monotonic() < deadline:
            time.sleep(0.05)
        # WHEN it is killed before the response arrives
    finally:
        process.kill()
        process.wait(timeout=10)
    assert len(bodies(emu, COMMENT_CASE, "Custom")) == 1
    time.sleep(4.5)  # its lease ends with its invocation

    # ... and the same request arrives again as a first delivery (receive count 1)
    result = make_app().run_batch(sqs_event(sqs_record(body)), lambda_context())

    # THEN the ledger remembered the create in flight: it is found, not made twice
    assert result.response == {"batchItemFailures": []}
    assert len(bodies(emu, COMMENT_CASE, "Custom")) == 1
    assert count(result.counts, RELATED_ITEM_CREATED) == 1  # created by the killed attempt, counted now


# --- Contact chains (the sweeper's finding) -------------------------------------------------------------


def test_given_a_sweeper_message_with_a_chain_case_when_the_contact_names_no_case_then_the_chain_case_is_used(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    event = json.loads(event_body("contact-completed-no-case-id.json"))
    event["source"] = "case-linker.sweeper"
    event["detail"]["chainCaseId"] = VOICE_CASE

    result = make_app().run_batch(sqs_event(sqs_record(json.dumps(event))), lambda_context())

    assert result.response == {"batchItemFailures": []}
    contact_arn = f"{event['detail']['instanceArn']}/contact/{event['detail']['contactId']}"
    assert {"contact": {"contactArn": contact_arn}} in bodies(emu, VOICE_CASE, "Contact")


def test_given_a_chain_case_when_the_contact_has_its_own_case_id_then_its_own_wins(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    event = json.loads(event_body("contact-completed-voice.json"))
    event["detail"]["chainCaseId"] = COMMENT_CASE

    make_app().run_batch(sqs_event(sqs_record(json.dumps(event))), lambda_context())

    assert bodies(emu, COMMENT_CASE, "Contact") == []
    assert len(bodies(emu, VOICE_CASE, "Contact")) == 1


def test_given_a_comment_dead_lettered_because_its_case_was_missing_when_replayed_after_the_fix_then_linked(
    make_app: Callable[..., App], emu: Emulator, aws: Aws
) -> None:
    # GIVEN a comment for a case that does not exist yet: the service answers CASE_NOT_FOUND for its token
    app = make_app()
    body = comment_request("case-created-later", "Written before the case existed")
    app.run_batch(sqs_event(sqs_record(body)), lambda_context())
    [message] = aws.dead_letters()
    assert message["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "ResourceNotFoundException"

    # WHEN the case is created and the message replayed
    emu.create_case(DOMAIN_ID, title="Created late", case_id="case-created-later")
    replayed = {"REPLAYED": {"dataType": "String", "stringValue": "dlq"}}
    result = app.run_batch(sqs_event(sqs_record(message["Body"], attributes=replayed)), lambda_context())

    # THEN it is linked: the failed token's answer is not replayed to it
    assert result.response == {"batchItemFailures": []}
    assert len(bodies(emu, "case-created-later")) == 1
    tokens = [c.params["clientToken"] for c in emu.calls_to("BatchCreateRelatedItem")]
    assert len(set(tokens)) == 2


# --- What the ledger costs ------------------------------------------------------------------------------


def ledger_calls(settings: Settings, body: str, times: int = 1) -> list[list[str]]:
    """The DynamoDB operations the ledger makes for each of `times` deliveries of `body`."""
    clients = build_clients(FAST)
    calls: list[str] = []
    clients.dynamodb.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    app = build_app(settings, clients=clients, tuning=FAST)
    per_delivery = []
    for _ in range(times):
        calls.clear()
        app.run_batch(sqs_event(sqs_record(body)), lambda_context())
        per_delivery.append(list(calls))
    return per_delivery


def test_the_ledger_costs_four_writes_for_a_new_item_two_for_a_repeat(
    settings: Settings, emu: Emulator
) -> None:
    contact, again = ledger_calls(settings, event_body("contact-completed-voice.json"), times=2)
    comment, _ = ledger_calls(settings, comment_request(COMMENT_CASE, "costed"), times=2)
    custom, _ = ledger_calls(settings, custom_request(COMMENT_CASE, "costed"), times=2)

    # begin (lease), the in-flight mark, created, and the contact's record for the sweeper
    assert contact == ["UpdateItem"] * 4
    assert again == ["UpdateItem", "UpdateItem"]  # begin finds it created; the contact record is refreshed
    # begin, the in-flight mark, the new item's claim for this request, created
    assert comment == custom == ["UpdateItem", "UpdateItem", "PutItem", "UpdateItem"]
