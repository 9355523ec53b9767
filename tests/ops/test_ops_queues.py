"""Queue resolution, `send`, and the exit codes for missing stacks, queues and permissions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
from botocore.stub import Stubber

from ops.context import Overrides
from ops.errors import ExitCode
from tests.ops.conftest import Invoke
from tests.ops.helpers import StackQueues, connect_event, depth, drain, error_attributes, put


def create_stack(moto_endpoint: str, name: str, outputs: list[str]) -> None:
    """A tiny stack with the three queues and the requested outputs, created by moto's CloudFormation."""
    refs = {"MainQueueUrl": "Main", "ProcessingDlqUrl": "Dlq", "RuleTargetDlqUrl": "RuleDlq"}
    resources: dict[str, Any] = {logical: {"Type": "AWS::SQS::Queue"} for logical in refs.values()}
    resources["Main"]["Properties"] = {
        "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}, "maxReceiveCount": 10}
    }
    template = {"Resources": resources, "Outputs": {key: {"Value": {"Ref": refs[key]}} for key in outputs}}
    cfn = boto3.client("cloudformation", endpoint_url=moto_endpoint, region_name="us-east-1")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))


def stack_queue(sqs: Any, moto_endpoint: str, stack: str, output: str) -> str:
    cfn = boto3.client("cloudformation", endpoint_url=moto_endpoint, region_name="us-east-1")
    outputs = cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    return str(next(o["OutputValue"] for o in outputs if o["OutputKey"] == output))


ALL_OUTPUTS = ["MainQueueUrl", "ProcessingDlqUrl", "RuleTargetDlqUrl"]


def test_queues_come_from_the_default_stack_outputs(run_cli: Invoke, moto_endpoint: str, sqs: Any) -> None:
    create_stack(moto_endpoint, "CaseLinker", ALL_OUTPUTS)
    dlq = stack_queue(sqs, moto_endpoint, "CaseLinker", "ProcessingDlqUrl")
    put(sqs, dlq, connect_event("c-1"), error_attributes("ValidationException"))

    result = run_cli(["dlq", "stats", "--output", "json"])

    assert result.exit_code == 0, result.output
    processing = next(r for r in json.loads(result.stdout)["dlqs"] if r["dlq"] == "processing")
    assert processing["by_error_code"] == {"ValidationException": 1}


def test_stack_name_option_picks_the_stack(
    run_cli: Invoke, moto_endpoint: str, sqs: Any, tmp_path: Path
) -> None:
    create_stack(moto_endpoint, "CaseLinker-staging", ALL_OUTPUTS)
    dlq = stack_queue(sqs, moto_endpoint, "CaseLinker-staging", "ProcessingDlqUrl")
    main = stack_queue(sqs, moto_endpoint, "CaseLinker-staging", "MainQueueUrl")
    put(sqs, dlq, connect_event("c-1"))

    result = run_cli(
        [
            "--stack-name",
            "CaseLinker-staging",
            "dlq",
            "replay",
            "--yes",
            "--backup",
            str(tmp_path / "b.jsonl"),
        ]
    )

    assert result.exit_code == 0, result.output
    assert depth(sqs, main) == (1, 0)


def test_a_missing_stack_exits_3(run_cli: Invoke) -> None:
    result = run_cli(["--stack-name", "NoSuchStack", "dlq", "stats"])
    assert result.exit_code == ExitCode.NOT_FOUND
    assert "stack NoSuchStack not found" in result.stderr


def test_a_stack_without_the_outputs_exits_3_naming_them(run_cli: Invoke, moto_endpoint: str) -> None:
    create_stack(moto_endpoint, "CaseLinker", ["MainQueueUrl", "ProcessingDlqUrl"])
    result = run_cli(["dlq", "peek"])
    assert result.exit_code == ExitCode.NOT_FOUND
    assert "RuleTargetDlqUrl" in result.stderr


def test_a_missing_queue_exits_3(run_cli: Invoke, moto_endpoint: str) -> None:
    result = run_cli(["--dlq-url", f"{moto_endpoint}/123456789012/gone", "dlq", "peek"])
    assert result.exit_code == ExitCode.NOT_FOUND
    assert "gone" in result.stderr


def test_access_denied_exits_4(run_cli: Invoke) -> None:
    client = boto3.client("sqs", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "get_queue_attributes", service_error_code="AccessDenied", http_status_code=403
        )
        result = run_cli(
            ["--dlq-url", "https://sqs.us-east-1.amazonaws.com/1/dlq", "dlq", "stats"],
            overrides=Overrides(clients={"sqs": client}),
        )
    assert result.exit_code == ExitCode.ACCESS_DENIED
    assert "AccessDenied" in result.stderr


def test_explicit_urls_without_the_main_queue_cannot_replay(run_cli: Invoke, queues: StackQueues) -> None:
    put_args = ["--dlq-url", queues.processing_dlq]
    result = run_cli([*put_args, "dlq", "replay", "--yes"])
    assert result.exit_code == ExitCode.USAGE
    assert "--queue-url" in result.stderr


def test_send_puts_each_file_on_the_main_queue_byte_for_byte(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    folder = tmp_path / "events"
    (folder / "nested").mkdir(parents=True)
    first = connect_event("c-1")
    second = '{"caseId": "case-1",  "type": "Comment"}'  # odd spacing kept as-is
    (folder / "a.json").write_text(first)
    (folder / "nested" / "b.json").write_text(second)
    (folder / "README.md").write_text("not an event")

    result = run_cli(["--queue-url", queues.main, "send", str(folder), "--yes"])

    assert result.exit_code == 0, result.output
    assert sorted(m["Body"] for m in drain(sqs, queues.main)) == sorted([first, second])


def test_send_refuses_a_file_that_is_not_json(run_cli: Invoke, queues: StackQueues, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = run_cli(["--queue-url", queues.main, "send", str(bad), "--yes"])
    assert result.exit_code == ExitCode.USAGE
    assert "not valid JSON" in result.stderr


def test_send_a_named_non_json_file_as_is_to_exercise_the_dlq(
    run_cli: Invoke, sqs: Any, queues: StackQueues, tmp_path: Path
) -> None:
    malformed = tmp_path / "malformed-body.txt"
    malformed.write_bytes(b'{"detail-type": "Amazon Connect\r\n')
    seed = tmp_path / "seed.json"
    seed.write_text("{}")
    (tmp_path / "one.json").write_text("{}")

    assert run_cli(["--queue-url", queues.main, "send", str(malformed), "--yes"]).exit_code == 0
    assert (
        run_cli(["--queue-url", queues.main, "send", str(tmp_path), "--yes"]).exit_code == 0
    )  # seed.json skipped

    assert sorted(m["Body"] for m in drain(sqs, queues.main)) == sorted(
        ['{"detail-type": "Amazon Connect\r\n', "{}"]
    )
