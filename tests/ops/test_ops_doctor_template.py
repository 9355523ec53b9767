"""What `doctor` expects of a deployed stack is what the stack deploys: its checks hold against the synthesized
template (outputs, event source mapping, topic and key policies, backlog alarm, rule pattern), so a change to
infra/ that the doctor does not follow fails here rather than on a real account."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import CaseLinkerConfig
from ops.doctor.alarms import CLOUDWATCH, alarm_source, allows
from ops.doctor.deployed import expected_outputs
from ops.doctor.health import backlog_alarm_seconds
from ops.doctor.stack import expected_mapping, mapping_settings
from tests.infra.synth import NO_SWEEPER_CONTEXT, REQUIRED_CONTEXT, synthesize
from tests.infra.templates import MAIN_QUEUE, only


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    synthesized: dict[str, Any] = synthesize(REQUIRED_CONTEXT, tmp_path_factory.mktemp("cdk")).json
    return synthesized


CONFIG = CaseLinkerConfig.from_context(REQUIRED_CONTEXT)


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {key: r for key, r in template["Resources"].items() if r["Type"] == kind}


def test_the_outputs_doctor_expects_are_the_stacks(template: dict[str, Any], tmp_path_factory: Any) -> None:
    assert set(expected_outputs(CONFIG, {})) == set(template["Outputs"])
    without = synthesize(NO_SWEEPER_CONTEXT, tmp_path_factory.mktemp("cdk-no-sweeper")).json
    assert set(expected_outputs(CaseLinkerConfig.from_context(NO_SWEEPER_CONTEXT), {})) == set(
        without["Outputs"]
    )


def test_the_mapping_doctor_expects_is_the_stacks(template: dict[str, Any]) -> None:
    _, mapping = only(resources(template, "AWS::Lambda::EventSourceMapping"))
    # CloudFormation's property names are ListEventSourceMappings' names.
    assert mapping_settings(mapping["Properties"]) == expected_mapping(CONFIG)


def test_the_stacks_topic_policy_passes_the_doctors_check(template: dict[str, Any]) -> None:
    _, policy = only(resources(template, "AWS::SNS::TopicPolicy"))
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(allows(s, CLOUDWATCH, ["sns:Publish"]) for s in statements)
    assert not any(allows(s, CLOUDWATCH, ["sns:Publish"]) for s in statements if s.get("Effect") == "Deny")


def test_the_stacks_key_policy_passes_the_doctors_check(template: dict[str, Any]) -> None:
    _, key = only(resources(template, "AWS::KMS::Key"))
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert any(allows(s, CLOUDWATCH, ["kms:Decrypt", "kms:GenerateDataKey"]) for s in statements)


PSEUDO = {"AWS::AccountId": "123456789012", "AWS::Region": "us-east-1", "AWS::Partition": "aws"}


def deployed(value: Any) -> Any:
    """A template value as CloudFormation deploys it in PSEUDO's account (pseudo parameters and Fn::Join)."""
    if isinstance(value, list):
        return [deployed(item) for item in value]
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in PSEUDO:
            return PSEUDO[value["Ref"]]
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return str(separator).join(str(deployed(part)) for part in parts)
        return {key: deployed(item) for key, item in value.items()}
    return value


@pytest.mark.parametrize(
    ("kind", "document", "actions"),
    [
        ("AWS::SNS::TopicPolicy", "PolicyDocument", ["sns:Publish"]),
        ("AWS::KMS::Key", "KeyPolicy", ["kms:Decrypt", "kms:GenerateDataKey"]),
    ],
)
def test_the_stacks_policies_let_its_own_alarms_in_and_no_others_by_the_doctors_reading(
    template: dict[str, Any], kind: str, document: str, actions: list[str]
) -> None:
    _, resource = only(resources(template, kind))
    statements = deployed(resource["Properties"][document]["Statement"])
    own = alarm_source("arn:aws:sns:us-east-1:123456789012:CaseLinker-AlarmTopic")
    assert any(allows(s, CLOUDWATCH, actions, own) for s in statements)
    for other in ("arn:aws:sns:us-east-1:999999999999:t", "arn:aws:sns:eu-west-1:123456789012:t"):
        assert not any(allows(s, CLOUDWATCH, actions, alarm_source(other)) for s in statements)


def test_the_backlog_threshold_doctor_reads_from_the_queue_is_the_alarms(template: dict[str, Any]) -> None:
    queue = template["Resources"][MAIN_QUEUE]["Properties"]
    # As GetQueueAttributes returns them: strings, the redrive policy as JSON.
    attributes = {
        "VisibilityTimeout": str(queue["VisibilityTimeout"]),
        "RedrivePolicy": json.dumps({"maxReceiveCount": queue["RedrivePolicy"]["maxReceiveCount"]}),
    }
    [alarm] = [
        a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ApproximateAgeOfOldestMessage"
    ]
    assert backlog_alarm_seconds(attributes) == alarm["Threshold"] == CONFIG.oldest_message_alarm_seconds


def test_the_contact_rule_matches_the_instance_where_doctor_looks(template: dict[str, Any]) -> None:
    patterns = [
        r["Properties"].get("EventPattern", {}) for r in resources(template, "AWS::Events::Rule").values()
    ]
    contact = [p for p in patterns if p.get("source") == ["aws.connect"]]
    assert [p["detail"]["instanceArn"] for p in contact] == [[CONFIG.connect_instance_arn]]
