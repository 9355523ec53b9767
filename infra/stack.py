"""CaseLinkerStack: composes the CaseLinker construct and publishes its outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.case_linker import CaseLinker
from infra.config import CaseLinkerConfig

DEFAULT_STACK_NAME = "CaseLinker"


class CaseLinkerStack(Stack):
    """The deployable unit: one CaseLinker and the outputs operators and the ops CLI read."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: CaseLinkerConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # The construct id is part of every logical ID inside it: never rename it (tests/infra pins them).
        self.linker = CaseLinker(self, "CaseLinker", config=config)

        outputs = {
            "MainQueueUrl": (
                self.linker.queue.queue_url,
                "Main queue: send an EventBridge envelope here to test",
            ),
            "MainQueueArn": (self.linker.queue.queue_arn, "Main queue ARN"),
            "ProcessingDlqUrl": (
                self.linker.processing_dlq.queue_url,
                "Records the linker could not process",
            ),
            "RuleTargetDlqUrl": (
                self.linker.rule_target_dlq.queue_url,
                "Events EventBridge could not deliver",
            ),
            "FunctionName": (self.linker.function.function_name, "The linker Lambda function"),
            "IdempotencyTableName": (self.linker.table.table_name, "Powertools idempotency records"),
            "AlarmTopicArn": (self.linker.topic.topic_arn, "Subscribe here for alarms"),
        }
        for key, (value, description) in outputs.items():
            CfnOutput(self, key, value=value, description=description)
