"""The Sweeper construct: a scheduled run that finds finished contacts whose event never came (issue 12).

Amazon Connect delivers contact events best effort. Every `sweepIntervalMinutes` the sweeper asks Connect
`SearchContacts` for the instance's contacts that ended inside a trailing window, skips those the link ledger
already holds, and puts one message per remaining contact on the main queue. The linker treats such a message
like a COMPLETED event: it stays the only code that creates related items, paced by the same quota logic.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import BUDGET_KEY_PREFIX, CaseLinkerConfig
from infra.lambda_function import logged_function

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
        cases_domain_arn: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        swept = logged_function(
            self,
            ids=("Logs", "Role", "Function"),
            handler=HANDLER,
            code=code,
            layers=layers,
            # One interval at most: the run stops searching before it and leaves the rest of its window to the
            # next run (windows overlap). With no retries, runs never overlap and never share SearchContacts'
            # quota. (Not reserved concurrency: reserving even one fails the deploy in accounts whose
            # concurrency quota is at Lambda's minimum unreserved pool of 10.)
            timeout_seconds=config.sweeper_timeout_seconds,
            environment=config.sweeper_environment(
                main_queue_url=queue.queue_url, idempotency_table_name=table.table_name
            ),
            description="case-linker: enqueue finished contacts whose contact event never came",
            role_description="case-linker sweeper: find finished contacts whose event never came",
            removal_policy=removal_policy,
        )
        self.function, self.role, self.log_group = swept.function, swept.role, swept.log_group
        # A failed or throttled run is not retried: the next one, an interval later, searches its window again.
        self.function.configure_async_invoke(
            retry_attempts=0, max_event_age=Duration.seconds(config.sweeper_max_event_age_seconds)
        )
        self.schedule_interval = Duration.minutes(config.sweep_interval_minutes)
        self.schedule = events.Rule(
            self,
            "Schedule",
            description=f"case-linker: run the sweeper every {config.sweep_interval_minutes} minutes",
            schedule=events.Schedule.rate(self.schedule_interval),
        )
        self.schedule.add_target(targets.LambdaFunction(self.function, retry_attempts=0))
        self._grant(config, queue, table, cases_domain_arn)
        self._acknowledge(config)

    def _grant(
        self, config: CaseLinkerConfig, queue: sqs.IQueue, table: dynamodb.ITable, cases_domain_arn: str
    ) -> None:
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
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="FindTheCasesOfAContactChain",
                    actions=["cases:ListCasesForContact"],
                    resources=[cases_domain_arn],
                )
            )
            # Those look-ups take their slots from the fleet's shared Cases budget: its items only.
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="DrawOnTheSharedCasesBudget",
                    actions=["dynamodb:UpdateItem"],
                    resources=[table.table_arn],
                    conditions={
                        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{BUDGET_KEY_PREFIX}*"]}
                    },
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
        )
        Validations.of(self.function).acknowledge(
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
