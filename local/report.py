"""The run's report: a readable rich rendering and the machine-readable JSON."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from local.pipeline import SweepRun
from local.reconcile import InputResult, Outcome, Reconciliation

_STYLES = {
    Outcome.LINKED: "green",
    Outcome.SKIPPED: "yellow",
    Outcome.DEAD_LETTERED: "magenta",
    Outcome.FILTERED: "cyan",
    Outcome.REJECTED: "red",
    Outcome.PENDING: "red",
    Outcome.DROPPED: "red",
    Outcome.LOST: "bold red",
}
# Above this many inputs, only the interesting rows (not linked as expected) are listed one by one.
MAX_ROWS = 60


def _where(result: InputResult) -> str:
    if result.outcome is Outcome.LINKED:
        return ", ".join(result.case_ids)
    if result.dlq_queue:
        return f"{result.dlq_queue} DLQ"
    return ""


def _detail(result: InputResult) -> str:
    if result.outcome is Outcome.LINKED:
        extra = f" ({result.items} items)" if result.items > 1 else ""
        return f"{result.item_type}{extra}"
    if result.outcome is Outcome.DEAD_LETTERED:
        message = (result.error_message or "")[:90]
        return f"{result.error_code}: {message}" if message else str(result.error_code)
    if result.outcome is Outcome.PENDING:
        return f"still on the queue after {result.deliveries} deliveries"
    if result.outcome is Outcome.LOST:
        return f"no item, no DLQ message, never acknowledged ({result.deliveries} deliveries)"
    return result.reason or ""


def input_records(result: Reconciliation) -> list[dict[str, str | None]]:
    """What happened to each input, as the table's rows say it: `--output text`'s records (None: nothing to say,
    no expected outcome)."""
    return [
        {
            "input": row.name,
            "route": row.route,
            "outcome": row.outcome.value,
            "where": _where(row) or None,
            "detail": _detail(row) or None,
            "expected": None if row.expected is None else row.mismatch or "ok",
        }
        for row in result.inputs
    ]


def render(
    result: Reconciliation, console: Console, *, facts: dict[str, Any] | None = None, verbose: bool = False
) -> None:
    """Print what happened to every input, the DLQs by reason and the skips by reason (then render_verdict)."""
    rows = result.inputs
    if not verbose and len(rows) > MAX_ROWS:
        rows = [r for r in rows if r.outcome is not Outcome.LINKED or r.mismatch is not None]
    table = Table(title="What happened to each input", show_lines=False, expand=False)
    table.add_column("input", overflow="fold")
    table.add_column("route")
    table.add_column("outcome")
    table.add_column("case / queue", overflow="fold")
    table.add_column("detail", overflow="fold")
    table.add_column("expected")
    for row in rows:
        style = _STYLES[row.outcome]
        if row.expected is None:
            verdict = ""
        elif row.mismatch is None:
            verdict = "[green]ok[/]"
        else:
            verdict = f"[bold red]{escape(row.mismatch)}[/]"
        # Names, reasons and error messages are text, not markup: a `[draft]` in a file name stays.
        table.add_row(
            escape(row.name),
            row.route,
            f"[{style}]{row.outcome.value}[/]",
            escape(_where(row)),
            escape(_detail(row)),
            verdict,
        )
    if rows:
        console.print(table)
    hidden = len(result.inputs) - len(rows)
    if hidden:
        console.print(f"[dim]{hidden} inputs linked as expected are not listed (--verbose lists them).[/]")

    summary = result.summary()
    totals = Table(title="Totals", show_header=False)
    totals.add_column("what")
    totals.add_column("count", justify="right")
    for key in (
        "inputs",
        "linked",
        "skipped",
        "dead_lettered",
        "filtered",
        "rejected",
        "dropped",
        "pending",
        "lost",
    ):
        totals.add_row(key.replace("_", " "), str(summary[key]))
    totals.add_row("related items created", str(result.items_created))
    totals.add_row("duplicate related items", str(result.duplicates))
    if result.unattributed_items:
        totals.add_row("items no input explains", str(result.unattributed_items))
    stats = result.poller
    totals.add_row(
        "invocations (records)", f"{stats.invocations} ({stats.records}, {stats.failed} handed back)"
    )
    console.print(totals)

    if result.dlq_by_code:
        dlq = Table(title="Dead-letter queues by ERROR_CODE")
        dlq.add_column("queue")
        dlq.add_column("ERROR_CODE")
        dlq.add_column("messages", justify="right")
        for queue, codes in sorted(result.dlq_by_code.items()):
            for code, count in sorted(codes.items()):
                dlq.add_row(queue, code, str(count))
        console.print(dlq)
    if result.skips_by_reason:
        skips = Table(title="Skips by reason")
        skips.add_column("reason")
        skips.add_column("inputs", justify="right")
        for reason, count in sorted(result.skips_by_reason.items()):
            skips.add_row(escape(reason), str(count))
        console.print(skips)
    if facts:
        console.print("[dim]" + ", ".join(f"{k} {v}" for k, v in facts.items()) + "[/]")
    for error in result.poller_errors[:10]:
        console.print(f"[red]poller: {escape(error)}[/]")


def render_verdict(result: Reconciliation, console: Console, sweep: SweepRun | None = None) -> None:
    """The last line: OK, or FAILED and why (the sweeper's failure included); never "every input has its
    expected outcome" when some inputs had none to check."""
    unchecked = sum(1 for r in result.inputs if r.expected is None)
    not_checked = (
        f"{unchecked} of {len(result.inputs)} inputs not checked (no expected.json names them)"
        if unchecked
        else ""
    )
    problems = []
    if sweep is not None and not sweep.ok:
        problems.append(f"the sweeper failed ({sweep.status})")
    if result.mismatches:
        problems.append(f"{len(result.mismatches)} outcome(s) differ from the expected ones")
    if result.lost:
        problems.append(f"{result.lost} lost")
    if result.pending or not result.drained:
        problems.append(f"{result.pending} still pending (the queue did not drain in time)")
    if result.duplicates:
        problems.append(f"{result.duplicates} duplicate related item(s)")
    if problems:
        console.print(
            "[bold red]FAILED[/]: " + "; ".join([*problems, not_checked] if unchecked else problems)
        )
    elif unchecked:
        console.print(f"[bold green]OK[/]: nothing lost, nothing duplicated; {not_checked}.")
    else:
        console.print(
            "[bold green]OK[/]: every input has its expected outcome; nothing lost, nothing duplicated."
        )


# What the sweeper's report says, in the order it is shown.
SWEEP_FIGURES = (
    ("SweepContactsFound", "finished contacts found"),
    ("SweepAlreadyHandled", "already handled (linked or dead-lettered)"),
    ("SweepNeverSeen", "never seen: their event was lost"),
    ("SweepNoCaseId", "seen without a case id, looked at again"),
    ("SweepEnqueued", "enqueued for the linker"),
    ("SweepChainCase", "enqueued with their contact chain's case"),
    ("SweepChainAmbiguous", "chain on several cases (not guessed)"),
    ("SweepSearchPages", "SearchContacts pages"),
)


def coverage_document(before: Reconciliation, after: Reconciliation, sweep: SweepRun) -> dict[str, Any]:
    """The report's `coverage`: contacts that carry a case id linked by the events alone, and after the sweep."""
    return {
        "events_alone": before.coverage(),
        "after_sweep": after.coverage(),
        "sweep": {"status": sweep.status, "error": sweep.error, "report": sweep.report},
    }


def render_coverage(before: Reconciliation, after: Reconciliation, sweep: SweepRun, console: Console) -> None:
    """Coverage of the contacts that carry a case id, from the events alone and after the sweep."""
    table = Table(title="Contacts that carry a case id: linked", show_header=True)
    table.add_column("")
    table.add_column("linked", justify="right")
    table.add_column("coverage", justify="right")
    for label, result in (("by the contact events alone", before), ("after the sweep", after)):
        figures = result.coverage()
        share = figures["share"]
        style = "green" if share == 1 else "yellow" if share is not None else "dim"
        table.add_row(
            label,
            f"{figures['linked']} of {figures['contacts']}",
            f"[{style}]{share:.1%}[/]" if share is not None else "-",
        )
    console.print(table)
    if not sweep.ok or sweep.report is None:
        console.print(
            f"[bold red]the sweeper failed[/] ({sweep.status}): {escape(sweep.error or 'no report')}"
        )
        return
    report = sweep.report
    details = Table(title="The sweep", show_header=False)
    details.add_column("what")
    details.add_column("count", justify="right")
    for key, label in SWEEP_FIGURES:
        details.add_row(label, str(report.get(key, 0)))
    coverage = report.get("EventCoverage")
    details.add_row(
        "EventCoverage (share the events had handled)", f"{coverage:.1%}" if coverage is not None else "-"
    )
    console.print(details)
