"""Backups hold full bodies (customer data): created new, 0600, never through a symlink; appended only to your own.

GIVEN a backup path in each awkward state, WHEN a replay (or the writer) opens it, THEN it refuses or protects.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ops.backup import BackupWriter, default_backup_path, read_backup
from ops.context import Overrides
from ops.errors import ExitCode, OpsError
from tests.ops.conftest import Invoke
from tests.ops.helpers import StackQueues, connect_event, depth, error_attributes, put


def replay(run_cli: Invoke, queues: StackQueues, *args: str) -> Any:
    return run_cli([*queues.args(), "dlq", "replay", "--yes", *args])


def test_a_new_backup_is_mode_0600_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o000)
    try:
        BackupWriter(tmp_path / "b.jsonl").close()
    finally:
        os.umask(previous)
    assert (tmp_path / "b.jsonl").stat().st_mode & 0o777 == 0o600


def test_an_existing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text("someone's data\n")
    os.chmod(path, 0o644)
    with pytest.raises(OpsError, match="already a file") as raised:
        BackupWriter(path)
    assert raised.value.exit_code == ExitCode.USAGE
    assert path.read_text() == "someone's data\n"


@pytest.mark.parametrize("append", [False, True])
def test_a_symlink_is_refused_even_a_dangling_one(tmp_path: Path, append: bool) -> None:
    target = tmp_path / "elsewhere"
    link = tmp_path / "dlq-backup-replay-q-20260101T000000Z.jsonl"  # the predictable default name
    link.symlink_to(target)
    with pytest.raises(OpsError, match="symbolic link"):
        BackupWriter(link, append=append)
    assert not target.exists()


def test_append_forces_0600_on_your_own_file(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text('{"earlier": 1}\n')
    os.chmod(path, 0o644)
    writer = BackupWriter(path, append=True)
    writer.write([{"later": 2}])
    writer.close()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text().splitlines() == ['{"earlier": 1}', '{"later": 2}']


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_append_refuses_a_file_that_belongs_to_someone_else(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text("")
    os.chown(path, 4242, -1)
    with pytest.raises(OpsError, match="belongs to user id 4242"):
        BackupWriter(path, append=True)


def test_the_cli_refuses_an_existing_backup_before_touching_the_dlq(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    put(sqs, queues.processing_dlq, connect_event("c-1"), error_attributes("X"))
    existing = tmp_path / "b.jsonl"
    existing.write_text("")

    refused = replay(run_cli, queues, "--backup", str(existing))

    assert refused.exit_code == ExitCode.USAGE
    assert "--append-backup" in refused.stderr
    assert depth(sqs, queues.processing_dlq) == (1, 0)

    appended = replay(run_cli, queues, "--backup", str(existing), "--append-backup")

    assert appended.exit_code == 0, appended.output
    [record] = list(read_backup(existing))
    assert "c-1" in record.body
    assert existing.stat().st_mode & 0o777 == 0o600


def test_a_default_backup_is_created_in_the_current_folder(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(sqs, queues.processing_dlq, connect_event("c-1"), error_attributes("X"))
    monkeypatch.chdir(tmp_path)

    result = replay(run_cli, queues)

    assert result.exit_code == 0, result.output
    [path] = list(tmp_path.glob("dlq-backup-replay-case-linker-processing-dlq-*.jsonl"))
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["message_attributes"]["ERROR_CODE"]["StringValue"] == "X"


def test_a_malformed_backup_line_is_named_without_its_content(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text(
        '{"message_id": "m", "source_queue_url": "u", "body": "ok"}\n{"secret": "jane@example.com"}\n'
    )
    with pytest.raises(OpsError, match="line 2 is not a backup record") as raised:
        list(read_backup(path))
    assert "jane" not in raised.value.message


GOOD_LINE = {"message_id": "m-1", "body": "ok", "message_attributes": {}}


@pytest.mark.parametrize(
    ("second_line", "named"),
    [
        (b"\xffjane\n", "not UTF-8"),
        (b"[1, 2]\n", "not a JSON object"),
        (b'{"message_id": "m-2", "body": 7}\n', "body"),
        (b'{"message_id": "m-2", "body": "x", "message_attributes": {"X": "jane@example.com"}}\n', "X"),
        (b'{"message_id": "m-2", "body": "x", "message_attributes": ["jane"]}\n', "message_attributes"),
        (
            b'{"message_id": "m-2", "body": "x", "message_attributes": '
            b'{"B": {"DataType": "Binary", "BinaryValue": "jane@example.com"}}}\n',
            "BinaryValue",
        ),
        (
            b'{"message_id": "m-2", "body": "x", "message_attributes": '
            b'{"S": {"DataType": "String", "StringValue": 12065550142}}}\n',
            "StringValue",
        ),
        (
            b'{"message_id": "m-2", "body": "x", "message_attributes": {"S": {"StringValue": "jane"}}}\n',
            "DataType",
        ),
    ],
)
def test_a_malformed_backup_is_a_one_line_usage_error_naming_line_and_field(
    run_cli: Invoke, queues: StackQueues, tmp_path: Path, second_line: bytes, named: str
) -> None:
    path = tmp_path / "b.jsonl"
    good = json.dumps({**GOOD_LINE, "source_queue_url": queues.processing_dlq}).encode()
    url = f'"source_queue_url": "{queues.processing_dlq}"'.encode()
    second = second_line.replace(b'"message_id": "m-2"', b'"message_id": "m-2", ' + url)
    path.write_bytes(good + b"\n" + second)

    result = run_cli([*queues.args(), "dlq", "restore", "--from-backup", str(path), "--dry-run"])

    assert result.exit_code == ExitCode.USAGE
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {path} line 2 is not a backup record")
    assert named in line
    for value in ("jane", "12065550142"):
        assert value not in line


@pytest.mark.parametrize("name", ["jane.doe@example.com", "+1 206 555 0142"])
def test_a_backup_attribute_whose_name_sqs_refuses_is_a_usage_error_that_never_names_it(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path, name: str
) -> None:
    # GIVEN a backup (edited by hand, or not one of ours) with an attribute name SQS does not take: SQS's refusal
    # would quote the name
    path = tmp_path / "b.jsonl"
    attributes = {name: {"DataType": "String", "StringValue": "x"}}
    record = {**GOOD_LINE, "source_queue_url": queues.processing_dlq, "message_attributes": attributes}
    path.write_text(json.dumps(record) + "\n")

    # WHEN it is restored
    result = run_cli([*queues.args(), "dlq", "restore", "--from-backup", str(path), "--yes"])

    # THEN a one-line usage error names the line and the attribute's place, never its name, and nothing is sent
    assert result.exit_code == ExitCode.USAGE
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {path} line 1 is not a backup record: a message attribute")
    for value in ("jane", "555"):
        assert value not in line
    assert depth(sqs, queues.processing_dlq) == (0, 0)


def test_append_to_a_symlink_is_refused_before_the_prompt(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    put(sqs, queues.processing_dlq, connect_event("c-1"), error_attributes("X"))
    link = tmp_path / "b.jsonl"
    link.symlink_to(tmp_path / "elsewhere")

    result = run_cli(
        [*queues.args(), "dlq", "replay", "--backup", str(link), "--append-backup"],
        overrides=Overrides(interactive=True),
        input="y\n",
    )

    assert result.exit_code == ExitCode.USAGE
    assert "symbolic link" in result.stderr
    assert "Replay all messages" not in result.stderr  # never asked
    assert not (tmp_path / "elsewhere").exists()
    assert depth(sqs, queues.processing_dlq) == (1, 0)


def test_a_link_planted_at_the_default_backup_name_is_refused_before_the_prompt(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN links at the default backup names of the next seconds (the name is predictable)
    put(sqs, queues.processing_dlq, connect_event("c-1"), error_attributes("X"))
    monkeypatch.chdir(tmp_path)
    now = datetime.now(UTC)
    for second in range(-2, 30):
        path = default_backup_path(queues.processing_dlq, "discard", now + timedelta(seconds=second))
        if not path.is_symlink():
            path.symlink_to(tmp_path / "elsewhere")

    result = run_cli(
        [*queues.args(), "dlq", "discard", "--all"], overrides=Overrides(interactive=True), input="y\n"
    )

    assert result.exit_code == ExitCode.USAGE
    assert "symbolic link" in result.stderr
    assert "DELETE" not in result.stderr  # never asked
    assert not (tmp_path / "elsewhere").exists()
    assert depth(sqs, queues.processing_dlq) == (1, 0)


@pytest.mark.parametrize("where", ["missing-folder", "under-a-file", "a-directory"])
def test_a_backup_path_that_cannot_be_created_is_refused_before_the_prompt(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path, where: str
) -> None:
    # GIVEN a backup path whose folder is missing, is a file, or a path that is a directory
    put(sqs, queues.processing_dlq, connect_event("c-1"), error_attributes("X"))
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-directory").mkdir()
    path = {
        "missing-folder": tmp_path / "no-such-dir" / "b.jsonl",
        "under-a-file": tmp_path / "a-file" / "b.jsonl",
        "a-directory": tmp_path / "a-directory",
    }[where]

    # WHEN the operator starts a replay at a terminal, ready to say yes
    result = run_cli(
        [*queues.args(), "dlq", "replay", "--backup", str(path)],
        overrides=Overrides(interactive=True),
        input="y\n",
    )

    # THEN it is refused as unusable before anyone is asked (docs: "refused before the confirmation prompt")
    assert result.exit_code == ExitCode.USAGE
    assert "Replay all messages" not in result.stderr  # never asked
    assert [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert depth(sqs, queues.processing_dlq) == (1, 0)
