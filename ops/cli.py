"""The typer commands: thin wrappers that resolve queues, call ops.sqs / ops.replay / ops.native, and print."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ops.aws import Clients
from ops.errors import ExitCode, OpsError, translate_botocore_error, translate_client_error
from ops.native import (
    MAX_NATIVE_RATE,
    MoveTask,
    ensure_no_running_task,
    running_task,
    start_move_task,
    wait_for_task,
)
from ops.queues import DEFAULT_STACK_NAME, Dlq, Queues, resolve_queues
from ops.replay import BackupWriter, Pacer, Replayer, ReplayReport, default_backup_path
from ops.send import collect_files, read_bodies, send_bodies
from ops.sqs import QueueDepth, oldest_age_from_cloudwatch, peek, queue_depth
from ops.summary import FILTER_HELP, MessageSummary, count_by_error, parse_filters, summarise

EXIT_CODES_HELP = (
    "Exit codes: 0 done; 1 failed or partly failed (messages not sent/deleted, move task failed, other AWS "
    "error); 2 usage (bad options, --yes missing without a terminal, unwritable backup); 3 stack, output or "
    "queue not found; 4 access denied or no credentials; 5 nothing to do (empty DLQ, nothing matched); "
    "6 a message move task is already running; 130 interrupted or declined at the prompt."
)

app = typer.Typer(
    name="ops",
    help="case-linker operator tool: inspect and replay the dead-letter queues, send sample events.\n\n"
    "Queues come from the CloudFormation stack's outputs (--stack-name), or from --queue-url/--dlq-url/"
    "--rule-target-dlq-url: when any URL is given the stack is not read. AWS_ENDPOINT_URL points every "
    "client at a local endpoint (moto, the local pipeline).",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
dlq_app = typer.Typer(
    help="Inspect (stats, peek) and replay the processing and rule-target DLQs.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
)
app.add_typer(dlq_app, name="dlq")


class DlqChoice(StrEnum):
    PROCESSING = "processing"
    RULE_TARGET = "rule-target"
    ALL = "all"

    def selected(self) -> list[Dlq]:
        return list(Dlq) if self is DlqChoice.ALL else [Dlq(self.value)]


@dataclass
class Overrides:
    """What tests inject through `CliRunner.invoke(app, ..., obj=Overrides(...))`; empty in real use."""

    clients: dict[str, Any] = field(default_factory=dict)
    interactive: bool | None = None
    poll_seconds: float = 2.0
    wait_seconds: int = 1


@dataclass
class State:
    clients: Clients
    overrides: Overrides
    stack_name: str
    queue_url: str | None
    processing_dlq_url: str | None
    rule_target_dlq_url: str | None
    _queues: Queues | None = None

    def queues(self) -> Queues:
        if self._queues is None:
            self._queues = resolve_queues(
                cloudformation=self.clients.cloudformation,
                stack_name=self.stack_name,
                queue_url=self.queue_url,
                processing_dlq_url=self.processing_dlq_url,
                rule_target_dlq_url=self.rule_target_dlq_url,
            )
        return self._queues

    def interactive(self) -> bool:
        if self.overrides.interactive is not None:
            return self.overrides.interactive
        return sys.stdin.isatty()


def _out() -> Console:
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


P = ParamSpec("P")
R = TypeVar("R")


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn our errors, AWS errors and Ctrl-C into one line on stderr and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except OpsError as e:
            _fail(e)
        except ClientError as e:
            _fail(translate_client_error(e, f"AWS {e.operation_name}"))
        except BotoCoreError as e:
            _fail(translate_botocore_error(e, "AWS call"))
        except KeyboardInterrupt:
            _err().print(
                "[yellow]interrupted[/]: messages this run held are released or reappear on their own."
            )
            raise typer.Exit(ExitCode.INTERRUPTED) from None

    return wrapper


def _fail(error: OpsError) -> NoReturn:
    console = _err()
    console.print(f"[bold red]error[/]: {error.message}", soft_wrap=True)
    if error.hint:
        console.print(f"hint: {error.hint}", soft_wrap=True)
    raise typer.Exit(error.exit_code)


@app.callback()
def main_options(
    ctx: typer.Context,
    stack_name: Annotated[
        str,
        typer.Option(
            envvar="CASE_LINKER_STACK_NAME", help="CloudFormation stack whose outputs name the queues."
        ),
    ] = DEFAULT_STACK_NAME,
    queue_url: Annotated[
        str | None, typer.Option("--queue-url", help="Main queue URL (instead of the stack's MainQueueUrl).")
    ] = None,
    processing_dlq_url: Annotated[
        str | None,
        typer.Option(
            "--dlq-url",
            "--processing-dlq-url",
            help="Processing DLQ URL (instead of the stack's ProcessingDlqUrl).",
        ),
    ] = None,
    rule_target_dlq_url: Annotated[
        str | None,
        typer.Option(
            "--rule-target-dlq-url", help="EventBridge rule-target DLQ URL (instead of RuleTargetDlqUrl)."
        ),
    ] = None,
    region: Annotated[str | None, typer.Option(help="AWS Region, as in the AWS CLI.")] = None,
    profile: Annotated[str | None, typer.Option(help="AWS named profile, as in the AWS CLI.")] = None,
) -> None:
    """Options shared by every command."""
    overrides = ctx.obj if isinstance(ctx.obj, Overrides) else Overrides()
    ctx.obj = State(
        clients=Clients(region=region, profile=profile, injected=overrides.clients),
        overrides=overrides,
        stack_name=stack_name,
        queue_url=queue_url,
        processing_dlq_url=processing_dlq_url,
        rule_target_dlq_url=rule_target_dlq_url,
    )


def _state(ctx: typer.Context) -> State:
    state = ctx.find_root().obj
    if not isinstance(state, State):
        raise RuntimeError("the root callback did not run")
    return state


def _known_dlqs(queues: Queues, choice: DlqChoice) -> list[tuple[Dlq, str]]:
    if choice is not DlqChoice.ALL:
        which = Dlq(choice.value)
        return [(which, queues.require_dlq(which))]
    known = [(which, url) for which in Dlq if (url := queues.dlq(which)) is not None]
    if not known:
        raise OpsError("no DLQ known: pass --dlq-url and/or --rule-target-dlq-url", ExitCode.USAGE)
    return known


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


# --- dlq stats ---------------------------------------------------------------------------------------------


@dlq_app.command("stats")
@handles_errors
def stats_command(
    ctx: typer.Context,
    sample: Annotated[
        int,
        typer.Option(
            min=0,
            help="Messages to peek per DLQ for the counts by ERROR_CODE and the oldest SentTimestamp "
            "(peeking raises their receive count; 0 = read nothing).",
        ),
    ] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per DLQ.")] = False,
) -> None:
    """Per DLQ: depth, age of the oldest message, counts by ERROR_CODE (from peeked messages)."""
    state = _state(ctx)
    sqs = state.clients.sqs
    rows = []
    for which, url in _known_dlqs(state.queues(), DlqChoice.ALL):
        depth = queue_depth(sqs, url)
        sampled = (
            peek(
                sqs,
                url,
                max_messages=sample,
                expected=depth.visible,
                wait_seconds=state.overrides.wait_seconds,
            )
            if sample and depth.visible
            else []
        )
        summaries = [summarise(m) for m in sampled]
        cloudwatch_age = oldest_age_from_cloudwatch(state.clients.cloudwatch, url) if depth.total else None
        sampled_ages = [s.age_seconds for s in summaries if s.age_seconds is not None]
        if cloudwatch_age is not None:
            age, age_source = cloudwatch_age, "CloudWatch ApproximateAgeOfOldestMessage"
        elif sampled_ages:
            age, age_source = max(sampled_ages), f"oldest SentTimestamp of {len(summaries)} peeked"
        else:
            age, age_source = None, "no messages peeked"
        rows.append((which, depth, age, age_source, len(summaries), count_by_error(summaries)))

    if as_json:
        for which, depth, age, age_source, n, counts in rows:
            record = {
                "dlq": str(which),
                "url": depth.url,
                "visible": depth.visible,
                "in_flight": depth.in_flight,
                "delayed": depth.delayed,
                "depth": depth.visible + depth.in_flight,
                "oldest_age_seconds": age,
                "oldest_age_source": age_source,
                "sampled": n,
                "by_error_code": counts,
            }
            print(json.dumps(record))
        return

    out = _out()
    table = Table(title=f"DLQs ({state.queues().origin})")
    for column in ("DLQ", "depth", "visible", "in flight", "oldest message", "by ERROR_CODE (peeked)"):
        table.add_column(column, overflow="fold")
    for which, depth, age, age_source, n, counts in rows:
        by_code = "\n".join(f"{code}: {count}" for code, count in counts.items()) or "-"
        if n and n < depth.visible + depth.in_flight:
            by_code += f"\n(sample of {n})"
        oldest = f"{format_age(age)} ({age_source})" if age is not None else "-"
        table.add_row(
            str(which),
            str(depth.visible + depth.in_flight),
            str(depth.visible),
            str(depth.in_flight),
            oldest,
            by_code,
        )
    out.print(table)
    out.print("depth = ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible.")


# --- dlq peek ----------------------------------------------------------------------------------------------


@dlq_app.command("peek")
@handles_errors
def peek_command(
    ctx: typer.Context,
    max_messages: Annotated[int, typer.Option("--max", min=1, help="Messages to show per DLQ.")] = 10,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON lines, one per message (ids and types only).")
    ] = False,
    dlq: Annotated[DlqChoice, typer.Option(help="Which DLQ to look at.")] = DlqChoice.ALL,
) -> None:
    """Show DLQ messages without consuming them: error, event or item type, contact and case ids, age, receives.

    Messages are received with a 30 s visibility timeout and released at once (visibility 0), so they stay
    in the DLQ. Trade-off: each peek raises a message's ApproximateReceiveCount, and while held (or for 30 s
    if this tool dies mid-peek) the messages are invisible to a concurrent replay. Bodies are never printed:
    no comment text, phone numbers or emails, only types and ids.
    """
    state = _state(ctx)
    sqs = state.clients.sqs
    found: list[tuple[Dlq, MessageSummary]] = []
    for which, url in _known_dlqs(state.queues(), dlq):
        depth = queue_depth(sqs, url)
        if not depth.visible:
            continue
        messages = peek(
            sqs,
            url,
            max_messages=max_messages,
            expected=depth.visible,
            wait_seconds=state.overrides.wait_seconds,
        )
        found.extend((which, summarise(m)) for m in messages)
    if not found:
        raise OpsError("no visible messages in the DLQ: nothing to peek", ExitCode.NOTHING_TO_DO)

    if as_json:
        for which, summary in found:
            print(json.dumps({"dlq": str(which), **summary.to_json()}))
        return

    table = Table(title="DLQ messages (not consumed)")
    for column in (
        "DLQ",
        "message id",
        "error",
        "error message",
        "what",
        "contact id",
        "case id",
        "age",
        "rcv",
    ):
        table.add_column(column, overflow="fold")
    for which, s in found:
        receives = "/".join(str(n) if n is not None else "-" for n in (s.receive_count, s.dlq_receive_count))
        table.add_row(
            str(which),
            s.message_id,
            s.error_label,
            s.error_message or "-",
            f"{s.what} ({s.kind})",
            s.contact_id or "-",
            s.case_id or "-",
            format_age(s.age_seconds),
            receives,
        )
    out = _out()
    out.print(table)
    out.print("rcv = receives on the main queue (RECEIVE_COUNT) / on the DLQ (this peek included).")


# --- dlq replay --------------------------------------------------------------------------------------------


@dlq_app.command("replay")
@handles_errors
def replay_command(
    ctx: typer.Context,
    max_messages: Annotated[int | None, typer.Option("--max", min=1, help="Move at most N messages.")] = None,
    filters: Annotated[list[str] | None, typer.Option("--filter", help=FILTER_HELP)] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would move; send and delete nothing.")
    ] = False,
    rate: Annotated[float | None, typer.Option(min=0.1, help="At most R messages per second.")] = None,
    backup: Annotated[
        Path | None,
        typer.Option(
            help="JSON-lines backup (appended, mode 0600). Default: ./dlq-backup-<queue>-<time>.jsonl."
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a TTY).")
    ] = False,
    native: Annotated[
        bool,
        typer.Option(
            "--native",
            help="Use SQS StartMessageMoveTask (processing DLQ only; no --filter/--max/--backup; keeps all attributes).",
        ),
    ] = False,
    dlq: Annotated[Dlq, typer.Option(help="The DLQ to replay from.")] = Dlq.PROCESSING,
) -> None:
    """Move DLQ messages back to the main queue, body and message attributes kept.

    Each message is appended to the backup (fsynced) and sent to the main queue before it is deleted from the
    DLQ; a crash in between leaves a duplicate, which the linker's idempotency makes harmless. The failure
    attributes (ERROR_CODE, ERROR_MESSAGE, SOURCE_MESSAGE_ID, RECEIVE_COUNT and EventBridge's) are dropped so a
    new failure is labelled afresh; the backup keeps them. Messages read but not moved are released at once.
    """
    state = _state(ctx)
    try:
        message_filter = parse_filters(filters)
    except ValueError as e:
        raise OpsError(str(e), ExitCode.USAGE) from e
    if native:
        _check_native_options(
            filters=bool(filters), max_messages=max_messages, backup=backup, dlq=dlq, rate=rate
        )

    sqs = state.clients.sqs
    queues = state.queues()
    source = queue_depth(sqs, queues.require_dlq(dlq))
    destination = queue_depth(sqs, queues.require_main())
    if not source.visible:
        in_flight = f" ({source.in_flight} in flight, held by another reader)" if source.in_flight else ""
        raise OpsError(f"the {dlq} DLQ is empty{in_flight}: nothing to replay", ExitCode.NOTHING_TO_DO)

    out = _out()
    out.print(f"from  {dlq} DLQ {source.url} (~{source.visible} messages)", soft_wrap=True)
    out.print(f"to    main queue {destination.url}", soft_wrap=True)
    if native:
        _native_replay(state, source, destination, rate=rate, dry_run=dry_run, yes=yes)
        return
    if filters:
        out.print(f"filter {' '.join(filters)}", soft_wrap=True)
    if not dry_run:
        _confirm(
            state, yes, f"Replay {'up to ' + str(max_messages) if max_messages else 'all'} matching messages?"
        )

    writer: BackupWriter | None = None
    if not dry_run:
        path = backup or default_backup_path(source.url)
        try:
            writer = BackupWriter(path)
        except OSError as e:
            raise OpsError(f"cannot write the backup file {path}: {e.strerror}", ExitCode.USAGE) from e
        out.print(f"backup {path}")

    total = min(source.visible, max_messages) if max_messages else source.visible
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_err(),
        transient=True,
    ) as progress:
        task = progress.add_task("dry run" if dry_run else "replaying", total=total)

        def on_progress(report: ReplayReport) -> None:
            done = report.matched if dry_run else report.deleted + report.failed
            progress.update(task, completed=done, description=f"read {report.read}")

        replayer = Replayer(
            sqs,
            source_url=source.url,
            destination_url=destination.url,
            message_filter=message_filter,
            max_messages=max_messages,
            dry_run=dry_run,
            backup=writer,
            pacer=Pacer(rate),
            wait_seconds=state.overrides.wait_seconds,
            expected=source.visible,
            on_progress=on_progress,
        )
        try:
            replayer.run()
        except OSError as e:
            _print_report(replayer.report, dry_run)
            raise OpsError(
                f"writing the backup failed ({e.strerror}); stopped before sending the messages not backed up",
                ExitCode.FAILED,
            ) from e
        except (OpsError, KeyboardInterrupt):
            _print_report(replayer.report, dry_run)
            raise
        finally:
            if writer is not None:
                writer.close()
    report = replayer.report
    _print_report(report, dry_run)
    if not report.ok:
        raise typer.Exit(ExitCode.FAILED)
    if not report.matched:
        _err().print("no message matched: nothing replayed")
        raise typer.Exit(ExitCode.NOTHING_TO_DO)


def _check_native_options(
    *, filters: bool, max_messages: int | None, backup: Path | None, dlq: Dlq, rate: float | None
) -> None:
    if dlq is Dlq.RULE_TARGET:
        raise OpsError(
            "--native works for the processing DLQ only",
            ExitCode.USAGE,
            hint="StartMessageMoveTask needs a source that is the DLQ of another SQS queue; the rule-target DLQ "
            "is EventBridge's, its messages never were in an SQS queue. Replay it without --native.",
        )
    rejected = [
        name
        for name, given in (("--filter", filters), ("--max", max_messages is not None), ("--backup", backup))
        if given
    ]
    if rejected:
        raise OpsError(
            f"--native cannot be combined with {', '.join(rejected)}",
            ExitCode.USAGE,
            hint="SQS moves every message of the DLQ and keeps no backup; drop --native to filter, limit or back up.",
        )
    if rate is not None and not 1 <= rate <= MAX_NATIVE_RATE:
        raise OpsError(
            f"--rate with --native must be 1..{MAX_NATIVE_RATE} (whole messages/s)", ExitCode.USAGE
        )


def _native_replay(
    state: State, source: QueueDepth, destination: QueueDepth, *, rate: float | None, dry_run: bool, yes: bool
) -> None:
    sqs = state.clients.sqs
    out = _out()
    if dry_run:
        running = running_task(sqs, source.arn)
        status = f"a move task is RUNNING ({running.moved} moved)" if running else "no move task running"
        out.print(f"dry run: would start StartMessageMoveTask for ~{source.visible} messages; {status}")
        return
    ensure_no_running_task(sqs, source.arn)
    _confirm(state, yes, f"Move all ~{source.visible} messages with StartMessageMoveTask?")
    handle = start_move_task(
        sqs, source_arn=source.arn, destination_arn=destination.arn, rate=int(rate) if rate else None
    )
    out.print(f"move task started: {handle}", soft_wrap=True)
    last: MoveTask | None = None
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=_err(),
            transient=True,
        ) as progress:
            task = progress.add_task("moving", total=source.visible)

            def on_progress(t: MoveTask) -> None:
                progress.update(
                    task, completed=t.moved, total=t.to_move or source.visible, description=t.status
                )

            last = wait_for_task(
                sqs,
                source_arn=source.arn,
                task_handle=handle,
                on_progress=on_progress,
                poll_seconds=state.overrides.poll_seconds,
            )
    except KeyboardInterrupt:
        _err().print(
            f"stopped watching; the task keeps running. Cancel: aws sqs cancel-message-move-task --task-handle {handle}"
        )
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    out.print(f"move task {last.status}: ~{last.moved} messages moved")
    if last.status != "COMPLETED":
        raise OpsError(
            f"move task {last.status}: {last.failure_reason or 'no reason given'}", ExitCode.FAILED
        )


def _confirm(state: State, yes: bool, question: str) -> None:
    if yes:
        return
    if not state.interactive():
        raise OpsError(
            "stdin is not a terminal, so I cannot ask for confirmation", ExitCode.USAGE, hint="pass --yes"
        )
    if not typer.confirm(question, default=False):
        _err().print("nothing changed")
        raise typer.Exit(ExitCode.INTERRUPTED)


def _print_report(report: ReplayReport, dry_run: bool) -> None:
    out = _out()
    table = Table(title="replay (dry run: nothing sent or deleted)" if dry_run else "replay")
    for column in ("read", "matched", "sent", "deleted", "failed", "skipped"):
        table.add_column(column, justify="right")
    table.add_row(
        *(
            str(n)
            for n in (report.read, report.matched, report.sent, report.deleted, report.failed, report.skipped)
        )
    )
    out.print(table)
    if dry_run and report.matched:
        out.print(f"would move {report.matched} messages")
    if report.failures:
        failures = Table(title="failures")
        for column in ("message id", "stage", "code", "detail"):
            failures.add_column(column, overflow="fold")
        for f in report.failures:
            failures.add_row(f.message_id, f.stage, f.code, f.detail)
        out.print(failures)
        out.print("Messages that failed to send are still in the DLQ (released); run replay again to retry.")


# --- send --------------------------------------------------------------------------------------------------


@app.command("send")
@handles_errors
def send_command(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Files (each one message body), or folders of *.json files (recursively; seed.json and expected.json skipped)."
        ),
    ],
) -> None:
    """Put sample events on the main queue: each JSON file is one SQS message body, sent as-is."""
    state = _state(ctx)
    bodies = read_bodies(collect_files(paths))
    sqs = state.clients.sqs
    url = queue_depth(sqs, state.queues().require_main()).url
    result = send_bodies(sqs, url, bodies)
    table = Table(title=f"sent to {url}")
    table.add_column("file", overflow="fold")
    table.add_column("message id / error", overflow="fold")
    for file, message_id in result.sent:
        table.add_row(str(file), message_id)
    for file, code in result.failed:
        table.add_row(str(file), f"[red]failed: {code}[/]")
    _out().print(table)
    if result.failed:
        raise typer.Exit(ExitCode.FAILED)


def main() -> None:
    """Entry point for `python -m ops`."""
    app(prog_name="python -m ops")
