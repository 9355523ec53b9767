"""The stack's messaging resources, created in moto from the same `CaseLinkerConfig` that `cdk deploy` uses."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from infra.config import CaseLinkerConfig


@dataclass(frozen=True, kw_only=True)
class Timings:
    """The time-related settings the stack derives; override them to make redelivery fast in tests and chaos."""

    function_timeout_s: float
    visibility_timeout_s: int
    batching_window_s: float
    max_receive_count: int
    batch_size: int
    max_concurrency: int
    memory_mb: int = 256

    @classmethod
    def from_config(cls, config: CaseLinkerConfig, **overrides: Any) -> Timings:
        """What the stack deploys, with `overrides` (any field, None meaning keep) applied on top."""
        from infra.config import MEMORY_SIZE_MB

        derived = cls(
            function_timeout_s=float(config.function_timeout_seconds),
            visibility_timeout_s=config.visibility_timeout_seconds,
            batching_window_s=float(config.batching_window_seconds),
            max_receive_count=config.max_receive_count,
            batch_size=config.batch_size,
            max_concurrency=config.max_concurrency,
            memory_mb=MEMORY_SIZE_MB,
        )
        return replace(derived, **{key: value for key, value in overrides.items() if value is not None})


@dataclass(frozen=True, kw_only=True)
class LocalResources:
    main_queue_url: str
    main_queue_arn: str
    processing_dlq_url: str
    processing_dlq_arn: str
    rule_target_dlq_url: str
    rule_target_dlq_arn: str
    idempotency_table_name: str
    contact_rule_name: str
    request_rule_name: str | None
    event_patterns: dict[str, dict[str, Any]]  # rule name -> pattern


def _queue(sqs: Any, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    url: str = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def create_resources(
    *,
    sqs: Any,
    events: Any,
    dynamodb: Any,
    config: CaseLinkerConfig,
    timings: Timings,
    prefix: str = "case-linker",
) -> LocalResources:
    """Queues with redrive, the rule(s) with their target DLQ and retry policy, and the idempotency table."""
    dlq_attributes = {
        "MessageRetentionPeriod": str(config.dlq_retention_seconds),
        "SqsManagedSseEnabled": "true",
    }
    processing_dlq_url, processing_dlq_arn = _queue(sqs, f"{prefix}-processing-dlq", dlq_attributes)
    target_dlq_url, target_dlq_arn = _queue(sqs, f"{prefix}-rule-target-dlq", dlq_attributes)
    main_url, main_arn = _queue(
        sqs,
        f"{prefix}-queue",
        {
            "VisibilityTimeout": str(timings.visibility_timeout_s),
            "MessageRetentionPeriod": str(config.main_queue_retention_seconds),
            "SqsManagedSseEnabled": "true",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": processing_dlq_arn, "maxReceiveCount": timings.max_receive_count}
            ),
        },
    )

    table_name = f"{prefix}-idempotency"
    dynamodb.create_table(
        TableName=table_name,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )

    # On real AWS only Amazon Connect can publish `aws.connect` events (PutEvents answers
    # NotAuthorizedForSourceException); moto lets us publish them, which is what makes this rehearsal possible.
    patterns: dict[str, dict[str, Any]] = {f"{prefix}-contact-events": config.contact_event_pattern}
    if config.request_event_pattern is not None:
        patterns[f"{prefix}-related-item-requests"] = config.request_event_pattern
    for rule_name, pattern in patterns.items():
        events.put_rule(Name=rule_name, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(
            Rule=rule_name,
            Targets=[
                {
                    "Id": "main-queue",
                    "Arn": main_arn,
                    "DeadLetterConfig": {"Arn": target_dlq_arn},
                    "RetryPolicy": {
                        "MaximumRetryAttempts": config.rule_target_retry_attempts,
                        "MaximumEventAgeInSeconds": config.rule_target_max_event_age_seconds,
                    },
                }
            ],
        )
    rule_names = list(patterns)
    return LocalResources(
        main_queue_url=main_url,
        main_queue_arn=main_arn,
        processing_dlq_url=processing_dlq_url,
        processing_dlq_arn=processing_dlq_arn,
        rule_target_dlq_url=target_dlq_url,
        rule_target_dlq_arn=target_dlq_arn,
        idempotency_table_name=table_name,
        contact_rule_name=rule_names[0],
        request_rule_name=rule_names[1] if len(rule_names) > 1 else None,
        event_patterns=patterns,
    )
