"""Functional: `dlq discard` (backup, confirm, delete) and `dlq restore --from-backup` against moto.

GIVEN poison messages in a DLQ, WHEN they are discarded and later restored, THEN nothing is lost on the way
and a restore never sends a message that is already on its queue.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ops.context import Overrides
from ops.errors import ExitCode
from tests.ops.conftest import Invoke, json_result
from tests.ops.helpers import FaultAt, StackQueues, connect_event, depth, drain, error_attributes, put

BINARY = {"blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01binary"}}


def fill(sqs: Any, queues: StackQueues) -> None:
    for i in range(3):
        put(
            sqs,
            queues.processing_dlq,
            connect_event(f"poison-{i}"),
            {**error_attributes("ValidationException"), **BINARY},
        )
    for i in range(2):
        put(sqs, queues.processing_dlq, connect_event(f"keep-{i}"), error_attributes("ThrottlingException"))


def discard(run_cli: Invoke, queues: StackQueues, *args: str, **kw: Any) -> Any:
    return run_cli([*queues.args(), "dlq", "discard", *args], **kw)


def test_discard_backs_up_then_deletes_only_the_matching_messages(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    fill(sqs, queues)
    backup = tmp_path / "discarded.jsonl"

    result = discard(
        run_cli,
        queues,
        "--filter",
        "ERROR_CODE=ValidationException",
        "--yes",
        "--backup",
        str(backup),
        "--output",
        "json",
    )

    assert result.exit_code == 0, result.output
    counts = json_result(result)["discard"]
    assert (counts["matched"], counts["deleted"], counts["skipped"], counts["complete"]) == (3, 3, 2, True)
    assert len(backup.read_text().splitlines()) == 3
    assert backup.stat().st_mode & 0o777 == 0o600
    left = drain(sqs, queues.processing_dlq)
    assert (
        sorted(m["MessageAttributes"]["ERROR_CODE"]["StringValue"] for m in left)
        == ["ThrottlingException"] * 2
    )
    assert depth(sqs, queues.main) == (0, 0)


def test_discard_needs_a_filter_or_all(run_cli: Invoke, sqs: Any, queues: StackQueues) -> None:
    fill(sqs, queues)
    for args in ([], ["--all", "--filter", "ERROR_CODE=X"]):
        result = discard(run_cli, queues, "--yes", *args)
        assert result.exit_code == ExitCode.USAGE
        assert "--filter KEY=VALUE (repeatable) or --all" in result.stderr
    assert depth(sqs, queues.processing_dlq) == (5, 0)


def test_discard_asks_naming_queue_account_region_and_count(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    fill(sqs, queues)
    result = discard(
        run_cli,
        queues,
        "--all",
        "--backup",
        str(tmp_path / "b.jsonl"),
        overrides=Overrides(interactive=True),
        input="n\n",
    )
    assert result.exit_code == ExitCode.INTERRUPTED
    assert (
        "Back up and DELETE all messages of ~5 on queue case-linker-processing-dlq "
        "(account 123456789012, Region us-east-1)?"
    ) in result.stderr
    assert depth(sqs, queues.processing_dlq) == (5, 0)
    assert not (tmp_path / "b.jsonl").exists()


def test_discard_dry_run_changes_nothing(run_cli: Invoke, sqs: Any, queues: StackQueues) -> None:
    fill(sqs, queues)
    result = discard(run_cli, queues, "--all", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would discard 5 messages" in result.stdout
    assert depth(sqs, queues.processing_dlq) == (5, 0)


def test_restore_puts_discarded_messages_back_as_they_were_and_only_once(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    fill(sqs, queues)
    backup = tmp_path / "discarded.jsonl"
    assert (
        discard(
            run_cli, queues, "--filter", "ERROR_CODE=ValidationException", "--yes", "--backup", str(backup)
        ).exit_code
        == 0
    )

    # WHEN the dry run comes first, THEN it plans 3 and sends nothing
    dry = run_cli(
        [*queues.args(), "--output", "json", "dlq", "restore", "--from-backup", str(backup), "--dry-run"]
    )
    [plan] = json_result(dry)["restore"]["queues"]
    assert (plan["in_backup"], plan["already_on_queue"], plan["to_send"], plan["sent"]) == (3, 0, 3, 0)
    assert depth(sqs, queues.processing_dlq) == (2, 0)

    # WHEN restored, THEN the three are back with their reason and binary attribute
    result = run_cli([*queues.args(), "dlq", "restore", "--from-backup", str(backup), "--yes"])
    assert result.exit_code == 0, result.output
    assert depth(sqs, queues.processing_dlq) == (5, 0)

    # WHEN restored again, THEN nothing is sent: they are already on the queue
    again = run_cli(
        [*queues.args(), "--output", "json", "dlq", "restore", "--from-backup", str(backup), "--yes"]
    )
    assert again.exit_code == ExitCode.NOTHING_TO_DO
    [plan] = json_result(again)["restore"]["queues"]
    assert (plan["already_on_queue"], plan["to_send"]) == (3, 0)

    messages = drain(sqs, queues.processing_dlq)
    assert len(messages) == 5
    restored = [m for m in messages if "poison" in m["Body"]]
    assert all(m["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "ValidationException" for m in restored)
    assert all(m["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01binary" for m in restored)


def test_restore_skips_messages_a_stopped_run_left_on_the_queue(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    # GIVEN a backup whose messages are still on the DLQ (a run that stopped after the backup, before the delete)
    fill(sqs, queues)
    backup = tmp_path / "b.jsonl"
    result = run_cli(
        [*queues.args(), "dlq", "replay", "--yes", "--backup", str(backup)],
        overrides=Overrides(clients={"sqs": NoDeletes(sqs)}),
    )
    assert result.exit_code == ExitCode.FAILED
    drain(sqs, queues.main)

    result = run_cli(
        [*queues.args(), "--output", "json", "dlq", "restore", "--from-backup", str(backup), "--yes"]
    )

    assert result.exit_code == ExitCode.NOTHING_TO_DO
    [plan] = json_result(result)["restore"]["queues"]
    assert (plan["in_backup"], plan["already_on_queue"]) == (5, 5)
    assert depth(sqs, queues.processing_dlq) == (5, 0)


def test_restore_refuses_a_file_that_is_not_a_backup(
    run_cli: Invoke, queues: StackQueues, tmp_path: Path
) -> None:
    bad = tmp_path / "notes.jsonl"
    bad.write_text("hello\n")
    result = run_cli([*queues.args(), "dlq", "restore", "--from-backup", str(bad), "--yes"])
    assert result.exit_code == ExitCode.USAGE
    assert "line 1 is not a backup record" in result.stderr


class NoDeletes:
    """A real client whose DeleteMessageBatch fails for every entry (the run stops short of deleting)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def delete_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "Successful": [],
            "Failed": [
                {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
                for e in Entries
            ],
        }


# --- the plan first, then the prompts, then the sends; what was restored is always reported ----------------------


def backup_of_both_dlqs(run_cli: Invoke, sqs: Any, queues: StackQueues, backup: Path) -> None:
    """A backup holding two messages discarded from each DLQ (both DLQs then empty)."""
    for url in (queues.processing_dlq, queues.rule_target_dlq):
        for i in range(2):
            put(sqs, url, connect_event(f"{url[-6:]}-{i}"), error_attributes("ValidationException"))
    first = discard(run_cli, queues, "--all", "--yes", "--backup", str(backup))
    second = discard(
        run_cli, queues, "--all", "--dlq", "rule-target", "--yes", "--backup", str(backup), "--append-backup"
    )
    assert (first.exit_code, second.exit_code) == (0, 0), first.output + second.output


def test_restore_shows_the_whole_plan_before_asking_and_declining_any_queue_restores_nothing(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    backup = tmp_path / "b.jsonl"
    backup_of_both_dlqs(run_cli, sqs, queues, backup)

    # WHEN the operator accepts the first queue's prompt and declines the second's
    result = run_cli(
        [*queues.args(), "dlq", "restore", "--from-backup", str(backup)],
        overrides=Overrides(interactive=True),
        input="y\nn\n",
    )

    # THEN both queues' plans came before the first prompt, and nothing was restored anywhere
    assert result.exit_code == ExitCode.INTERRUPTED
    first_prompt = result.stderr.index("Restore 2 messages")
    for name in ("case-linker-processing-dlq", "case-linker-rule-target-dlq"):
        assert result.stderr.index(f"plan: 2 of 2 messages to send to {name}") < first_prompt
    assert depth(sqs, queues.processing_dlq) == (0, 0)
    assert depth(sqs, queues.rule_target_dlq) == (0, 0)


def test_a_restore_stopped_by_an_error_reports_what_it_restored(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    backup = tmp_path / "b.jsonl"
    backup_of_both_dlqs(run_cli, sqs, queues, backup)
    # GIVEN the second queue is deleted as its messages are about to be sent
    client = FaultAt(
        sqs, "send_message_batch", 2, before=lambda: sqs.delete_queue(QueueUrl=queues.rule_target_dlq)
    )

    result = run_cli(
        [*queues.args(), "--output", "json", "dlq", "restore", "--from-backup", str(backup), "--yes"],
        overrides=Overrides(clients={"sqs": client}),
    )

    # THEN the error's exit code, and the report says what went back before it
    assert result.exit_code == ExitCode.NOT_FOUND
    document = json.loads(result.stdout)["restore"]
    assert [(q["queue_name"], q["sent"]) for q in document["queues"]] == [
        ("case-linker-processing-dlq", 2),
        ("case-linker-rule-target-dlq", 0),
    ]
    assert (document["complete"], document["stopped"]) == (False, "error")
    assert "2 restored before it stopped" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: SendMessageBatch")
    assert depth(sqs, queues.processing_dlq) == (2, 0)
