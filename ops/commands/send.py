"""`send`: put sample events on the main queue, to smoke-test a deployed or local stack."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from ops.context import State, handles_errors, state
from ops.errors import ExitCode, OpsError
from ops.output import Column
from ops.send import BAD_MARKER, SendResult, collect_files, read_bodies, send_bodies
from ops.sqs import QueueDepth, queue_depth

SEND_COLUMNS = (
    Column("file", "file", whole=True),
    Column("status", "status"),
    Column(
        "message_id",
        "message id / error",
        whole=True,
        render=lambda r: r["message_id"] or r["error_code"] or "-",
    ),
)


def send_command(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Files (each one message body), or folders of *.json files (recursively; seed.json and "
            "expected.json skipped)."
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be sent; send nothing.")
    ] = False,
    include_bad: Annotated[
        bool,
        typer.Option(
            "--include-bad",
            help=f"Also send deliberately bad samples (folders marked with {BAD_MARKER}): they end in the DLQ "
            "and fire its alarm.",
        ),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a TTY).")
    ] = False,
) -> None:
    """Put sample events on the main queue: each file is one SQS message body, sent byte for byte.

    Deliberately bad samples (an unknown case, a comment too long, unknown shapes, malformed JSON) are left out
    of folders and refused by name unless --include-bad.
    """
    run = state(ctx)
    samples = collect_files(paths, include_bad=include_bad)
    bodies = read_bodies(samples.files)
    sqs = run.clients.sqs
    queue = queue_depth(sqs, run.queues().require_main())
    if samples.left_out:
        run.output.note(
            f"left out {len(samples.left_out)} deliberately bad samples ({', '.join(p.name for p in samples.left_out)}); "
            "--include-bad sends them"
        )
    if dry_run:
        records = [_record(file, "would send") for file, _ in bodies]
    else:
        run.confirm(yes, action="Send", queue=queue, count=f"{len(bodies)} sample messages")
        result = SendResult()
        try:
            send_bodies(sqs, queue.url, bodies, result)
        except (Exception, KeyboardInterrupt):  # what went before the error is reported, then it is raised on
            run.output.note(
                f"{len(result.sent)} sent before it stopped; the files marked `not sent` were not sent"
            )
            _emit(run, queue, dry_run, _sent_records(bodies, result) + _left_out(samples.left_out))
            raise
        records = _sent_records(bodies, result)
    _emit(run, queue, dry_run, records + _left_out(samples.left_out))
    failed = sum(r["status"] == "failed" for r in records)
    if failed:
        raise OpsError(f"{failed} messages were not sent", ExitCode.FAILED)


def _sent_records(bodies: Sequence[tuple[Path, str]], result: SendResult) -> list[dict[str, Any]]:
    """Each file's fate: sent (with its message id), failed (with the error code), or not sent (not reached)."""
    records = [_record(file, "sent", message_id=mid) for file, mid in result.sent]
    records += [_record(file, "failed", error_code=code) for file, code in result.failed]
    done = {file for file, _ in result.sent} | {file for file, _ in result.failed}
    return records + [_record(file, "not sent") for file, _ in bodies if file not in done]


def _left_out(files: Sequence[Path]) -> list[dict[str, Any]]:
    return [_record(file, "left out (bad)") for file in files]


def _emit(run: State, queue: QueueDepth, dry_run: bool, records: list[dict[str, Any]]) -> None:
    run.output.emit(
        {"queue_url": queue.url, "dry_run": dry_run, "messages": records},
        records=records,
        columns=SEND_COLUMNS,
        title=f"{'would send' if dry_run else 'sent'} to {queue.where()}",
    )


def _record(
    file: Path, status: str, *, message_id: str | None = None, error_code: str | None = None
) -> dict[str, Any]:
    return {"file": str(file), "status": status, "message_id": message_id, "error_code": error_code}


def register(app: typer.Typer) -> None:
    """Add `send` to the root app."""
    app.command("send")(handles_errors(send_command))
