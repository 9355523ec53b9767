"""cdk-nag 3 (AwsSolutions + Serverless) reports no unacknowledged finding, and every acknowledgment is deliberate."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Validations

from tests.infra.synth import Synthesized

#: Every acknowledgment in the default stack. A new finding must be fixed, or added here with a reason.
EXPECTED_ACKNOWLEDGMENTS = {
    "CaseLinker/CaseLinker/RuleTargetDlq": {
        "AwsSolutions::AwsSolutions-SQS3",
        "Serverless::Serverless-SQSRedrivePolicy",
    },
    "CaseLinker/CaseLinker/ProcessingDlq": {"Serverless::Serverless-SQSRedrivePolicy"},
    "CaseLinker/CaseLinker/FunctionRole": {
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
        "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:cases:<AWS::Region>:<AWS::AccountId>:"
        "domain/11111111-2222-3333-4444-555555555555/case/*]",
        "AwsSolutions::AwsSolutions-IAM5[Resource::arn:aws:connect:us-east-1:123456789012:"
        "instance/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee/contact/*]",
    },
    "CaseLinker/CaseLinker/Function": {
        "AwsSolutions::AwsSolutions-L1",
        "Serverless::Serverless-LambdaLatestVersion",
        "Serverless::Serverless-LambdaDLQ",
    },
    "CaseLinker/CaseLinker/Function/QueueEventSource": {
        "Serverless::Serverless-LambdaEventSourceMappingDestination",
    },
    "CaseLinker/CaseLinker/Sweeper/Role": {
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
        "AwsSolutions::AwsSolutions-IAM5[Resource::arn:aws:connect:us-east-1:123456789012:"
        "instance/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee/contact/*]",
    },
    "CaseLinker/CaseLinker/Sweeper/Function": {
        "AwsSolutions::AwsSolutions-L1",
        "Serverless::Serverless-LambdaLatestVersion",
        "Serverless::Serverless-LambdaDLQ",
        "Serverless::Serverless-LambdaAsyncFailureDestination",
    },
    "CaseLinker/CaseLinker/Sweeper/Schedule": {"Serverless::Serverless-EventBusDLQ"},
}


def acknowledgments(synth: Synthesized) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for construct in synth.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                found.setdefault(construct.node.path, {}).update(entry.data)
    return found


def report(synth: Synthesized) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((synth.outdir / "validation-report.json").read_text())
    return loaded


@pytest.mark.parametrize("synth_fixture", ["default_synth", "full_synth"])
def test_both_nag_packs_pass_with_no_unacknowledged_finding(
    request: pytest.FixtureRequest, synth_fixture: str
) -> None:
    synth: Synthesized = request.getfixturevalue(synth_fixture)
    plugin_reports = report(synth)["pluginReports"]
    assert {(r["pluginName"], r["conclusion"], len(r["violations"])) for r in plugin_reports} == {
        ("AwsSolutions", "success", 0),
        ("Serverless", "success", 0),
    }


def test_the_acknowledgments_are_exactly_the_reviewed_ones(default_synth: Synthesized) -> None:
    found = acknowledgments(default_synth)
    assert {path: set(rules) for path, rules in found.items()} == EXPECTED_ACKNOWLEDGMENTS


def test_every_acknowledgment_names_one_rule_of_one_pack_and_gives_a_reason(full_synth: Synthesized) -> None:
    for path, rules in acknowledgments(full_synth).items():
        for rule_id, reason in rules.items():
            pack, _, rule = rule_id.partition("::")
            assert pack in {"AwsSolutions", "Serverless"}, (path, rule_id)
            assert rule.startswith(f"{pack}-"), (path, rule_id)
            assert len(reason) >= 60, f"{path} {rule_id}: give a real reason"


def test_every_acknowledgment_was_used(full_synth: Synthesized) -> None:
    # An acknowledgment that suppresses nothing hides the next, unrelated finding: drop it.
    suppressed = {
        (violation["acknowledgedAt"], violation["acknowledgedId"])
        for plugin in report(full_synth)["pluginReports"]
        for violation in plugin.get("suppressedViolations", [])
    }
    declared = {(path, rule) for path, rules in acknowledgments(full_synth).items() for rule in rules}
    assert declared - suppressed == set()


def test_recording_agents_adds_only_the_agent_wildcard_acknowledgment(full_synth: Synthesized) -> None:
    role_rules = acknowledgments(full_synth)["CaseLinker/CaseLinker/FunctionRole"]
    extra = set(role_rules) - EXPECTED_ACKNOWLEDGMENTS["CaseLinker/CaseLinker/FunctionRole"]
    assert extra == {
        "AwsSolutions::AwsSolutions-IAM5[Resource::arn:aws:connect:us-east-1:123456789012:"
        "instance/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee/agent/*]"
    }
