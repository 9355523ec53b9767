"""After a deploy: the stack, and that its parts are wired as infra/ builds them (function, event source mapping,
contact-event rule, the sweeper's function and schedule)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import ArnParser, InvalidArnException

from infra.config import CaseLinkerConfig
from ops.doctor import deployed as out
from ops.doctor.deployed import Deployed, expected_outputs
from ops.doctor.verdict import (
    DEPLOY,
    REDEPLOY,
    Check,
    call_failed,
    could_not_check,
    guarded,
    not_found,
    ok,
    problem,
    stack_missing,
    stack_usable,
)
from ops.queues import queue_name


def check_stack(
    cloudformation: Any, stack_name: str, config: CaseLinkerConfig | None
) -> tuple[Check, dict[str, str] | None]:
    """CloudFormation DescribeStacks: the stack is deployed, not failed, and has every output. Returns the
    outputs too (None when the stack cannot be read)."""
    name = "stack"
    try:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as e:
        if stack_missing(e):
            return problem(name, f"no stack {stack_name} in this account and Region", DEPLOY), None
        return call_failed(name, e), None
    except BotoCoreError as e:
        return call_failed(name, e), None
    outputs = {o["OutputKey"]: str(o.get("OutputValue", "")) for o in stack.get("Outputs", [])}
    status = str(stack.get("StackStatus", "?"))
    if status.endswith("_IN_PROGRESS"):
        return could_not_check(name, f"{stack_name} is {status}", "run doctor again when it is done"), outputs
    if status == "UPDATE_ROLLBACK_COMPLETE":
        detail = f"{stack_name}'s last update failed and rolled back: it runs the previous version"
        fix = f"read the stack's events in the CloudFormation console, fix the cause, then {DEPLOY}"
        return problem(name, detail, fix), outputs
    if not stack_usable(status):
        fix = f"read the stack's events in the CloudFormation console; delete a failed first deploy, then {DEPLOY}"
        return problem(name, f"{stack_name} is {status}", fix), outputs
    missing = [key for key in expected_outputs(config, outputs) if not outputs.get(key)]
    if missing:
        return problem(
            name, f"{stack_name} ({status}) lacks the outputs {', '.join(missing)}", REDEPLOY
        ), outputs
    return ok(name, f"{stack_name} {status}, all {len(outputs)} outputs present"), outputs


def rule_name(rule_arn: str) -> tuple[str, str | None]:
    """(rule name, event bus name or None for the default bus) from `arn:...:rule/[bus/]name`."""
    try:
        resource = str(ArnParser().parse_arn(rule_arn)["resource"])
    except InvalidArnException:
        resource = rule_arn
    parts = resource.split("/")
    return (parts[2], parts[1]) if len(parts) == 3 else (parts[-1], None)


def _describe_rule(events: Any, rule_arn: str) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """(name, DescribeRule, every target) of a rule."""
    name, bus = rule_name(rule_arn)
    on_bus = {"EventBusName": bus} if bus else {}
    rule = events.describe_rule(Name=name, **on_bus)
    targets: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"Rule": name, **on_bus}
    while True:
        page = events.list_targets_by_rule(**kwargs)
        targets += page.get("Targets", [])
        if not page.get("NextToken"):
            return name, rule, targets
        kwargs["NextToken"] = page["NextToken"]


def _disabled(check: str, name: str, rule: Mapping[str, Any], consequence: str) -> Check | None:
    # ENABLED, or ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS.
    if str(rule.get("State", "")).startswith("ENABLED"):
        return None
    return problem(
        check,
        f"rule {name} is {rule.get('State')}: {consequence}",
        f"aws events enable-rule --name {name}, or {REDEPLOY}",
    )


@guarded("contact-event-rule")
def check_contact_rule(deployed: Deployed) -> Check:
    """EventBridge DescribeRule/ListTargetsByRule: the contact-event rule is enabled, matches the configured
    instance, and delivers to the main queue with the rule-target DLQ."""
    check = "contact-event-rule"
    name, rule, targets = _describe_rule(deployed.clients.events, deployed.output(out.RULE_ARN))
    if disabled := _disabled(check, name, rule, "no contact event reaches the queue"):
        return disabled
    config = deployed.config
    if config is not None:
        detail = json.loads(rule.get("EventPattern") or "{}").get("detail", {})
        instances = detail.get("instanceArn", [])
        if config.connect_instance_arn not in instances:
            return problem(
                check,
                f"rule {name} matches instance {', '.join(map(str, instances)) or '(none)'}, the context names "
                f"{config.connect_instance_arn}",
                f"{REDEPLOY}; or, if the stack is right, fix connectInstanceArn",
            )
        types = [str(t) for t in detail.get("eventType", [])]
        if sorted(types) != sorted(config.contact_event_types):
            return problem(
                check,
                f"rule {name} matches event types {', '.join(types) or '(none)'}, the context names "
                f"{', '.join(config.contact_event_types)}",
                f"{REDEPLOY}; or, if the stack is right, pass its contactEventTypes with --context",
            )
    dlq_arn = deployed.clients.sqs.get_queue_attributes(
        QueueUrl=deployed.output(out.RULE_TARGET_DLQ_URL), AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    to_queue = [t for t in targets if t.get("Arn") == deployed.output(out.MAIN_QUEUE_ARN)]
    if not to_queue:
        return problem(check, f"rule {name} has no target on the main queue", REDEPLOY)
    if not any(t.get("DeadLetterConfig", {}).get("Arn") == dlq_arn for t in to_queue):
        return problem(
            check,
            f"rule {name}'s target on the main queue has no dead-letter queue (the rule-target DLQ)",
            REDEPLOY,
        )
    return ok(
        check, f"{name} {rule.get('State')}, delivers to {queue_name(deployed.output(out.MAIN_QUEUE_URL))}"
    )


def _function_check(check: str, lambda_: Any, function: str) -> Check:
    try:
        found = lambda_.get_function_configuration(FunctionName=function)
    except ClientError as e:
        if not not_found(e):
            raise
        return problem(check, f"no function {function}", REDEPLOY)
    state, update = found.get("State", "Active"), found.get("LastUpdateStatus", "Successful")
    if state == "Failed" or update == "Failed":
        reason = found.get("StateReason") or found.get("LastUpdateStatusReason") or ""
        return problem(
            check,
            f"function {function} is {state}, last update {update}: {reason}".rstrip(": "),
            f"read the reason in the Lambda console; fix it and {REDEPLOY}",
        )
    if state in ("Pending", "Deleting", "Deactivating") or update == "InProgress":
        return could_not_check(
            check, f"function {function} is {state} (update {update})", "run doctor again soon"
        )
    # Inactive is fine: Lambda idles a function nobody invoked for weeks; the next invocation wakes it.
    return ok(check, f"{function} {state}, runtime {found.get('Runtime', '?')}")


@guarded("linker-function")
def check_linker_function(deployed: Deployed) -> Check:
    """Lambda GetFunctionConfiguration: the linker exists and is not failed."""
    return _function_check("linker-function", deployed.clients.lambda_, deployed.output(out.FUNCTION_NAME))


@guarded("sweeper-function")
def check_sweeper_function(deployed: Deployed) -> Check:
    """Lambda GetFunctionConfiguration: the sweeper exists and is not failed."""
    return _function_check(
        "sweeper-function", deployed.clients.lambda_, deployed.output(out.SWEEPER_FUNCTION_NAME)
    )


def expected_mapping(config: CaseLinkerConfig) -> dict[str, Any]:
    """The event source mapping's settings as the stack deploys them (infra/case_linker.py)."""
    return {
        "BatchSize": config.batch_size,
        "MaximumBatchingWindowInSeconds": config.batching_window_seconds,
        "ReportBatchItemFailures": True,
        "MaximumConcurrency": config.max_concurrency,
    }


def mapping_settings(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The same settings as ListEventSourceMappings reports them."""
    return {
        "BatchSize": mapping.get("BatchSize"),
        "MaximumBatchingWindowInSeconds": mapping.get("MaximumBatchingWindowInSeconds", 0),
        "ReportBatchItemFailures": "ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", []),
        "MaximumConcurrency": mapping.get("ScalingConfig", {}).get("MaximumConcurrency"),
    }


@guarded("event-source-mapping")
def check_event_source_mapping(deployed: Deployed) -> Check:
    """Lambda ListEventSourceMappings: the main queue feeds the linker, enabled, with the derived settings."""
    check = "event-source-mapping"
    function = deployed.output(out.FUNCTION_NAME)
    mappings: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"FunctionName": function, "EventSourceArn": deployed.output(out.MAIN_QUEUE_ARN)}
    while True:
        page = deployed.clients.lambda_.list_event_source_mappings(**kwargs)
        mappings += page.get("EventSourceMappings", [])
        if not page.get("NextMarker"):
            break
        kwargs["Marker"] = page["NextMarker"]
    if not mappings:
        return problem(check, f"no event source mapping from the main queue to {function}", REDEPLOY)
    mapping = mappings[0]
    state = mapping.get("State", "?")
    if state in ("Creating", "Enabling", "Updating"):
        return could_not_check(check, f"the mapping is {state}", "run doctor again in a minute")
    if state != "Enabled":
        return problem(
            check,
            f"the mapping from the main queue to {function} is {state}: nothing consumes the queue",
            f"aws lambda update-event-source-mapping --uuid {mapping.get('UUID')} --enabled, or {REDEPLOY}",
        )
    found = mapping_settings(mapping)
    if not found["ReportBatchItemFailures"]:
        detail = "the mapping lacks ReportBatchItemFailures: one failed record retries its whole batch"
        return problem(check, detail, REDEPLOY)
    settings = ", ".join(f"{key} {value}" for key, value in found.items() if key != "ReportBatchItemFailures")
    if deployed.config is None:
        detail = f"enabled ({settings}); not compared: the context is invalid"
        return could_not_check(check, detail, "fix the context (see the context check)")
    expected = expected_mapping(deployed.config)
    differ = [
        f"{key} {found[key]} (expected {value})" for key, value in expected.items() if found[key] != value
    ]
    if differ:
        return problem(
            check,
            "the mapping differs from this checkout's settings: " + ", ".join(differ),
            f"{REDEPLOY}; if the stack was deployed with other -c values, pass them here with --context KEY=VALUE",
        )
    return ok(check, f"enabled, {settings}, ReportBatchItemFailures")


@guarded("sweeper-rule")
def check_sweeper_rule(deployed: Deployed) -> Check:
    """EventBridge DescribeRule/ListTargetsByRule: the sweeper's schedule is enabled and runs the sweeper."""
    check = "sweeper-rule"
    name, rule, targets = _describe_rule(deployed.clients.events, deployed.output(out.SWEEPER_RULE_ARN))
    if disabled := _disabled(
        check, name, rule, "the sweeper does not run, contacts whose event was lost stay unlinked"
    ):
        return disabled
    function_arn = deployed.clients.lambda_.get_function_configuration(
        FunctionName=deployed.output(out.SWEEPER_FUNCTION_NAME)
    )["FunctionArn"]
    if not any(t.get("Arn") == function_arn for t in targets):
        return problem(check, f"rule {name} does not target the sweeper function", REDEPLOY)
    return ok(check, f"{name} {rule.get('State')}, {rule.get('ScheduleExpression', 'no schedule')}")
