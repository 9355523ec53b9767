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
        ">= 0.97 and >= baseline",
        lambda v, r: v >= 0.97 and v >= (_get(r, "drain.baseline_goodput_over_quota") or 0.0),
    ),
    Goal("drain.rig_ceiling_over_quota", "(the rig's own ceiling, no quota; above 1 or the rig binds)", None),
    Goal("drain.details.case_linker.second_half_goodput_over_quota", "(context)", None),
    Goal("drain.details.baseline.second_half_goodput_over_quota", "(context)", None),
    Goal("drain.throttled_share", "<= 0.02", lambda v, _: v <= 0.02),
    Goal("drain.handed_back", "0", lambda v, _: v == 0),
    Goal("drain.lost", "0", lambda v, _: v == 0),
    Goal("drain.duplicates", "0", lambda v, _: v == 0),
    Goal(
        "drain.details.case_linker.budget_requests_per_cases_call",
        "<= 0.2 (the shared budget's DynamoDB requests)",
        lambda v, _: v <= 0.2,
    ),
    Goal("drain.baseline_goodput_over_quota", "(baseline)", None),
    Goal("drain.baseline_throttled_share", "(baseline)", None),
    Goal("drain.baseline_handed_back", "(baseline)", None),
    Goal("batch.speedup_vs_sequential", "(reported; >= 5 before the ledger)", None),
    Goal("batch.share_of_rig_ceiling", ">= 0.8", lambda v, _: v >= 0.8),
    Goal("batch.details.rig_ceiling_speedup", "(the rig's own ceiling)", None),
    Goal("overhead.ratio_vs_raw_boto3", "<= 1.5", lambda v, _: v <= 1.5),
    Goal("overhead.details.ratio_vs_raw_cases_only", "(context)", None),
    Goal("coldstart.ratio_vs_boto3", "(reported)", None),
    # Issue 15 on the pipeline (bench/quota.py); plain and adaptive consumers beside case-linker.
    Goal("quota.rig_ceiling_items_per_s", "(the rig's own ceiling)", None),
    Goal(
        "quota.small_backlog.case_linker.cases_span_s",
        "<= 1.5 x what the quota allows",
        lambda v, r: v <= 1.5 * (_get(r, "quota.small_backlog.case_linker.quota_allows_s") or 0.0),
    ),
    Goal("quota.small_backlog.case_linker.span_s", "(with Connect and the rig's start)", None),
    Goal("quota.small_backlog.plain.cases_span_s", "(baseline)", None),
    Goal("quota.small_backlog.adaptive.cases_span_s", "(baseline)", None),
    *(
        goal
        for share in ("30", "60")
        for goal in (
            Goal(
                f"quota.cotenant_{share}.case_linker.goodput_over_remaining", ">= 0.9", lambda v, _: v >= 0.9
            ),
            Goal(f"quota.cotenant_{share}.case_linker.throttled_share", "<= 0.05", lambda v, _: v <= 0.05),
            Goal(f"quota.cotenant_{share}.case_linker.handed_back_after_10s", "0", lambda v, _: v == 0),
            Goal(f"quota.cotenant_{share}.case_linker.dead_lettered", "0", lambda v, _: v == 0),
            Goal(f"quota.cotenant_{share}.case_linker.cotenant_refused_rise_points", "(reported)", None),
            Goal(f"quota.cotenant_{share}.plain.goodput_over_remaining", "(baseline)", None),
            Goal(f"quota.cotenant_{share}.plain.throttled_share", "(baseline)", None),
            Goal(f"quota.cotenant_{share}.adaptive.goodput_over_remaining", "(baseline)", None),
            Goal(f"quota.cotenant_{share}.adaptive.throttled_share", "(baseline)", None),
        )
    ),
    Goal("quota.cotenant_60.case_linker.cotenant_refused_rise_points", "<= 5", lambda v, _: v <= 5.0),
    Goal("quota.cotenant_60.plain.cotenant_refused_rise_points", "(baseline)", None),
    Goal("quota.cotenant_60.adaptive.cotenant_refused_rise_points", "(baseline)", None),
    *(
        Goal(
            f"quota.light_mc{mc}.{consumer}.latency_p95_s",
            "<= 1" if consumer == "case_linker" else "(baseline)",
            (lambda v, _: v <= 1.0) if consumer == "case_linker" else None,
        )
        for mc in (2, 10)
        for consumer in ("case_linker", "plain", "adaptive")
    ),
    Goal("quota.light_mc10_window0.case_linker.latency_p95_s", "(batching window 0 s)", None),
    Goal("fleet.goals_missed", "0 (bench/fleet-results.json)", lambda v, _: v == 0),
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
