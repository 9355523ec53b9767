"""Synthesizing the app for tests: the contexts used, and a helper that builds exactly as `cdk synth` does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App
from aws_cdk.assertions import Template

import app as cdk_app
from infra.stack import CaseLinkerStack

REPO_ROOT = Path(__file__).resolve().parents[2]
DOMAIN_ID = "11111111-2222-3333-4444-555555555555"
INSTANCE_ARN = "arn:aws:connect:us-east-1:123456789012:instance/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
REQUIRED_CONTEXT: dict[str, Any] = {"casesDomainId": DOMAIN_ID, "connectInstanceArn": INSTANCE_ARN}
FULL_CONTEXT: dict[str, Any] = {
    **REQUIRED_CONTEXT,
    "caseIdAttribute": "linkedCase",
    "contactEventTypes": "COMPLETED,DISCONNECTED",
    "maxConcurrency": "4",
    "casesRequestsPerSecond": "8",
    "batchSize": "5",
    "alarmEmail": "oncall@example.com",
    "removalPolicy": "destroy",
    "requestEventSource": "com.example.crm",
    "performedBy": "agent",
    "casesBurst": "12",
    "sweepIntervalMinutes": "10",
    "sweepWindowMinutes": "30",
    "sweepLagMinutes": "20",
    "connectSearchRequestsPerSecond": "1",
    "followContactChain": "false",
}
#: The defaults with the sweeper turned off.
NO_SWEEPER_CONTEXT: dict[str, Any] = {**REQUIRED_CONTEXT, "sweeperEnabled": "false"}


@dataclass(frozen=True)
class Synthesized:
    stack: CaseLinkerStack
    template: Template
    outdir: Path

    @property
    def json(self) -> dict[str, Any]:
        loaded: dict[str, Any] = dict(self.template.to_json())
        return loaded


def feature_flags() -> dict[str, Any]:
    """The context in cdk.json (feature flags), so tests synthesize exactly as the CLI does."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return context


def synthesize(context: dict[str, Any], outdir: Path) -> Synthesized:
    app = App(context={**feature_flags(), **context}, outdir=str(outdir))
    stack = cdk_app.build(app)
    # Runs the cdk-nag plugins too: an unacknowledged finding raises here.
    template = Template.from_stack(stack)
    return Synthesized(stack=stack, template=template, outdir=outdir)
