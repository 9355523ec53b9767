"""The json documents and `--output text` columns are what docs/operations.md promises, key for key and in its
order: scripts index text fields by position (`cut -f5`), so the order is part of the contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ops.context import Overrides
from tests.conftest import EVENTS_DIR
from tests.ops.conftest import Invoke, json_result
from tests.ops.documented import OPERATIONS, documented, record_keys
from tests.ops.helpers import StackQueues, comment_request, connect_event, error_attributes, put
from tests.ops.stubs import DLQ_URL, MAIN_URL, expect_depths, expect_tasks


def text_fields(result: Any) -> list[list[str]]:
    assert result.exit_code in (0, 1), result.output
    return [line.split("\t") for line in result.stdout.splitlines()]


def as_text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def test_the_table_of_documents_is_read() -> None:
    shapes = documented()
    assert {
        "dlq stats",
        "dlq peek",
        "dlq replay",
        "dlq discard",
        "dlq restore",
        "dlq native-redrive",
        "send",
        "backfill",
        "doctor",
    } <= set(shapes)
    assert record_keys(shapes["dlq peek"], "messages")[:5] == [
        "dlq",
        "message_id",
        "kind",
        "error_code",
        "error_label",
    ]


def fill(sqs: Any, queues: StackQueues) -> None:
    put(sqs, queues.processing_dlq, connect_event("c-1"), error_attributes("ValidationException"))
    put(sqs, queues.processing_dlq, comment_request("case-9"), error_attributes("ThrottlingException"))
    put(sqs, queues.rule_target_dlq, connect_event("c-2"))


def test_peek_json_keys_and_text_columns_are_in_the_documented_order(
    run_cli: Invoke, sqs: Any, queues: StackQueues
) -> None:
    fill(sqs, queues)
    keys = record_keys(documented()["dlq peek"], "messages")
    records = json_result(run_cli([*queues.args(), "dlq", "peek", "--output", "json"]))["messages"]
    assert [list(r) for r in records] == [keys] * 3
    lines = text_fields(run_cli([*queues.args(), "dlq", "peek", "--output", "text"]))
    by_id = {r["message_id"]: r for r in records}
    volatile = {"age_seconds", "dlq_receive_count"}  # two peeks apart
    for fields in lines:
        assert len(fields) == len(keys)
        expected = by_id[fields[1]]
        assert [f for k, f in zip(keys, fields, strict=True) if k not in volatile] == [
            as_text(expected[k]) for k in keys if k not in volatile
        ]
    # `cut -f5` is error_label, `cut -f9` what, as the table says
    assert sorted(f[4] for f in lines) == [
        "(redriven: maxReceiveCount)",
        "ThrottlingException",
        "ValidationException",
    ]
    assert sorted(f[8] for f in lines) == ["COMPLETED", "COMPLETED", "Comment"]


def test_stats_json_keys_and_text_columns_are_in_the_documented_order(
    run_cli: Invoke, sqs: Any, queues: StackQueues
) -> None:
    fill(sqs, queues)
    keys = record_keys(documented()["dlq stats"], "dlqs")
    records = json_result(run_cli([*queues.args(), "dlq", "stats", "--output", "json"]))["dlqs"]
    assert [list(r) for r in records] == [keys] * 2
    lines = text_fields(run_cli([*queues.args(), "dlq", "stats", "--output", "text"]))
    assert [f[: keys.index("depth") + 1] for f in lines] == [
        [as_text(r[k]) for k in keys[: keys.index("depth") + 1]] for r in records
    ]


@pytest.mark.parametrize("action", ["replay", "discard"])
def test_replay_and_discard_summaries_are_in_the_documented_order(
    run_cli: Invoke, sqs: Any, queues: StackQueues, action: str
) -> None:
    fill(sqs, queues)
    shape = documented()[f"dlq {action}"]
    args = [*queues.args(), "dlq", action, "--dlq", "processing", "--all", "--dry-run"]
    if action == "replay":
        args.remove("--all")
    document = json_result(run_cli([*args, "--output", "json"]))
    assert list(document) == [action, "failures"]  # the table's `"replay" | "discard"`
    keys = record_keys(shape, action)
    assert list(document[action]) == keys
    (fields,) = text_fields(run_cli([*args, "--output", "text"]))
    assert fields == [as_text(document[action][k]) for k in keys]


def test_restore_records_are_in_the_documented_order(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    fill(sqs, queues)
    backup = tmp_path / "b.jsonl"
    discarded = run_cli([*queues.args(), "dlq", "discard", "--all", "--yes", "--backup", str(backup)])
    assert discarded.exit_code == 0, discarded.output
    shape = documented()["dlq restore"]
    args = [*queues.args(), "dlq", "restore", "--from-backup", str(backup), "--dry-run"]
    document = json_result(run_cli([*args, "--output", "json"]))
    assert list(document) == list(shape)
    assert list(document["restore"]) == record_keys(shape, "restore")
    keys = record_keys(shape, "restore", "queues")
    assert document["restore"]["queues"]
    assert {tuple(q) for q in document["restore"]["queues"]} == {tuple(keys)}
    lines = text_fields(run_cli([*args, "--output", "text"]))
    assert lines == [[as_text(q[k]) for k in keys] for q in document["restore"]["queues"]]


def test_send_records_are_in_the_documented_order(run_cli: Invoke, queues: StackQueues) -> None:
    shape = documented()["send"]
    args = ["--queue-url", queues.main, "send", str(EVENTS_DIR), "--dry-run"]
    document = json_result(run_cli([*args, "--output", "json"]))
    assert list(document) == list(shape)
    keys = record_keys(shape, "messages")
    assert {tuple(m) for m in document["messages"]} == {tuple(keys)}
    lines = text_fields(run_cli([*args, "--output", "text"]))
    assert lines == [[as_text(m[k]) for k in keys] for m in document["messages"]]


@pytest.mark.parametrize("output", ["json", "text"])
def test_a_native_redrive_dry_run_has_every_documented_key_in_order(run_cli: Invoke, output: str) -> None:
    keys = record_keys(documented()["dlq native-redrive"], "native_redrive")
    client = boto3.client("sqs", region_name="us-east-1")
    with Stubber(client) as stubber:
        expect_depths(stubber)
        expect_tasks(stubber)
        result = run_cli(
            [
                "--queue-url",
                MAIN_URL,
                "--dlq-url",
                DLQ_URL,
                "dlq",
                "native-redrive",
                "--dry-run",
                "--output",
                output,
            ],
            overrides=Overrides(clients={"sqs": client}),
        )
    assert result.exit_code == 0, result.output
    expected = {
        "dlq_url": DLQ_URL,
        "destination_url": MAIN_URL,
        "dry_run": True,
        "task_handle": None,
        "status": None,
        "moved": 0,
        "failure_reason": None,
    }
    if output == "json":
        assert list(json.loads(result.stdout)["native_redrive"].items()) == [(k, expected[k]) for k in keys]
    else:
        assert text_fields(result) == [[as_text(expected[k]) for k in keys]]


def test_doctor_records_are_in_the_documented_order(
    run_cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    shape = documented()["doctor"]
    document = json_result(run_cli(["doctor", "--pre-deploy", "--output", "json"]))
    assert list(document) == list(shape)
    assert list(document["doctor"]) == record_keys(shape, "doctor")
    keys = record_keys(shape, "checks")
    assert {tuple(c) for c in document["checks"]} == {tuple(keys)}
    lines = text_fields(run_cli(["doctor", "--pre-deploy", "--output", "text"]))
    assert lines == [[as_text(c[k]) for k in keys] for c in document["checks"]]


def test_operations_md_says_keys_are_only_ever_appended() -> None:
    text = " ".join(OPERATIONS.read_text(encoding="utf-8").split())
    assert "new keys are only ever added at the end" in text
