"""`dlq stats` and `dlq peek`: look at the dead-letter queues without consuming anything."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer

from ops.context import handles_errors, state
from ops.errors import ExitCode, OpsError
from ops.output import Column, OutputFormat
from ops.queues import Dlq
from ops.sqs import oldest_age_from_cloudwatch, peek, queue_depth
from ops.summary import MessageSummary, count_by_error, summarise


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


STATS_COLUMNS = (
    Column("dlq", "DLQ"),
    Column("queue_name", "queue", whole=True),
    Column("depth", "depth", numeric=True),
    Column("visible", "visible", numeric=True),
    Column("in_flight", "in flight", numeric=True),
    Column("oldest_age_seconds", "oldest message", render=lambda r: format_age(r["oldest_age_seconds"])),
    Column("by_error_code", "by ERROR_CODE (sampled)"),
)
PEEK_COLUMNS = (
    Column("dlq", "DLQ"),
    Column("message_id", "message id", whole=True),
    Column("error_label", "error", whole=True),
    Column("error_message", "error message"),
    Column("what", "what", render=lambda r: f"{r['what']} ({r['kind']})"),
    Column("contact_id", "contact id", whole=True),
    Column("case_id", "case id", whole=True),
    Column("age_seconds", "age", render=lambda r: format_age(r["age_seconds"])),
    Column("receive_count", "rcv", render=lambda r: _receives(r)),
    Column("original_attributes", "attrs", render=lambda r: _originals(r)),
)


def _receives(record: Mapping[str, Any]) -> str:
    return "/".join(
        str(n) if n is not None else "-" for n in (record["receive_count"], record["dlq_receive_count"])
    )


def _originals(record: Mapping[str, Any]) -> str:
    if record["original_attributes"] is None:
        return "unreadable"
    return f"{record['original_attributes']}{' packed' if record['originals_packed'] else ''}"


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
    as_json: Annotated[bool, typer.Option("--json", hidden=True, help="Same as --output json.")] = False,
) -> None:
    """Per DLQ: depth, age of the oldest message, counts by ERROR_CODE (from peeked messages)."""
    run = state(ctx)
    if as_json:
        run.output.format = OutputFormat.JSON
    sqs = run.clients.sqs
    records: list[dict[str, Any]] = []
    for which, url in run.known_dlqs(None):
        depth = queue_depth(sqs, url)
        sampled = (
            peek(
                sqs, url, max_messages=sample, expected=depth.visible, wait_seconds=run.overrides.wait_seconds
            )
            if sample and depth.visible
            else []
        )
        summaries = [summarise(m) for m in sampled]
        cloudwatch_age = oldest_age_from_cloudwatch(run.clients.cloudwatch, url) if depth.total else None
        sampled_ages = [s.age_seconds for s in summaries if s.age_seconds is not None]
        if cloudwatch_age is not None:
            age, age_source = cloudwatch_age, "CloudWatch ApproximateAgeOfOldestMessage"
        elif sampled_ages:
            age, age_source = max(sampled_ages), f"oldest SentTimestamp of {len(summaries)} peeked"
        else:
            age, age_source = None, "no messages peeked"
        records.append(
            {
                "dlq": str(which),
                "queue_name": depth.name,
                "queue_url": depth.url,
                "account": depth.account,
                "region": depth.region,
                "depth": depth.visible + depth.in_flight,
                "visible": depth.visible,
                "in_flight": depth.in_flight,
                "delayed": depth.delayed,
                "oldest_age_seconds": age,
                "oldest_age_source": age_source,
                "sampled": len(summaries),
                "by_error_code": count_by_error(summaries),
            }
        )
    run.output.emit(
        {"dlqs": records},
        records=records,
        columns=STATS_COLUMNS,
        title=f"DLQs ({run.queues().origin})",
        footer=[
            "depth = ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible; "
            "counts by ERROR_CODE are over the sampled (peeked) messages."
        ],
    )


def peek_command(
    ctx: typer.Context,
    max_messages: Annotated[int, typer.Option("--max", min=1, help="Messages to show per DLQ.")] = 10,
    dlq: Annotated[Dlq | None, typer.Option(help="Which DLQ to look at (default: both).")] = None,
    as_json: Annotated[bool, typer.Option("--json", hidden=True, help="Same as --output json.")] = False,
) -> None:
    """Show DLQ messages without consuming them: reason, event or item type, contact and case ids, age, receives.

    Messages are received with a 30 s visibility timeout and released at once (visibility 0), so they stay
    in the DLQ. Trade-off: each peek raises a message's ApproximateReceiveCount, and while held (or for 30 s
    if this tool dies mid-peek) the messages are invisible to a concurrent replay. Bodies are never printed:
    no comment text, phone numbers or emails, only types and ids.
    """
    run = state(ctx)
    if as_json:
        run.output.format = OutputFormat.JSON
    sqs = run.clients.sqs
    found: list[tuple[Dlq, MessageSummary]] = []
    for which, url in run.known_dlqs(dlq):
        depth = queue_depth(sqs, url)
        if not depth.visible:
            continue
        messages = peek(
            sqs,
            url,
            max_messages=max_messages,
            expected=depth.visible,
            wait_seconds=run.overrides.wait_seconds,
        )
        found.extend((which, summarise(m)) for m in messages)
    if not found:
        raise OpsError("no visible messages in the DLQ: nothing to peek", ExitCode.NOTHING_TO_DO)
    records = [{"dlq": str(which), **summary.to_json()} for which, summary in found]
    run.output.emit(
        {"messages": records},
        records=records,
        columns=PEEK_COLUMNS,
        title="DLQ messages (not consumed)",
        footer=[
            "rcv = receives on the main queue (RECEIVE_COUNT) / on the DLQ (this peek included); "
            "attrs = the producer's message attributes (packed: they travel in ORIGINAL_ATTRIBUTES)."
        ],
    )


def register(dlq: typer.Typer) -> None:
    """Add `stats` and `peek` to the `dlq` group."""
    dlq.command("stats")(handles_errors(stats_command))
    dlq.command("peek")(handles_errors(peek_command))
