"""`dlq replay --native` (StartMessageMoveTask / ListMessageMoveTasks, which moto lacks) with botocore's Stubber."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ops.context import Overrides
from ops.errors import ExitCode
from tests.ops.conftest import Invoke, json_result
from tests.ops.helpers import StackQueues, connect_event, depth, error_attributes, put
from tests.ops.stubs import DLQ_ARN, MAIN_ARN, MAIN_URL, URLS, expect_depths, expect_tasks


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("sqs", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber


def task(status: str, moved: int, handle: str | None = None, **extra: Any) -> dict[str, Any]:
    entry = {
        "Status": status,
        "SourceArn": DLQ_ARN,
        "DestinationArn": MAIN_ARN,
        "ApproximateNumberOfMessagesMoved": moved,
        "ApproximateNumberOfMessagesToMove": 7,
        "StartedTimestamp": 1_700_000_000_000,
        **extra,
    }
    if handle:
        entry["TaskHandle"] = handle
    return entry


def native(run_cli: Invoke, client: Any, *args: str) -> Any:
    return run_cli(
        [*URLS, "dlq", "native-redrive", *args],
        overrides=Overrides(clients={"sqs": client}, poll_seconds=0),
    )


def test_native_starts_a_move_task_to_the_main_queue_and_follows_it(
    run_cli: Invoke, stubbed: tuple[Any, Stubber]
) -> None:
    client, stubber = stubbed
    expect_depths(stubber)
    expect_tasks(stubber, task("COMPLETED", 3))  # an old, finished task does not block
    stubber.add_response(
        "start_message_move_task",
        {"TaskHandle": "handle-1"},
        {"SourceArn": DLQ_ARN, "DestinationArn": MAIN_ARN, "MaxNumberOfMessagesPerSecond": 50},
    )
    expect_tasks(stubber, task("RUNNING", 3, "handle-1"))
    expect_tasks(stubber, task("COMPLETED", 7))

    result = native(run_cli, client, "--yes", "--rate", "50", "--output", "json")

    assert result.exit_code == 0, result.output
    assert json_result(result)["native_redrive"] | {"dlq_url": None} == {
        "dlq_url": None,
        "destination_url": MAIN_URL,
        "dry_run": False,
        "task_handle": "handle-1",
        "status": "COMPLETED",
        "moved": 7,
        "failure_reason": None,
    }
    assert "UNMARKED" in result.stderr
    stubber.assert_no_pending_responses()


def test_the_confirmation_says_the_messages_arrive_unmarked(
    run_cli: Invoke, stubbed: tuple[Any, Stubber]
) -> None:
    client, stubber = stubbed
    expect_depths(stubber)
    expect_tasks(stubber)

    result = run_cli(
        [*URLS, "dlq", "native-redrive"],
        overrides=Overrides(clients={"sqs": client}, poll_seconds=0, interactive=True),
        input="n\n",
    )

    assert result.exit_code == ExitCode.INTERRUPTED
    assert "UNMARKED" in result.stderr
    assert "case-linker-processing-dlq (account 123456789012, Region us-east-1)" in result.stderr
    assert "all ~7 messages" in result.stderr
    stubber.assert_no_pending_responses()  # and StartMessageMoveTask was never called


def test_replay_native_points_to_the_unmarked_command(run_cli: Invoke, stubbed: tuple[Any, Stubber]) -> None:
    client, _stubber = stubbed
    result = run_cli(
        [*URLS, "dlq", "replay", "--native", "--yes"], overrides=Overrides(clients={"sqs": client})
    )
    assert result.exit_code == ExitCode.USAGE
    assert "dlq native-redrive" in result.stderr
    assert "unmarked" in result.stderr


def test_native_refuses_while_a_move_task_is_running(run_cli: Invoke, stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    expect_depths(stubber)
    expect_tasks(stubber, task("RUNNING", 2, "handle-0"))

    result = native(run_cli, client, "--yes")

    assert result.exit_code == ExitCode.BUSY
    assert "already running" in result.stderr
    assert "handle-0" in result.stderr
    stubber.assert_no_pending_responses()  # and StartMessageMoveTask was never called


def test_a_failed_move_task_exits_1_with_its_reason(run_cli: Invoke, stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    expect_depths(stubber)
    expect_tasks(stubber)
    stubber.add_response(
        "start_message_move_task", {"TaskHandle": "h"}, {"SourceArn": DLQ_ARN, "DestinationArn": MAIN_ARN}
    )
    expect_tasks(stubber, task("FAILED", 1, FailureReason="AWS.SimpleQueueService.KmsAccessDenied"))

    result = native(run_cli, client, "--yes")

    assert result.exit_code == ExitCode.FAILED
    assert "KmsAccessDenied" in result.stderr


@pytest.mark.parametrize(
    ("args", "complaint"), [(["--filter", "ERROR_CODE=X"], "--filter"), (["--rate", "501"], "--rate")]
)
def test_native_rejects_what_sqs_cannot_do_before_any_call(
    run_cli: Invoke, stubbed: tuple[Any, Stubber], args: list[str], complaint: str
) -> None:
    client, stubber = stubbed
    result = native(run_cli, client, "--yes", *args)
    assert result.exit_code == ExitCode.USAGE
    assert complaint in result.stderr
    assert result.stderr.count("\n") == 1  # one line
    stubber.assert_no_pending_responses()


def test_native_on_an_empty_dlq_exits_5(run_cli: Invoke, stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    expect_depths(stubber, visible=0)
    result = native(run_cli, client, "--yes")
    assert result.exit_code == ExitCode.NOTHING_TO_DO


def test_native_dry_run_starts_nothing(run_cli: Invoke, stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    expect_depths(stubber)
    expect_tasks(stubber)
    result = native(run_cli, client, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would start a move task for ~7 messages" in result.stdout
    stubber.assert_no_pending_responses()


def test_native_refuses_a_main_queue_whose_dlq_this_is_not(
    run_cli: Invoke, sqs: Any, queues: StackQueues
) -> None:
    # GIVEN (moto) a message in the processing DLQ and, as --queue-url, a queue that has nothing to do with it
    put(sqs, queues.processing_dlq, connect_event("c-1"), error_attributes("X"))
    unrelated = sqs.create_queue(QueueName="someone-elses-queue")["QueueUrl"]

    result = run_cli(
        ["--queue-url", unrelated, "--dlq-url", queues.processing_dlq, "dlq", "native-redrive", "--yes"]
    )

    # THEN refused before any move task is looked up or started, and nothing moved
    assert result.exit_code == ExitCode.USAGE
    assert "is not the dead-letter queue of" in result.stderr
    assert "--force" not in result.stderr  # native-redrive has no override
    assert depth(sqs, queues.processing_dlq) == (1, 0)
    assert depth(sqs, unrelated) == (0, 0)
