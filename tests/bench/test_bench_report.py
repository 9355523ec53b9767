"""The benchmark's arithmetic and verdicts, without running a benchmark (no network).

GIVEN measurements, WHEN the report judges them, THEN each goal of issue 8 passes or fails as written.
"""

from __future__ import annotations

import datetime as dt

from bench.drain import _median_cycle, _span, ideal_goodput_over_quota
from bench.report import evaluate
from emulator import Call
from local.poller import Delivery, RecordOutcome


def call(operation: str, status: int, at: float) -> Call:
    return Call(operation, "cases", {}, status, None, "ok", dt.datetime.now(dt.UTC), at)


def results(**drain: float) -> dict:
    values = {
        "goodput_over_quota": 0.97,
        "throttled_share": 0.01,
        "handed_back": 0,
        "lost": 0,
        "duplicates": 0,
        "baseline_goodput_over_quota": 0.8,
        "baseline_throttled_share": 0.2,
        "baseline_handed_back": 5,
    }
    values.update(drain)
    return {
        "drain": values,
        "batch": {"speedup_vs_sequential": 2.2, "share_of_rig_ceiling": 0.9},
        "overhead": {"ratio_vs_raw_boto3": 1.2},
    }


def verdicts(data: dict) -> dict[str, bool | None]:
    return {row["key"]: row["pass"] for row in evaluate(data)}


def test_every_goal_passes_when_measurements_meet_the_issue():
    assert verdicts(results()) == {
        "drain.goodput_over_quota": True,
        "drain.throttled_share": True,
        "drain.handed_back": True,
        "drain.lost": True,
        "drain.duplicates": True,
        "drain.baseline_goodput_over_quota": None,
        "drain.baseline_throttled_share": None,
        "drain.baseline_handed_back": None,
        "batch.speedup_vs_sequential": None,
        "batch.share_of_rig_ceiling": True,
        "overhead.ratio_vs_raw_boto3": True,
    }


def test_the_batch_is_judged_against_what_the_rig_allows():
    data = results()
    data["batch"]["share_of_rig_ceiling"] = 0.7
    assert verdicts(data)["batch.share_of_rig_ceiling"] is False


def test_goodput_above_the_goal_still_fails_when_the_baseline_does_better():
    assert (
        verdicts(results(goodput_over_quota=0.98, baseline_goodput_over_quota=0.99))[
            "drain.goodput_over_quota"
        ]
        is False
    )


def test_the_drain_goal_is_issue_15s_097_of_the_quota():
    assert verdicts(results(goodput_over_quota=0.96))["drain.goodput_over_quota"] is False
    assert verdicts(results(goodput_over_quota=0.97))["drain.goodput_over_quota"] is True


def test_the_drain_throttling_goal_is_issue_15s_two_percent():
    assert verdicts(results(throttled_share=0.03))["drain.throttled_share"] is False


def test_the_shared_budget_may_cost_one_dynamodb_request_per_five_cases_calls():
    data = results()
    data["drain"]["details"] = {"case_linker": {"budget_requests_per_cases_call": 0.21}}
    assert verdicts(data)["drain.details.case_linker.budget_requests_per_cases_call"] is False
    data["drain"]["details"]["case_linker"]["budget_requests_per_cases_call"] = 0.1
    assert verdicts(data)["drain.details.case_linker.budget_requests_per_cases_call"] is True


def test_one_handed_back_record_fails_the_drain_goal():
    assert verdicts(results(handed_back=1))["drain.handed_back"] is False


def test_span_runs_from_the_first_call_to_the_last_successful_create():
    calls = [call("GetContactAttributes", 200, 10.0), call("CreateRelatedItem", 200, 12.0)]
    calls.append(call("CreateRelatedItem", 429, 15.0))
    assert _span(calls, [c for c in calls if c.operation == "CreateRelatedItem" and c.status == 200]) == 2.0


def test_ideal_goodput_counts_the_burst_up_front():
    assert abs(ideal_goodput_over_quota(1000, 20.0, 10) - 1000 / 990) < 1e-9


def test_median_cycle_is_measured_per_environment():
    deliveries = [
        Delivery("m", "b", 1, "i", worker, RecordOutcome.DELETED, at)
        for worker, at in (("env-1", 1.0), ("env-1", 2.0), ("env-1", 3.0), ("env-2", 1.5), ("env-2", 2.5))
    ]
    assert _median_cycle(deliveries) == 1.0
