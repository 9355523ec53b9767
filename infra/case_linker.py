"""The CaseLinker construct: EventBridge rule(s) -> SQS queue -> linker Lambda -> Cases, with DLQs.

Where an event can fail, and where it ends up:
- EventBridge cannot deliver to the queue        -> `rule_target_dlq` (after the rule's retry policy)
- the linker keeps failing a record transiently  -> `processing_dlq` (SQS redrive after maxReceiveCount)
- the linker finds a record permanently invalid  -> `processing_dlq` (sent by the linker, with ERROR_CODE)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, ArnFormat, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.config import POWERTOOLS_VERSION, CaseLinkerConfig
from infra.lambda_function import ARCHITECTURE, RUNTIME, logged_function
from infra.monitoring import CaseLinkerMonitoring
from infra.sweeper import Sweeper

#: The Lambda asset: the `functions/` folder at the repo root, wherever the app is run from.
FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
HANDLER = "case_linker.handler.lambda_handler"
#: Powertools publishes each release's layer ARN per Region under this public SSM path
#: (/aws/service/powertools/python/<arch>/<runtime>/<version>, beside .../latest). A versioned parameter
#: keeps synth offline (CloudFormation resolves it at deploy time, in the deploy's Region) and gives every
#: deploy the same, tested layer. If a release's parameter is missing in a Region, the deploy stops before
#: changing anything, naming the parameter.
POWERTOOLS_LAYER_PARAMETER = (
    f"/aws/service/powertools/python/{ARCHITECTURE.name}/{RUNTIME.name}/{POWERTOOLS_VERSION}"
)

#: Actions the linker calls on Cases; all are authorised on the domain and its cases. SearchCases resolves a
#: request's case referenceId to its case id; GetMergeCasesStatus tells whether a contact's case was merged
#: into the one the contact is on.
CASES_ACTIONS = (
    "cases:CreateRelatedItem",
    "cases:GetMergeCasesStatus",
    "cases:ListCasesForContact",
    "cases:SearchCases",
    "cases:SearchRelatedItems",
)
#: Connect actions on the instance's contacts: read the case-id attribute; CreateRelatedItem of a Contact
#: also needs DescribeContact on that contact.
CONNECT_CONTACT_ACTIONS = ("connect:DescribeContact", "connect:GetContactAttributes")
#: Only when PERFORMED_BY=agent: the Cases API checks DescribeUser on the agent recorded as `userArn`.
CONNECT_AGENT_ACTIONS = ("connect:DescribeUser",)
#: What the link ledger and the shared Cases budget (ledger.py, budget.py) do with their table: single-item
#: reads and conditional writes, and batched reads. No Scan or Query, and no DeleteItem: records expire by TTL,
#: and a linker that could delete them could forget what it created.
IDEMPOTENCY_TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:BatchGetItem",
)


class CaseLinker(Construct):
    """Links Amazon Connect contacts (and related-item requests) to Amazon Connect Cases.

    Construct ids of the queues and the table are part of their CloudFormation logical IDs; renaming or
    moving them replaces the resource (and loses its messages or idempotency records). tests/infra pins them.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: CaseLinkerConfig) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.cases_domain_arn = Stack.of(self).format_arn(
            service="cases",
            resource="domain",
            resource_name=config.cases_domain_id,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        removal_policy = RemovalPolicy.DESTROY if config.removal_policy == "destroy" else RemovalPolicy.RETAIN

        # --- queues ------------------------------------------------------------------------------------
        self.processing_dlq = self._queue(
            "ProcessingDlq", retention=config.dlq_retention_seconds, removal_policy=removal_policy
        )
        self.rule_target_dlq = self._queue(
            "RuleTargetDlq", retention=config.dlq_retention_seconds, removal_policy=removal_policy
        )
        self.queue = self._queue(
            "Queue",
            retention=config.main_queue_retention_seconds,
            removal_policy=removal_policy,
            visibility_timeout=Duration.seconds(config.visibility_timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.processing_dlq, max_receive_count=config.max_receive_count
            ),
        )
        Validations.of(self.rule_target_dlq).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-SQS3",
                reason="This queue is itself a dead-letter queue (the EventBridge rule target's DLQ); "
                "cdk-nag does not see the rule's DeadLetterConfig.",
            )
        )
        for dlq in (self.processing_dlq, self.rule_target_dlq):
            Validations.of(dlq).acknowledge(
                Acknowledgment(
                    id="Serverless::Serverless-SQSRedrivePolicy",
                    reason="A terminal dead-letter queue: a DLQ of its own would only move the problem; "
                    "an alarm fires on any message here and operators replay with the ops CLI.",
                )
            )

        # --- idempotency table ----------------------------------------------------------------------------
        self.table = dynamodb.Table(
            self,
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expiration",
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=removal_policy == RemovalPolicy.RETAIN,
            removal_policy=removal_policy,
        )

        # --- the linker function ---------------------------------------------------------------------------
        # Resolved by CloudFormation at deploy time: synth needs no network; the version is pinned.
        powertools_layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "PowertoolsLayer",
            ssm.StringParameter.value_for_string_parameter(self, POWERTOOLS_LAYER_PARAMETER),
        )
        # One asset for both handlers (the linker and the sweeper share settings, clients and adapters).
        code = lambda_.Code.from_asset(
            str(FUNCTIONS_DIR),
            exclude=["**/__pycache__", "**/*.pyc", "**/*.md", ".mypy_cache", ".pytest_cache"],
        )
        linker = logged_function(
            self,
            ids=("FunctionLogs", "FunctionRole", "Function"),
            handler=HANDLER,
            code=code,
            layers=[powertools_layer],
            timeout_seconds=config.function_timeout_seconds,
            environment=config.lambda_environment(
                dead_letter_queue_url=self.processing_dlq.queue_url,
                idempotency_table_name=self.table.table_name,
                main_queue_url=self.queue.queue_url,
            ),
            description="case-linker: SQS batches of contact events and requests -> Cases related items",
            role_description="case-linker: link Amazon Connect contacts to Amazon Connect Cases",
            removal_policy=removal_policy,
        )
        self.function, self.role, self.log_group = linker.function, linker.role, linker.log_group
        # Built explicitly (not SqsEventSource) to keep a handle on the mapping for its acknowledgment.
        self.event_source_mapping = self.function.add_event_source_mapping(
            "QueueEventSource",
            event_source_arn=self.queue.queue_arn,
            batch_size=config.batch_size,
            max_batching_window=Duration.seconds(config.batching_window_seconds),
            report_batch_item_failures=True,
            max_concurrency=config.max_concurrency,
        )
        self.queue.grant_consume_messages(self.role)
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="Serverless::Serverless-LambdaDLQ",
                reason="DeadLetterConfig only applies to asynchronous invocations; the SQS event source invokes "
                "synchronously, and failed records reach the processing DLQ by the queue's redrive policy.",
            ),
        )
        Validations.of(self.event_source_mapping).acknowledge(
            Acknowledgment(
                id="Serverless::Serverless-LambdaEventSourceMappingDestination",
                reason="SQS event source mappings support no on-failure destination; failed records go to "
                "the processing DLQ by the main queue's redrive policy (maxReceiveCount).",
            )
        )
        self._grant_linker_permissions()

        # --- EventBridge rules on the default bus -------------------------------------------------------
        self.rule = self._rule(
            "ContactEventRule",
            config.contact_event_pattern,
            "case-linker: finished Amazon Connect contacts of the configured instance",
        )
        request_pattern = config.request_event_pattern
        self.request_rule: events.Rule | None = (
            None
            if request_pattern is None
            else self._rule(
                "RelatedItemRequestRule",
                request_pattern,
                "case-linker: Case Related Item Request events from the configured source",
            )
        )

        # --- the reconciliation sweeper: finished contacts whose event never came (issue 12) --------------
        self.sweeper: Sweeper | None = (
            Sweeper(
                self,
                "Sweeper",
                config=config,
                code=code,
                layers=[powertools_layer],
                queue=self.queue,
                table=self.table,
                cases_domain_arn=self.cases_domain_arn,
                removal_policy=removal_policy,
            )
            if config.sweeper_enabled
            else None
        )

        # --- alarms and dashboard --------------------------------------------------------------------------
        self.monitoring = CaseLinkerMonitoring(
            self,
            "Monitoring",
            queue=self.queue,
            processing_dlq=self.processing_dlq,
            rule_target_dlq=self.rule_target_dlq,
            function=self.function,
            rules=[rule for rule in (self.rule, self.request_rule) if rule is not None],
            oldest_message_alarm_seconds=config.oldest_message_alarm_seconds,
            sweeper=self.sweeper,
            alarm_email=config.alarm_email,
            removal_policy=removal_policy,
        )
        self.topic = self.monitoring.topic

    def _queue(
        self,
        construct_id: str,
        *,
        retention: int,
        removal_policy: RemovalPolicy,
        visibility_timeout: Duration | None = None,
        dead_letter_queue: sqs.DeadLetterQueue | None = None,
    ) -> sqs.Queue:
        # SSE-SQS, not the AWS-managed alias/aws/sqs key: EventBridge cannot send to a queue under that key.
        return sqs.Queue(
            self,
            construct_id,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.seconds(retention),
            visibility_timeout=visibility_timeout,
            dead_letter_queue=dead_letter_queue,
            removal_policy=removal_policy,
        )

    def _rule(self, construct_id: str, pattern: dict[str, Any], description: str) -> events.Rule:
        rule = events.Rule(
            self,
            construct_id,
            description=description,
            event_pattern=events.EventPattern(
                source=pattern["source"],
                detail_type=pattern["detail-type"],
                detail=pattern.get("detail"),
            ),
        )
        rule.add_target(
            targets.SqsQueue(
                self.queue,
                dead_letter_queue=self.rule_target_dlq,
                retry_attempts=self.config.rule_target_retry_attempts,
                max_event_age=Duration.seconds(self.config.rule_target_max_event_age_seconds),
            )
        )
        return rule

    def _grant_linker_permissions(self) -> None:
        config = self.config
        domain_arn = self.cases_domain_arn
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="LinkRelatedItemsOnTheDomainsCases",
                actions=list(CASES_ACTIONS),
                resources=[domain_arn, f"{domain_arn}/case/*"],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadTheInstancesContacts",
                actions=list(CONNECT_CONTACT_ACTIONS),
                resources=[config.contact_arn_pattern],
            )
        )
        if config.records_agent_as_performer:
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="DescribeTheInstancesAgents",
                    actions=list(CONNECT_AGENT_ACTIONS),
                    resources=[config.agent_arn_pattern],
                )
            )
        self.processing_dlq.grant_send_messages(self.role)
        # The linker hands a record back by changing its visibility (granted with consuming) and may put a
        # copy of a record back on the queue; SSE-SQS needs no KMS grant.
        self.queue.grant(self.role, "sqs:SendMessage")
        self.table.grant(self.role, *IDEMPOTENCY_TABLE_ACTIONS)

        wildcard_reasons = {
            f"Resource::arn:<AWS::Partition>:cases:<AWS::Region>:<AWS::AccountId>:domain/{config.cases_domain_id}/case/*": (
                "Cases are created at run time and the case id arrives in each event; the grant is limited to "
                "the configured domain's cases and to four actions."
            ),
            f"Resource::{config.contact_arn_pattern}": (
                "Contact ids arrive in each event; the grant is limited to the configured instance's contacts "
                "and to two read actions."
            ),
        }
        if config.records_agent_as_performer:
            wildcard_reasons[f"Resource::{config.agent_arn_pattern}"] = (
                "The agent of each contact is only known at run time; the grant is limited to the configured "
                "instance's users and to DescribeUser."
            )
        Validations.of(self.role).acknowledge(
            *(
                Acknowledgment(id=f"AwsSolutions::AwsSolutions-IAM5[{finding}]", reason=reason)
                for finding, reason in wildcard_reasons.items()
            )
        )
