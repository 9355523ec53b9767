"""Records handed back for want of Cases capacity: soon, and never to the DLQ through maxReceiveCount."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from case_linker.handler import App
from case_linker.telemetry import HANDED_BACK, REQUEUED

from emulator import Emulator
from tests.functional.conftest import (
    EXPECTED,
    FAST,
    Aws,
    comment_request,
    count,
    failed_ids,
    lambda_context,
    sqs_event,
    sqs_record,
)

COMMENT_CASE = EXPECTED["events"]["request-comment.json"]["case"]


@pytest.fixture
def main_queue(aws: Aws) -> str:
    url: str = aws.sqs.create_queue(QueueName="case-linker-main")["QueueUrl"]
    return url


def main_messages(aws: Aws, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = aws.sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    ).get("Messages", [])
    return messages


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
    record = sqs_record(comment_request(COMMENT_CASE, "throttled long"), receive_count=9, attributes=producer)

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


@pytest.mark.parametrize("malformed", ["", "many", "-3", "1e400", "2.5", "\u00b2"])
def test_given_a_malformed_requeue_count_near_max_receive_count_when_handed_back_then_still_resent(
    throttled_app: App, aws: Aws, main_queue: str, malformed: str
) -> None:
    # GIVEN a record whose hand-back count attribute was written by someone else (a producer, a hand-made replay)
    attributes = {"CASE_LINKER_REQUEUES": {"dataType": "Number", "stringValue": malformed}}
    record = sqs_record(comment_request(COMMENT_CASE, "odd count"), receive_count=9, attributes=attributes)

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
