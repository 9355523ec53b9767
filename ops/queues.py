"""Which queues to work on: the CloudFormation stack's outputs, or URLs given on the command line."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from ops.errors import ExitCode, OpsError, translate_client_error

DEFAULT_STACK_NAME = "CaseLinker"

# CloudFormation output keys (docs/CONTRACTS.md, issue 4).
OUTPUT_MAIN_QUEUE_URL = "MainQueueUrl"
OUTPUT_PROCESSING_DLQ_URL = "ProcessingDlqUrl"
OUTPUT_RULE_TARGET_DLQ_URL = "RuleTargetDlqUrl"


class Dlq(StrEnum):
    """The two dead-letter queues."""

    PROCESSING = "processing"
    RULE_TARGET = "rule-target"


@dataclass(frozen=True, kw_only=True)
class Queues:
    """Queue URLs for one run; `None` when not known (explicit mode without that option)."""

    main: str | None
    processing_dlq: str | None
    rule_target_dlq: str | None
    origin: str

    def dlq(self, which: Dlq) -> str | None:
        return self.processing_dlq if which is Dlq.PROCESSING else self.rule_target_dlq

    def require_main(self) -> str:
        if self.main is None:
            raise OpsError(
                "the main queue is not known: with explicit queue URLs, pass --queue-url too", ExitCode.USAGE
            )
        return self.main

    def require_dlq(self, which: Dlq) -> str:
        url = self.dlq(which)
        if url is None:
            option = "--dlq-url" if which is Dlq.PROCESSING else "--rule-target-dlq-url"
            raise OpsError(
                f"the {which} DLQ is not known: with explicit queue URLs, pass {option}", ExitCode.USAGE
            )
        return url


def resolve_queues(
    *,
    cloudformation: Any,
    stack_name: str,
    queue_url: str | None = None,
    processing_dlq_url: str | None = None,
    rule_target_dlq_url: str | None = None,
) -> Queues:
    """Explicit URLs when any is given (the stack is then not read at all), else the stack's outputs."""
    if queue_url or processing_dlq_url or rule_target_dlq_url:
        return Queues(
            main=queue_url,
            processing_dlq=processing_dlq_url,
            rule_target_dlq=rule_target_dlq_url,
            origin="command-line URLs",
        )
    outputs = stack_outputs(cloudformation, stack_name)
    missing = [
        key
        for key in (OUTPUT_MAIN_QUEUE_URL, OUTPUT_PROCESSING_DLQ_URL, OUTPUT_RULE_TARGET_DLQ_URL)
        if not outputs.get(key)
    ]
    if missing:
        raise OpsError(
            f"stack {stack_name} has no output {', '.join(missing)}",
            ExitCode.NOT_FOUND,
            hint="is this a case-linker stack, fully deployed? Or pass --queue-url/--dlq-url",
        )
    return Queues(
        main=outputs[OUTPUT_MAIN_QUEUE_URL],
        processing_dlq=outputs[OUTPUT_PROCESSING_DLQ_URL],
        rule_target_dlq=outputs[OUTPUT_RULE_TARGET_DLQ_URL],
        origin=f"stack {stack_name}",
    )


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """The outputs of one stack as {OutputKey: OutputValue}."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as e:
        # DescribeStacks(StackName=...) answers a missing stack with the generic ValidationError code;
        # for a single named stack that code means "no such stack" (or a malformed name).
        if e.response.get("Error", {}).get("Code") == "ValidationError":
            raise OpsError(
                f"stack {stack_name} not found",
                ExitCode.NOT_FOUND,
                hint="check --stack-name and --region/--profile, or pass the queue URLs (--queue-url, --dlq-url)",
            ) from e
        raise translate_client_error(e, f"reading stack {stack_name}") from e
    if not stacks:
        raise OpsError(f"stack {stack_name} not found", ExitCode.NOT_FOUND)
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def queue_name(url: str) -> str:
    """The queue name, the last segment of its URL."""
    return url.rstrip("/").rsplit("/", 1)[-1]
