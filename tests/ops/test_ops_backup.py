"""Backups hold full bodies (customer data): created new, 0600, never through a symlink; appended only to your own.

GIVEN a backup path in each awkward state, WHEN a replay (or the writer) opens it, THEN it refuses or protects.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ops.backup import BackupWriter, read_backup
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
