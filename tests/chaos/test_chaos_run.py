"""`make chaos` in small: the full fault-injection run with N = 150, and the load it publishes.

GIVEN throttling at the (scaled) quotas, 5xx answers, slow answers and dropped connections before and after
the commit, killed invocations and duplicate deliveries, WHEN the pipeline drains, the DLQs are replayed with
the ops tool and the pipeline drains again, THEN nothing is lost or doubled, every bad input sits in the DLQ
with its reason, and every replayed message that can succeed is linked exactly once.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from local.chaos import BAD_KINDS, ChaosOptions, build_load, main, parse_args, run
from local.poller import DuplicateMode

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("chaos") / "chaos-report.json"
    # Harsher than the default mix so that a small run still kills invocations and duplicates records.
    # The first three invocations die soon after they start, whatever the random draws: a kill only counts
    # when it lands before the batch is done, and a small run might otherwise have none.
    options = ChaosOptions(
        events=150,
        seed=11,
        kill_rate=0.2,
        kill_invocations=frozenset({1, 2, 3}),
        kill_after_s=(0.05, 0.1),
        duplicate_rate=0.1,
        # Whatever the random draws: the first comment creates lose their response after committing (their
        # retries, same client token, must get the original item: token_replay), and the first other creates
        # commit after their connection dropped (late_commit_landed); the fourth comment create is answered
        # with a per-case failure (its retry must take the next token).
        scripted={
            "BatchCreateRelatedItem": ("drop_after_commit",) * 3 + ("item_failure:INTERNAL_ERROR",),
            "CreateRelatedItem": ("late_commit",) * 2,
        },
        report=path,
        quiet=True,
        drain_timeout_s=150,
    )
    produced = run(options, log=lambda _line: None)
    assert json.loads(path.read_text()) == json.loads(json.dumps(produced))
    return produced


def test_given_faults_when_the_chaos_run_ends_then_every_check_passes(report: dict[str, Any]) -> None:
    failed = {name: report["evidence"] for name, ok in report["checks"].items() if not ok}
    assert failed == {}


def test_given_faults_when_the_chaos_run_ends_then_nothing_is_lost_or_doubled(report: dict[str, Any]) -> None:
    assert report["events_in"] == 150
    assert report["lost"] == 0
    assert report["duplicates"] == 0


def test_given_faults_when_the_chaos_run_ends_then_faults_really_happened(report: dict[str, Any]) -> None:
    emulator = report["faults_injected"]["emulator"]
    create = Counter(emulator["CreateRelatedItem"]) + Counter(emulator["BatchCreateRelatedItem"])
    assert create["InternalServerException"] + create["drop"] + create["drop_after_commit"] > 0
    assert report["faults_injected"]["exactly_once"]["item_failure"] > 0
    assert report["faults_injected"]["poller"]["killed_invocations"] > 0
    assert report["faults_injected"]["poller"]["duplicates_injected"] > 0


def test_given_the_exactly_once_fault_classes_when_the_run_ends_then_each_fired_and_none_doubled(
    report: dict[str, Any],
) -> None:
    fired = report["faults_injected"]["exactly_once"]
    assert fired["ambiguous_creates"] > 0
    assert fired["late_commit_landed"] > 0  # creates that committed after their connection dropped
    assert fired["token_replay"] > 0  # retried comments answered with the original item
    assert fired["merges"] == 1
    assert fired["same_request_as_several_messages"] > 0
    assert fired["distinct_requests_with_identical_content"] > 0
    assert fired["messages_with_ten_attributes"] > 0
    assert report["duplicates"] == 0


def test_given_fixed_causes_when_the_dlq_is_replayed_then_those_messages_are_linked(
    report: dict[str, Any],
) -> None:
    late = sum(n for kind, n in report["inputs_by_kind"].items() if kind.startswith("late-"))
    assert late > 0
    assert report["replayed_that_can_succeed"] >= late
    assert report["checks"]["replayed_linked_exactly_once"]


def test_given_a_case_failing_through_every_delivery_when_phase_1_ends_then_given_up_with_the_reason(
    report: dict[str, Any],
) -> None:
    # GIVEN comments on a case whose creates answer 5xx until the replay
    assert report["inputs_by_kind"]["failing-case"] >= 1
    # THEN the linker dead-lettered each on its last delivery with the 5xx as the reason (SQS's redrive would
    # carry none), unless chaos took that delivery from it (killed, or its message received again: then SQS's
    # redrive is the only ending left), and the replay after the case healed linked each once
    assert report["checks"]["failing_case_given_up_with_reason"]
    endings = report["failing_case_endings"]
    assert sum(endings.values()) == report["inputs_by_kind"]["failing-case"]
    before = report["dlq_by_reason_before_replay"]["processing"]
    assert before.get("InternalServerException", 0) >= endings.get("given_up_with_reason", 0)
    assert report["replayed_by_kind"].get("failing-case", 0) == report["inputs_by_kind"]["failing-case"]
    assert report["checks"]["replayed_linked_exactly_once"]


def test_given_bad_inputs_when_the_chaos_run_ends_then_each_reason_is_counted_in_the_dlq(
    report: dict[str, Any],
) -> None:
    in_dlq = report["dlq_by_reason"]["processing"]
    for kind, code in BAD_KINDS.items():
        assert in_dlq.get(code, 0) >= report["inputs_by_kind"][f"bad-{kind}"], (kind, in_dlq)


def test_given_n_inputs_when_the_load_is_built_then_the_proportions_are_the_ones_asked_for() -> None:
    load = build_load(ChaosOptions(events=1000))

    assert len(load.inputs) + load.contacts == 1000
    assert sum(n for kind, n in load.kinds.items() if kind.startswith("bad-")) == 80
    assert sum(load.kinds[kind] for kind in ("request", "request-custom", "twin", "resend")) == 300
    assert load.kinds["twin"] == 30
    assert load.kinds["resend"] == 30
    assert sum(n for kind, n in load.kinds.items() if kind.startswith("skip-")) == 40
    assert load.kinds["failing-case"] == 5
    assert {e["error_code"] for e in load.expected.values() if "error_code" in e} == set(BAD_KINDS.values())


def test_given_cli_flags_when_parsed_then_they_reach_the_options(tmp_path: Path) -> None:
    options = parse_args(
        ["--events", "40", "--report", str(tmp_path / "r.json"), "--duplicate-mode", "resend"]
    )

    assert options.events == 40
    assert options.report == tmp_path / "r.json"
    assert options.duplicate_mode is DuplicateMode.RESEND


def test_given_too_few_events_when_run_from_the_cli_then_it_refuses() -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--events", "3"])
    assert raised.value.code == 2


def test_given_lost_contact_events_when_the_chaos_run_ends_then_the_sweeper_linked_every_contact_with_a_case_id(
    report: dict[str, Any],
) -> None:
    assert report["contact_events_dropped"] > 0
    assert report["checks"]["sweeper_ran"] is True
    assert report["sweep"]["report"]["SweepNeverSeen"] > 0
    assert report["coverage"]["events_alone"]["share"] < 1.0
    assert report["coverage"]["after_sweep"]["share"] == 1.0
    assert report["checks"]["every_good_input_linked_exactly_once"] is True
