"""Which queues to work on: the CloudFormation stack's outputs, or URLs given on the command line."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

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
    from_stack: bool = False

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
        from_stack=True,
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


def same_queue(first_url: str, second_url: str) -> bool:
    """Two URLs naming one queue: the same host (any case) and path (trailing slash aside)."""

    def key(url: str) -> tuple[str, str]:
        parts = urlsplit(url.strip())
        return parts.netloc.lower(), parts.path.rstrip("/")

    return key(first_url) == key(second_url)


def refuse_same_queue(which: Dlq, source_url: str, target_url: str, *, same: bool = False) -> None:
    """The one mistake --force never overrides: replaying a queue into itself strips its reasons for nothing."""
    if same or same_queue(source_url, target_url):
        raise OpsError(
            f"the {which} DLQ and the main queue are the same queue ({source_url}): refused",
            ExitCode.USAGE,
            hint="check --queue-url and --dlq-url/--rule-target-dlq-url",
        )


def check_dlq_of(
    *,
    events: Any,
    which: Dlq,
    source_url: str,
    source_arn: str,
    target_url: str,
    target_arn: str,
    target_redrive_policy: dict[str, Any] | None,
    trusted: bool,
    force: bool,
    override: str | None = "--force",
) -> str:
    """Refuse to move messages from `source` to `target` unless the source is a dead-letter queue of the target.

    The processing DLQ is checked against the target's RedrivePolicy, the rule-target DLQ against the
    DeadLetterConfig of the EventBridge rule targets that point at the target (or trusted when both URLs come
    from the stack's outputs). The same queue for both is always refused; anything else unproven is refused
    unless `force`. `override` names the command's option that sets `force` (None: it has none), for the hint.
    Returns how the relation was established, for the record.
    """
    refuse_same_queue(which, source_url, target_url, same=bool(source_arn) and source_arn == target_arn)
    if which is Dlq.PROCESSING:
        named = (target_redrive_policy or {}).get("deadLetterTargetArn")
        if named == source_arn:
            return "the main queue's RedrivePolicy names this DLQ"
        found = f"its RedrivePolicy names {named}" if named else "it has no RedrivePolicy"
        problem = f"{source_url} is not the dead-letter queue of {target_url} ({found})"
    else:
        if trusted:
            return "both come from the stack's outputs"
        try:
            proven = _rule_target_dlq_of(events, target_arn, source_arn)
        except ClientError as e:
            proven = False
            problem_detail = (
                f"could not read the EventBridge rules ({e.response.get('Error', {}).get('Code')})"
            )
        else:
            problem_detail = "no EventBridge rule target on the default bus sends to it with this DLQ"
        if proven:
            return "an EventBridge rule target sends to the main queue with this dead-letter queue"
        problem = f"{source_url} is not the rule-target DLQ of {target_url}: {problem_detail}"
    if force:
        return f"not checked ({override}): {problem}"
    hint = "swapped --queue-url/--dlq-url?"
    if override:
        hint += f" Pass {override} only if you really mean to send these messages there"
    raise OpsError(problem, ExitCode.USAGE, hint=hint)


def _rule_target_dlq_of(events: Any, target_arn: str, dlq_arn: str) -> bool:
    rules: list[str] = []
    kwargs: dict[str, Any] = {"TargetArn": target_arn}
    while True:
        page = events.list_rule_names_by_target(**kwargs)
        rules.extend(page.get("RuleNames", []))
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    for rule in rules:
        for target in events.list_targets_by_rule(Rule=rule).get("Targets", []):
            if target.get("Arn") == target_arn and target.get("DeadLetterConfig", {}).get("Arn") == dlq_arn:
                return True
    return False
