"""The simulation's scenarios (issue 15), the goals they are judged by, and the results file."""

from __future__ import annotations

import datetime as dt
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from bench.fleet.run import CONSUMER_NAMES, CONSUMERS, Consumer, Result, Scenario, deployable, simulate
from bench.fleet.world import CoTenant, DynamoDBModel

GROUPS = ("backlog", "small", "cotenant", "churn", "dynamodb", "light", "arrivals")
# A record's path in the simulation (GetContactAttributes, two Cases calls, bookkeeping): ~0.14 s. Ten
# records at a time per environment: what a fleet can send at most, whatever the quota.
RECORD_SECONDS = 0.14
SHARED = CONSUMER_NAMES["shared"]


@dataclass(frozen=True)
class Case:
    group: str
    scenario: Scenario
    consumers: tuple[Consumer, ...] = CONSUMERS
    ideal_s: float | None = None  # for drains: what the quota allows


def _backlog(quota: float, seconds: float) -> int:
    return max(200, round(quota * seconds))


def cases(quick: bool, groups: Iterable[str] = GROUPS) -> list[Case]:
    """Every scenario to run; `quick` keeps one per size class."""
    selected = set(groups)
    found: list[Case] = []
    sizes = [(2, 2.0), (10, 20.0), (100, 100.0), (1000, 1000.0)]
    if not quick:
        sizes = [(n, q) for q in (2.0, 20.0, 100.0, 1000.0) for n in (2, 10, 100, 1000)]
    if "backlog" in selected:
        for n, q in sizes:
            seconds = 30.0 if q >= 1000 else 60.0
            scenario = Scenario(
                name=f"backlog N={n} q={q:g}",
                environments=n,
                quota=q,
                backlog=_backlog(q, seconds),
                horizon=max(600.0, 20 * seconds),
            )
            if deployable(scenario):
                found.append(Case("backlog", scenario))
    if "small" in selected:
        for n in (2, 10) if quick else (2, 5, 10):
            scenario = Scenario(name=f"small backlog N={n} q=2", environments=n, quota=2.0, backlog=20)
            burst = scenario.account_burst - 1  # a per-API bucket, full at the start
            found.append(Case("small", scenario, ideal_s=max(0.0, (20 - burst) / 2.0)))
    if "cotenant" in selected:
        for n, q in [(2, 2.0), (10, 20.0), (100, 100.0), (1000, 1000.0)][: 2 if quick else 4]:
            for share in (0.3, 0.6):
                for bursty in (False, True):
                    seconds = 180.0 if q < 100 else 60.0
                    scenario = Scenario(
                        name=f"co-tenant {share:.0%} {'bursty' if bursty else 'steady'} N={n} q={q:g}",
                        environments=n,
                        quota=q,
                        backlog=_backlog(q * (1 - share), seconds),
                        cotenant=CoTenant(share, bursty=bursty),
                        horizon=20 * seconds,
                    )
                    found.append(Case("cotenant", scenario))
    if "churn" in selected:
        for n, q in [(10, 20.0), (100, 100.0)][: 1 if quick else 2]:
            scenario = Scenario(
                name=f"environments come and go (mean life 30 s) N={n} q={q:g}",
                environments=n,
                quota=q,
                backlog=_backlog(q, 120.0),
                churn_s=30.0,
            )
            found.append(Case("churn", scenario, consumers=("shared", "static")))
    if "dynamodb" in selected:
        for label, model in (
            ("slow (0.6 s) from 20 s to 50 s", DynamoDBModel(slow=(20.0, 50.0))),
            ("unreachable from 20 s to 50 s", DynamoDBModel(outage=(20.0, 50.0))),
        ):
            scenario = Scenario(
                name=f"DynamoDB {label} N=10 q=20", environments=10, quota=20.0, backlog=2400, dynamodb=model
            )
            found.append(Case("dynamodb", scenario, consumers=("shared",)))
    if "light" in selected:
        for n in (2, 10):
            for window in (2.0, 0.0):
                scenario = Scenario(
                    name=f"light load 0.5/s N={n} q=2 batching window {window:g} s",
                    environments=n,
                    quota=2.0,
                    arrival_rate=0.5,
                    arrival_until=300.0 if quick else 600.0,
                    batching_window=window,
                )
                found.append(Case("light", scenario, consumers=("shared", "static")))
    if "arrivals" in selected:
        scenario = Scenario(
            name="bursty arrivals (80% of the quota in 5 s waves) N=10 q=20",
            environments=10,
            quota=20.0,
            arrival_rate=16.0,
            arrival_until=300.0,
            bursty_arrivals=True,
        )
        found.append(Case("arrivals", scenario))
    return found


@dataclass(frozen=True)
class Goal:
    group: str
    measure: str
    goal: str
    check: Callable[[Result, Case], bool]
    applies: Callable[[Case], bool] = lambda case: True


GOALS: tuple[Goal, ...] = (
    Goal(
        "backlog",
        "goodput_over_remaining",
        ">= 0.97 (where the fleet can reach the quota)",
        lambda r, c: r.goodput_over_remaining >= 0.97,
        lambda c: _can_reach_quota(c),
    ),
    Goal("backlog", "throttled_share", "<= 0.02", lambda r, c: r.throttled_share <= 0.02),
    Goal("backlog", "handed_back", "0", lambda r, c: r.handed_back == 0),
    Goal(
        "backlog",
        "dynamodb_requests_per_call",
        "<= 0.2 (at full load)",
        lambda r, c: (r.dynamodb_requests_per_call or 0) <= 0.2,
        lambda c: _can_reach_quota(c),
    ),
    Goal("small", "drain_s", "<= 1.5 x what the quota allows", lambda r, c: _drain_within(r, c, 1.5)),
    Goal("cotenant", "goodput_over_remaining", ">= 0.9", lambda r, c: r.goodput_over_remaining >= 0.9),
    Goal("cotenant", "throttled_share", "<= 0.05", lambda r, c: r.throttled_share <= 0.05),
    Goal("cotenant", "handed_back_after_10s", "0", lambda r, c: r.handed_back_after_10s == 0),
    Goal("cotenant", "dead_lettered", "0", lambda r, c: r.dead_lettered == 0),
    Goal(
        "cotenant",
        "cotenant_refused_rise_points",
        "<= 5 (co-tenant at 60%, steady)",
        lambda r, c: (r.cotenant_refused_rise_points or 0) <= 5,
        lambda c: (
            c.scenario.cotenant is not None
            and c.scenario.cotenant.share == 0.6
            and not c.scenario.cotenant.bursty
        ),
    ),
    Goal(
        "*",
        "fleet_alone_refused",
        "0 (never beyond the account's burst)",
        lambda r, c: r.fleet_alone_refused == 0,
    ),
    Goal(
        "*",
        "max_fleet_rate",
        "<= quota (AIMD never above it)",
        lambda r, c: r.max_fleet_rate is None or r.max_fleet_rate <= c.scenario.quota + 1e-9,
    ),
    Goal(
        "light",
        "latency_p95_s",
        "<= 1 s (batching window 0 s, the proposed setting)",
        lambda r, c: (r.latency_p95_s or 0) <= 1.0,
        lambda c: c.scenario.batching_window == 0.0,
    ),
    Goal("dynamodb", "outstanding", "0 (degrades, never stops)", lambda r, c: r.outstanding == 0),
)


def _can_reach_quota(case: Case) -> bool:
    """Whether ten records at a time per environment can send the quota at all (else the fleet, not its
    pacing, is the limit: more environments are needed)."""
    return case.scenario.environments * 10 / RECORD_SECONDS >= case.scenario.quota


def _drain_within(result: Result, case: Case, factor: float) -> bool:
    if result.drain_s is None or case.ideal_s is None:
        return False
    # The drain also pays a cold start and a call's latency: allow them on top of the quota's time.
    return result.drain_s <= factor * case.ideal_s + 1.0


def evaluate(runs: list[dict[str, Any]], cases_by_name: dict[str, Case]) -> list[dict[str, Any]]:
    """One row per goal and scenario, for the shared budget's results."""
    rows = []
    for run in runs:
        case = cases_by_name[run["scenario"]["name"]]
        shared = run["results"].get(SHARED)
        if shared is None:
            continue
        result = Result(**shared)
        for goal in GOALS:
            if goal.group not in ("*", case.group) or not goal.applies(case):
                continue
            rows.append(
                {
                    "scenario": case.scenario.name,
                    "measure": goal.measure,
                    "goal": goal.goal,
                    "measured": getattr(result, goal.measure),
                    "pass": goal.check(result, case),
                }
            )
    return rows


def run_all(
    quick: bool,
    groups: Iterable[str] = GROUPS,
    progress: Callable[[str], None] | None = None,
    seed: int = 1,
) -> dict[str, Any]:
    """Run every case with every consumer; the results file's content. `seed` draws the arrivals, the
    co-tenant's calls, network jitter and each environment's choices: results on the goals' edges move with it.
    """
    started = time.monotonic()
    runs = []
    selected = [replace(c, scenario=replace(c.scenario, seed=seed)) for c in cases(quick, groups)]
    for case in selected:
        results = {}
        for consumer in case.consumers:
            if progress is not None:
                progress(f"{case.scenario.name}: {CONSUMER_NAMES[consumer]}")
            began = time.monotonic()
            result = simulate(case.scenario, consumer)
            result.wall_s = time.monotonic() - began
            results[result.consumer] = result.to_json()
        runs.append(
            {
                "group": case.group,
                "scenario": {**asdict(case.scenario), "account_burst": case.scenario.account_burst},
                "ideal_s": case.ideal_s,
                "results": results,
            }
        )
    by_name = {case.scenario.name: case for case in selected}
    return {
        "context": {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "quick": quick,
            "groups": sorted(set(groups)),
            "seed": seed,
            "wall_s": time.monotonic() - started,
            "note": "virtual time: every duration is simulated seconds; wall_s is what each run took here",
        },
        "runs": runs,
        "goals": evaluate(runs, by_name),
    }
