"""`backfill`: enqueue the finished contacts of a past range (ops/backfill.py), resumable from a checkpoint."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ops.backfill import (
    DEFAULT_RATE,
    DEFAULT_SEARCH_RATE,
    Backfill,
    Checkpoint,
    Counts,
    check_age,
    check_range,
    parse_time,
)
from ops.backfill import Progress as BackfillProgress
from ops.context import State, handles_errors, state
from ops.errors import ExitCode, OpsError
from ops.output import Column
from ops.queues import stack_outputs
from ops.replay import Pacer
from ops.sqs import queue_depth

OUTPUT_TABLE_NAME = "IdempotencyTableName"
_INSTANCE_ARN = re.compile(r"arn:aws[a-z-]*:connect:[a-z0-9-]+:\d{12}:instance/[A-Za-z0-9-]{1,100}")
COUNTS = ("searches", "found", "already_handled", "enqueued")
COLUMNS = tuple(Column(key, key.replace("_", " "), numeric=True) for key in COUNTS)
LIMITS_HELP = (
    "SearchContacts finds contacts up to two years old, searches at most 8 weeks and returns the first 10,000 "
    "results a search, 100 a page: the range is searched a day at a time, and a search that stops short of its "
    "TotalCount, or after 10,000 results, is followed by one from the last disconnect time it returned. More "
    "contacts ending at one instant than a search returns stop the run (exit 1, naming the instant)."
)


def backfill_command(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option(help="Start of the range (ISO 8601; UTC when no zone): disconnect time.")
    ],
    until: Annotated[str, typer.Option(help="End of the range (ISO 8601), not in the future.")],
    instance_arn: Annotated[
        str | None,
        typer.Option(
            envvar="CASE_LINKER_INSTANCE_ARN", help="The Connect instance (the stack's connectInstanceArn)."
        ),
    ] = None,
    table_name: Annotated[
        str | None,
        typer.Option(help="The link ledger's table (default: the stack's IdempotencyTableName output)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Search and count only; enqueue nothing (with a checkpoint: only what this run would do).",
        ),
    ] = False,
    rate: Annotated[
        float,
        typer.Option(
            min=0.001,
            help="Contacts enqueued per second at most (default 1: half the default Cases quota, leaving the "
            "rest to live contact events).",
        ),
    ] = DEFAULT_RATE,
    search_rate: Annotated[
        float,
        typer.Option(
            min=0.001, help="SearchContacts requests per second at most (its default quota: 0.5, burst 1)."
        ),
    ] = DEFAULT_SEARCH_RATE,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Progress file (created 0600; a symlink is refused): run the same command again to continue "
            "where an interrupted backfill stopped."
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a TTY).")
    ] = False,
) -> None:
    """Enqueue the finished contacts of a past range, as the sweeper does for its trailing window.

    Each contact becomes one COMPLETED-shaped message (source case-linker.backfill) on the main queue; contacts
    the link ledger holds as linked or dead-lettered are skipped (it keeps 15 days). Contact chains are not
    followed (the sweeper follows them in its window). Stopped by Ctrl-C or an error, it still prints what it did,
    marked not complete, then exits with the interrupt's or the error's code.
    """
    run = state(ctx)
    now = dt.datetime.now(dt.UTC)
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    check_range(start, end, now)
    if instance_arn is None:
        raise OpsError("the Connect instance is not known", ExitCode.USAGE, hint="pass --instance-arn")
    if not _INSTANCE_ARN.fullmatch(instance_arn):
        raise OpsError(
            "--instance-arn must be a Connect instance ARN (arn:aws:connect:<region>:<account>:instance/<id>)",
            ExitCode.USAGE,
        )
    file = Checkpoint(checkpoint) if checkpoint is not None else None
    if file is not None:
        file.check_writable()
    progress = (file.load(instance_arn, start, end) if file is not None else None) or BackfillProgress(
        instance_arn=instance_arn, since=start, until=end, done_until=start
    )
    if progress.complete:
        raise OpsError(f"the checkpoint {checkpoint} says this backfill is complete", ExitCode.NOTHING_TO_DO)
    check_age(start, progress.done_until, now)

    queues = run.queues()
    queue = queue_depth(run.clients.sqs, queues.require_main())
    table = table_name or _stack_table(run, queues.from_stack)
    if table is None:
        run.output.note(
            "the link ledger is not read (pass --table-name): contacts already linked are enqueued again, "
            "and the linker finds them on their cases"
        )
    if progress.done_until > start:
        run.output.note(f"continuing from {progress.done_until.isoformat()} (checkpoint {checkpoint})")
    if dry_run and any(progress.counts.values()):
        earlier = ", ".join(f"{progress.counts.get(k, 0)} {k.replace('_', ' ')}" for k in COUNTS[1:])
        run.output.note(
            f"dry run: the counts are what it would do from {progress.done_until.isoformat()} on; "
            f"the earlier runs' ({earlier}) are not in them"
        )
    if not dry_run:
        # How many contacts there are is known only by searching: the prompt names what is known before.
        kept = (
            f"checkpoint {checkpoint}"
            if file is not None
            else "no --checkpoint (an interrupted backfill starts again from --since)"
        )
        run.confirm(
            yes,
            action="Enqueue",
            queue=queue,
            count=f"the finished contacts of {progress.done_until.isoformat()} to {end.isoformat()}",
            detail=f" for instance {instance_arn.rsplit('/', 1)[-1]}, {kept}; how many is known only by "
            "searching (--dry-run counts them)",
        )
        if file is None and yes:
            run.output.note("no --checkpoint: an interrupted backfill starts again from --since")

    backfill = Backfill(
        connect=run.clients.get("connect"),
        sqs=run.clients.sqs,
        dynamodb=run.clients.get("dynamodb") if table else None,
        table_name=table,
        instance_arn=instance_arn,
        queue_url=queue.url,
        search_pacer=Pacer(search_rate),
        send_pacer=Pacer(rate),
        dry_run=dry_run,
        progress=progress,
        checkpoint=file,
    )
    header = {
        "instance_arn": instance_arn,
        "since": start.isoformat(),
        "until": end.isoformat(),
        "queue_url": queue.url,
        "table_name": table,
        "dry_run": dry_run,
        "checkpoint": str(checkpoint) if checkpoint else None,
    }
    title = f"{'would enqueue' if dry_run else 'backfilled'} {start.isoformat()} to {end.isoformat()} on {queue.where()}"
    try:
        _run_with_progress(run, backfill, progress)
    except KeyboardInterrupt:
        _emit(run, backfill, header, title)
        where = f"; run the same command to continue (checkpoint {checkpoint})" if file else ""
        typer.echo(f"interrupted at {progress.done_until.isoformat()}{where}", err=True)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except Exception:  # reported, then raised on unchanged: its line comes after the summary
        _emit(run, backfill, header, title)
        raise
    _emit(run, backfill, header, title)


def _emit(run: State, backfill: Backfill, header: dict[str, Any], title: str) -> None:
    """The summary, also of a run stopped by Ctrl-C or an error (marked not complete), before the error's line.

    The counts are the whole range's so far (a checkpoint's runs included); a dry run's, what it would do.
    """
    progress = backfill.progress
    counts = backfill.counts.as_dict()
    if not header["dry_run"]:
        counts = {key: progress.counts.get(key, 0) for key in COUNTS}
    record = {
        **counts,
        "done_until": progress.done_until.isoformat(),
        "complete": backfill.stopped is None and progress.complete,
        "stopped": backfill.stopped,
        "stopped_by": backfill.stopped_by,
    }
    if backfill.stopped:
        title = f"{title} ({backfill.stopped}: not complete, done until {record['done_until']})"
    run.output.emit(
        {**header, "this_run": backfill.counts.as_dict(), **record},
        records=[record],
        columns=COLUMNS,
        title=title,
    )


def _stack_table(run: State, from_stack: bool) -> str | None:
    if not from_stack:
        return None
    return stack_outputs(run.clients.cloudformation, run.stack_name).get(OUTPUT_TABLE_NAME)


def _run_with_progress(run: State, backfill: Backfill, progress: BackfillProgress) -> None:
    console = run.output.console(stderr=True)
    span = (progress.until - progress.since).total_seconds()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task(
            "backfill", total=span, completed=int((progress.done_until - progress.since).total_seconds())
        )

        def show(at: dt.datetime, counts: Counts) -> None:
            bar.update(
                task,
                completed=min(span, (at - progress.since).total_seconds()),
                description=f"backfill: {counts.found} found, {counts.enqueued} enqueued",
            )

        backfill.on_progress = show
        backfill.run()


def register(app: typer.Typer) -> None:
    """Add `backfill` to the root app."""
    app.command("backfill", epilog=LIMITS_HELP)(handles_errors(backfill_command))
