"""Issue 15's scenarios on the real pipeline: a small backlog at maxConcurrency 10, a co-tenant spending 30%
and 60% of the quota, and light load, each for case-linker, the plain consumer (bench/baseline.py) and the
plain consumer in botocore's `adaptive` retry mode, in the same run; plus the rig's own ceiling, so that no
figure blames the product for the rig.

The figures for case-linker are those of whatever pacing the function is wired with: today's static split,
or the shared budget (functions/case_linker/budget.py) once the handler uses it. The budget's environment
variables are passed either way (BUDGET_ENVIRONMENT); a function that does not read them ignores them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bench.drain import BASELINE_HANDLER, DrainRun, DrainSettings, run_drain
from infra.config import CaseLinkerConfig
from local.pipeline import DEFAULT_INSTANCE_ARN, HANDLER

CONSUMERS: dict[str, tuple[str, dict[str, str]]] = {
    "case_linker": (HANDLER, {}),
    "plain": (BASELINE_HANDLER, {}),
    # botocore reads its retry mode from the environment: the same plain consumer, adaptive mode.
    "adaptive": (BASELINE_HANDLER, {"AWS_RETRY_MODE": "adaptive"}),
}
REAL_QUOTA, REAL_BURST, REAL_LATENCY = 2.0, 10, 0.05
COTENANT_QUOTA = 10.0


# The rig's ceilings run without the shared budget: at a quota out of reach (10,000 req/s) a slot is a tenth of
# a millisecond wide and a lease expires before its DynamoDB answer is back, so the budget would cost one
# request per Cases call and measure itself, not the rig (at real quotas it costs one per ten: the simulation).
UNPACED = {"CASES_BUDGET": "local"}


def budget_environment(quota: float, burst: float) -> dict[str, str]:
    """The shared budget's settings for the function (see the report's wiring: infra/config.py)."""
    return {"CASES_QUOTA_RPS": f"{quota:g}", "CASES_QUOTA_BURST": f"{burst:g}", "CASES_BUDGET": "shared"}


def stack_function_timeout(quota: float, burst: int, max_concurrency: int) -> float:
    """The function timeout the stack derives for this quota and concurrency."""
    config = CaseLinkerConfig(
        cases_domain_id="bench",
        connect_instance_arn=DEFAULT_INSTANCE_ARN,
        max_concurrency=max_concurrency,
        cases_requests_per_second=quota,
        cases_burst=float(burst),
    )
    return float(config.function_timeout_seconds)


@dataclass(frozen=True)
class Scenario:
    name: str
    settings: DrainSettings
    consumers: tuple[str, ...] = tuple(CONSUMERS)


def scenarios(quick: bool) -> list[Scenario]:
    def settings(**values: Any) -> DrainSettings:
        quota, burst, concurrency = values["quota"], values["burst"], values["max_concurrency"]
        base = DrainSettings(
            events=values.pop("events"),
            quota=quota,
            burst=burst,
            latency_s=values.pop("latency_s"),
            max_concurrency=concurrency,
            batch_size=10,
            # The stack's timeout (a batch at the static split's rate must fit), a short visibility timeout:
            # a record handed back costs 30 s of the run, not the stack's six timeouts.
            function_timeout_s=stack_function_timeout(quota, burst, concurrency),
            visibility_timeout_s=30,
            timeout_s=values.pop("timeout_s"),
        )
        return replace(base, **values)

    small = Scenario(
        "small_backlog",
        settings(
            events=20,
            quota=REAL_QUOTA,
            burst=REAL_BURST,
            max_concurrency=10,
            latency_s=REAL_LATENCY,
            timeout_s=300,
        ),
    )
    # 10 req/s, as the drain: at 20 req/s a 30% co-tenant leaves 14 req/s, which is what two environments of
    # this pipeline reach with no quota at all (moto answers the ledger's writes one at a time: 14-15 items/s),
    # so the figure measured the rig. At 10 req/s the rig has twice what the co-tenant leaves.
    cotenant = [
        Scenario(
            f"cotenant_{round(share * 100)}",
            settings(
                events=200 if quick else 400,
                quota=COTENANT_QUOTA,
                burst=10,
                max_concurrency=2,
                latency_s=0.005,
                cotenant_share=share,
                timeout_s=400,
            ),
        )
        for share in (0.3, 0.6)
    ]
    events = 10 if quick else 20
    light = [
        Scenario(
            f"light_mc{concurrency}",
            settings(
                events=events,
                quota=REAL_QUOTA,
                burst=REAL_BURST,
                max_concurrency=concurrency,
                latency_s=REAL_LATENCY,
                arrival_rate=0.5,
                timeout_s=events / 0.5 + 120,
            ),
        )
        for concurrency in (2, 10)
    ]
    light_no_window = Scenario(
        "light_mc10_window0",
        replace(light[1].settings, batching_window_s=0.0),
        consumers=("case_linker",),
    )
    return [small, *cotenant, *light, light_no_window]


def rig_ceiling(quick: bool) -> DrainRun:
    """The local pipeline's own top speed: a quota far above what it can send, no latency, 10 environments."""
    settings = DrainSettings(
        events=200 if quick else 400,
        quota=10_000.0,
        burst=10_000,
        latency_s=0.0,
        max_concurrency=10,
        batch_size=10,
        function_timeout_s=30.0,
        visibility_timeout_s=30,
        timeout_s=300,
    )
    return run_drain(
        settings, consumer="case-linker (rig ceiling)", handler=HANDLER, extra_environment=UNPACED
    )


def run_quota(quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """Every scenario with every consumer; the `quota` section of bench/results.json."""
    log("quota: the rig's own ceiling (no quota, no latency, 10 environments)")
    ceiling = rig_ceiling(quick)
    section: dict[str, Any] = {
        "rig_ceiling_items_per_s": ceiling.items_created / ceiling.span_s if ceiling.span_s else 0.0,
        "details": {"rig_ceiling": ceiling.to_json()},
    }
    for scenario in scenarios(quick):
        runs: dict[str, Any] = {}
        for consumer in scenario.consumers:
            handler, environment = CONSUMERS[consumer]
            log(f"quota: {scenario.name}, {consumer}")
            environment = {
                **environment,
                **budget_environment(scenario.settings.quota, scenario.settings.burst),
            }
            run = run_drain(
                scenario.settings, consumer=consumer, handler=handler, extra_environment=environment
            )
            runs[consumer] = _summary(scenario, run)
            section["details"][f"{scenario.name}.{consumer}"] = run.to_json()
        section[scenario.name] = runs
    return section


def _summary(scenario: Scenario, run: DrainRun) -> dict[str, Any]:
    settings = scenario.settings
    summary: dict[str, Any] = {
        "items": run.items_created,
        "duplicates": run.duplicates,
        "dead_lettered": run.dead_lettered,
        "lost": run.lost,
        "span_s": run.span_s,
        "cases_span_s": run.cases_span_s,
        "throttled_share": run.throttled_share,
        "list_throttled_share": run.list_throttled / run.list_calls if run.list_calls else 0.0,
        "handed_back": run.handed_back,
        "handed_back_after_10s": run.handed_back_after_10s,
    }
    if scenario.name == "small_backlog":
        summary["quota_allows_s"] = max(0.0, (settings.events - settings.burst) / settings.quota)
    if settings.cotenant_share:
        summary.update(
            goodput_over_remaining=run.goodput_over_remaining,
            cotenant_refused_alone=run.cotenant_refused_alone,
            cotenant_refused_with_drain=run.cotenant_refused_with_drain,
            cotenant_refused_rise_points=run.cotenant_refused_rise_points,
        )
    if settings.arrival_rate:
        summary.update(latency_p50_s=run.latency_p50_s, latency_p95_s=run.latency_p95_s)
    return summary
