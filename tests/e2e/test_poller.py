"""The local SQS event source mapping against moto's SQS, with stand-in handlers.

GIVEN a queue in moto's server, WHEN the poller runs a handler over it, THEN it behaves as Lambda's SQS event
source does: Lambda's event shape, partial batch responses, redrive, concurrency, killed invocations.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.poller import ChaosHooks, EsmSettings, SqsPoller, failed_message_ids
from local.runtime import InProcessRuntime, Invocation, InvocationStatus, WorkerProcessRuntime

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sqs(moto_endpoint):
    return boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")


# Redelivery tests use 3 s: an invocation's records must be deleted within the visibility timeout, and on a
# loaded 2-core machine 1 s was once too short (a killed invocation's records came a third time).
def make_queue(sqs, *, visibility_timeout=3, max_receive_count=None) -> tuple[str, str, str | None]:
    dlq_url = None
    attributes = {"VisibilityTimeout": str(visibility_timeout)}
    if max_receive_count is not None:
        dlq_url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
        )
    url = sqs.create_queue(QueueName="main", Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn, dlq_url


def send(sqs, url: str, bodies: list[str]) -> list[str]:
    return [sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"] for body in bodies]


def settings(url: str, arn: str, **overrides: Any) -> EsmSettings:
    values: dict[str, Any] = {
        "queue_url": url,
        "queue_arn": arn,
        "batch_size": 10,
        "batching_window_s": 0.0,
        "max_concurrency": 2,
        "function_timeout_s": 5.0,
    }
    values.update(overrides)
    return EsmSettings(**values)


class Recorder:
    """A handler that records every event and fails the records `fail(record)` says to."""

    def __init__(self, fail=lambda record: False, delay_s: float = 0.0) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self._fail = fail
        self._delay_s = delay_s
        self._lock = threading.Lock()
        self.concurrent = 0
        self.max_concurrent = 0

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self._lock:
            self.events.append(event)
            self.contexts.append(context)
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            time.sleep(self._delay_s)
            failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if self._fail(r)]
            return {"batchItemFailures": failures}
        finally:
            with self._lock:
                self.concurrent -= 1

    def bodies_seen(self) -> Counter[str]:
        return Counter(r["body"] for e in self.events for r in e["Records"])


def test_event_has_lambdas_sqs_record_shape_and_context(sqs):
    url, arn, _ = make_queue(sqs)
    sqs.send_message(
        QueueUrl=url,
        MessageBody='{"hello": "world"}',
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "greeting"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    handler = Recorder()
    poller = SqsPoller(settings(url, arn, function_timeout_s=7), InProcessRuntime.of(handler), sqs)
    try:
        assert poller.drain(timeout_s=20, quiet_period_s=0.3)
    finally:
        poller.stop()

    (record,) = handler.events[0]["Records"]
    assert set(record) >= {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["body"] == '{"hello": "world"}'
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == arn
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"} <= set(record["attributes"])
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "greeting",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    context = handler.contexts[0]
    assert context.function_name == "case-linker-local"
    assert 0 < context.get_remaining_time_in_millis() <= 7000
    assert context.aws_request_id


def test_partial_batch_response_leaves_only_the_failed_record_for_redelivery(sqs):
    url, arn, _ = make_queue(sqs, visibility_timeout=3)
    send(sqs, url, ["ok-1", "flaky", "ok-2"])
    attempts: Counter[str] = Counter()

    def fail_first_time(record: dict[str, Any]) -> bool:
        attempts[record["body"]] += 1
        return record["body"] == "flaky" and attempts["flaky"] == 1

    handler = Recorder(fail=fail_first_time)
    poller = SqsPoller(
        settings(url, arn, max_concurrency=2, batching_window_s=0.5), InProcessRuntime.of(handler), sqs
    )
    try:
        assert poller.drain(timeout_s=20, quiet_period_s=0.5)
    finally:
        poller.stop()

    assert handler.bodies_seen() == Counter({"ok-1": 1, "ok-2": 1, "flaky": 2})
    flaky = [r for e in handler.events for r in e["Records"] if r["body"] == "flaky"]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in flaky] == ["1", "2"]
    assert poller.queue_depth() == 0


def test_a_record_failing_every_time_is_redriven_to_the_dlq_after_max_receive_count(sqs):
    url, arn, dlq_url = make_queue(sqs, visibility_timeout=3, max_receive_count=2)
    send(sqs, url, ["poison", "fine"])
    handler = Recorder(fail=lambda r: r["body"] == "poison")
    poller = SqsPoller(settings(url, arn), InProcessRuntime.of(handler), sqs)
    try:
        assert poller.drain(timeout_s=20, quiet_period_s=0.5)
    finally:
        poller.stop()

    assert handler.bodies_seen() == Counter({"poison": 2, "fine": 1})
    dead = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in dead] == ["poison"]


def test_no_more_invocations_run_at_once_than_max_concurrency(sqs):
    url, arn, _ = make_queue(sqs, visibility_timeout=10)
    send(sqs, url, [f"m{i}" for i in range(12)])
    handler = Recorder(delay_s=0.2)
    poller = SqsPoller(settings(url, arn, batch_size=1, max_concurrency=3), InProcessRuntime.of(handler), sqs)
    try:
        assert poller.drain(timeout_s=30, quiet_period_s=0.3)
    finally:
        poller.stop()

    assert sum(handler.bodies_seen().values()) == 12
    assert handler.max_concurrent == 3
    assert poller.stats.max_in_flight == 3
    assert all(len(e["Records"]) == 1 for e in handler.events)


def test_a_trickle_is_served_by_one_warm_environment_as_lambda_routes_it(sqs):
    # Lambda sends an invocation to an idle warm environment before it starts a new one: one record every
    # now and then must not meet a cold start in each of maxConcurrency environments.
    url, arn, _ = make_queue(sqs, visibility_timeout=10)
    started: list[str] = []
    handler = Recorder()

    def factory(name: str) -> Any:
        started.append(name)
        return handler

    poller = SqsPoller(settings(url, arn, batch_size=1, max_concurrency=5), InProcessRuntime(factory), sqs)
    poller.start()
    try:
        for index in range(6):
            send(sqs, url, [f"m{index}"])
            deadline = time.monotonic() + 10
            while sum(handler.bodies_seen().values()) <= index and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.1)
    finally:
        poller.stop()

    assert sum(handler.bodies_seen().values()) == 6
    assert started == ["env-1"]


def test_batching_window_gathers_records_sent_one_after_another_into_one_batch(sqs):
    url, arn, _ = make_queue(sqs, visibility_timeout=10)
    handler = Recorder()
    poller = SqsPoller(
        settings(url, arn, batching_window_s=1.5, max_concurrency=1), InProcessRuntime.of(handler), sqs
    )
    poller.start()
    try:
        for body in ("a", "b", "c"):
            send(sqs, url, [body])
            time.sleep(0.2)
        assert poller.drain(timeout_s=20, quiet_period_s=0.3)
    finally:
        poller.stop()

    assert [sorted(r["body"] for r in e["Records"]) for e in handler.events] == [["a", "b", "c"]]


def test_an_unknown_item_identifier_fails_the_whole_batch_as_lambda_does():
    ok = Invocation(InvocationStatus.OK, response={"batchItemFailures": [{"itemIdentifier": "nope"}]})
    assert failed_message_ids(ok, ["a", "b"], report_failures=True) is None
    empty_id = Invocation(InvocationStatus.OK, response={"batchItemFailures": [{"itemIdentifier": ""}]})
    assert failed_message_ids(empty_id, ["a"], report_failures=True) is None
    assert (
        failed_message_ids(Invocation(InvocationStatus.OK, response=None), ["a"], report_failures=True)
        == set()
    )
    partial = Invocation(InvocationStatus.OK, response={"batchItemFailures": [{"itemIdentifier": "b"}]})
    assert failed_message_ids(partial, ["a", "b"], report_failures=True) == {"b"}
    assert failed_message_ids(Invocation(InvocationStatus.ERROR), ["a"], report_failures=True) is None


def test_a_killed_invocations_records_come_back_after_the_visibility_timeout(sqs):
    url, arn, _ = make_queue(sqs, visibility_timeout=3)
    send(sqs, url, ["x", "y"])
    handler = Recorder()
    chaos = ChaosHooks(kill_invocations=frozenset({1}))
    poller = SqsPoller(
        settings(url, arn, batching_window_s=0.3), InProcessRuntime.of(handler), sqs, chaos=chaos
    )
    try:
        assert poller.drain(timeout_s=20, quiet_period_s=0.5)
    finally:
        poller.stop()

    assert poller.stats.killed_invocations == 1
    assert handler.bodies_seen() == Counter({"x": 2, "y": 2})
    second = [r for e in handler.events[1:] for r in e["Records"]]
    assert {r["attributes"]["ApproximateReceiveCount"] for r in second} == {"2"}


@pytest.mark.slow
def test_a_worker_process_killed_mid_batch_leaves_its_records_for_another_invocation(sqs, tmp_path):
    url, arn, _ = make_queue(sqs, visibility_timeout=2)
    send(sqs, url, ["x"])
    runtime = WorkerProcessRuntime(
        handler="tests.e2e.stub_handlers.slow_ok", environ={}, log_dir=tmp_path, python_paths=[str(REPO_ROOT)]
    )
    chaos = ChaosHooks(kill_invocations=frozenset({1}), kill_after_s=(0.2, 0.2))
    poller = SqsPoller(settings(url, arn, max_concurrency=2), runtime, sqs, chaos=chaos)
    try:
        assert poller.drain(timeout_s=40, quiet_period_s=0.5)
    finally:
        poller.stop()

    statuses = [i.status for i in poller.invocations]
    assert statuses == [InvocationStatus.KILLED, InvocationStatus.OK]
    assert [d.receive_count for d in poller.deliveries] == [1, 2]
    logs = "".join(p.read_text() for p in runtime.log_files())
    assert logs.count("records=1") == 2


def test_a_batch_read_ahead_while_stopping_is_given_back_at_once(sqs):
    # GIVEN one environment busy with a slow batch while the poller reads the next batch ahead, as Lambda's do
    url, arn, _ = make_queue(sqs, visibility_timeout=60)
    send(sqs, url, [f"m{i}" for i in range(20)])
    handler = Recorder(delay_s=1.0)
    poller = SqsPoller(settings(url, arn, max_concurrency=1), InProcessRuntime.of(handler), sqs)
    poller.start()
    deadline = time.monotonic() + 10
    while not handler.events and time.monotonic() < deadline:
        time.sleep(0.05)

    # WHEN it stops before invoking that second batch
    poller.stop()

    # THEN the first batch was processed and the second is visible again now, not after the 60 s timeout
    assert len(handler.events) == 1
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attributes == {"ApproximateNumberOfMessages": "10", "ApproximateNumberOfMessagesNotVisible": "0"}
    assert not poller.busy


def test_a_delivery_whose_message_chaos_made_visible_again_is_marked_duplicated(sqs):
    # GIVEN records the poller's chaos delivers a second time (visible again as its delivery begins); the handler
    # holds each batch long enough for a second worker to take the copy
    url, arn, _ = make_queue(sqs, visibility_timeout=5)
    send(sqs, url, [f"m{i}" for i in range(10)])
    handler = Recorder(delay_s=0.2)
    chaos = ChaosHooks(duplicate_rate=0.3, seed=3)
    poller = SqsPoller(settings(url, arn, batch_size=2), InProcessRuntime.of(handler), sqs, chaos=chaos)
    try:
        assert poller.drain(timeout_s=20, quiet_period_s=0.5)
    finally:
        poller.stop()

    # THEN exactly the deliveries chaos duplicated say so (the chaos run judges a redrive by it)
    marked = [d for d in poller.deliveries if d.duplicated]
    assert poller.stats.duplicates_injected > 0
    assert len(marked) == poller.stats.duplicates_injected
