"""The simulation's tables: every consumer side by side per scenario, then the goals."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool | int):
        return str(value)
    return f"{value:.{digits}f}" if abs(value) < 100 else f"{value:.0f}"


def render(results: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    for group in dict.fromkeys(run["group"] for run in results["runs"]):
        table = Table(title=f"fleet simulation: {group}", show_lines=False)
        for column in (
            "scenario",
            "consumer",
            "goodput / remaining",
            "429 create / list",
            "handed back (>10 s)",
            "DLQ",
            "drain s",
            "co-tenant refused +pts",
            "DynamoDB / call",
            "burst used / account",
            "$ / M links",
            "p95 s",
        ):
            table.add_column(column, overflow="fold")
        for run in (r for r in results["runs"] if r["group"] == group):
            for consumer, result in run["results"].items():
                table.add_row(
                    run["scenario"]["name"],
                    consumer,
                    _number(result["goodput_over_remaining"]),
                    f"{_number(result['throttled_share'])} / {_number(result['list_throttled_share'])}",
                    f"{result['handed_back']} ({result['handed_back_after_10s']})",
                    str(result["dead_lettered"]),
                    _number(result["drain_s"], 1),
                    _number(result["cotenant_refused_rise_points"], 1),
                    _number(result["dynamodb_requests_per_call"]),
                    f"{_number(result['max_burst_used'], 1)} / {_number(result['burst'], 0)}",
                    _number(result["cost_per_million_links_usd"], 2),
                    _number(result["latency_p95_s"], 2),
                )
        console.print(table)
    goals = Table(title="fleet simulation: goals (shared budget)")
    for column in ("scenario", "measure", "goal", "measured", "result"):
        goals.add_column(column, overflow="fold")
    for row in results["goals"]:
        verdict = "[green]pass[/]" if row["pass"] else "[red]FAIL[/]"
        goals.add_row(row["scenario"], row["measure"], row["goal"], _number(row["measured"]), verdict)
    console.print(goals)
