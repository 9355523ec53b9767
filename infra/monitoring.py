"""Alarms (to an encrypted SNS topic) and a dashboard for a CaseLinker."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Acknowledgment, ArnFormat, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import (
    EVENT_COVERAGE_ALARM_RUNS,
    EVENT_COVERAGE_ALARM_THRESHOLD,
    LINKER_METRIC_BREAKDOWNS,
    LINKER_METRICS,
    METRICS_NAMESPACE,
    SERVICE_NAME,
    SWEEPER_METRICS,
    THROTTLING_ALARM_PERIODS,
)
from infra.sweeper import Sweeper

_PERIOD = Duration.minutes(1)
_DASHBOARD_PERIOD = Duration.minutes(5)
_DASHBOARD_SECONDS = 300


class CaseLinkerMonitoring(Construct):
    """One alarm per way a record can get stuck or lost, all notifying `topic`; plus `dashboard`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        queue: sqs.IQueue,
        processing_dlq: sqs.IQueue,
        rule_target_dlq: sqs.IQueue,
        function: lambda_.IFunction,
        rules: Sequence[events.IRule],
        oldest_message_alarm_seconds: int,
        sweeper: Sweeper | None = None,
        alarm_email: str | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)

        stack = Stack.of(self)
        # Alarms of this account and Region, and no other: CloudWatch publishes as its service principal, so
        # without these conditions any account's alarm could use the grant (the confused-deputy problem). Not
        # the exact alarm ARNs: an alarm created or replaced by a deploy would evaluate, and notify, before the
        # policy naming it is updated, and that first notification would be refused.
        from_this_accounts_alarms = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {
                "aws:SourceArn": stack.format_arn(
                    service="cloudwatch",
                    resource="alarm",
                    resource_name="*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            },
        }
        # A customer managed key: CloudWatch cannot publish to a topic under the AWS-managed aws/sns key,
        # whose policy cannot be changed to let cloudwatch.amazonaws.com use it.
        self.topic_key = kms.Key(
            self,
            "AlarmTopicKey",
            description="case-linker: encrypts the alarm topic",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy "*" means this key
                conditions=from_this_accounts_alarms,
            )
        )
        self.topic = sns.Topic(
            self, "AlarmTopic", display_name="case-linker alarms", master_key=self.topic_key, enforce_ssl=True
        )
        # enforce_ssl writes a topic policy holding only its TLS deny, and a topic policy replaces SNS's default
        # one, which is what let CloudWatch publish: without this allow every alarm would fire into nothing.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=from_this_accounts_alarms,
            )
        )
        self.email_subscription: sns.Subscription | None = None
        if alarm_email is not None:
            self.email_subscription = self.topic.add_subscription(
                subscriptions.EmailSubscription(alarm_email)
            )
            Validations.of(self.email_subscription).acknowledge(
                Acknowledgment(
                    id="Serverless::Serverless-SNSRedrivePolicy",
                    reason="An undelivered alarm email loses no record: the alarm keeps its state in CloudWatch "
                    "and on the dashboard, and the records stay in their queues.",
                )
            )
        action = cloudwatch_actions.SnsAction(self.topic)

        self.processing_dlq_alarm = self._alarm(
            "ProcessingDlqNotEmpty",
            processing_dlq.metric_approximate_number_of_messages_visible(period=_PERIOD, statistic="Maximum"),
            threshold=0,
            description="Records the linker could not process are in the processing DLQ: inspect, fix, replay.",
            action=action,
        )
        self.rule_target_dlq_alarm = self._alarm(
            "RuleTargetDlqNotEmpty",
            rule_target_dlq.metric_approximate_number_of_messages_visible(
                period=_PERIOD, statistic="Maximum"
            ),
            threshold=0,
            description="EventBridge could not deliver events to the queue: see ERROR_CODE on the DLQ messages.",
            action=action,
        )
        self.oldest_message_alarm = self._alarm(
            "QueueBacklogNotDraining",
            queue.metric_approximate_age_of_oldest_message(period=_PERIOD, statistic="Maximum"),
            threshold=oldest_message_alarm_seconds,
            description=(
                f"A message has waited over {oldest_message_alarm_seconds} s on the main queue: the linker is "
                "failing, throttled for long, or not consuming."
            ),
            action=action,
        )
        self.throttling_alarm = self._alarm(
            "ThrottlingPersists",
            linker_metric("Throttled"),
            threshold=0,
            evaluation_periods=THROTTLING_ALARM_PERIODS,
            description=(
                f"Cases (or Connect, reading a contact's attributes) refused the linker's calls for the rate in each "
                f"of the last {THROTTLING_ALARM_PERIODS} five-minute "
                "periods: "
                "the account's Cases quota is spent (by the linker's backlog or by others). Records wait and are "
                "re-sent before maxReceiveCount (metric Requeued); raise the quota or casesRequestsPerSecond."
            ),
            action=action,
        )
        self.function_errors_alarm = self._alarm(
            "FunctionErrors",
            function.metric_errors(period=_PERIOD, statistic="Sum"),
            threshold=0,
            description="The linker raised (a whole batch failed): see its log group.",
            action=action,
        )
        self.rule_alarms: list[cloudwatch.Alarm] = []
        for rule in rules:
            rule_name = rule.node.id
            for metric_name, what in (
                ("FailedInvocations", "could not deliver to the queue (retrying)"),
                ("InvocationsSentToDlq", "sent events to its DLQ"),
            ):
                self.rule_alarms.append(
                    self._alarm(
                        f"{rule_name}{metric_name}",
                        _rule_metric(rule, metric_name),
                        threshold=0,
                        description=f"EventBridge rule {rule_name} {what}.",
                        action=action,
                    )
                )

        self.sweeper_alarms: list[cloudwatch.Alarm] = (
            [] if sweeper is None else self._sweeper_alarms(sweeper, action)
        )

        self.dashboard = self._dashboard(queue, processing_dlq, rule_target_dlq, function, rules)
        if sweeper is not None:
            self._sweeper_dashboard(sweeper)

    def _sweeper_alarms(self, sweeper: Sweeper, action: cloudwatch.IAlarmAction) -> list[cloudwatch.Alarm]:
        interval = sweeper.schedule_interval
        return [
            self._alarm(
                "SweeperErrors",
                sweeper.function.metric_errors(period=interval, statistic="Sum"),
                threshold=0,
                description="A sweeper run failed (the next run searches its window again): see its log group.",
                action=action,
            ),
            # Missing data is the incident here: no invocation in two intervals means no sweep ran.
            self._alarm(
                "SweeperNotRunning",
                sweeper.function.metric_invocations(period=interval, statistic="Sum"),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=2,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
                description="The sweeper has not run for two intervals: is its schedule rule enabled?",
                action=action,
            ),
            self._alarm(
                "SweeperScheduleFailedInvocations",
                _rule_metric(sweeper.schedule, "FailedInvocations", period=interval),
                threshold=0,
                description="EventBridge could not invoke the sweeper on schedule.",
                action=action,
            ),
            self._alarm(
                "EventsMissed",
                linker_metric("EventCoverage", period=interval, statistic="Average"),
                threshold=EVENT_COVERAGE_ALARM_THRESHOLD,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=EVENT_COVERAGE_ALARM_RUNS,
                description=(
                    f"For {EVENT_COVERAGE_ALARM_RUNS} sweeps in a row, contact events had handled less than "
                    f"{EVENT_COVERAGE_ALARM_THRESHOLD:.0%} of the finished contacts the sweeper found: events "
                    "are being lost (the sweeper links them, later)."
                ),
                action=action,
            ),
        ]

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        action: cloudwatch.IAlarmAction,
        comparison_operator: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods: int = 1,
        # No data means nothing happened (an idle queue, no invocations): not an incident.
        treat_missing_data: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=comparison_operator,
            treat_missing_data=treat_missing_data,
            alarm_description=f"case-linker: {description}",
        )
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        return alarm

    def _dashboard(
        self,
        queue: sqs.IQueue,
        processing_dlq: sqs.IQueue,
        rule_target_dlq: sqs.IQueue,
        function: lambda_.IFunction,
        rules: Sequence[events.IRule],
    ) -> cloudwatch.Dashboard:
        # Metrics the linker breaks down (items by type, dead letters by error code) exist only with that
        # extra dimension: a search finds every value of it, and SUM() gives the total beside the others.
        outcomes: list[cloudwatch.IMetric] = [
            linker_breakdown(name, total=True)
            if name in LINKER_METRIC_BREAKDOWNS
            else linker_metric(name, label=name)
            for name in LINKER_METRICS
        ]
        breakdowns: list[cloudwatch.IMetric] = [linker_breakdown(name) for name in LINKER_METRIC_BREAKDOWNS]
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Linker outcomes", left=outcomes, width=12),
            cloudwatch.GraphWidget(title="By type / error code", left=breakdowns, width=12),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Main queue",
                left=[
                    queue.metric_approximate_number_of_messages_visible(period=_DASHBOARD_PERIOD),
                    queue.metric_approximate_number_of_messages_not_visible(period=_DASHBOARD_PERIOD),
                ],
                right=[queue.metric_approximate_age_of_oldest_message(period=_DASHBOARD_PERIOD)],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queues",
                left=[
                    processing_dlq.metric_approximate_number_of_messages_visible(
                        period=_DASHBOARD_PERIOD, label="processing DLQ"
                    ),
                    rule_target_dlq.metric_approximate_number_of_messages_visible(
                        period=_DASHBOARD_PERIOD, label="rule-target DLQ"
                    ),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="EventBridge rules",
                left=[
                    _rule_metric(rule, name, period=_DASHBOARD_PERIOD, label=f"{rule.node.id} {name}")
                    for rule in rules
                    for name in ("MatchedEvents", "FailedInvocations", "InvocationsSentToDlq")
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Linker function",
                left=[
                    function.metric_invocations(period=_DASHBOARD_PERIOD),
                    function.metric_errors(period=_DASHBOARD_PERIOD),
                    function.metric_throttles(period=_DASHBOARD_PERIOD),
                ],
                right=[function.metric_duration(period=_DASHBOARD_PERIOD, statistic="p99")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Cases pressure",
                left=[
                    linker_metric("Throttled", label="Throttled"),
                    linker_metric("Retried", label="Retried"),
                ],
                width=12,
            ),
        )
        return dashboard

    def _sweeper_dashboard(self, sweeper: Sweeper) -> None:
        interval = sweeper.schedule_interval
        counts = [
            linker_metric(name, period=interval, label=name)
            for name in SWEEPER_METRICS
            if name != "EventCoverage"
        ]
        coverage = linker_metric("EventCoverage", period=interval, statistic="Average", label="EventCoverage")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Sweeper: finished contacts found, already handled by events, enqueued, without case id",
                left=counts,
                right=[coverage],
                right_y_axis=cloudwatch.YAxisProps(min=0, max=1, label="EventCoverage"),
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Sweeper function",
                left=[
                    sweeper.function.metric_invocations(period=interval),
                    sweeper.function.metric_errors(period=interval),
                    sweeper.function.metric_throttles(period=interval),
                ],
                right=[sweeper.function.metric_duration(period=interval, statistic="Maximum")],
                width=12,
            ),
        )


def linker_metric(
    name: str, *, period: Duration = _DASHBOARD_PERIOD, statistic: str = "Sum", label: str | None = None
) -> cloudwatch.Metric:
    """A linker or sweeper metric as Powertools emits it: namespace CaseLinker, dimension service=case-linker."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE_NAME},
        statistic=statistic,
        period=period,
        label=label,
    )


def linker_breakdown(name: str, *, total: bool = False) -> cloudwatch.MathExpression:
    """One line per value of the metric's breakdown dimension, or (total=True) their sum."""
    schema = f"{{{METRICS_NAMESPACE},service,{LINKER_METRIC_BREAKDOWNS[name]}}}"
    search = (
        f"SEARCH('{schema} MetricName=\"{name}\" service=\"{SERVICE_NAME}\"', 'Sum', {_DASHBOARD_SECONDS})"
    )
    return cloudwatch.MathExpression(
        expression=f"SUM({search})" if total else search,
        # A dynamic label names each line by its dimension value (e.g. "RelatedItemCreated Comment").
        label=name if total else f"{name} ${{PROP('Dim.{LINKER_METRIC_BREAKDOWNS[name]}')}}",
        period=_DASHBOARD_PERIOD,
    )


def _rule_metric(
    rule: events.IRule, metric_name: str, *, period: Duration = _PERIOD, label: str | None = None
) -> cloudwatch.Metric:
    # No label on alarm metrics: a label turns the alarm into a metric-math alarm with a different shape.
    return cloudwatch.Metric(
        namespace="AWS/Events",
        metric_name=metric_name,
        dimensions_map={"RuleName": rule.rule_name},
        statistic="Sum",
        period=period,
        label=label,
    )
