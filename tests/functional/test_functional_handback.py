"""Records handed back: for want of Cases capacity or a known wait, soon, and never to the DLQ through
maxReceiveCount; for any other failure, on their last delivery, to the DLQ with the reason."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from case_linker.cases import CasesGateway
from case_linker.handler import App
from case_linker.ledger import Ledger
from case_linker.telemetry import DEAD_LETTERED, HANDED_BACK, REQUEUED

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

COMMENT_CASE = EXPECTED["events"]["request-comment.json"]["case"]
VOICE_CONTACT_ID = EXPECTED["events"]["contact-completed-voice.json"]["contactArn"].rsplit("/", 1)[-1]


@pytest.fixture
def main_queue(aws: Aws) -> str:
    url: str = aws.sqs.create_queue(QueueName="case-linker-main")["QueueUrl"]
    return url


def main_messages(aws: Aws, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = aws.sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    ).get("Messages", [])
    return messages


def delivered(
    aws: Aws, url: str, body: str, times: int, attributes: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`body` sent to the main queue and received `times` times: the last delivery as Lambda hands it over, with
    its real receipt handle (the linker claims the message with it before giving it up or re-sending it), and
    `attributes` (Lambda's shape) as its message attributes."""
    aws.sqs.send_message(QueueUrl=url, MessageBody=body)
    for delivery in range(1, times + 1):
        [message] = aws.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"], WaitTimeSeconds=1
        )["Messages"]
        if delivery < times:  # visible again at once, for the next receive
            aws.sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
    record = sqs_record(
        body, receive_count=int(message["Attributes"]["ApproximateReceiveCount"]), attributes=attributes
    )
    record["messageId"], record["receiptHandle"] = message["MessageId"], message["ReceiptHandle"]
    assert record["attributes"]["ApproximateReceiveCount"] == str(times)
    return record


def requeued(app: App, record: dict[str, Any], aws: Aws, url: str) -> dict[str, Any]:
    """Handle `record`, check it was acknowledged and re-sent (not dead-lettered); the one copy, once visible:
    it is delayed by the jittered hand-back delay (FAST: 2 s at most)."""
    result = app.run_batch(sqs_event(record), lambda_context())
    assert result.response == {"batchItemFailures": []}
    assert count(result.counts, REQUEUED) == 1
    assert aws.dead_letters() == []
    copies: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while not copies and time.monotonic() < deadline:
        copies = main_messages(aws, url)
        time.sleep(0.5)
    [copy] = copies
    return copy


@pytest.fixture
def throttled_app(make_app: Callable[..., App], emu: Emulator, main_queue: str) -> App:
    """Cases throttles every create; the app knows the main queue and its maxReceiveCount (10)."""
    emu.script("BatchCreateRelatedItem", ["ThrottlingException"] * 100)
    return make_app(
        dataclasses.replace(FAST, create_attempts=2), main_queue_url=main_queue, max_receive_count=10
    )


def test_given_throttling_on_an_early_delivery_when_handed_back_then_counted_and_not_requeued(
    throttled_app: App, aws: Aws, main_queue: str
) -> None:
    record = sqs_record(comment_request(COMMENT_CASE, "throttled"), receive_count=2)

    result = throttled_app.run_batch(sqs_event(record), lambda_context())

    assert failed_ids(result.response) == {record["messageId"]}
    assert count(result.counts, HANDED_BACK, ("reason", "ThrottlingException")) == 1
    assert count(result.counts, REQUEUED) == 0
    assert main_messages(aws, main_queue) == []
    assert aws.dead_letters() == []


def test_given_throttling_near_max_receive_count_when_handed_back_then_resent_as_a_new_message_and_acknowledged(
    throttled_app: App, aws: Aws, main_queue: str
) -> None:
    producer = {f"p{i}": {"dataType": "String", "stringValue": f"v{i}"} for i in range(9)}
    record = delivered(aws, main_queue, comment_request(COMMENT_CASE, "throttled long"), 9, producer)

    # THEN the original is acknowledged (SQS deletes it) and a copy with its history waits on the queue
    copy = requeued(throttled_app, record, aws, main_queue)
    assert copy["Body"] == record["body"]
    attributes = copy["MessageAttributes"]
    assert attributes["CASE_LINKER_REQUEUES"]["StringValue"] == "1"
    assert attributes["CASE_LINKER_FIRST_SENT"]["StringValue"] == record["attributes"]["SentTimestamp"]
    kept = dict(attributes)
    if "ORIGINAL_ATTRIBUTES" in kept:
        kept.update(json.loads(kept.pop("ORIGINAL_ATTRIBUTES")["StringValue"]))
    assert {f"p{i}" for i in range(9)} <= set(kept)
    assert copy["Attributes"]["ApproximateReceiveCount"] == "1"


def test_given_a_replay_with_ten_attributes_throttled_near_max_receive_count_when_resent_then_still_marked_replayed(
    throttled_app: App, aws: Aws, main_queue: str
) -> None:
    # GIVEN a message `ops dlq replay` sent with ten producer attributes: packed, REPLAYED beside them
    producer = {f"p{i}": {"DataType": "String", "StringValue": f"v{i}"} for i in range(10)}
    attributes = {
        "ORIGINAL_ATTRIBUTES": {"dataType": "String", "stringValue": json.dumps(producer)},
        "REPLAYED": {"dataType": "String", "stringValue": "dlq"},
    }
    record = delivered(aws, main_queue, comment_request(COMMENT_CASE, "replayed, throttled"), 9, attributes)

    # WHEN Cases throttles it near maxReceiveCount and it is re-sent
    copy = requeued(throttled_app, record, aws, main_queue)

    # THEN the copy is still a replay where the linker looks for the mark (its own attribute, not packed), so
    # it keeps the background share of the budget and never competes with live contacts; nothing is lost
    kept = copy["MessageAttributes"]
    assert kept["REPLAYED"]["StringValue"] == "dlq"
    assert kept["CASE_LINKER_REQUEUES"]["StringValue"] == "1"
    assert set(json.loads(kept["ORIGINAL_ATTRIBUTES"]["StringValue"])) == set(producer)


def test_given_a_record_at_the_queues_size_limit_throttled_near_max_receive_count_then_still_resent(
    throttled_app: App, aws: Aws, main_queue: str
) -> None:
    # GIVEN a record whose body and attributes fill the queue's maximum message size but for a few bytes (SQS
    # counts the attributes' names, types and values; moto counts the body only, so the limit is applied here)
    producer = {f"p{i}": {"dataType": "String", "stringValue": "v" * 40} for i in range(9)}
    body = comment_request(COMMENT_CASE, "near the limit")
    limit = len(body.encode()) + sum(len(n) + len("String") + 40 for n in producer) + 10
    record = delivered(aws, main_queue, body, 9, producer)

    def refuse_too_large(params: dict[str, Any], **_: Any) -> None:
        size = len(params["MessageBody"].encode()) + sum(
            len(n.encode())
            + len(v["DataType"])
            + len(v.get("StringValue", "").encode())
            + len(v.get("BinaryValue", b""))
            for n, v in params.get("MessageAttributes", {}).items()
        )
        if size > limit:
            raise ClientError(
                {
                    "Error": {
                        "Code": "InvalidParameterValue",
                        "Message": "Message must be shorter than the limit.",
                    }
                },
                "SendMessage",
            )

    sqs = throttled_app.records._redelivery._sqs  # type: ignore[attr-defined]
    sqs.meta.events.register("provide-client-params.sqs.SendMessage", refuse_too_large)

    # WHEN Cases throttles it near maxReceiveCount, THEN it is re-sent all the same (our history does not fit
    # beside it: it goes as it came), never handed back towards the DLQ
    copy = requeued(throttled_app, record, aws, main_queue)
    assert copy["Body"] == body
    assert {f"p{i}" for i in range(9)} <= set(copy["MessageAttributes"])


@pytest.mark.parametrize("malformed", ["", "many", "-3", "1e400", "2.5", "\u00b2"])
def test_given_a_malformed_requeue_count_near_max_receive_count_when_handed_back_then_still_resent(
    throttled_app: App, aws: Aws, main_queue: str, malformed: str
) -> None:
    # GIVEN a record whose hand-back count attribute was written by someone else (a producer, a hand-made replay)
    attributes = {"CASE_LINKER_REQUEUES": {"dataType": "Number", "stringValue": malformed}}
    record = delivered(aws, main_queue, comment_request(COMMENT_CASE, "odd count"), 9, attributes)

    # WHEN it is handed back for want of capacity near maxReceiveCount, THEN it is re-sent with a count it can
    # carry on from, never left to reach the DLQ
    copy = requeued(throttled_app, record, aws, main_queue)
    assert copy["MessageAttributes"]["CASE_LINKER_REQUEUES"]["StringValue"] == "1"


def test_given_a_5xx_near_max_receive_count_when_handed_back_then_not_requeued_so_sqs_can_dead_letter_it(
    make_app: Callable[..., App], emu: Emulator, aws: Aws, main_queue: str
) -> None:
    emu.script("BatchCreateRelatedItem", ["InternalServerException"] * 100)
    app = make_app(
        dataclasses.replace(FAST, create_attempts=2), main_queue_url=main_queue, max_receive_count=10
    )
    record = sqs_record(comment_request(COMMENT_CASE, "broken"), receive_count=9)

    result = app.run_batch(sqs_event(record), lambda_context())

    assert failed_ids(result.response) == {record["messageId"]}
    assert count(result.counts, REQUEUED) == 0
    assert main_messages(aws, main_queue) == []


def reason(message: dict[str, Any]) -> dict[str, str]:
    """A dead-letter message's reason attributes."""
    attributes = message["MessageAttributes"]
    names = ("ERROR_CODE", "ERROR_MESSAGE", "RECEIVE_COUNT")
    return {name: attributes[name]["StringValue"] for name in names if name in attributes}


@pytest.fixture
def last_try(make_app: Callable[..., App], main_queue: str) -> Callable[[], App]:
    """An app that knows the main queue and its maxReceiveCount (10), two create attempts per delivery."""
    return lambda: make_app(
        dataclasses.replace(FAST, create_attempts=2), main_queue_url=main_queue, max_receive_count=10
    )


def test_given_a_5xx_on_the_last_delivery_when_it_fails_again_then_dead_lettered_with_the_reason(
    last_try: Callable[[], App], emu: Emulator, aws: Aws, main_queue: str
) -> None:
    # GIVEN Cases fails every create with a 5xx, and the record is on its last delivery (10 of 10)
    emu.script("BatchCreateRelatedItem", ["InternalServerException"] * 100)
    private = "Call me back on +44 20 7946 0000"
    record = delivered(aws, main_queue, comment_request(COMMENT_CASE, private), times=10)

    result = last_try().run_batch(sqs_event(record), lambda_context())

    # THEN the linker dead-letters it itself, with the last error, instead of leaving SQS to move it reasonless
    assert result.response == {"batchItemFailures": []}
    [dead] = aws.dead_letters()
    assert dead["Body"] == record["body"]
    why = reason(dead)
    assert why["ERROR_CODE"] == "InternalServerException"
    assert "last delivery (10 of maxReceiveCount 10)" in why["ERROR_MESSAGE"]
    assert why["RECEIVE_COUNT"] == "10"
    assert "7946" not in json.dumps(dead["MessageAttributes"])
    assert count(result.counts, DEAD_LETTERED, ("errorCode", "InternalServerException")) == 1
    assert count(result.counts, HANDED_BACK) == 0
    assert main_messages(aws, main_queue) == []


def test_given_a_record_given_up_after_its_create_committed_when_replayed_then_still_one_item(
    last_try: Callable[[], App], emu: Emulator, aws: Aws, main_queue: str
) -> None:
    # GIVEN the last delivery's creates committed but every answer was lost, so the linker gave up on it
    emu.script("BatchCreateRelatedItem", ["drop_after_commit"] * 2)
    record = delivered(aws, main_queue, comment_request(COMMENT_CASE, "committed, answer lost"), times=10)
    app = last_try()
    assert app.run_batch(sqs_event(record), lambda_context()).response == {"batchItemFailures": []}
    [dead] = aws.dead_letters()
    assert reason(dead)["ERROR_CODE"] != "maxReceiveCount"

    # WHEN on-call replays it from the DLQ
    replayed = {"REPLAYED": {"dataType": "String", "stringValue": "dlq"}}
    result = app.run_batch(sqs_event(sqs_record(dead["Body"], attributes=replayed)), lambda_context())

    # THEN the client token returns the item the lost create made: giving up never doubles a case's items
    assert result.response == {"batchItemFailures": []}
    assert len(emu.related_items(DOMAIN_ID, COMMENT_CASE)) == 1


def test_given_a_contact_given_up_on_its_last_delivery_when_dead_lettered_then_the_sweeper_may_still_link_it(
    last_try: Callable[[], App], emu: Emulator, aws: Aws, main_queue: str
) -> None:
    emu.script("CreateRelatedItem", ["InternalServerException"] * 100)
    record = delivered(aws, main_queue, event_body("contact-completed-voice.json"), times=10)

    result = last_try().run_batch(sqs_event(record), lambda_context())

    # THEN it is in the DLQ with the reason, and the ledger records no fate for the contact: the sweeper
    # treats it as never seen, so a contact whose failure outlasts its deliveries is still linked later
    assert result.response == {"batchItemFailures": []}
    [dead] = aws.dead_letters()
    assert reason(dead)["ERROR_CODE"] == "InternalServerException"
    ledger = Ledger(boto3.client("dynamodb"), aws.table_name)
    assert ledger.contacts(INSTANCE_ID, [VOICE_CONTACT_ID]) == {}


def creates_fail_quoting(monkeypatch: pytest.MonkeyPatch, private: str) -> None:
    """Every create raises a bug's error whose text quotes `private`."""

    def boom(*_: object, **__: object) -> None:
        raise RuntimeError(f"a bug that quotes {private}")

    monkeypatch.setattr(CasesGateway, "create", boom)


def test_given_an_unexpected_error_on_the_last_delivery_when_handled_then_dead_lettered_with_its_type_only(
    last_try: Callable[[], App], aws: Aws, main_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = "+44 20 7946 0000"

    creates_fail_quoting(monkeypatch, private)
    record = delivered(aws, main_queue, comment_request(COMMENT_CASE, "unexpected"), times=10)

    result = last_try().run_batch(sqs_event(record), lambda_context())

    assert result.response == {"batchItemFailures": []}
    [dead] = aws.dead_letters()
    why = reason(dead)
    assert why["ERROR_CODE"] == "UnexpectedError"
    assert "RuntimeError" in why["ERROR_MESSAGE"]
    assert private not in json.dumps(dead["MessageAttributes"])


@pytest.mark.parametrize("times", [1, 10])
def test_given_an_unexpected_error_that_quotes_the_record_when_handled_then_the_logs_keep_its_type_and_place_only(
    last_try: Callable[[], App],
    aws: Aws,
    main_queue: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    times: int,
) -> None:
    # GIVEN a bug whose exception text quotes customer data (a KeyError on a key, a library's message)
    private = "+44 20 7946 0001"

    creates_fail_quoting(monkeypatch, private)
    record = delivered(aws, main_queue, comment_request(COMMENT_CASE, "unexpected, logged"), times=times)
    capsys.readouterr()
    caplog.clear()

    last_try().run_batch(sqs_event(record), lambda_context())

    # THEN the log says what failed and where, never the exception's text
    logged = capsys.readouterr().out + caplog.text + "".join(str(vars(entry)) for entry in caplog.records)
    assert "unexpected error" in logged
    assert "RuntimeError" in logged
    assert "boom" in logged  # the function it was raised in
    assert private not in logged
    assert "a bug that quotes" not in logged


def test_given_powertools_debug_when_an_unexpected_error_that_quotes_the_record_is_handed_back_then_no_log_has_its_text(
    last_try: Callable[[], App],
    aws: Aws,
    main_queue: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN Powertools' own debug lines on, as POWERTOOLS_DEBUG=true turns them on during an incident, and a bug
    # whose exception text quotes the record
    private = "+44 20 7946 0002"

    creates_fail_quoting(monkeypatch, private)
    record = delivered(aws, main_queue, comment_request(COMMENT_CASE, "unexpected, debug"), times=1)
    caplog.set_level(logging.DEBUG, logger="aws_lambda_powertools")

    # WHEN it is handed back for redelivery
    result = last_try().run_batch(sqs_event(record), lambda_context())

    # THEN it is, and no log record carries the exception's text
    assert failed_ids(result.response) == {record["messageId"]}
    logged = caplog.text + "".join(str(vars(entry)) for entry in caplog.records)
    assert "unexpected error" in logged
    assert private not in logged
    assert "a bug that quotes" not in logged


def test_given_an_unexpected_error_before_the_last_delivery_when_handled_then_handed_back(
    last_try: Callable[[], App], aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(CasesGateway, "create", boom)
    record = sqs_record(comment_request(COMMENT_CASE, "unexpected early"), receive_count=9)

    result = last_try().run_batch(sqs_event(record), lambda_context())

    assert failed_ids(result.response) == {record["messageId"]}
    assert aws.dead_letters() == []


def test_given_the_dlq_unreachable_on_the_last_delivery_when_giving_up_then_handed_back_for_sqs_to_move(
    make_app: Callable[..., App], emu: Emulator, aws: Aws, main_queue: str
) -> None:
    emu.script("BatchCreateRelatedItem", ["InternalServerException"] * 100)
    app = make_app(
        dataclasses.replace(FAST, create_attempts=2),
        main_queue_url=main_queue,
        max_receive_count=10,
        dead_letter_queue_url=aws.dlq_url + "-gone",
    )
    record = delivered(aws, main_queue, comment_request(COMMENT_CASE, "nowhere to go"), times=10)

    result = app.run_batch(sqs_event(record), lambda_context())

    # THEN the record is not lost: it is reported failed, and SQS's own redrive still moves it
    assert failed_ids(result.response) == {record["messageId"]}


@pytest.mark.parametrize(
    ("operation", "outcome"),
    [("BatchCreateRelatedItem", "ConflictException"), ("BatchCreateRelatedItem", "item_failure:CONFLICT")],
)
def test_given_a_case_being_merged_near_max_receive_count_when_handed_back_then_resent_not_dead_lettered(
    last_try: Callable[[], App], emu: Emulator, aws: Aws, main_queue: str, operation: str, outcome: str
) -> None:
    # GIVEN the case cannot take writes for a while (the secondary of a running merge): a wait, not a failure
    emu.script(operation, [outcome] * 100)
    record = delivered(aws, main_queue, comment_request(COMMENT_CASE, "merging"), times=9)

    result = last_try().run_batch(sqs_event(record), lambda_context())

    # THEN, like a capacity hand-back, it is re-sent before SQS could move it to the DLQ, due when the merge
    # may be over (30 s on)
    assert result.response == {"batchItemFailures": []}
    assert count(result.counts, REQUEUED) == 1
    assert aws.dead_letters() == []
    attributes = aws.sqs.get_queue_attributes(QueueUrl=main_queue, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"


def test_given_sqs_moved_the_message_already_when_the_last_delivery_gives_up_then_not_dead_lettered_twice(
    last_try: Callable[[], App], emu: Emulator, aws: Aws, main_queue: str
) -> None:
    # GIVEN a last delivery that outlived its visibility: SQS has meanwhile moved the message to the DLQ itself
    # (here: it is gone from the main queue, so its receipt handle is no longer valid)
    emu.script("BatchCreateRelatedItem", ["InternalServerException"] * 100)
    record = delivered(aws, main_queue, comment_request(COMMENT_CASE, "outlived"), times=10)
    aws.sqs.delete_message(QueueUrl=main_queue, ReceiptHandle=record["receiptHandle"])

    result = last_try().run_batch(sqs_event(record), lambda_context())

    # THEN the linker does not add a second DLQ message: it no longer holds the record, so it hands it back
    assert failed_ids(result.response) == {record["messageId"]}
    assert aws.dead_letters() == []
    assert count(result.counts, DEAD_LETTERED) == 0


@pytest.mark.parametrize("times", [9, 10])
def test_given_sqs_moved_the_message_already_when_a_capacity_hand_back_is_due_for_re_send_then_no_copy(
    throttled_app: App, aws: Aws, main_queue: str, caplog: pytest.LogCaptureFixture, times: int
) -> None:
    # GIVEN a delivery near maxReceiveCount (9 of 10) or on its last (10 of 10) that outlived its visibility:
    # meanwhile the message was received again and SQS moved it to the DLQ (here: it is gone from the main
    # queue, so its receipt is no longer valid), so the claim before the re-send is refused
    record = delivered(aws, main_queue, comment_request(COMMENT_CASE, "outlived"), times=times)
    aws.sqs.delete_message(QueueUrl=main_queue, ReceiptHandle=record["receiptHandle"])
    caplog.clear()

    result = throttled_app.run_batch(sqs_event(record), lambda_context())

    # THEN it sends no copy: the record would have two endings, the copy and the DLQ message
    assert failed_ids(result.response) == {record["messageId"]}
    assert count(result.counts, REQUEUED) == 0
    # ... and hands it back as it is: no second claim to give it up, no visibility change that SQS must
    # refuse too (the message is not this delivery's any more)
    messages = [entry.getMessage() for entry in caplog.records if entry.name == "case-linker"]
    assert messages.count("the record is no longer held by this delivery") == 1
    assert "could not change the record's visibility" not in messages
    attributes = aws.sqs.get_queue_attributes(QueueUrl=main_queue, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "0"
    assert aws.dead_letters() == []


@pytest.mark.parametrize(
    ("failure", "times"),
    [("InternalServerException", 10), ("ThrottlingException", 9), ("ThrottlingException", 10)],
)
def test_given_a_long_invocation_when_a_record_is_given_up_or_resent_early_then_held_until_the_invocation_ends(
    last_try: Callable[[], App], emu: Emulator, aws: Aws, main_queue: str, failure: str, times: int
) -> None:
    # GIVEN a record that fails early in an invocation with two minutes left (the rest of its batch still has
    # calls to make): on its last delivery with a 5xx, or near maxReceiveCount for want of capacity
    emu.script("BatchCreateRelatedItem", [failure] * 100)
    record = delivered(aws, main_queue, comment_request(COMMENT_CASE, f"early, {failure}"), times=times)
    app = last_try()
    holds: list[int] = []

    def visibility(params: dict[str, Any], **_: Any) -> None:
        holds.append(params["VisibilityTimeout"])

    sqs = app.records._redelivery._sqs  # type: ignore[attr-defined]
    sqs.meta.events.register("provide-client-params.sqs.ChangeMessageVisibility", visibility)

    # WHEN the linker gives it up or re-sends it, and acknowledges it
    result = app.run_batch(sqs_event(record), lambda_context(remaining_ms=120_000))

    # THEN the message stays invisible until the invocation has ended and Lambda has deleted it: the queue's own
    # visibility (six function timeouts) is never cut short, for a message seen again after its last delivery
    # would be moved to the DLQ by SQS beside the linker's own ending (a second DLQ message, or one beside a copy)
    assert result.response == {"batchItemFailures": []}
    assert holds
    assert min(holds) >= 120


@pytest.mark.parametrize("times", [9, 10])
@pytest.mark.parametrize("failure", ["InternalError", "RequestThrottled", "connection"])
def test_given_sqs_failing_to_hold_the_record_when_a_capacity_hand_back_is_due_for_re_send_then_still_resent(
    throttled_app: App, aws: Aws, main_queue: str, failure: str, times: int
) -> None:
    # GIVEN a record Cases keeps throttling near maxReceiveCount (9 of 10) or on its last delivery (10 of 10), and
    # SQS failing the linker's ChangeMessageVisibility without saying the message is gone (a 5xx, a throttle, a
    # dropped connection): the message is still this delivery's, within the visibility its receive gave it
    record = delivered(aws, main_queue, comment_request(COMMENT_CASE, f"hold failed: {failure}"), times=times)

    def fail(**_: Any) -> None:
        if failure == "connection":
            raise EndpointConnectionError(endpoint_url=main_queue)
        status = 500 if failure == "InternalError" else 400
        raise ClientError(
            {"Error": {"Code": failure}, "ResponseMetadata": {"HTTPStatusCode": status}},
            "ChangeMessageVisibility",
        )

    sqs = throttled_app.records._redelivery._sqs  # type: ignore[attr-defined]
    sqs.meta.events.register("provide-client-params.sqs.ChangeMessageVisibility", fail)

    # WHEN it is handed back for want of capacity, THEN it is re-sent all the same: handed back instead, its next
    # receive would be its last or past it, and SQS would move it to the DLQ without a reason
    copy = requeued(throttled_app, record, aws, main_queue)
    assert copy["Body"] == record["body"]
