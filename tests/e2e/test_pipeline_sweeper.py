"""Lost contact events on the local pipeline, and the sweeper that makes up for them (issue 12).

GIVEN contact events lost between Connect and the rule, and chats that never get COMPLETED, WHEN the linker has
drained what did arrive and the real sweeper runs (in its own execution environment, with the stack's settings),
THEN every contact that carries a case id ends linked exactly once, and the report shows the coverage the
events alone reached and the one after the sweep.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from local.cli import app
from local.pipeline import LocalPipeline, PipelineOptions
from local.reconcile import Outcome, Route


@pytest.mark.slow
def test_lost_events_and_unfinished_chats_are_all_linked_exactly_once_after_the_sweep() -> None:
    options = PipelineOptions(
        contacts=60,
        quota_scale=20,
        drop_events=0.1,
        drop_seed=5,
        batching_window_s=0.5,
        # A run's own Cases budget setting (a lower burst is always safe) reaches the sweeper's look-ups too
        extra_environment={"CASES_QUOTA_BURST": "5"},
    )
    with LocalPipeline(options) as pipeline:
        assert pipeline.sweeper_environment()["CASES_QUOTA_BURST"] == "5"
        published = pipeline.publish_all()
        events_alone = pipeline.drain(timeout_s=120, quiet_period_s=0.5)

        sweep = pipeline.sweep()
        after = pipeline.drain(timeout_s=120, quiet_period_s=0.5)

    reasons = [p.dropped or "" for p in published if p.route is Route.DROPPED]
    assert any(r.startswith("lost between Connect") for r in reasons)
    assert any("chat" in r for r in reasons)
    assert events_alone.count(Outcome.DROPPED) == len(reasons)
    assert events_alone.coverage() == {
        "contacts": 60,
        "linked": 60 - len(reasons),
        "share": (60 - len(reasons)) / 60,
    }
    assert sweep.ok, sweep.error
    assert sweep.report is not None
    assert sweep.report["SweepNeverSeen"] == sweep.report["SweepEnqueued"] == len(reasons)
    assert sweep.report["EventCoverage"] == pytest.approx((60 - len(reasons)) / 60)
    assert after.coverage()["share"] == 1.0
    assert [r.items for r in after.inputs] == [1] * 60
    assert (after.items_created, after.duplicates, after.lost, after.pending) == (60, 0, 0, 0)
    assert after.ok


@pytest.mark.slow
def test_the_demo_reports_coverage_from_events_alone_and_after_the_sweep(tmp_path: Path) -> None:
    report = tmp_path / "report.json"

    result = CliRunner().invoke(
        app,
        [
            "--contacts",
            "40",
            "--drop-events",
            "0.2",
            "--rng-seed",
            "2",
            "--quota-scale",
            "20",
            "--report",
            str(report),
        ],
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    coverage = json.loads(report.read_text())["coverage"]
    assert coverage["events_alone"]["share"] < 1.0
    assert coverage["after_sweep"] == {"contacts": 40, "linked": 40, "share": 1.0}
    assert coverage["sweep"]["status"] == "ok"
    assert "by the contact events alone" in result.output
    assert "after the sweep" in result.output


@pytest.mark.slow
def test_without_the_sweeper_the_lost_events_leave_contacts_unlinked_and_the_run_fails(
    tmp_path: Path,
) -> None:
    report = tmp_path / "report.json"

    result = CliRunner().invoke(
        app,
        [
            "--contacts", "20", "--drop-events", "0.3", "--rng-seed", "2", "--quota-scale", "20",
            "-c", "sweeperEnabled=false", "--report", str(report),
        ],
        catch_exceptions=False,
    )  # fmt: skip

    assert result.exit_code == 1
    document = json.loads(report.read_text())
    assert document["coverage"] is None
    assert document["summary"]["dropped"] == document["summary"]["mismatches"] > 0


@pytest.mark.slow
def test_the_sample_events_all_lost_are_made_up_for_by_the_sweep_as_expected(tmp_path: Path) -> None:
    # GIVEN the sample set, where one contact has a COMPLETED event and an ignored one (DISCONNECTED), and a
    # contact whose tags name another case than its attributes: every contact event is lost
    report = tmp_path / "report.json"

    result = CliRunner().invoke(app, ["--drop-events", "1", "--report", str(report)], catch_exceptions=False)

    # THEN the sweep links each contact to the case its tags name, and stands in for its COMPLETED event, not
    # for an ignored event of the same contact
    assert result.exit_code == 0, result.output
    summary = json.loads(report.read_text())["summary"]
    assert summary["mismatches"] == 0
    assert summary["ok"] is True
