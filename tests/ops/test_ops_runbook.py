"""Every `python -m ops` command in docs/operations.md and in the README's "Operate" section, run verbatim, in
order, against a local stack (queues, rule and the `CaseLinker` stack outputs in moto, as the local pipeline
publishes them), answering "y" where it asks. A runbook nobody runs goes stale.

`native-redrive` needs SQS's message move task, which moto lacks: its commands get an SQS client that answers
those calls as SQS documents them (botocore's Stubber), the rest of each command being real.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from typer.testing import CliRunner

from local.outputs import publish_stack_outputs
from local.pipeline import LocalPipeline, PipelineOptions
from ops.cli import app
from ops.context import Overrides
from tests.conftest import EVENTS_DIR, REPO_ROOT
from tests.ops.helpers import connect_event, error_attributes, put

DOCS = REPO_ROOT / "docs" / "operations.md"
README = REPO_ROOT / "README.md"


def commands_in(text: str) -> list[str]:
    """The `python -m ops ...` lines of the bash code blocks, in order."""
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("python -m ops")]


def readme_operate_section() -> str:
    text = README.read_text()
    start = text.index("## Operate: the dead-letter queues")
    end = text.index("\n## ", start + 1)
    return text[start:end]


@pytest.fixture
def local_stack(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[LocalPipeline]:
    """The stack's resources and outputs in moto; the DLQ holds what a bad night leaves there."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)  # backups land here
    (tmp_path / "events").symlink_to(EVENTS_DIR)  # the runbook's relative `events/`
    with LocalPipeline(PipelineOptions(moto_endpoint=moto_endpoint)) as pipeline:
        publish_stack_outputs(pipeline)
        sqs, dlq = pipeline.sqs, pipeline.resources.processing_dlq_url
        for i in range(3):
            put(sqs, dlq, connect_event(f"throttled-{i}"), error_attributes("ThrottlingException"))
        for i in range(2):
            put(sqs, dlq, connect_event(f"invalid-{i}"), error_attributes("ValidationException"))
        put(sqs, dlq, connect_event("redriven"))
        yield pipeline


@pytest.mark.parametrize("document", ["docs/operations.md", "README.md#operate"])
def test_every_runbook_command_runs_verbatim_against_the_local_stack(
    local_stack: LocalPipeline, document: str
) -> None:
    text = DOCS.read_text() if document == "docs/operations.md" else readme_operate_section()
    commands = commands_in(text)
    assert len(commands) >= 5
    runner = CliRunner()
    for command in commands:
        args = shlex.split(command)[3:]
        clients = {"sqs": move_task_sqs(local_stack)} if "native-redrive" in args else {}
        result = runner.invoke(
            app,
            args,
            obj=Overrides(interactive=True, clients=clients, wait_seconds=0),
            input="y\n",
            catch_exceptions=False,
        )
        # doctor's answer about a laptop (no bootstrap stack, no Connect instance, few outputs) is "problems":
        # exit 1. What must hold is that the documented command line parses and runs.
        allowed = (0, 1) if args[0] == "doctor" else (0,)
        assert result.exit_code in allowed, (command, result.output)


def move_task_sqs(pipeline: LocalPipeline) -> Any:
    """An SQS client that answers the queue and move-task calls of one `native-redrive` as SQS would."""
    resources = pipeline.resources
    client = boto3.client("sqs", region_name="us-east-1")
    stubber = Stubber(client)
    # The main queue's RedrivePolicy names the processing DLQ, as the stack's does.
    redrive = json.dumps({"deadLetterTargetArn": resources.processing_dlq_arn, "maxReceiveCount": "5"})
    for arn, extra in (
        (resources.processing_dlq_arn, {}),
        (resources.main_queue_arn, {"RedrivePolicy": redrive}),
    ):
        attributes = {
            "QueueArn": arn,
            "ApproximateNumberOfMessages": "6",
            "ApproximateNumberOfMessagesNotVisible": "0",
            **extra,
        }
        stubber.add_response(
            "get_queue_attributes", {"Attributes": attributes}, {"QueueUrl": ANY, "AttributeNames": ["All"]}
        )
    stubber.add_response("list_message_move_tasks", {"Results": []})
    stubber.add_response("start_message_move_task", {"TaskHandle": "handle-1"})
    done = {
        "Status": "COMPLETED",
        "ApproximateNumberOfMessagesMoved": 6,
        "SourceArn": resources.processing_dlq_arn,
    }
    stubber.add_response("list_message_move_tasks", {"Results": [done]})
    stubber.activate()
    return client


def test_the_json_documents_are_the_documented_ones(local_stack: LocalPipeline) -> None:
    documented = DOCS.read_text()
    runner = CliRunner()
    outputs = {
        "stats": ["dlq", "stats"],
        "peek": ["dlq", "peek"],
        "replay": ["dlq", "replay", "--dry-run"],
        "send": ["send", "events/", "--dry-run"],
        "doctor": ["doctor"],
    }
    for name, args in outputs.items():
        result = runner.invoke(app, [*args, "--output", "json"], obj=Overrides(), catch_exceptions=False)
        document = json.loads(result.stdout)
        for key in keys(document):
            assert f'"{key}"' in documented, f"{name}: key {key!r} is not in docs/operations.md"


def keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key != "by_error_code":  # its keys are error codes
                yield key
                yield from keys(inner)
    elif isinstance(value, list):
        for item in value:
            yield from keys(item)
