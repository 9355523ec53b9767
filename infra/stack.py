"""CaseLinkerStack: composes the CaseLinker construct, publishes its outputs, and guards where it is deployed."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, CfnRule, CfnRuleAssertion, Fn, Stack, Token
from constructs import Construct

from infra.case_linker import CaseLinker
from infra.config import CaseLinkerConfig, ConfigError

DEFAULT_STACK_NAME = "CaseLinker"


class CaseLinkerStack(Stack):
    """The deployable unit: one CaseLinker and the outputs operators and the ops CLI read."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: CaseLinkerConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._refuse_another_account_or_region(config)
        # The construct id is part of every logical ID inside it: never rename it (tests/infra pins them).
        self.linker = CaseLinker(self, "CaseLinker", config=config)
        linker = self.linker

        outputs = {
            "MainQueueUrl": (linker.queue.queue_url, "Main queue: send an EventBridge envelope here to test"),
            "MainQueueArn": (linker.queue.queue_arn, "Main queue ARN"),
            "ProcessingDlqUrl": (linker.processing_dlq.queue_url, "Records the linker could not process"),
            "RuleTargetDlqUrl": (linker.rule_target_dlq.queue_url, "Events EventBridge could not deliver"),
            "FunctionName": (linker.function.function_name, "The linker Lambda function"),
            "IdempotencyTableName": (
                linker.table.table_name,
                "The link ledger, contact records and the shared Cases budget",
            ),
            "AlarmTopicArn": (linker.topic.topic_arn, "Subscribe here for alarms"),
            "RuleArn": (linker.rule.rule_arn, "The contact-event rule on the default event bus"),
            "LogGroupName": (linker.log_group.log_group_name, "The linker's log group"),
            "DashboardUrl": (
                # The commercial partition's console; in other partitions open CloudWatch > Dashboards.
                f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}"
                f"#dashboards/dashboard/{linker.monitoring.dashboard.dashboard_name}",
                "The case-linker dashboard in the CloudWatch console",
            ),
        }
        if linker.sweeper is not None:
            outputs |= {
                "SweeperFunctionName": (linker.sweeper.function.function_name, "The sweeper Lambda function"),
                "SweeperLogGroupName": (linker.sweeper.log_group.log_group_name, "The sweeper's log group"),
                "SweeperRuleArn": (linker.sweeper.schedule.rule_arn, "The rule that runs the sweeper"),
            }
        for key, (value, description) in outputs.items():
            CfnOutput(self, key, value=value, description=description)

    def _refuse_another_account_or_region(self, config: CaseLinkerConfig) -> None:
        """Connect publishes contact events only to its own account and Region's default bus.

        A stack anywhere else deploys cleanly and never sees an event. When the stack's environment is known at
        synth, refuse it here; either way, the template's Rules make CloudFormation refuse the deploy (in another
        account, Region or partition).
        """
        account, region = config.connect_instance_account, config.connect_instance_region
        partition = config.connect_instance_partition
        problems = []
        if not Token.is_unresolved(self.account) and self.account != account:
            problems.append(
                f"connectInstanceArn is in account {account}, but the stack deploys to account {self.account}: "
                "use credentials for the instance's account"
            )
        if not Token.is_unresolved(self.region) and self.region != region:
            problems.append(
                f"connectInstanceArn is in Region {region}, but the stack deploys to Region {self.region}: "
                "deploy to the instance's Region (Connect publishes contact events only there)"
            )
        if problems:
            raise ConfigError(problems)
        CfnRule(
            self,
            "DeployToTheConnectInstancesAccountAndRegion",
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_and(
                        Fn.condition_equals(Aws.ACCOUNT_ID, account),
                        Fn.condition_equals(Aws.REGION, region),
                        Fn.condition_equals(Aws.PARTITION, partition),
                    ),
                    assert_description=(
                        f"case-linker must be deployed in the account ({account}), Region ({region}) and "
                        f"partition ({partition}) of "
                        f"connectInstanceArn {config.connect_instance_arn}: Connect publishes contact events only "
                        "there. Use credentials and a Region for that account, or fix connectInstanceArn."
                    ),
                )
            ],
        )
