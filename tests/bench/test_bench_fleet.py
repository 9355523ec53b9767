"""The fleet simulation on small scenarios: the invariants of issue 15 hold for the shared budget.

GIVEN a simulated fleet and account quota, WHEN it drains a backlog, THEN the fleet never exceeds the
account's burst and the fleet-wide rate never exceeds the quota. The same measures catch today's static
split exceeding the burst when environments outnumber it, so they can fail.
"""

from __future__ import annotations

import pytest

from bench.fleet.consumers import AdaptiveLimiter
from bench.fleet.engine import Sim
from bench.fleet.run import Scenario, burst_used, deployable, simulate
from bench.fleet.scenarios import cases, evaluate, run_all
from bench.fleet.world import CoTenant, DynamoDBModel


@pytest.mark.parametrize(("environments", "quota"), [(2, 2.0), (20, 2.0), (50, 20.0)])
def test_given_a_backlog_when_the_fleet_shares_the_budget_then_it_never_exceeds_the_account_burst(
    environments: int, quota: float
) -> None:
    scenario = Scenario(name="backlog", environments=environments, quota=quota, burst=10, backlog=400)

    result = simulate(scenario, "shared")

    assert result.linked == 400
    assert result.fleet_alone_refused == 0  # the fleet's calls alone: never a 429
    assert result.max_burst_used <= 10.0 + 1e-6
    assert result.handed_back == 0


def test_given_more_environments_than_the_burst_then_the_static_split_exceeds_it_and_the_measure_shows_it() -> (
    None
):
    # Today's split floors each environment's burst at one token: 20 environments burst 20 (issue 13).
    scenario = Scenario(name="backlog", environments=20, quota=2.0, burst=10, backlog=400)

    result = simulate(scenario, "static")

    assert result.max_burst_used > 10.0
    assert result.fleet_alone_refused > 0


def test_given_a_co_tenant_when_the_fleet_backs_off_then_its_rate_never_exceeds_the_quota() -> None:
    scenario = Scenario(
        name="co-tenant", environments=10, quota=20.0, burst=10, backlog=1500, cotenant=CoTenant(0.6)
    )

    result = simulate(scenario, "shared")

    assert result.max_fleet_rate is not None
    assert result.max_fleet_rate <= 20.0
    assert result.fleet_alone_refused == 0
    assert result.dead_lettered == 0
    assert result.linked == 1500
    assert result.dynamodb_requests_per_call is not None


@pytest.mark.parametrize(
    "model", [DynamoDBModel(outage=(20.0, 50.0)), DynamoDBModel(slow=(20.0, 50.0))], ids=["outage", "slow"]
)
def test_given_the_store_lost_for_30_s_when_the_fleet_paces_itself_then_it_stays_within_the_burst(
    model: DynamoDBModel,
) -> None:
    # Environments leave the schedule one by one as each notices, and come back when their pause ends: the
    # ones still on the schedule and the ones pacing at their static share must not add up beyond the quota.
    scenario = Scenario(name="store", environments=10, quota=20.0, backlog=2400, dynamodb=model)

    result = simulate(scenario, "shared")

    assert result.degraded >= 10
    assert result.outstanding == 0
    assert result.fleet_alone_refused == 0


def test_given_records_out_of_capacity_then_case_linker_returns_them_soon_and_never_to_the_dlq() -> None:
    # A co-tenant using 90% of the quota: some records find no slot before their batch's deadline.
    # case-linker hands them back for a second or so (and re-sends them near maxReceiveCount); today's
    # pacing left them for the visibility timeout (6 minutes).
    scenario = Scenario(name="crowded", environments=20, quota=20.0, backlog=400, cotenant=CoTenant(0.9))

    shared, static = simulate(scenario, "shared"), simulate(scenario, "static")

    assert shared.handed_back > 0
    assert shared.dead_lettered == 0
    assert shared.outstanding == 0
    assert shared.drain_s is not None
    assert static.drain_s is not None
    assert shared.drain_s < 120 < 360 < static.drain_s


def test_given_botocore_adaptive_classes_on_the_virtual_clock_then_a_throttle_engages_the_limiter() -> None:
    sim = Sim()
    limiter = AdaptiveLimiter(sim)
    assert limiter.wait_to_send() == 0.0  # not engaged before the first throttle

    sim.now = 10.0
    limiter.received(throttled=True, attempt=1)

    # Engaged at botocore's minimum rate (0.5/s), a bucket of one token: one call now, the next in 2 s.
    assert limiter.wait_to_send() == 0.0
    assert limiter.wait_to_send() == pytest.approx(2.0)


def test_burst_used_is_the_largest_excess_over_the_rate_in_any_interval() -> None:
    assert burst_used([0.0, 0.0, 0.0, 1.0], rate=1.0) == pytest.approx(3.0)
    assert burst_used([0.0, 1.0, 2.0, 3.0], rate=1.0) == pytest.approx(1.0)


def test_given_the_quick_grid_then_every_case_is_deployable_and_judged() -> None:
    selected = cases(quick=True, groups=["backlog", "small"])

    assert selected
    assert all(deployable(case.scenario) for case in selected)
    run = {
        "scenario": {"name": selected[0].scenario.name},
        "results": {
            "case-linker, shared budget (issue 15)": simulate(selected[0].scenario, "shared").to_json()
        },
    }
    rows = evaluate([run], {case.scenario.name: case for case in selected})
    assert {row["measure"] for row in rows} >= {"goodput_over_remaining", "fleet_alone_refused"}
    assert all(isinstance(row["pass"], bool) for row in rows)


def test_given_a_seed_then_every_scenario_draws_from_it_and_the_results_say_which() -> None:
    first, second = (run_all(True, ["small"], seed=seed) for seed in (1, 2))

    assert (first["context"]["seed"], second["context"]["seed"]) == (1, 2)
    assert {run["scenario"]["seed"] for run in second["runs"]} == {2}
    drains = [
        [r["drain_s"] for run in res["runs"] for r in run["results"].values()] for res in (first, second)
    ]
    assert drains[0] != drains[1]  # the draws moved the results
