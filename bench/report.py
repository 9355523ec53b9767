"""Goals, the results file and the table."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Goal:
    key: str  # dotted path into results.json
    goal: str  # as the table shows it
    check: Callable[[float, dict[str, Any]], bool] | None  # None: reported, no goal


def _get(results: dict[str, Any], key: str) -> Any:
    value: Any = results
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


GOALS: tuple[Goal, ...] = (
    Goal(
        "drain.goodput_over_quota",
        ">= 0.95 and >= baseline",
        lambda v, r: v >= 0.95 and v >= (_get(r, "drain.baseline_goodput_over_quota") or 0.0),
    ),
    Goal("drain.details.case_linker.second_half_goodput_over_quota", "(context)", None),
    Goal("drain.details.baseline.second_half_goodput_over_quota", "(context)", None),
    Goal("drain.throttled_share", "<= 0.05", lambda v, _: v <= 0.05),
    Goal("drain.handed_back", "0", lambda v, _: v == 0),
    Goal("drain.lost", "0", lambda v, _: v == 0),
    Goal("drain.duplicates", "0", lambda v, _: v == 0),
    Goal("drain.baseline_goodput_over_quota", "(baseline)", None),
    Goal("drain.baseline_throttled_share", "(baseline)", None),
    Goal("drain.baseline_handed_back", "(baseline)", None),
    Goal("batch.speedup_vs_sequential", ">= 5", lambda v, _: v >= 5.0),
    Goal("overhead.ratio_vs_raw_boto3", "<= 1.5", lambda v, _: v <= 1.5),
    Goal("overhead.details.ratio_vs_raw_cases_only", "(context)", None),
    Goal("coldstart.ratio_vs_boto3", "(reported)", None),
)


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per goal whose measurement is present: measured value and pass/fail (None: no goal)."""
    rows = []
    for goal in GOALS:
        value = _get(results, goal.key)
        if value is None:
            continue
        passed = None if goal.check is None else bool(goal.check(float(value), results))
        rows.append({"key": goal.key, "goal": goal.goal, "measured": value, "pass": passed})
    return rows


def _format(value: Any) -> str:
    if isinstance(value, int):  # bool is an int too
        return str(value)
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return str(value)
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def render(rows: list[dict[str, Any]], title: str, console: Console | None = None) -> None:
    table = Table(title=title)
    table.add_column("measurement")
    table.add_column("goal")
    table.add_column("measured", justify="right")
    table.add_column("result")
    for row in rows:
        verdict = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[dim]-[/]"}[row["pass"]]
        table.add_row(row["key"], row["goal"], _format(row["measured"]), verdict)
    (console or Console()).print(table)
