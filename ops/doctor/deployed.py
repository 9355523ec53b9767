"""What the post-deploy checks read: the stack's outputs (docs/CONTRACTS.md, "Stack"), the clients, the settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from infra.config import CaseLinkerConfig
from ops.aws import Clients
from ops.doctor.verdict import MissingOutput
from ops.queues import OUTPUT_MAIN_QUEUE_URL, OUTPUT_PROCESSING_DLQ_URL, OUTPUT_RULE_TARGET_DLQ_URL

MAIN_QUEUE_URL = OUTPUT_MAIN_QUEUE_URL
PROCESSING_DLQ_URL = OUTPUT_PROCESSING_DLQ_URL
RULE_TARGET_DLQ_URL = OUTPUT_RULE_TARGET_DLQ_URL
MAIN_QUEUE_ARN = "MainQueueArn"
FUNCTION_NAME = "FunctionName"
ALARM_TOPIC_ARN = "AlarmTopicArn"
RULE_ARN = "RuleArn"
LOG_GROUP_NAME = "LogGroupName"
SWEEPER_FUNCTION_NAME = "SweeperFunctionName"
SWEEPER_LOG_GROUP_NAME = "SweeperLogGroupName"
SWEEPER_RULE_ARN = "SweeperRuleArn"
STACK_OUTPUTS = (
    MAIN_QUEUE_URL,
    MAIN_QUEUE_ARN,
    PROCESSING_DLQ_URL,
    RULE_TARGET_DLQ_URL,
    FUNCTION_NAME,
    "IdempotencyTableName",
    ALARM_TOPIC_ARN,
    RULE_ARN,
    LOG_GROUP_NAME,
    "DashboardUrl",
)
SWEEPER_OUTPUTS = (SWEEPER_FUNCTION_NAME, SWEEPER_LOG_GROUP_NAME, SWEEPER_RULE_ARN)


def expected_outputs(config: CaseLinkerConfig | None, found: Mapping[str, str]) -> tuple[str, ...]:
    """The output keys the stack should have: the sweeper's too when the context enables it (or, without a
    valid context, when the stack has any of them)."""
    sweeper = config.sweeper_enabled if config is not None else any(key in found for key in SWEEPER_OUTPUTS)
    return STACK_OUTPUTS + (SWEEPER_OUTPUTS if sweeper else ())


@dataclass(frozen=True, kw_only=True)
class Deployed:
    """A deployed stack as the post-deploy checks see it. `config` is None when the context is invalid."""

    clients: Clients
    outputs: Mapping[str, str]
    config: CaseLinkerConfig | None
    now: datetime

    def output(self, key: str) -> str:
        """An output's value; MissingOutput (the check then says could-not-check) when the stack lacks it."""
        value = self.outputs.get(key)
        if not value:
            raise MissingOutput(key)
        return value

    @property
    def has_sweeper(self) -> bool:
        return SWEEPER_FUNCTION_NAME in expected_outputs(self.config, self.outputs)
