"""`dlq replay`, `dlq discard`, `dlq restore` and `dlq native-redrive`: the commands that change a DLQ."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ops.backup import BackupWriter, check_backup_path, default_backup_path, read_backup
from ops.context import State, handles_errors, state
from ops.errors import ExitCode, OpsError, failure_code
from ops.native import (
    MAX_NATIVE_RATE,
    MoveTask,
    ensure_no_running_task,
    running_task,
    start_move_task,
    wait_for_task,
)
from ops.output import Column
from ops.queues import Dlq, check_dlq_of, refuse_same_queue, same_queue
from ops.replay import Discarder, DlqScan, Failure, Pacer, Replayer, ReplayReport
from ops.restore import RestorePlan, RestoreReport, plan_restore, restore
from ops.sqs import HOLD_SECONDS, QueueDepth, queue_depth
from ops.summary import FILTER_HELP, MessageFilter, parse_filters

COUNT_COLUMNS = tuple(
    Column(key, key.replace("_", " "), numeric=True)
    for key in ("read", "matched", "sent", "deleted", "failed", "skipped", "left_matching")
)
RESTORE_COLUMNS = (
    Column("queue_name", "queue", whole=True),
    *(
        Column(key, key.replace("_", " "), numeric=True)
        for key in ("in_backup", "repeated_in_backup", "already_on_queue", "to_send", "sent", "failed")
    ),
)

# Options shared by the commands that read a DLQ and change it.
MaxOption = Annotated[int | None, typer.Option("--max", min=1, help="Stop after N matching messages.")]
FilterOption = Annotated[list[str] | None, typer.Option("--filter", help=FILTER_HELP)]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Report what would happen; change nothing.")]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a TTY).")
]
AppendBackupOption = Annotated[
    bool,
    typer.Option(
        "--append-backup",
        help="Add to an existing --backup file (yours, not a symlink; its mode is forced to 0600).",
    ),
]


def _backup_option(action: str) -> Any:
    return typer.Option(
        help="JSON-lines backup of every message (full bodies: customer data), created new with mode 0600; "
        f"an existing path is refused. Default: ./dlq-backup-{action}-<queue>-<time>.jsonl."
    )


# --- dlq replay --------------------------------------------------------------------------------------------


def replay_command(
    ctx: typer.Context,
    dlq: Annotated[Dlq, typer.Option(help="The DLQ to replay from.")] = Dlq.PROCESSING,
    max_messages: MaxOption = None,
    filters: FilterOption = None,
    dry_run: DryRunOption = False,
    rate: Annotated[float | None, typer.Option(min=0.1, help="At most R messages per second.")] = None,
    backup: Annotated[Path | None, _backup_option("replay")] = None,
    append_backup: AppendBackupOption = False,
    yes: YesOption = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Send even when the DLQ is not proven to be a dead-letter queue of the main queue.",
        ),
    ] = False,
    native: Annotated[bool, typer.Option("--native", hidden=True)] = False,
) -> None:
    """Move DLQ messages back to the main queue, marked REPLAYED=dlq, reading the DLQ to its end.

    Each message is appended to the backup (fsynced) and sent to the main queue before it is deleted from the
    DLQ. The reason attributes (ERROR_CODE, ERROR_MESSAGE, SOURCE_MESSAGE_ID, RECEIVE_COUNT and EventBridge's)
    are dropped, ORIGINAL_ATTRIBUTES is unpacked, and REPLAYED=dlq is always added (originals packed again when
    they and REPLAYED exceed 10); a message that cannot be sent marked stays in the DLQ and is reported.
    Exits 1 with a count when matching messages remain in the DLQ. Stopped by Ctrl-C or an error, it still prints
    what it did, marked not complete, then exits with the interrupt's or the error's code.
    """
    run = state(ctx)
    if native:
        raise OpsError(
            "replay --native is now its own command, `dlq native-redrive`: SQS's move task cannot mark messages "
            "REPLAYED, so they arrive unmarked",
            ExitCode.USAGE,
        )
    message_filter = _filters(filters)
    sqs = run.clients.sqs
    source, destination, relation = _dlq_and_main(run, dlq, force=force, override="--force")
    _require_messages(source, dlq, "replay")
    backup_path = _backup_path(backup, append_backup, dry_run, source, "replay")
    run.output.note(f"from {dlq} DLQ {source.url} (~{source.visible} visible)")
    run.output.note(f"to   main queue {destination.url} ({relation})")
    if filters:
        run.output.note(f"filter {' '.join(filters)}")
    if not dry_run:
        run.confirm(
            yes,
            action="Replay",
            queue=source,
            count=_how_many(max_messages, source, filters),
            detail=f" to {destination.name}",
        )
    with _backup(run, backup_path, append_backup) as writer:
        replayer = Replayer(
            sqs,
            source_url=source.url,
            destination_url=destination.url,
            max_message_bytes=destination.max_message_bytes,
            message_filter=message_filter,
            max_messages=max_messages,
            dry_run=dry_run,
            backup=writer,
            pacer=Pacer(rate),
            hold_seconds=run.overrides.hold_seconds or HOLD_SECONDS,
            wait_seconds=run.overrides.wait_seconds,
            expected=source.visible,
        )
        _run_scan(run, replayer, source, dry_run, "replay", destination=destination.url, filters=filters)


# --- dlq discard -------------------------------------------------------------------------------------------


def discard_command(
    ctx: typer.Context,
    filters: FilterOption = None,
    discard_all: Annotated[
        bool, typer.Option("--all", help="Discard every message (instead of --filter).")
    ] = False,
    dlq: Annotated[Dlq, typer.Option(help="The DLQ to discard from.")] = Dlq.PROCESSING,
    max_messages: MaxOption = None,
    dry_run: DryRunOption = False,
    backup: Annotated[Path | None, _backup_option("discard")] = None,
    append_backup: AppendBackupOption = False,
    yes: YesOption = False,
) -> None:
    """Delete poison messages from a DLQ: back each one up (fsynced), then delete it. Needs --filter or --all.

    What a discard removed can be put back with `dlq restore --from-backup FILE`. Stopped by Ctrl-C or an error,
    it still prints what it did, marked not complete.
    """
    run = state(ctx)
    if bool(filters) == discard_all:
        raise OpsError(
            "say what to discard: --filter KEY=VALUE (repeatable) or --all, not both", ExitCode.USAGE
        )
    message_filter = _filters(filters)
    sqs = run.clients.sqs
    source = queue_depth(sqs, run.queues().require_dlq(dlq))
    _require_messages(source, dlq, "discard")
    backup_path = _backup_path(backup, append_backup, dry_run, source, "discard")
    run.output.note(f"from {dlq} DLQ {source.url} (~{source.visible} visible)")
    if filters:
        run.output.note(f"filter {' '.join(filters)}")
    if not dry_run:
        run.confirm(
            yes, action="Back up and DELETE", queue=source, count=_how_many(max_messages, source, filters)
        )
    with _backup(run, backup_path, append_backup) as writer:
        discarder = Discarder(
            sqs,
            source_url=source.url,
            message_filter=message_filter,
            max_messages=max_messages,
            dry_run=dry_run,
            backup=writer,
            hold_seconds=run.overrides.hold_seconds or HOLD_SECONDS,
            wait_seconds=run.overrides.wait_seconds,
            expected=source.visible,
        )
        _run_scan(run, discarder, source, dry_run, "discard", destination=None, filters=filters)


# --- shared by replay and discard --------------------------------------------------------------------------


def _dlq_and_main(
    run: State, dlq: Dlq, *, force: bool, override: str | None
) -> tuple[QueueDepth, QueueDepth, str]:
    """The DLQ and the main queue, refused unless the DLQ is a dead-letter queue of the main queue; and how
    that was established (for the run's notes)."""
    queues = run.queues()
    refuse_same_queue(dlq, queues.require_dlq(dlq), queues.require_main())
    source = queue_depth(run.clients.sqs, queues.require_dlq(dlq))
    destination = queue_depth(run.clients.sqs, queues.require_main())
    relation = check_dlq_of(
        events=run.clients.events,
        which=dlq,
        source_url=source.url,
        source_arn=source.arn,
        target_url=destination.url,
        target_arn=destination.arn,
        target_redrive_policy=destination.redrive_policy,
        trusted=queues.from_stack,
        force=force,
        override=override,
    )
    return source, destination, relation


def _filters(filters: Sequence[str] | None) -> MessageFilter:
    try:
        return parse_filters(filters)
    except ValueError as e:
        raise OpsError(str(e), ExitCode.USAGE) from e


def _backup_path(
    path: Path | None, append: bool, dry_run: bool, source: QueueDepth, action: str
) -> Path | None:
    """The backup file a run will write (None for a dry run), refused now if unusable: before any prompt."""
    if dry_run:
        return None
    chosen = path or default_backup_path(source.url, action)
    check_backup_path(chosen, append=append)
    return chosen


def _require_messages(source: QueueDepth, dlq: Dlq, doing: str) -> None:
    if not source.visible:
        in_flight = f" ({source.in_flight} in flight, held by another reader)" if source.in_flight else ""
        raise OpsError(f"the {dlq} DLQ is empty{in_flight}: nothing to {doing}", ExitCode.NOTHING_TO_DO)


def _how_many(max_messages: int | None, source: QueueDepth, filters: Sequence[str] | None) -> str:
    matching = "matching " if filters else ""
    if max_messages:
        return f"up to {max_messages} {matching}messages"
    return f"all {matching}messages of ~{source.visible}"


@contextlib.contextmanager
def _backup(run: State, path: Path | None, append: bool) -> Iterator[BackupWriter | None]:
    if path is None:  # a dry run
        yield None
        return
    writer = BackupWriter(path, append=append)
    run.output.note(f"backup {writer.path} (mode 0600; it holds customer data: delete it when done)")
    try:
        yield writer
    finally:
        writer.close()


def _run_scan(
    run: State,
    scan: DlqScan,
    source: QueueDepth,
    dry_run: bool,
    action: str,
    *,
    destination: str | None,
    filters: Sequence[str] | None,
) -> None:
    """Run the scan and always print its summary: after Ctrl-C or an error too, before the error's line."""
    with _progress(run, source.visible, "dry run" if dry_run else action) as show:
        scan.on_progress = lambda report: show(report.matched if dry_run else report.deleted + report.failed)
        try:
            scan.run()
        except (Exception, KeyboardInterrupt):  # reported, then raised on unchanged
            _emit_scan(run, scan, source, dry_run, action, destination, filters)
            raise
    report = scan.report
    _emit_scan(run, scan, source, dry_run, action, destination, filters)
    if report.left_matching:
        raise OpsError(
            f"{report.left_matching} matching messages remain in the DLQ (see the failures above); "
            f"run the {action} again once the cause is fixed",
            ExitCode.FAILED,
        )
    if not report.ok:
        raise typer.Exit(ExitCode.FAILED)
    if not report.matched:
        raise OpsError(f"no message matched: nothing to {action}", ExitCode.NOTHING_TO_DO)


def _emit_scan(
    run: State,
    scan: DlqScan,
    source: QueueDepth,
    dry_run: bool,
    action: str,
    destination: str | None,
    filters: Sequence[str] | None,
) -> None:
    report = scan.report
    summary = {
        "dlq_url": source.url,
        "destination_url": destination,
        "dry_run": dry_run,
        "filters": list(filters or []),
        "backup": str(scan.backup.path) if scan.backup is not None else None,
        **report.to_json(),
        "complete": report.complete,
        "stopped": report.stopped,
        "stopped_by": report.stopped_by,
        "in_doubt": report.in_doubt,
    }
    for failure in report.failures:
        run.output.note(
            f"failed: {failure.message_id} {failure.stage} {failure.code} {failure.detail}".rstrip()
        )
    if report.reached_max:
        run.output.note(f"stopped at --max ({report.matched} matched): more matching messages may remain")
    if report.arrived_during_run:
        run.output.note(
            f"{report.arrived_during_run} messages arrived in the DLQ during this run (new failures) and were left"
        )
    if source.in_flight:
        run.output.note(
            f"{source.in_flight} messages were in flight (held by another reader) when the run started and may "
            "not have been examined"
        )
    if report.stopped:
        for line in _stopped_notes(report, action, dry_run):
            run.output.note(line)
    footer = [f"would {action} {report.matched} messages"] if dry_run and report.matched else []
    title = f"{action} (dry run: nothing changed)" if dry_run else action
    run.output.emit(
        {action: summary, "failures": [_failure_json(f) for f in report.failures]},
        records=[summary],
        columns=[c for c in COUNT_COLUMNS if action == "replay" or c.key != "sent"],
        title=f"{title} ({report.stopped}: not complete)" if report.stopped else title,
        footer=footer,
    )


def _stopped_notes(report: ReplayReport, action: str, dry_run: bool) -> list[str]:
    """What a run that stopped part-way did, and what it left: never taken for a finished run."""
    why = "interrupted" if report.stopped == "interrupted" else f"stopped by an error ({report.stopped_by})"
    if dry_run:
        return [f"{why} after reading {report.read} messages: the dry run did not read the whole DLQ"]
    done = (
        f"{report.sent} sent and {report.deleted} deleted"
        if action == "replay"
        else f"{report.deleted} deleted"
    )
    notes = [
        f"{why} after {done}: the {action} is not complete. {report.left_matching} matching messages it read, "
        f"and any it had not read yet, are still in the DLQ; run the {action} again to go on"
    ]
    if report.in_doubt:
        notes.append(
            f"{report.in_doubt} messages may be on both queues: they were sent, or being sent, and not deleted "
            "when the run stopped (they are in the backup and still in the DLQ); replaying them again is harmless, "
            "the linker's ledger dedupes a replayed item"
        )
    return notes


def _failure_json(failure: Failure) -> dict[str, str]:
    return {
        "message_id": failure.message_id,
        "stage": failure.stage,
        "code": failure.code,
        "detail": failure.detail,
    }


@contextlib.contextmanager
def _progress(run: State, total: int, label: str) -> Iterator[Callable[[int], None]]:
    console = run.output.console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda done: progress.update(task, completed=done)


# --- dlq restore -------------------------------------------------------------------------------------------


def restore_command(
    ctx: typer.Context,
    from_backup: Annotated[
        Path,
        typer.Option(
            "--from-backup", exists=True, dir_okay=False, help="A backup written by replay or discard."
        ),
    ],
    dlq: Annotated[
        Dlq | None,
        typer.Option(help="Restore into this DLQ of the stack (default: the queue each message came from)."),
    ] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
) -> None:
    """Put messages from a backup back on their DLQ, as they were (reason attributes included).

    Messages already on the queue (same id, or same body and attributes) and repeats within the backup are
    skipped, so running a restore twice sends nothing the second time. The plan is always shown first;
    --dry-run stops there. Every queue is confirmed before anything is sent; what was restored is always reported.
    """
    run = state(ctx)
    records = list(read_backup(from_backup))
    if not records:
        raise OpsError(f"{from_backup} holds no messages: nothing to restore", ExitCode.NOTHING_TO_DO)
    target = run.queues().require_dlq(dlq) if dlq is not None else None
    groups: dict[str, list[Any]] = {}
    for record in records:
        url = target or record.source_queue_url
        key = next((u for u in groups if same_queue(u, url)), url)
        groups.setdefault(key, []).append(record)
    sqs = run.clients.sqs
    plans = [
        plan_restore(sqs, queue_depth(sqs, url), group, wait_seconds=run.overrides.wait_seconds)
        for url, group in groups.items()
    ]
    for plan in plans:
        run.output.note(plan.describe())
        if plan.not_compared:
            run.output.note(
                f"{plan.not_compared} messages on {plan.queue.name} are held by another reader and were not "
                "compared: the restore may duplicate them"
            )
    reports: list[RestoreReport] = [RestoreReport() for _ in plans]
    to_send = sum(len(p.to_send) for p in plans)
    if not dry_run and to_send:
        for plan in plans:  # every queue is confirmed before anything is sent
            if plan.to_send:
                run.confirm(
                    yes,
                    action="Restore",
                    queue=plan.queue,
                    count=f"{len(plan.to_send)} messages from {from_backup}",
                )
        try:
            for plan, report in zip(plans, reports, strict=True):
                if plan.to_send:
                    restore(sqs, plan, report)
        except (Exception, KeyboardInterrupt) as e:  # reported, then raised on unchanged
            _emit_restore(run, plans, reports, dry_run, from_backup, stopped=e)
            raise
    _emit_restore(run, plans, reports, dry_run, from_backup)
    failed = sum(r.failed for r in reports)
    if failed:
        raise OpsError(
            f"{failed} messages could not be restored (see above); run the restore again", ExitCode.FAILED
        )
    if not to_send:
        raise OpsError(
            "everything in the backup is already on its queue: nothing to restore", ExitCode.NOTHING_TO_DO
        )


def _emit_restore(
    run: State,
    plans: Sequence[RestorePlan],
    reports: Sequence[RestoreReport],
    dry_run: bool,
    path: Path,
    *,
    stopped: BaseException | None = None,
) -> None:
    records = [
        {"queue_name": plan.queue.name, **plan.to_json(), **report.to_json(), "dry_run": dry_run}
        for plan, report in zip(plans, reports, strict=True)
    ]
    failures = [_failure_json(f) for report in reports for f in report.failures]
    for failure in failures:
        run.output.note(f"failed: {failure['message_id']} {failure['code']} {failure['detail']}")
    why: str | None = None
    if stopped is not None:
        interrupted = isinstance(stopped, KeyboardInterrupt)
        why = "interrupted" if interrupted else "error"
        said = why if interrupted else f"stopped by an error ({failure_code(stopped)})"
        run.output.note(
            f"{said}: {sum(r.sent for r in reports)} restored before it stopped; the rest was not sent. "
            "Run the same restore again: it skips what is already on the queue"
        )
    summary = {
        "backup": str(path),
        "dry_run": dry_run,
        "queues": records,
        "complete": stopped is None and not any(r.failed for r in reports),
        "stopped": why,
    }
    title = f"restore from {path}{' (dry run: nothing sent)' if dry_run else ''}"
    run.output.emit(
        {"restore": summary, "failures": failures},
        records=records,
        columns=RESTORE_COLUMNS,
        title=f"{title} ({why}: not complete)" if why else title,
    )


# --- dlq native-redrive ------------------------------------------------------------------------------------


def native_redrive_command(
    ctx: typer.Context,
    rate: Annotated[
        int | None, typer.Option(min=1, max=MAX_NATIVE_RATE, help="MaxNumberOfMessagesPerSecond (1..500).")
    ] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
) -> None:
    """SQS's own redrive (StartMessageMoveTask) of the whole processing DLQ: fast, but UNMARKED.

    SQS moves every message with every attribute as it is: no REPLAYED mark, the reason attributes
    (ERROR_CODE ...) kept, no filter, no limit, no backup. Exactly-once does not depend on the mark (the linker's
    ledger decides), but the linker then logs these as new deliveries, and one that SQS redrives again without the
    linker seeing it lands in the DLQ with its old reason. Prefer `dlq replay`; use this for very large DLQs.
    """
    run = state(ctx)
    sqs = run.clients.sqs
    # SQS would move them to any queue it is given: only to the queue whose RedrivePolicy names this DLQ.
    source, destination, relation = _dlq_and_main(run, Dlq.PROCESSING, force=False, override=None)
    _require_messages(source, Dlq.PROCESSING, "move")
    run.output.note(f"from processing DLQ {source.url} (~{source.visible} visible)")
    run.output.note(
        f"to   main queue {destination.url} ({relation}), UNMARKED (no REPLAYED, reason attributes kept)"
    )
    record: dict[str, Any] = {"dlq_url": source.url, "destination_url": destination.url, "dry_run": dry_run}
    if dry_run:
        running = running_task(sqs, source.arn)
        # Every documented key, in its order (as after a real run), so text columns stay where scripts expect.
        record |= {
            "task_handle": running.task_handle if running else None,
            "status": running.status if running else None,
            "moved": running.moved if running else 0,
            "failure_reason": running.failure_reason if running else None,
        }
        _emit_native(run, record, [f"would start a move task for ~{source.visible} messages"])
        return
    ensure_no_running_task(sqs, source.arn)
    run.confirm(
        yes,
        action="Move UNMARKED (no REPLAYED, reason attributes kept), with SQS's message move task,",
        queue=source,
        count=f"all ~{source.visible} messages",
        detail=f" to {destination.name}",
    )
    handle = start_move_task(sqs, source_arn=source.arn, destination_arn=destination.arn, rate=rate)
    run.output.note(f"move task started: {handle}")
    try:
        with _progress(run, source.visible, "moving") as show:
            last = wait_for_task(
                sqs,
                source_arn=source.arn,
                task_handle=handle,
                on_progress=lambda t: show(t.moved),
                poll_seconds=run.overrides.poll_seconds,
            )
    except KeyboardInterrupt:
        run.output.note(
            f"stopped watching; the task keeps running. Cancel: aws sqs cancel-message-move-task --task-handle {handle}"
        )
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    record |= _task_json(handle, last)
    _emit_native(run, record, [])
    if last.status != "COMPLETED":
        raise OpsError(
            f"move task {last.status}: {last.failure_reason or 'no reason given'}", ExitCode.FAILED
        )


def _task_json(handle: str, task: MoveTask) -> dict[str, Any]:
    return {
        "task_handle": handle,
        "status": task.status,
        "moved": task.moved,
        "failure_reason": task.failure_reason,
    }


def _emit_native(run: State, record: dict[str, Any], footer: list[str]) -> None:
    run.output.emit(
        {"native_redrive": record},
        records=[record],
        columns=(
            Column("status", "status"),
            Column("moved", "moved", numeric=True),
            Column("task_handle", "task", whole=True),
        ),
        title="native redrive (unmarked)",
        footer=footer,
    )


def register(dlq: typer.Typer) -> None:
    """Add `replay`, `discard`, `restore` and `native-redrive` to the `dlq` group."""
    dlq.command("replay")(handles_errors(replay_command))
    dlq.command("discard")(handles_errors(discard_command))
    dlq.command("restore")(handles_errors(restore_command))
    dlq.command("native-redrive")(handles_errors(native_redrive_command))
