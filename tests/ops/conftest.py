"""Fixtures for the operator tool's tests: moto queues shaped like the stack's, and a CLI runner."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from ops.cli import app
from ops.context import Overrides
from tests.ops.helpers import StackQueues


@pytest.fixture
def sqs(moto_endpoint: str) -> Any:
    return boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def queues(sqs: Any) -> StackQueues:
    """Main queue with a redrive policy to the processing DLQ, and a rule-target DLQ."""
    dlq = sqs.create_queue(QueueName="case-linker-processing-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    main = sqs.create_queue(
        QueueName="case-linker-main",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})},
    )["QueueUrl"]
    rule_target = sqs.create_queue(QueueName="case-linker-rule-target-dlq")["QueueUrl"]
    arn = {
        url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for url in (main, rule_target)
    }
    # The contact-event rule delivers to the main queue, with the rule-target DLQ as its target's DLQ.
    events = boto3.client("events", endpoint_url=sqs.meta.endpoint_url, region_name="us-east-1")
    events.put_rule(Name="case-linker-contact-events", EventPattern=json.dumps({"source": ["aws.connect"]}))
    events.put_targets(
        Rule="case-linker-contact-events",
        Targets=[{"Id": "main-queue", "Arn": arn[main], "DeadLetterConfig": {"Arn": arn[rule_target]}}],
    )
    return StackQueues(main=main, processing_dlq=dlq, rule_target_dlq=rule_target)


Invoke = Callable[..., Any]


@pytest.fixture
def run_cli(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run `python -m ops ARGS` in-process against moto (AWS_ENDPOINT_URL), with a wide terminal."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()

    def invoke(args: list[str], *, overrides: Overrides | None = None, input: str | None = None) -> Any:
        return runner.invoke(app, args, obj=overrides or Overrides(), input=input, catch_exceptions=False)

    return invoke


def json_result(result: Any) -> Any:
    """The JSON document a command printed with `--output json` (stdout holds nothing else)."""
    assert result.exit_code in (0, 1, 5), result.output
    return json.loads(result.stdout)
