"""The Sweeper construct: a scheduled run that finds finished contacts whose event never came (issue 12).

Amazon Connect delivers contact events best effort. Every `sweepIntervalMinutes` the sweeper asks Connect
`SearchContacts` for the instance's contacts that ended inside a trailing window, skips those the link ledger
already holds, and puts one message per remaining contact on the main queue. The linker treats such a message
like a COMPLETED event: it stays the only code that creates related items, paced by the same quota logic.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Acknowledgment, ArnFormat, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import MEMORY_SIZE_MB, CaseLinkerConfig

HANDLER = "case_linker.sweeper.lambda_handler"
#: AWS documents DescribeContact as a dependent action of SearchContacts (Service Authorization Reference).
CONNECT_SEARCH_ACTIONS = ("connect:SearchContacts",)
CONNECT_SEARCH_DEPENDENT_ACTIONS = ("connect:DescribeContact",)
#: The ledger reads that tell a handled contact from a missed one.
LEDGER_READ_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:GetItem")


class Sweeper(Construct):
    """`function` (handler case_linker.sweeper.lambda_handler) run every sweepIntervalMinutes by `schedule`.

    A scheduled EventBridge rule rather than EventBridge Scheduler: a fixed rate needs neither time zones nor
    one-off schedules, the rule invokes the function through a resource policy scoped to the rule (no role to
    assume), and its FailedInvocations metric is alarmed like the contact rule's.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: CaseLinkerConfig,
        code: lambda_.Code,
        layers: Sequence[lambda_.ILayerVersion],
        queue: sqs.IQueue,
        table: dynamodb.ITable,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=removal_policy
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="case-linker sweeper: find finished contacts whose event never came",
        )
        self.log_group.grant(self.role, "logs:CreateLogStream", "logs:PutLogEvents")
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            code=code,
            handler=HANDLER,
            layers=list(layers),
            memory_size=MEMORY_SIZE_MB,
            # One interval at most: the run stops searching before it and leaves the rest of its window to the
            # next run (windows overlap), so runs never stack up.
            timeout=Duration.seconds(config.sweeper_timeout_seconds),
            # One run at a time: runs share SearchContacts' account quota (0.5 req/s by default).
            reserved_concurrent_executions=1,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            role=self.role,
            environment=config.sweeper_environment(
                main_queue_url=queue.queue_url, idempotency_table_name=table.table_name
            ),
            description="case-linker: enqueue finished contacts whose contact event never came",
        )
        # A failed or throttled run is not retried: the next one, an interval later, searches its window again.
        self.function.configure_async_invoke(
            retry_attempts=0, max_event_age=Duration.seconds(max(60, config.sweep_interval_seconds))
        )
        self.schedule_interval = Duration.minutes(config.sweep_interval_minutes)
        self.schedule = events.Rule(
            self,
            "Schedule",
            description=f"case-linker: run the sweeper every {config.sweep_interval_minutes} minutes",
            schedule=events.Schedule.rate(self.schedule_interval),
        )
        self.schedule.add_target(targets.LambdaFunction(self.function, retry_attempts=0))
        self._grant(config, queue, table)
        self._acknowledge(config)

    def _grant(self, config: CaseLinkerConfig, queue: sqs.IQueue, table: dynamodb.ITable) -> None:
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SearchTheInstancesContacts",
                actions=list(CONNECT_SEARCH_ACTIONS),
                resources=[config.connect_instance_arn],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DescribeTheContactsFound",
                actions=list(CONNECT_SEARCH_DEPENDENT_ACTIONS),
                resources=[config.contact_arn_pattern],
            )
        )
        if config.follow_contact_chain:
            # A contact without a case id is linked to the one case its initial or previous contact is on.
            domain_arn = Stack.of(self).format_arn(
                service="cases",
                resource="domain",
                resource_name=config.cases_domain_id,
                arn_format=ArnFormat.SLASH_RESOURCE_NAME,
            )
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="FindTheCasesOfAContactChain",
                    actions=["cases:ListCasesForContact"],
                    resources=[domain_arn],
                )
            )
        # The main queue is encrypted with SSE-SQS: sending needs no KMS grant.
        queue.grant(self.role, "sqs:SendMessage")
        table.grant(self.role, *LEDGER_READ_ACTIONS)

    def _acknowledge(self, config: CaseLinkerConfig) -> None:
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{config.contact_arn_pattern}]",
                reason="SearchContacts' documented dependent action DescribeContact is checked on each contact "
                "found, whose ids are only known at run time; limited to the configured instance's contacts.",
            ),
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason="X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions; "
                "CDK adds them for active tracing.",
            ),
        )
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-L1",
                reason="python3.13 is pinned like the linker's: same asset, same Powertools layer release.",
            ),
            Acknowledgment(
                id="Serverless::Serverless-LambdaLatestVersion",
                reason="python3.13 is pinned like the linker's: same asset, same Powertools layer release.",
            ),
            Acknowledgment(
                id="Serverless::Serverless-LambdaDLQ",
                reason=_NOTHING_TO_DEAD_LETTER,
            ),
            Acknowledgment(
                id="Serverless::Serverless-LambdaAsyncFailureDestination",
                reason=_NOTHING_TO_DEAD_LETTER,
            ),
        )
        Validations.of(self.schedule).acknowledge(
            Acknowledgment(
                id="Serverless::Serverless-EventBusDLQ",
                reason="A scheduled event carries nothing worth keeping: a missed run is covered by the next "
                "(windows overlap), and the SweeperNotRunning and FailedInvocations alarms report it.",
            )
        )


_NOTHING_TO_DEAD_LETTER = (
    "A failed run needs no dead letter: its scheduled event carries nothing, and the next run searches the same "
    "window again (windows overlap); the SweeperErrors alarm reports it."
)
