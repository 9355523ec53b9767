"""`send` against a stack: dry run, confirmation, machine-readable output, and no deliberately bad sample by
accident (issue 14: `ops send events/` used to fill the DLQ and fire its alarm)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ops.context import Overrides
from ops.errors import ExitCode
from tests.conftest import EVENTS_DIR
from tests.ops.conftest import Invoke, json_result
from tests.ops.helpers import FaultAt, StackQueues, depth, drain

GOOD = sorted(p for p in EVENTS_DIR.glob("*.json") if p.name not in {"seed.json", "expected.json"})
BAD = EVENTS_DIR / "bad"


def send(run_cli: Invoke, queues: StackQueues, *args: str, **kw: Any) -> Any:
    return run_cli(["--queue-url", queues.main, "send", *args], **kw)


def test_sending_the_events_folder_leaves_the_deliberately_bad_samples_out(
    run_cli: Invoke, sqs: Any, queues: StackQueues
) -> None:
    result = send(run_cli, queues, str(EVENTS_DIR), "--yes", "--output", "json")

    assert result.exit_code == 0, result.output
    bodies = sorted(m["Body"] for m in drain(sqs, queues.main))
    assert bodies == sorted(p.read_text() for p in GOOD)
    statuses = {Path(r["file"]).name: r["status"] for r in json_result(result)["messages"]}
    assert statuses["request-comment-unknown-case.json"] == "left out (bad)"
    assert "deliberately bad" in result.stderr


def test_a_bad_sample_named_directly_is_refused_unless_include_bad(
    run_cli: Invoke, sqs: Any, queues: StackQueues
) -> None:
    refused = send(run_cli, queues, str(BAD / "request-comment-too-long.json"), "--yes")
    assert refused.exit_code == ExitCode.USAGE
    assert "deliberately bad sample" in refused.stderr
    assert "--include-bad" in refused.stderr
    assert depth(sqs, queues.main) == (0, 0)

    sent = send(
        run_cli,
        queues,
        str(BAD / "request-comment-too-long.json"),
        str(BAD / "malformed-body.txt"),
        "--include-bad",
        "--yes",
    )
    assert sent.exit_code == 0, sent.output
    assert depth(sqs, queues.main) == (2, 0)


def test_dry_run_lists_and_sends_nothing(run_cli: Invoke, sqs: Any, queues: StackQueues) -> None:
    result = send(run_cli, queues, str(EVENTS_DIR), "--dry-run", "--output", "text")
    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert sum(fields[1] == "would send" for fields in lines) == len(GOOD)
    assert depth(sqs, queues.main) == (0, 0)


def test_send_asks_first_naming_the_queue_account_region_and_count(
    run_cli: Invoke, sqs: Any, queues: StackQueues
) -> None:
    declined = send(run_cli, queues, str(GOOD[0]), overrides=Overrides(interactive=True), input="n\n")
    assert declined.exit_code == ExitCode.INTERRUPTED
    assert (
        "Send 1 sample messages on queue case-linker-main (account 123456789012, Region us-east-1)?"
        in declined.stderr
    )
    assert depth(sqs, queues.main) == (0, 0)

    without_terminal = send(run_cli, queues, str(GOOD[0]))
    assert without_terminal.exit_code == ExitCode.USAGE
    assert "--yes" in without_terminal.stderr


def test_send_prints_the_message_ids_as_json(run_cli: Invoke, sqs: Any, queues: StackQueues) -> None:
    result = send(
        run_cli, queues, str(GOOD[0]), "--yes", "--output", "json", "--query", "messages[0].message_id"
    )
    [message] = drain(sqs, queues.main)
    assert json_result(result) == message["MessageId"]


def test_a_failing_later_batch_still_reports_the_ids_of_what_was_sent(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    # GIVEN twelve samples (two batches), and the main queue deleted as the second batch is about to go
    for i in range(12):
        (tmp_path / f"sample-{i:02}.json").write_text(json.dumps({"n": i}))
    sent_before: list[str] = []  # the ids SQS gave the first batch, read from the queue before it goes

    def delete_the_main_queue() -> None:
        sent_before.extend(m["MessageId"] for m in drain(sqs, queues.main))
        sqs.delete_queue(QueueUrl=queues.main)

    client = FaultAt(sqs, "send_message_batch", 2, before=delete_the_main_queue)

    result = send(
        run_cli,
        queues,
        str(tmp_path),
        "--yes",
        "--output",
        "json",
        overrides=Overrides(clients={"sqs": client}),
    )

    # THEN the error's exit code, and every file's fate: the ten sent with their ids, the two not sent
    assert result.exit_code == ExitCode.NOT_FOUND
    records = json.loads(result.stdout)["messages"]
    assert sorted(r["message_id"] for r in records if r["status"] == "sent") == sorted(sent_before)
    assert len(sent_before) == 10
    assert [Path(r["file"]).name for r in records if r["status"] == "not sent"] == [
        "sample-10.json",
        "sample-11.json",
    ]
    assert "10 sent before it stopped" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: sending to")
