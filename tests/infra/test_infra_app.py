"""app.py: `cdk synth` without the required context fails with a message naming the missing keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from aws_cdk import App

import app as cdk_app
from infra.config import ConfigError
from tests.infra.synth import REPO_ROOT, REQUIRED_CONTEXT, feature_flags


def test_building_without_required_context_raises_a_config_error_naming_both_keys() -> None:
    with pytest.raises(ConfigError) as raised:
        cdk_app.build(App(context={"maxConcurrency": "1"}))
    assert raised.value.problems == (
        "casesDomainId is required",
        "connectInstanceArn is required",
        "maxConcurrency must be 2..1000 (the SQS event source's limits), got 1",
    )


def test_a_stack_name_cloudformation_would_refuse_is_a_config_error_named_with_the_others() -> None:
    with pytest.raises(ConfigError) as raised:
        cdk_app.build(App(context={"stackName": "my_stack"}))
    assert raised.value.problems[0] == "casesDomainId is required"
    assert any(problem.startswith("stackName must be") for problem in raised.value.problems)


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("maxConcurency", "maxConcurrency"),
        ("MaxConcurrency", "maxConcurrency"),
        ("sweeperEnable", "sweeperEnabled"),
        # Shortened or spelled another way: `-c sweepWindow=240` would otherwise keep the default of 60.
        ("sweepWindow", "sweepWindowMinutes"),
        ("sweepInterval", "sweepIntervalMinutes"),
        ("caseIdAttr", "caseIdAttribute"),
        ("stack-name", "stackName"),
    ],
)
def test_a_misspelled_context_key_is_a_config_error_naming_the_key_it_resembles(key: str, meant: str) -> None:
    # `-c maxConcurency=50` would otherwise deploy the default of 2 without a word
    with pytest.raises(ConfigError) as raised:
        cdk_app.build(App(context={**REQUIRED_CONTEXT, key: "50"}))
    assert raised.value.problems == (f"unknown context key {key!r} (did you mean {meant}?)",)


def test_context_keys_of_the_cdk_and_of_other_tools_are_left_alone() -> None:
    context = {
        **feature_flags(),
        **REQUIRED_CONTEXT,
        "aws:cdk:enable-path-metadata": True,
        "availability-zones:account=123456789012:region=us-east-1": ["us-east-1a"],
        "acknowledged-issue-numbers": [32775],
        "myTeamCostCentre": "cc-42",
        # the user's own, inside one of ours but not how it begins, or too short to be taken for it
        "window": "blue",
        "removal": "manual",
        "domainIdStaging": "x",
    }

    cdk_app.build(App(context=context))


def test_the_cdk_entry_point_exits_with_the_missing_keys_and_how_to_pass_them(tmp_path) -> None:
    # What `npx cdk synth` runs (cdk.json "app"); the CLI passes context in CDK_CONTEXT_JSON.
    environment = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({}), "CDK_OUTDIR": str(tmp_path)}
    completed = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 1
    assert "casesDomainId is required" in completed.stderr
    assert "connectInstanceArn is required" in completed.stderr
    assert "-c casesDomainId=" in completed.stderr
    assert list(tmp_path.iterdir()) == []


def test_cdk_json_runs_the_app_with_the_venvs_python() -> None:
    cdk_json = json.loads((REPO_ROOT / "cdk.json").read_text())
    assert cdk_json["app"] == "python app.py"
    # Required values are never defaulted from cdk.json: a deploy must name its own domain and instance.
    assert not {"casesDomainId", "connectInstanceArn"} & set(cdk_json["context"])
