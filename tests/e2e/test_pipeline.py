"""The whole pipeline on moto and the emulator, running the real handler in worker processes.

GIVEN the sample events (or a synthetic load), WHEN they go through EventBridge, SQS and the linker,
THEN every input ends where events/expected.json says, nothing is lost and nothing is duplicated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emulator import Faults
from local.cli import app
from local.pipeline import EVENTS_DIR, LocalPipeline, PipelineOptions
from local.poller import ChaosHooks, DuplicateMode
from local.reconcile import Outcome, Reconciliation

EXPECTED = json.loads((EVENTS_DIR / "expected.json").read_text())["events"]


@pytest.fixture(scope="module")
def sample_run() -> Iterator[tuple[LocalPipeline, Reconciliation]]:
    # quota_scale 10: the sample events need no pacing to prove their outcomes; it only shortens the run.
    with LocalPipeline(PipelineOptions(events=[EVENTS_DIR], quota_scale=10)) as pipeline:
        pipeline.publish_all()
        yield pipeline, pipeline.drain(timeout_s=60, quiet_period_s=0.5)


def by_name(result: Reconciliation):
    return {r.name: r for r in result.inputs}


def test_sample_events_all_end_as_expected_with_nothing_lost_or_duplicated(sample_run):
    _, result = sample_run
    assert result.drained
    assert [(r.name, r.mismatch) for r in result.mismatches] == []
    assert sorted(by_name(result)) == sorted(EXPECTED)
    assert result.lost == 0
    assert result.duplicates == 0
    assert result.unattributed_items == 0
    assert result.ok


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e["outcome"] == "linked"))
def test_each_linked_sample_is_one_related_item_on_its_expected_case(sample_run, name):
    pipeline, result = sample_run
    outcome = by_name(result)[name]
    expected = EXPECTED[name]
    assert outcome.outcome is Outcome.LINKED
    assert outcome.case_ids == [expected["case"]]
    assert outcome.item_type == expected["type"]
    assert outcome.items == 1
    if "contactArn" in expected:
        items = pipeline.emulator.related_items(case_id=expected["case"])
        assert [
            i.content
            for i in items
            if i.type == "Contact" and i.content["contact"]["contactArn"] == expected["contactArn"]
        ] != []


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e["outcome"] == "dead_lettered"))
def test_each_rejected_sample_sits_in_the_processing_dlq_with_its_error_code(sample_run, name):
    pipeline, result = sample_run
    outcome = by_name(result)[name]
    assert outcome.outcome is Outcome.DEAD_LETTERED
    assert outcome.dlq_queue == "processing"
    assert outcome.error_code == EXPECTED[name]["error_code"]
    # The DLQ keeps the original body byte for byte.
    bodies = {m.body for m in pipeline.dlq_messages()}
    assert (EVENTS_DIR / name).read_text() in bodies


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e["outcome"] == "skipped"))
def test_each_skipped_sample_is_acknowledged_with_its_reason_and_makes_no_item(sample_run, name):
    _, result = sample_run
    outcome = by_name(result)[name]
    assert outcome.outcome is Outcome.SKIPPED
    assert outcome.items == 0
    assert outcome.reason
    assert outcome.mismatch is None


def test_the_local_resources_are_the_ones_infra_config_derives(sample_run):
    pipeline, _ = sample_run
    config = pipeline.config
    attributes = pipeline.sqs.get_queue_attributes(
        QueueUrl=pipeline.resources.main_queue_url, AttributeNames=["All"]
    )["Attributes"]
    assert int(attributes["VisibilityTimeout"]) == config.visibility_timeout_seconds
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": pipeline.resources.processing_dlq_arn,
        "maxReceiveCount": config.max_receive_count,
    }
    rule = pipeline.events.describe_rule(Name=pipeline.resources.contact_rule_name)
    assert json.loads(rule["EventPattern"]) == config.contact_event_pattern
    targets = pipeline.events.list_targets_by_rule(Rule=pipeline.resources.contact_rule_name)["Targets"]
    assert targets[0]["DeadLetterConfig"] == {"Arn": pipeline.resources.rule_target_dlq_arn}
    settings = pipeline.esm_settings()
    assert (settings.batch_size, settings.batching_window_s, settings.max_concurrency) == (
        config.batch_size,
        config.batching_window_seconds,
        config.max_concurrency,
    )
    assert settings.function_timeout_s == config.function_timeout_seconds
    environment = pipeline.lambda_environment()
    assert environment["CASES_MAX_RPS"] == f"{config.cases_max_rps:g}"


def test_envelopes_no_rule_matches_are_filtered_when_everything_goes_through_eventbridge():
    names = ["contact-disconnected-voice.json", "contact-completed-voice.json"]
    with LocalPipeline(
        PipelineOptions(events=[EVENTS_DIR / n for n in names], seed=EVENTS_DIR / "seed.json", quota_scale=10)
    ) as pipeline:
        pipeline.publish_all(route="eventbridge")
        result = pipeline.drain(timeout_s=60, quiet_period_s=0.5)
    outcomes = {r.name.rsplit("/", 1)[-1]: r.outcome for r in result.inputs}
    assert outcomes == {
        "contact-disconnected-voice.json": Outcome.FILTERED,
        "contact-completed-voice.json": Outcome.LINKED,
    }
    assert result.poller.records == 1


@pytest.mark.slow
def test_synthetic_contacts_survive_killed_invocations_and_duplicate_deliveries_exactly_once():
    options = PipelineOptions(
        contacts=40,
        quota_scale=20,
        # The linker keeps ~10 s in hand per call (connect + read timeouts + margin): give it 20 s.
        function_timeout_s=20,
        visibility_timeout_s=3,
        batching_window_s=0.5,
        chaos=ChaosHooks(
            kill_invocations=frozenset({2}),
            kill_after_s=(0.05, 0.05),
            duplicate_rate=0.2,
            duplicate_mode=DuplicateMode.RESEND,
            seed=7,
        ),
    )
    with LocalPipeline(options) as pipeline:
        pipeline.publish_all()
        result = pipeline.drain(timeout_s=60, quiet_period_s=1.0)
    assert result.poller.killed_invocations == 1
    assert result.poller.duplicates_injected > 0
    assert result.count(Outcome.LINKED) == 40
    assert result.items_created == 40
    assert (result.lost, result.duplicates, result.pending) == (0, 0, 0)
    assert result.ok


@pytest.mark.slow
def test_a_record_that_keeps_failing_is_dead_lettered_with_its_reason_on_its_last_delivery():
    request = EVENTS_DIR / "request-comment.json"
    options = PipelineOptions(
        events=[request],
        seed=EVENTS_DIR / "seed.json",
        faults={"BatchCreateRelatedItem": Faults(server_error=1.0)},
        function_timeout_s=20,
        visibility_timeout_s=5,  # longer than a delivery's retries: none outlives it
        batching_window_s=0,
        max_receive_count=2,
    )
    with LocalPipeline(options) as pipeline:
        # The function is told the queue's own maxReceiveCount, not the stack's default
        assert pipeline.lambda_environment()["MAX_RECEIVE_COUNT"] == "2"
        pipeline.publish_all()
        result = pipeline.drain(timeout_s=90, quiet_period_s=1.5)
    (outcome,) = result.inputs
    assert outcome.outcome is Outcome.DEAD_LETTERED
    assert outcome.dlq_queue == "processing"
    # The linker's reason, not SQS's reasonless redrive after maxReceiveCount, and one DLQ message
    assert outcome.error_code == "InternalServerException"
    assert outcome.deliveries == 2
    assert result.dlq_by_code == {"processing": {"InternalServerException": 1}}
    assert result.items_created == 0
    assert result.lost == 0


def test_the_cli_exits_non_zero_when_an_outcome_differs_from_the_expected_one(tmp_path: Path):
    (tmp_path / "request-comment.json").write_text((EVENTS_DIR / "request-comment.json").read_text())
    (tmp_path / "seed.json").write_text((EVENTS_DIR / "seed.json").read_text())
    (tmp_path / "expected.json").write_text(
        json.dumps({"events": {"request-comment.json": {"outcome": "dead_lettered", "error_code": "Nope"}}})
    )
    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        app, ["--events", str(tmp_path), "--quota-scale", "10", "--json", str(report)], catch_exceptions=False
    )
    assert result.exit_code == 1, result.output
    document = json.loads(report.read_text())
    assert document["summary"]["mismatches"] == 1
    assert document["inputs"][0]["outcome"] == "linked"
    assert "FAILED" in result.output


def test_a_moto_subprocess_never_takes_another_processs_server_on_its_port_for_its_own() -> None:
    # GIVEN another moto server already listening on the port (as when a port probed free is taken before the
    # child binds it: another test's server, in another worker)
    from moto.server import ThreadedMotoServer

    from local.pipeline import moto_subprocess

    other = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    other.start()
    try:
        _, port = other.get_host_and_port()
        # WHEN a moto subprocess is asked for that port, THEN it fails rather than hand over the other server
        with pytest.raises(RuntimeError, match="did not start"), moto_subprocess(port, start_timeout_s=20):
            pass
    finally:
        other.stop()


def test_moto_subprocesses_started_together_each_serve_their_own_state() -> None:
    import boto3

    from local.pipeline import moto_subprocess

    with moto_subprocess() as first, moto_subprocess() as second:
        assert first != second
        clients = [
            boto3.client(
                "sqs",
                endpoint_url=url,
                region_name="us-east-1",
                aws_access_key_id="x",
                aws_secret_access_key="x",
            )
            for url in (first, second)
        ]
        clients[0].create_queue(QueueName="only-in-the-first")
        assert "QueueUrls" not in clients[1].list_queues()


def test_a_pipeline_starts_from_no_moto_state_whatever_else_in_this_process_left(moto_endpoint: str) -> None:
    # GIVEN an earlier user of moto in this process (another test, on the session's server) left a rule on the
    # default event bus that matches contact events, aimed at a target moto cannot deliver to (a Lambda)
    import boto3

    events = boto3.client(
        "events",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    events.put_rule(Name="left-over", EventPattern=json.dumps({"source": ["aws.connect"]}))
    events.put_targets(
        Rule="left-over", Targets=[{"Id": "1", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:gone"}]
    )

    # WHEN a pipeline with its own in-process moto server publishes through EventBridge
    names = ["contact-completed-voice.json"]
    options = PipelineOptions(
        events=[EVENTS_DIR / n for n in names], seed=EVENTS_DIR / "seed.json", quota_scale=10
    )
    with LocalPipeline(options) as pipeline:
        pipeline.publish_all(route="eventbridge")
        result = pipeline.drain(timeout_s=60, quiet_period_s=0.5)

    # THEN only its own rule takes the event (moto's state is per process: the pipeline starts from none)
    assert [r.outcome for r in result.inputs] == [Outcome.LINKED]
