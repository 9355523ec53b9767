"""A replay or discard stopped by Ctrl-C or by an error never says it finished (moto, faults injected).

GIVEN a DLQ deeper than one batch, WHEN the run stops part-way (Ctrl-C, a send or delete or receive that fails),
THEN the summary is still printed, says it is incomplete and why (an error code, never a message's content),
counts what was sent and deleted so far, and the exit code is the interrupt's or the error's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from ops.context import Overrides
from ops.errors import ExitCode
from tests.ops.conftest import Invoke
from tests.ops.helpers import FaultAt, StackQueues, connect_event, depth, error_attributes, put


def fill(sqs: Any, queues: StackQueues, count: int = 25) -> None:
    for i in range(count):
        put(sqs, queues.processing_dlq, connect_event(f"c-{i}"), error_attributes("ThrottlingException"))


def run(run_cli: Invoke, queues: StackQueues, client: Any, tmp_path: Path, *args: str) -> Any:
    return run_cli(
        [*queues.args(), "--output", "json", "dlq", *args, "--yes", "--backup", str(tmp_path / "b.jsonl")],
        overrides=Overrides(clients={"sqs": client}),
    )


def summary(result: Any, action: str = "replay") -> dict[str, Any]:
    document: dict[str, Any] = json.loads(result.stdout)[action]
    return document


def test_ctrl_c_between_batches_is_reported_as_interrupted_not_complete(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    # GIVEN 25 matching messages, and Ctrl-C while the third batch is being read (two batches of ten moved)
    fill(sqs, queues)
    client = FaultAt(sqs, "receive_message", 3, KeyboardInterrupt())

    result = run(run_cli, queues, client, tmp_path, "replay")

    # THEN the exit code is the interrupt's, and the summary says the run did not finish and what it did
    assert result.exit_code == ExitCode.INTERRUPTED
    counts = summary(result)
    assert (counts["read"], counts["matched"], counts["sent"], counts["deleted"]) == (20, 20, 20, 20)
    assert (counts["complete"], counts["stopped"], counts["stopped_by"]) == (False, "interrupted", None)
    assert (counts["left_matching"], counts["in_doubt"]) == (0, 0)
    assert "interrupted after 20 sent and 20 deleted" in result.stderr
    assert "any it had not read yet, are still in the DLQ" in result.stderr
    assert depth(sqs, queues.processing_dlq) == (5, 0)
    assert depth(sqs, queues.main) == (20, 0)


def test_ctrl_c_before_a_delete_counts_the_batch_as_left_and_in_doubt(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    # GIVEN Ctrl-C as the second batch, sent, is about to be deleted from the DLQ
    fill(sqs, queues)
    client = FaultAt(sqs, "delete_message_batch", 2, KeyboardInterrupt())

    result = run(run_cli, queues, client, tmp_path, "replay")

    assert result.exit_code == ExitCode.INTERRUPTED
    counts = summary(result)
    assert (counts["read"], counts["sent"], counts["deleted"]) == (20, 20, 10)
    assert (counts["left_matching"], counts["in_doubt"], counts["complete"]) == (10, 10, False)
    assert "10 matching messages it read" in result.stderr
    assert depth(sqs, queues.main) == (20, 0)
    assert depth(sqs, queues.processing_dlq) == (15, 0)


def test_ctrl_c_between_send_and_delete_says_the_batch_may_be_on_both_queues(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    # GIVEN Ctrl-C lands once SQS has taken the second batch, before its answer and the delete
    fill(sqs, queues)
    client = FaultAt(sqs, "send_message_batch", 2, KeyboardInterrupt(), after=True)

    result = run(run_cli, queues, client, tmp_path, "replay")

    assert result.exit_code == ExitCode.INTERRUPTED
    counts = summary(result)
    assert (counts["sent"], counts["deleted"], counts["in_doubt"], counts["complete"]) == (10, 10, 10, False)
    assert "10 messages may be on both queues" in result.stderr
    assert "ledger" in result.stderr
    assert depth(sqs, queues.main) == (20, 0)
    assert depth(sqs, queues.processing_dlq) == (15, 0)


def test_a_send_that_fails_mid_run_is_reported_as_stopped_with_its_error_code(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    # GIVEN the main queue is deleted after the first batch went
    fill(sqs, queues)
    client = FaultAt(sqs, "send_message_batch", 2, before=lambda: sqs.delete_queue(QueueUrl=queues.main))

    result = run(run_cli, queues, client, tmp_path, "replay")

    assert result.exit_code == ExitCode.NOT_FOUND
    counts = summary(result)
    assert (counts["sent"], counts["deleted"], counts["left_matching"]) == (10, 10, 10)
    assert counts["complete"] is False
    assert counts["stopped"] == "error"
    assert counts["stopped_by"] in ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue")
    assert f"stopped by an error ({counts['stopped_by']}) after 10 sent and 10 deleted" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: SendMessageBatch")
    assert depth(sqs, queues.processing_dlq) == (15, 0)


def test_a_discard_interrupted_between_batches_is_not_complete(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    fill(sqs, queues)
    client = FaultAt(sqs, "delete_message_batch", 2, KeyboardInterrupt())

    result = run(run_cli, queues, client, tmp_path, "discard", "--all")

    assert result.exit_code == ExitCode.INTERRUPTED
    counts = summary(result, "discard")
    assert (counts["deleted"], counts["left_matching"], counts["complete"]) == (10, 10, False)
    assert counts["stopped"] == "interrupted"
    assert "still in the DLQ" in result.stderr
    assert depth(sqs, queues.processing_dlq) == (15, 0)


THROTTLED = ClientError(
    {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "ReceiveMessage"
)


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (THROTTLED, "ThrottlingException"),
        (EndpointConnectionError(endpoint_url="http://x"), "EndpointConnectionError"),
    ],
)
def test_a_receive_that_fails_mid_run_still_prints_the_summary_then_the_error(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path, fault: Exception, code: str
) -> None:
    # GIVEN the DLQ's second ReceiveMessage fails (throttling, or the network)
    fill(sqs, queues)
    client = FaultAt(sqs, "receive_message", 2, fault)

    result = run(run_cli, queues, client, tmp_path, "replay")

    # THEN the documented exit code for an AWS error, the summary on stdout, then the one-line error
    assert result.exit_code == ExitCode.FAILED
    counts = summary(result)
    assert (counts["sent"], counts["deleted"], counts["complete"]) == (10, 10, False)
    assert (counts["stopped"], counts["stopped_by"]) == ("error", code)
    last = result.stderr.rstrip().splitlines()[-1]
    assert last.startswith(f"error: ReceiveMessage on {queues.processing_dlq}")
    assert depth(sqs, queues.main) == (10, 0)
    assert depth(sqs, queues.processing_dlq) == (15, 0)
