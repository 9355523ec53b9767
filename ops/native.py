"""`replay --native`: SQS's own redrive (StartMessageMoveTask), for the processing DLQ only.

SQS moves the messages itself, with every attribute (our failure attributes included), at up to
MaxNumberOfMessagesPerSecond. No filter, no limit, no backup: it is all or nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ops.errors import ExitCode, OpsError, translate_client_error

RUNNING = "RUNNING"
FINAL_STATUSES = frozenset({"COMPLETED", "CANCELLED", "FAILED"})
# StartMessageMoveTask accepts 1..500 messages per second.
MAX_NATIVE_RATE = 500


@dataclass(frozen=True, kw_only=True)
class MoveTask:
    """One entry of ListMessageMoveTasks."""

    status: str
    task_handle: str | None
    moved: int
    to_move: int | None
    failure_reason: str | None

    @classmethod
    def from_api(cls, entry: dict[str, Any]) -> MoveTask:
        to_move = entry.get("ApproximateNumberOfMessagesToMove")
        return cls(
            status=str(entry.get("Status", "")),
            task_handle=entry.get("TaskHandle"),
            moved=int(entry.get("ApproximateNumberOfMessagesMoved", 0)),
            to_move=int(to_move) if to_move is not None else None,
            failure_reason=entry.get("FailureReason"),
        )


def list_move_tasks(sqs: Any, source_arn: str) -> list[MoveTask]:
    """The most recent move tasks of the DLQ, newest first."""
    try:
        response = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=10)
    except ClientError as e:
        raise translate_client_error(e, f"listing message move tasks of {source_arn}") from e
    return [MoveTask.from_api(r) for r in response.get("Results", [])]


def running_task(sqs: Any, source_arn: str) -> MoveTask | None:
    return next((t for t in list_move_tasks(sqs, source_arn) if t.status == RUNNING), None)


def ensure_no_running_task(sqs: Any, source_arn: str) -> None:
    """Refuse (exit 6) when a move task is already running on the DLQ: SQS allows one per queue."""
    running = running_task(sqs, source_arn)
    if running is not None:
        raise OpsError(
            f"a message move task is already running on this DLQ ({running.moved} moved so far)",
            ExitCode.BUSY,
            hint="wait for it, or cancel it: aws sqs cancel-message-move-task --task-handle "
            f"{running.task_handle or '<handle>'}",
        )


def start_move_task(sqs: Any, *, source_arn: str, destination_arn: str | None, rate: int | None) -> str:
    """Start the move (check `ensure_no_running_task` first). Returns the task handle."""
    params: dict[str, Any] = {"SourceArn": source_arn}
    if destination_arn:
        params["DestinationArn"] = destination_arn
    if rate:
        params["MaxNumberOfMessagesPerSecond"] = rate
    try:
        response = sqs.start_message_move_task(**params)
    except ClientError as e:
        raise translate_client_error(e, f"starting a message move task from {source_arn}") from e
    return str(response["TaskHandle"])


def wait_for_task(
    sqs: Any,
    *,
    source_arn: str,
    task_handle: str,
    on_progress: Callable[[MoveTask], None],
    poll_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> MoveTask:
    """Poll ListMessageMoveTasks until our task leaves RUNNING; returns its last state."""
    while True:
        tasks = list_move_tasks(sqs, source_arn)
        # The handle is returned for running tasks only; once finished, ours is the most recent one.
        ours = next((t for t in tasks if t.task_handle == task_handle), tasks[0] if tasks else None)
        if ours is None:
            raise OpsError("the move task disappeared from ListMessageMoveTasks", ExitCode.FAILED)
        on_progress(ours)
        if ours.status in FINAL_STATUSES:
            return ours
        sleep(poll_seconds)
