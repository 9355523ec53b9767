"""Functional: `dlq replay` through the CLI (and the Replayer directly) against moto's HTTP server."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError

import ops.backup
from ops.attributes import ORIGINAL_ATTRIBUTES, pack, unpack
from ops.backup import BackupWriter
from ops.context import Overrides
from ops.errors import ExitCode, OpsError
from ops.replay import MAX_BATCH_BYTES, Pacer, Replayer, entry_size
from ops.summary import parse_filters
from tests.ops.conftest import Invoke, json_result
from tests.ops.helpers import (
    StackQueues,
    comment_request,
    connect_event,
    depth,
    drain,
    error_attributes,
    put,
)

TRACE = {"traceparent": {"DataType": "String", "StringValue": "00-abc-def-01"}}
# What replay adds so the linker knows the message was delivered before.
REPLAYED = {"REPLAYED": {"DataType": "String", "StringValue": "dlq"}}


def replay(
    run_cli: Invoke, queues: StackQueues, *args: str, overrides: Overrides | None = None, **kw: Any
) -> Any:
    return run_cli([*queues.args(), "dlq", "replay", *args], overrides=overrides, **kw)


def spy_client(endpoint: str, calls: list[tuple[str, dict[str, Any]]]) -> Any:
    """A real SQS client for moto that records each call's operation and parameters."""
    client = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, params))

    client.meta.events.register("provide-client-params.sqs.*", record)
    return client


def test_replay_keeps_body_and_attributes_but_drops_failure_attributes(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    body = connect_event("c-1")
    put(sqs, queues.processing_dlq, body, {**error_attributes("ThrottlingException"), **TRACE})
    backup = tmp_path / "backup.jsonl"

    result = replay(run_cli, queues, "--yes", "--backup", str(backup))

    assert result.exit_code == 0, result.output
    assert depth(sqs, queues.processing_dlq) == (0, 0)
    [moved] = drain(sqs, queues.main)
    assert moved["Body"] == body
    assert moved["MessageAttributes"] == {**TRACE, **REPLAYED}
    [record] = [json.loads(line) for line in backup.read_text().splitlines()]
    assert record["body"] == body
    assert record["message_attributes"]["ERROR_CODE"]["StringValue"] == "ThrottlingException"
    assert backup.stat().st_mode & 0o777 == 0o600


def test_each_message_is_backed_up_and_sent_before_it_is_deleted(
    run_cli: Invoke, moto_endpoint: str, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    for i in range(12):
        put(sqs, queues.processing_dlq, connect_event(f"c-{i}"), error_attributes("X"))
    backup = tmp_path / "backup.jsonl"
    calls: list[tuple[str, dict[str, Any]]] = []
    backed_up_at_delete: list[int] = []
    client = spy_client(moto_endpoint, calls)
    client.meta.events.register(
        "provide-client-params.sqs.DeleteMessageBatch",
        lambda **_: backed_up_at_delete.append(len(backup.read_text().splitlines())),
    )

    result = replay(
        run_cli, queues, "--yes", "--backup", str(backup), overrides=Overrides(clients={"sqs": client})
    )

    assert result.exit_code == 0, result.output
    sent = deleted = 0
    for operation, params in calls:
        if operation == "SendMessageBatch":
            sent += len(params["Entries"])
        elif operation == "DeleteMessageBatch":
            deleted += len(params["Entries"])
            assert deleted <= sent, "a message was deleted before it was sent"
    assert (sent, deleted) == (12, 12)
    # At every delete, the backup already held at least every message deleted so far.
    deletes = [len(p["Entries"]) for op, p in calls if op == "DeleteMessageBatch"]
    running = [sum(deletes[: i + 1]) for i in range(len(deletes))]
    assert all(lines >= n for lines, n in zip(backed_up_at_delete, running, strict=True))


def test_an_unwritable_backup_deletes_nothing(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    put(sqs, queues.processing_dlq, connect_event("c-1"), error_attributes("X"))

    result = replay(run_cli, queues, "--yes", "--backup", str(tmp_path / "no-such-dir" / "backup.jsonl"))

    assert result.exit_code == ExitCode.USAGE
    assert "cannot create the backup file" in result.stderr
    assert depth(sqs, queues.processing_dlq) == (1, 0)
    assert depth(sqs, queues.main) == (0, 0)


class BrokenDisk(BackupWriter):
    def write(self, records: Sequence[Any]) -> None:
        raise OSError(28, "No space left on device")


def test_a_failing_backup_write_stops_before_send_and_delete(
    sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    for i in range(3):
        put(sqs, queues.processing_dlq, connect_event(f"c-{i}"), error_attributes("X"))
    replayer = Replayer(
        sqs,
        source_url=queues.processing_dlq,
        destination_url=queues.main,
        message_filter=parse_filters([]),
        backup=BrokenDisk(tmp_path / "b.jsonl"),
        wait_seconds=0,
    )

    with pytest.raises(OpsError, match=r"writing the backup .* failed \(No space left on device\); stopped"):
        replayer.run()

    assert depth(sqs, queues.processing_dlq) == (3, 0)  # still there, and visible again
    assert depth(sqs, queues.main) == (0, 0)
    assert replayer.report.deleted == 0


def test_a_full_disk_stops_the_replay_with_its_summary_and_one_error_line(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a backup file on a disk that is full (writes to /dev/full fail with ENOSPC, as on a full disk)
    put(sqs, queues.processing_dlq, connect_event("c-1"), error_attributes("X"))
    fdopen = os.fdopen

    def on_a_full_disk(fd: int, *args: Any, **kwargs: Any) -> Any:
        os.close(fd)
        return fdopen(os.open("/dev/full", os.O_WRONLY), *args, **kwargs)

    monkeypatch.setattr(ops.backup.os, "fdopen", on_a_full_disk)

    # WHEN the replay runs (no traceback escapes: the runner re-raises anything unhandled)
    result = replay(run_cli, queues, "--yes", "--output", "json", "--backup", str(tmp_path / "b.jsonl"))

    # THEN the summary is printed, then the backup's error, and nothing moved
    assert result.exit_code == ExitCode.FAILED
    summary = json.loads(result.stdout)["replay"]
    assert (summary["complete"], summary["stopped"], summary["stopped_by"]) == (False, "error", "ENOSPC")
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "writing the backup" in error
    assert depth(sqs, queues.processing_dlq) == (1, 0)
    assert depth(sqs, queues.main) == (0, 0)


def test_batches_respect_ten_entries_and_256_kib(
    run_cli: Invoke, moto_endpoint: str, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    for i in range(12):
        put(sqs, queues.processing_dlq, connect_event(f"c-{i}"))
    big = "x" * 60_000
    for i in range(25):
        put(sqs, queues.processing_dlq, json.dumps({"caseId": f"case-{i}", "type": "Comment", "pad": big}))
    calls: list[tuple[str, dict[str, Any]]] = []

    result = replay(
        run_cli,
        queues,
        "--yes",
        "--backup",
        str(tmp_path / "b.jsonl"),
        overrides=Overrides(clients={"sqs": spy_client(moto_endpoint, calls)}),
    )

    assert result.exit_code == 0, result.output
    batches = [p["Entries"] for op, p in calls if op == "SendMessageBatch"]
    assert all(len(b) <= 10 for b in batches)
    assert all(sum(entry_size(e) for e in b) <= MAX_BATCH_BYTES for b in batches)
    assert max(len(b) for b in batches) == 10  # small messages fill a batch
    assert any(len(b) == 4 and entry_size(b[0]) > 60_000 for b in batches)  # four 60 KB bodies fill 256 KiB
    assert sum(len(b) for b in batches) == 37
    assert depth(sqs, queues.main) == (37, 0)
    assert depth(sqs, queues.processing_dlq) == (0, 0)


def test_a_filter_moves_matches_and_leaves_the_rest_visible(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    for i in range(4):
        put(sqs, queues.processing_dlq, connect_event(f"t-{i}"), error_attributes("ThrottlingException"))
    for i in range(3):
        put(sqs, queues.processing_dlq, connect_event(f"v-{i}"), error_attributes("ValidationException"))

    result = replay(
        run_cli,
        queues,
        "--yes",
        "--filter",
        "ERROR_CODE=ThrottlingException",
        "--backup",
        str(tmp_path / "b.jsonl"),
    )

    assert result.exit_code == 0, result.output
    assert depth(sqs, queues.main) == (4, 0)
    left = drain(sqs, queues.processing_dlq)  # visible right away, not hidden for a visibility timeout
    assert (
        sorted(m["MessageAttributes"]["ERROR_CODE"]["StringValue"] for m in left)
        == ["ValidationException"] * 3
    )


def test_max_limits_how_many_move(run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path) -> None:
    for i in range(5):
        put(sqs, queues.processing_dlq, connect_event(f"c-{i}"))
    result = replay(run_cli, queues, "--yes", "--max", "2", "--backup", str(tmp_path / "b.jsonl"))
    assert result.exit_code == 0, result.output
    assert depth(sqs, queues.main) == (2, 0)
    assert depth(sqs, queues.processing_dlq) == (3, 0)


def test_dry_run_changes_nothing(run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path) -> None:
    for i in range(3):
        put(sqs, queues.processing_dlq, connect_event(f"c-{i}"), error_attributes("X"))
    backup = tmp_path / "b.jsonl"

    result = replay(run_cli, queues, "--dry-run", "--backup", str(backup))

    assert result.exit_code == 0, result.output
    assert "would replay 3 messages" in result.stdout
    assert depth(sqs, queues.processing_dlq) == (3, 0)
    assert depth(sqs, queues.main) == (0, 0)
    assert not backup.exists()


def test_without_a_terminal_replay_requires_yes(run_cli: Invoke, sqs: Any, queues: StackQueues) -> None:
    put(sqs, queues.processing_dlq, connect_event("c-1"))
    result = replay(run_cli, queues)
    assert result.exit_code == ExitCode.USAGE
    assert "--yes" in result.stderr
    assert depth(sqs, queues.processing_dlq) == (1, 0)


def test_declining_the_prompt_changes_nothing(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    put(sqs, queues.processing_dlq, connect_event("c-1"))
    backup = tmp_path / "b.jsonl"
    result = replay(
        run_cli, queues, "--backup", str(backup), overrides=Overrides(interactive=True), input="n\n"
    )
    assert result.exit_code == ExitCode.INTERRUPTED
    assert depth(sqs, queues.processing_dlq) == (1, 0)
    assert not backup.exists()

    result = replay(
        run_cli, queues, "--backup", str(backup), overrides=Overrides(interactive=True), input="y\n"
    )
    assert result.exit_code == 0, result.output
    assert depth(sqs, queues.main) == (1, 0)


class FailingSends:
    """Delegates to a real client, but reports the sends of some bodies as failed (a partial batch failure)."""

    def __init__(self, inner: Any, failing: set[str]) -> None:
        self.inner = inner
        self.failing = failing

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        ok = [e for e in Entries if e["MessageBody"] not in self.failing]
        response = self.inner.send_message_batch(QueueUrl=QueueUrl, Entries=ok) if ok else {"Successful": []}
        failed = [
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
            for e in Entries
            if e["MessageBody"] in self.failing
        ]
        return {"Successful": response.get("Successful", []), "Failed": failed}


def test_a_partially_failed_send_deletes_only_what_was_sent(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    bodies = [connect_event(f"c-{i}") for i in range(4)]
    for body in bodies:
        put(sqs, queues.processing_dlq, body, error_attributes("X"))

    result = replay(
        run_cli,
        queues,
        "--yes",
        "--backup",
        str(tmp_path / "b.jsonl"),
        overrides=Overrides(clients={"sqs": FailingSends(sqs, {bodies[1]})}),
    )

    assert result.exit_code == ExitCode.FAILED
    assert "InternalError" in result.stderr
    assert "1 matching messages remain in the DLQ" in result.stderr
    assert depth(sqs, queues.main) == (3, 0)
    [left] = drain(sqs, queues.processing_dlq)  # visible again at once, for the next replay
    assert left["Body"] == bodies[1]


def test_replaying_an_empty_dlq_exits_5(run_cli: Invoke, queues: StackQueues) -> None:
    result = replay(run_cli, queues, "--yes")
    assert result.exit_code == ExitCode.NOTHING_TO_DO
    assert "empty" in result.stderr


def test_a_filter_that_matches_nothing_exits_5_and_leaves_all(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    put(sqs, queues.processing_dlq, comment_request("case-1"), error_attributes("X"))
    result = replay(
        run_cli, queues, "--yes", "--filter", "type=Contact", "--backup", str(tmp_path / "b.jsonl")
    )
    assert result.exit_code == ExitCode.NOTHING_TO_DO
    assert depth(sqs, queues.processing_dlq) == (1, 0)


def test_a_bad_filter_is_a_usage_error(run_cli: Invoke, queues: StackQueues) -> None:
    result = replay(run_cli, queues, "--yes", "--filter", "body=refund")
    assert result.exit_code == ExitCode.USAGE
    assert "bad --filter" in result.stderr


def test_a_bad_filter_never_echoes_its_value(run_cli: Invoke, queues: StackQueues) -> None:
    result = replay(run_cli, queues, "--yes", "--filter", "phone=+12065550142")
    assert result.exit_code == ExitCode.USAGE
    assert "bad --filter: unknown key phone" in result.stderr
    assert "2065550142" not in result.output


def test_the_rule_target_dlq_replays_to_the_main_queue_without_eventbridge_attributes(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    body = connect_event("c-1")
    attributes = {
        name: {"DataType": "String", "StringValue": "v"}
        for name in (
            "RULE_ARN",
            "TARGET_ARN",
            "ERROR_CODE",
            "ERROR_MESSAGE",
            "EXHAUSTED_RETRY_CONDITION",
            "RETRY_ATTEMPTS",
        )
    }
    put(sqs, queues.rule_target_dlq, body, attributes)

    result = replay(run_cli, queues, "--dlq", "rule-target", "--yes", "--backup", str(tmp_path / "b.jsonl"))

    assert result.exit_code == 0, result.output
    [moved] = drain(sqs, queues.main)
    assert moved["Body"] == body
    assert moved["MessageAttributes"] == REPLAYED


def test_the_pacer_keeps_to_the_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(2.0, clock=lambda: now[0], sleep=sleep)
    assert pacer.batch_entries == 2
    for _ in range(3):
        pacer.wait(2)
    assert slept == [1.0, 1.0]  # 6 messages at 2/s: sends at t=0, 1, 2


# --- issue 14: a filtered replay reads to the end --------------------------------------------------------------


def fill_20_validation_then_80_throttled(sqs: Any, queues: StackQueues) -> None:
    for i in range(20):
        put(sqs, queues.processing_dlq, connect_event(f"v-{i}"), error_attributes("ValidationException"))
    for i in range(80):
        put(sqs, queues.processing_dlq, connect_event(f"t-{i}"), error_attributes("ThrottlingException"))


def test_a_filtered_replay_longer_than_one_hold_period_moves_every_match(
    sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    # GIVEN 20 non-matching messages read first, then 80 matching ones that take longer to send (40/s) than
    # the 1 s the run holds what it reads: the 20 come back while the run is still busy
    fill_20_validation_then_80_throttled(sqs, queues)
    backup = BackupWriter(tmp_path / "b.jsonl")

    # WHEN the replay runs
    report = Replayer(
        sqs,
        source_url=queues.processing_dlq,
        destination_url=queues.main,
        message_filter=parse_filters(["ERROR_CODE=ThrottlingException"]),
        backup=backup,
        pacer=Pacer(40.0),
        hold_seconds=1,
        wait_seconds=1,
        expected=100,
    ).run()
    backup.close()

    # THEN a receive holding only the returned non-matching messages was not taken for the end of the queue
    assert (report.matched, report.sent, report.deleted, report.skipped) == (80, 80, 80, 20)
    assert depth(sqs, queues.main) == (80, 0)
    left = drain(sqs, queues.processing_dlq)
    assert {m["MessageAttributes"]["ERROR_CODE"]["StringValue"] for m in left} == {"ValidationException"}
    assert len(left) == 20


class SlowReceives:
    """Delegates to a real client; each receive takes `seconds` longer (a deep queue, a busy endpoint), and after
    `deadline` seconds receives fail: a run that would never end stops instead of hanging the test."""

    def __init__(self, inner: Any, seconds: float, deadline: float) -> None:
        self.inner = inner
        self.seconds = seconds
        self.deadline = time.monotonic() + deadline

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def receive_message(self, **kwargs: Any) -> Any:
        if time.monotonic() > self.deadline:
            raise TimeoutError("the run did not reach the end of the queue in time")
        time.sleep(self.seconds)
        return self.inner.receive_message(**kwargs)


def test_a_scan_whose_reading_outlasts_the_hold_still_reaches_the_end_of_the_queue(
    sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    # GIVEN 40 non-matching messages, then one matching, read one per receive (a low --rate) more slowly than
    # the 1 s the run holds what it reads: the first ones come back long before the last is read
    for i in range(40):
        put(sqs, queues.processing_dlq, connect_event(f"v-{i}"), error_attributes("ValidationException"))
    put(sqs, queues.processing_dlq, connect_event("t-0"), error_attributes("ThrottlingException"))
    backup = BackupWriter(tmp_path / "b.jsonl")

    # WHEN the filtered replay runs
    report = Replayer(
        SlowReceives(sqs, seconds=0.1, deadline=60),
        source_url=queues.processing_dlq,
        destination_url=queues.main,
        message_filter=parse_filters(["ERROR_CODE=ThrottlingException"]),
        backup=backup,
        pacer=Pacer(1.0),
        hold_seconds=1,
        wait_seconds=1,
    ).run()
    backup.close()

    # THEN what it read stayed hidden, it read each message once, and it found the end and the match
    assert (report.read, report.skipped, report.matched, report.deleted) == (41, 40, 1, 1)
    assert report.complete
    assert len(drain(sqs, queues.processing_dlq)) == 40


def test_the_cli_reports_a_complete_filtered_replay_in_json(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    fill_20_validation_then_80_throttled(sqs, queues)

    result = replay(
        run_cli,
        queues,
        "--filter",
        "ERROR_CODE=ThrottlingException",
        "--rate",
        "40",
        "--yes",
        "--backup",
        str(tmp_path / "b.jsonl"),
        "--output",
        "json",
        overrides=Overrides(hold_seconds=1),
    )

    assert result.exit_code == 0, result.output
    document = json_result(result)
    assert document["replay"] | {"dlq_url": None, "destination_url": None, "backup": None} == {
        "dlq_url": None,
        "destination_url": None,
        "backup": None,
        "dry_run": False,
        "filters": ["ERROR_CODE=ThrottlingException"],
        "read": 100,
        "matched": 80,
        "sent": 80,
        "deleted": 80,
        "failed": 0,
        "skipped": 20,
        "arrived_during_run": 0,
        "left_matching": 0,
        "reached_max": False,
        "complete": True,
        "stopped": None,
        "stopped_by": None,
        "in_doubt": 0,
    }
    assert document["failures"] == []


def test_matching_messages_left_in_the_dlq_exit_1_with_their_count(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    # GIVEN two matching messages, one of which cannot be sent marked (its packed originals are unreadable)
    put(sqs, queues.processing_dlq, connect_event("c-1"), error_attributes("ThrottlingException"))
    put(
        sqs,
        queues.processing_dlq,
        connect_event("c-2"),
        {
            **error_attributes("ThrottlingException"),
            ORIGINAL_ATTRIBUTES: {"DataType": "String", "StringValue": "{truncated"},
        },
    )

    result = replay(run_cli, queues, "--yes", "--backup", str(tmp_path / "b.jsonl"))

    # THEN the good one moves, the other stays (visible again) and the exit code and message say so
    assert result.exit_code == ExitCode.FAILED
    assert "1 matching messages remain in the DLQ" in result.stderr
    assert "ORIGINAL_ATTRIBUTES is not valid JSON" in result.stderr
    [moved] = drain(sqs, queues.main)
    assert moved["MessageAttributes"]["REPLAYED"]["StringValue"] == "dlq"
    [left] = drain(sqs, queues.processing_dlq)
    assert "c-2" in left["Body"]


def test_packed_originals_with_a_name_sqs_refuses_stay_in_the_dlq_and_the_name_is_never_printed(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    # GIVEN a producer's own ORIGINAL_ATTRIBUTES, kept packed by the linker because SQS would refuse its names
    # (SQS's refusal quotes the name), beside a message that can be replayed
    put(sqs, queues.processing_dlq, connect_event("c-1"), error_attributes("ThrottlingException"))
    producers = {"jane.doe@example.com": {"DataType": "String", "StringValue": "+12065550142"}}
    put(
        sqs,
        queues.processing_dlq,
        connect_event("c-2"),
        {
            **error_attributes("ThrottlingException"),
            ORIGINAL_ATTRIBUTES: {"DataType": "String", "StringValue": json.dumps(producers)},
        },
    )

    # WHEN the DLQ is replayed
    result = replay(run_cli, queues, "--yes", "--backup", str(tmp_path / "b.jsonl"))

    # THEN the good one moves, the other is a counted failure left in the DLQ, and no output names the attribute
    assert result.exit_code == ExitCode.FAILED
    assert "1 matching messages remain in the DLQ" in result.stderr
    assert "UnreadableOriginals" in result.stderr
    for value in ("jane", "2065550142"):
        assert value not in result.output
    [moved] = drain(sqs, queues.main)
    assert "c-1" in moved["Body"]
    [left] = drain(sqs, queues.processing_dlq)
    assert "c-2" in left["Body"]


def test_messages_that_arrive_during_the_run_are_left_alone(
    sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    # GIVEN a DLQ message, and a "new failure" that lands in the DLQ once the replay has started
    put(sqs, queues.processing_dlq, connect_event("old"), error_attributes("ThrottlingException"))
    backup = BackupWriter(tmp_path / "b.jsonl")
    replayer = Replayer(
        sqs,
        source_url=queues.processing_dlq,
        destination_url=queues.main,
        message_filter=parse_filters([]),
        backup=backup,
        wait_seconds=0,
    )
    new_failures: list[str] = []

    def a_new_failure_lands(report: Any) -> None:
        if report.sent == 1 and not new_failures:
            new_failures.append(put(sqs, queues.processing_dlq, connect_event("new"), error_attributes("X")))

    replayer.on_progress = a_new_failure_lands

    report = replayer.run()
    backup.close()

    # THEN the run does not chase it: it is counted and stays in the DLQ
    assert (report.sent, report.arrived_during_run) == (1, 1)
    [left] = drain(sqs, queues.processing_dlq)
    assert "new" in left["Body"]


# --- issue 11: never an unmarked replay ----------------------------------------------------------------------


def test_a_message_with_ten_producer_attributes_is_replayed_marked_with_its_originals_packed(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    originals = {f"attr{i}": {"DataType": "String", "StringValue": f"v{i}"} for i in range(10)}
    put(sqs, queues.processing_dlq, connect_event("c-1"), originals)

    result = replay(run_cli, queues, "--yes", "--backup", str(tmp_path / "b.jsonl"))

    assert result.exit_code == 0, result.output
    [moved] = drain(sqs, queues.main)
    assert moved["MessageAttributes"]["REPLAYED"] == {"DataType": "String", "StringValue": "dlq"}
    assert set(moved["MessageAttributes"]) == {"REPLAYED", ORIGINAL_ATTRIBUTES}
    assert unpack(moved["MessageAttributes"][ORIGINAL_ATTRIBUTES]["StringValue"]) == originals


def test_packed_originals_come_back_as_separate_attributes(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    originals = {f"attr{i}": {"DataType": "String", "StringValue": f"v{i}"} for i in range(7)}
    put(
        sqs,
        queues.processing_dlq,
        connect_event("c-1"),
        {
            **error_attributes("ThrottlingException"),
            ORIGINAL_ATTRIBUTES: {"DataType": "String", "StringValue": pack(originals)},
        },
    )

    result = replay(run_cli, queues, "--yes", "--backup", str(tmp_path / "b.jsonl"))

    assert result.exit_code == 0, result.output
    [moved] = drain(sqs, queues.main)
    assert moved["MessageAttributes"] == {**originals, **REPLAYED}


def test_a_message_too_large_to_carry_the_mark_stays_in_the_dlq(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    # GIVEN a main queue that takes at most 1,024 bytes, and a DLQ message that fits only without REPLAYED
    sqs.set_queue_attributes(QueueUrl=queues.main, Attributes={"MaximumMessageSize": "1024"})
    put(sqs, queues.processing_dlq, "x" * 1020)

    result = replay(run_cli, queues, "--yes", "--backup", str(tmp_path / "b.jsonl"))

    assert result.exit_code == ExitCode.FAILED
    assert "MessageTooLong" in result.stderr
    assert depth(sqs, queues.main) == (0, 0)
    assert depth(sqs, queues.processing_dlq) == (1, 0)


# --- issue 14: errors say what really failed ------------------------------------------------------------------


class AnswerLost:
    """A real client whose SendMessageBatch reaches SQS, but whose answer times out (botocore's ReadTimeoutError,
    an OSError subclass)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.inner.send_message_batch(**kwargs)
        raise ReadTimeoutError(endpoint_url=self.inner.meta.endpoint_url)


def test_a_send_timeout_is_reported_as_an_ambiguous_send_not_as_a_backup_failure(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    put(sqs, queues.processing_dlq, connect_event("c-1"), error_attributes("ThrottlingException"))
    backup = tmp_path / "b.jsonl"

    result = replay(
        run_cli,
        queues,
        "--yes",
        "--backup",
        str(backup),
        overrides=Overrides(clients={"sqs": AnswerLost(sqs)}),
    )

    assert result.exit_code == ExitCode.FAILED
    assert "SendMessageBatch to the main queue" in result.stderr
    assert "got no answer (ReadTimeoutError)" in result.stderr
    assert "may or may not be on the main queue" in result.stderr
    assert "writing the backup" not in result.stderr
    assert len(backup.read_text().splitlines()) == 1  # it was backed up
    assert depth(sqs, queues.processing_dlq) == (1, 0)  # and not deleted


# --- issue 14: queues that do not belong together ----------------------------------------------------------


def test_the_same_queue_as_dlq_and_main_queue_is_refused_even_with_force(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    put(sqs, queues.processing_dlq, connect_event("c-1"), error_attributes("X"))
    for extra in ([], ["--force"]):
        result = run_cli(
            [
                "--queue-url",
                queues.processing_dlq + "/",
                "--dlq-url",
                queues.processing_dlq,
                "dlq",
                "replay",
                "--yes",
                "--backup",
                str(tmp_path / f"b{len(extra)}.jsonl"),
                *extra,
            ]
        )
        assert result.exit_code == ExitCode.USAGE, result.output
        assert "are the same queue" in result.stderr
    [kept] = drain(sqs, queues.processing_dlq)
    assert kept["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "X"


def test_swapped_queue_urls_are_refused_and_nothing_moves(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    put(sqs, queues.main, connect_event("c-1"))

    result = run_cli(
        [
            "--queue-url",
            queues.processing_dlq,
            "--dlq-url",
            queues.main,
            "dlq",
            "replay",
            "--yes",
            "--backup",
            str(tmp_path / "b.jsonl"),
        ]
    )

    assert result.exit_code == ExitCode.USAGE
    assert "is not the dead-letter queue of" in result.stderr
    assert depth(sqs, queues.main) == (1, 0)


def test_a_queue_that_is_not_the_targets_dlq_needs_force(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    stray = sqs.create_queue(QueueName="someone-elses-queue")["QueueUrl"]
    put(sqs, stray, connect_event("c-1"))
    args = ["--queue-url", queues.main, "--dlq-url", stray, "dlq", "replay", "--yes"]

    refused = run_cli([*args, "--backup", str(tmp_path / "a.jsonl")])
    forced = run_cli([*args, "--backup", str(tmp_path / "b.jsonl"), "--force"])

    assert refused.exit_code == ExitCode.USAGE
    assert "its RedrivePolicy names" in refused.stderr
    assert forced.exit_code == 0, forced.output
    assert depth(sqs, queues.main) == (1, 0)


def test_a_rule_target_dlq_given_by_url_is_checked_against_the_eventbridge_rule(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    put(sqs, queues.processing_dlq, connect_event("c-1"))
    # the processing DLQ passed off as the rule-target DLQ: no rule target has it as its DLQ
    result = run_cli(
        [
            "--queue-url",
            queues.main,
            "--rule-target-dlq-url",
            queues.processing_dlq,
            "dlq",
            "replay",
            "--dlq",
            "rule-target",
            "--yes",
            "--backup",
            str(tmp_path / "b.jsonl"),
        ]
    )
    assert result.exit_code == ExitCode.USAGE
    assert "is not the rule-target DLQ" in result.stderr


def test_a_fifo_replay_never_reuses_the_messages_deduplication_id(
    run_cli: Invoke, moto_endpoint: str, sqs: Any, tmp_path: Path
) -> None:
    # GIVEN FIFO queues, and in the DLQ a message SQS redrove with the deduplication id it was first sent with:
    # SQS accepts a send reusing that id within five minutes and then drops it (moto does not model this)
    dlq = sqs.create_queue(QueueName="case-linker-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"})
    main = sqs.create_queue(
        QueueName="case-linker-main.fifo", Attributes={"FifoQueue": "true", "RedrivePolicy": redrive}
    )["QueueUrl"]
    sqs.send_message(
        QueueUrl=dlq,
        MessageBody=connect_event("c-1"),
        MessageGroupId="g-1",
        MessageDeduplicationId="first-send",
    )
    calls: list[tuple[str, dict[str, Any]]] = []

    # WHEN it is replayed
    result = run_cli(
        [
            "--queue-url",
            main,
            "--dlq-url",
            dlq,
            "dlq",
            "replay",
            "--yes",
            "--backup",
            str(tmp_path / "b.jsonl"),
        ],
        overrides=Overrides(clients={"sqs": spy_client(moto_endpoint, calls)}),
    )

    # THEN it is sent in its group with a deduplication id of its own, so SQS cannot drop it as a repeat
    assert result.exit_code == 0, result.output
    [entry] = [e for op, p in calls if op == "SendMessageBatch" for e in p["Entries"]]
    assert entry["MessageGroupId"] == "g-1"
    assert entry["MessageDeduplicationId"] != "first-send"


def test_a_confirmed_replay_prints_only_its_json_result_on_stdout(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    # GIVEN an operator at a terminal who pipes the result: `... --output json > result.json`
    put(sqs, queues.processing_dlq, connect_event("c-1"), error_attributes("X"))

    # WHEN they answer the prompt
    result = replay(
        run_cli,
        queues,
        "--output",
        "json",
        "--backup",
        str(tmp_path / "b.jsonl"),
        overrides=Overrides(interactive=True),
        input="y\n",
    )

    # THEN the prompt went to stderr and stdout holds the json document and nothing else
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("{")
    assert json.loads(result.stdout)["replay"]["deleted"] == 1
    assert "Replay all messages" in result.stderr


@pytest.mark.parametrize("answer", ["", "maybe\n", "yes please\n\n"])
def test_a_prompt_answered_with_eof_or_anything_but_yes_changes_nothing(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path, answer: str
) -> None:
    put(sqs, queues.processing_dlq, connect_event("c-1"), error_attributes("X"))
    backup = tmp_path / "b.jsonl"

    result = replay(
        run_cli, queues, "--backup", str(backup), overrides=Overrides(interactive=True), input=answer
    )

    assert result.exit_code == ExitCode.INTERRUPTED
    assert result.stdout == ""
    assert not backup.exists()
    assert depth(sqs, queues.processing_dlq) == (1, 0)
    assert depth(sqs, queues.main) == (0, 0)
