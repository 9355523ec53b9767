"""After a deploy: how it is doing. Queue depths and the oldest message's age (SQS, CloudWatch), and the last
hour's errors and dead letters (CloudWatch). Only counts, ages and error codes: never a message body."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from infra.config import LINKER_METRIC_BREAKDOWNS, METRICS_NAMESPACE, SERVICE_NAME
from ops.doctor import deployed as out
from ops.doctor.deployed import Deployed
from ops.doctor.verdict import REDEPLOY, Check, could_not_check, counted, guarded, ok, problem
from ops.errors import error_code
from ops.queues import queue_name

#: How far back the error checks look.
ERROR_WINDOW = timedelta(hours=1)
#: How far back the oldest message's age is read; SQS publishes it about every minute for an active queue.
AGE_WINDOW = timedelta(minutes=15)
REPLAY = "python -m ops dlq stats, then dlq peek; fix the cause, then python -m ops dlq replay (docs/operations.md)"


def _queue_attributes(sqs: Any, check: str, url: str) -> dict[str, str] | Check:
    """The queue's attributes, or a problem when the queue does not exist."""
    try:
        attributes: dict[str, str] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
            "Attributes"
        ]
    except ClientError as e:
        if error_code(e) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
        return problem(check, f"queue {queue_name(url)} does not exist", REDEPLOY)
    return attributes


def _depth(attributes: Mapping[str, str]) -> tuple[int, int, int]:
    """(waiting, in flight, delayed)."""
    return (
        int(attributes.get("ApproximateNumberOfMessages", 0)),
        int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    )


@guarded("main-queue")
def check_main_queue(deployed: Deployed) -> Check:
    """SQS GetQueueAttributes: the main queue exists, and how deep it is (information, not a verdict)."""
    url = deployed.output(out.MAIN_QUEUE_URL)
    attributes = _queue_attributes(deployed.clients.sqs, "main-queue", url)
    if isinstance(attributes, Check):
        return attributes
    waiting, in_flight, delayed = _depth(attributes)
    return ok("main-queue", f"{queue_name(url)}: {waiting} waiting, {in_flight} in flight, {delayed} delayed")


def _dlq_check(deployed: Deployed, check: str, output: str) -> Check:
    url = deployed.output(output)
    attributes = _queue_attributes(deployed.clients.sqs, check, url)
    if isinstance(attributes, Check):
        return attributes
    total = sum(_depth(attributes))
    if not total:
        return ok(check, f"{queue_name(url)} is empty")
    return problem(check, f"{queue_name(url)} holds {counted(total, 'message')}", REPLAY)


@guarded("processing-dlq")
def check_processing_dlq(deployed: Deployed) -> Check:
    """SQS GetQueueAttributes: the processing DLQ is empty (its alarm fires on any message)."""
    return _dlq_check(deployed, "processing-dlq", out.PROCESSING_DLQ_URL)


@guarded("rule-target-dlq")
def check_rule_target_dlq(deployed: Deployed) -> Check:
    """SQS GetQueueAttributes: the rule-target DLQ is empty (its alarm fires on any message)."""
    return _dlq_check(deployed, "rule-target-dlq", out.RULE_TARGET_DLQ_URL)


def backlog_alarm_seconds(attributes: Mapping[str, str]) -> int | None:
    """The backlog alarm's threshold, read from the queue: maxReceiveCount x visibility timeout, as
    infra/config.py's oldest_message_alarm_seconds derives it."""
    try:
        redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
        return int(redrive["maxReceiveCount"]) * int(attributes["VisibilityTimeout"])
    except (ValueError, KeyError, TypeError):
        return None


def metric_values(
    cloudwatch: Any, metrics: Sequence[dict[str, Any]], *, start: datetime, end: datetime, stat: str
) -> list[float | None]:
    """One value per metric over [start, end): the sum ("Sum") or maximum ("Maximum") of its one-minute values;
    None when CloudWatch holds no data point for it (GetMetricData, paged)."""
    ids = [f"m{index}" for index in range(len(metrics))]
    values: dict[str, list[float]] = {metric_id: [] for metric_id in ids}
    kwargs: dict[str, Any] = {
        "MetricDataQueries": [
            {
                "Id": metric_id,
                "MetricStat": {"Metric": metric, "Period": 60, "Stat": stat},
                "ReturnData": True,
            }
            for metric_id, metric in zip(ids, metrics, strict=True)
        ],
        "StartTime": start,
        "EndTime": end,
    }
    while ids:
        page = cloudwatch.get_metric_data(**kwargs)
        for result in page.get("MetricDataResults", []):
            values[result["Id"]] += [float(v) for v in result.get("Values", [])]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    combine: Callable[[list[float]], float] = sum if stat == "Sum" else max
    return [combine(values[metric_id]) if values[metric_id] else None for metric_id in ids]


@guarded("main-queue-age")
def check_main_queue_age(deployed: Deployed) -> Check:
    """CloudWatch ApproximateAgeOfOldestMessage: the backlog drains (the oldest message is younger than the
    backlog alarm's threshold)."""
    check = "main-queue-age"
    url = deployed.output(out.MAIN_QUEUE_URL)
    attributes = _queue_attributes(deployed.clients.sqs, check, url)
    if isinstance(attributes, Check):
        return attributes
    if not sum(_depth(attributes)):
        return ok(check, f"{queue_name(url)} is empty")
    metric = {
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateAgeOfOldestMessage",
        "Dimensions": [{"Name": "QueueName", "Value": queue_name(url)}],
    }
    now = deployed.now
    [age] = metric_values(
        deployed.clients.cloudwatch, [metric], start=now - AGE_WINDOW, end=now, stat="Maximum"
    )
    if age is None:
        return could_not_check(
            check,
            "no ApproximateAgeOfOldestMessage in CloudWatch in the last 15 minutes",
            "run doctor again later",
        )
    threshold = backlog_alarm_seconds(attributes)
    if threshold is not None and age > threshold:
        return problem(
            check,
            f"the oldest message has waited {age:.0f} s, over the backlog alarm's {threshold} s: the backlog is "
            "not draining",
            "README, Backlogs, retention and the backlog alarm: read the linker's logs (LogGroupName), raise the "
            "Cases quotas and casesRequestsPerSecond, or slow the producers",
        )
    return ok(check, f"oldest message {age:.0f} s" + (f" (alarm at {threshold} s)" if threshold else ""))


def _function_errors(deployed: Deployed, check: str, function_output: str, log_group_output: str) -> Check:
    function = deployed.output(function_output)
    metric = {
        "Namespace": "AWS/Lambda",
        "MetricName": "Errors",
        "Dimensions": [{"Name": "FunctionName", "Value": function}],
    }
    now = deployed.now
    [errors] = metric_values(
        deployed.clients.cloudwatch, [metric], start=now - ERROR_WINDOW, end=now, stat="Sum"
    )
    if not errors:  # no data point: no invocation, so no error
        return ok(check, f"no errors from {function} in the last hour")
    log_group = deployed.outputs.get(log_group_output)
    logs = f"aws logs tail {log_group} --since 1h" if log_group else "read the function's log group"
    return problem(
        check, f"{counted(errors, 'error')} from {function} in the last hour", f"{logs}; fix the cause"
    )


@guarded("linker-errors")
def check_linker_errors(deployed: Deployed) -> Check:
    """CloudWatch AWS/Lambda Errors: the linker raised in the last hour (a whole batch failed)."""
    return _function_errors(deployed, "linker-errors", out.FUNCTION_NAME, out.LOG_GROUP_NAME)


@guarded("sweeper-errors")
def check_sweeper_errors(deployed: Deployed) -> Check:
    """CloudWatch AWS/Lambda Errors: a sweeper run failed in the last hour."""
    return _function_errors(deployed, "sweeper-errors", out.SWEEPER_FUNCTION_NAME, out.SWEEPER_LOG_GROUP_NAME)


@guarded("dead-lettered")
def check_dead_lettered(deployed: Deployed) -> Check:
    """CloudWatch CaseLinker DeadLettered: records the linker gave up on in the last hour. The linker emits it
    only per errorCode (LINKER_METRIC_BREAKDOWNS), so every such metric of the service is listed and summed."""
    check = "dead-lettered"
    cloudwatch = deployed.clients.cloudwatch
    metrics: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"Namespace": METRICS_NAMESPACE, "MetricName": "DeadLettered"}
    while True:
        page = cloudwatch.list_metrics(**kwargs)
        service = {"Name": "service", "Value": SERVICE_NAME}
        metrics += [m for m in page.get("Metrics", []) if service in m.get("Dimensions", [])]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    now = deployed.now
    sums = metric_values(cloudwatch, metrics, start=now - ERROR_WINDOW, end=now, stat="Sum")
    breakdown = LINKER_METRIC_BREAKDOWNS["DeadLettered"]
    by_code: dict[str, int] = {}
    for metric, total in zip(metrics, sums, strict=True):
        if total:
            code = next((d["Value"] for d in metric["Dimensions"] if d["Name"] == breakdown), "?")
            by_code[code] = by_code.get(code, 0) + int(total)
    if not by_code:
        return ok(check, "no record dead-lettered in the last hour")
    counts = ", ".join(
        f"{code} {count}" for code, count in sorted(by_code.items(), key=lambda item: -item[1])
    )
    return problem(
        check, f"{counted(sum(by_code.values()), 'record')} dead-lettered in the last hour ({counts})", REPLAY
    )
