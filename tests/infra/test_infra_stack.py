"""The synthesized CaseLinker template, property by property (defaults unless a test says otherwise)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.config import LINKER_METRIC_BREAKDOWNS, LINKER_METRICS, CaseLinkerConfig
from tests.infra.synth import DOMAIN_ID, INSTANCE_ARN, Synthesized
from tests.infra.templates import (
    CONTACT_RULE,
    IDEMPOTENCY_TABLE,
    MAIN_QUEUE,
    PROCESSING_DLQ,
    RULE_TARGET_DLQ,
    SWEEPER_HANDLER,
    arn_of,
    as_list,
    function_with_handler,
    joined,
    only,
    properties,
    role_statements,
    statement_with,
)

# The Powertools release the tests run (requirements-dev.txt), for the runtime and architecture the function uses.
POWERTOOLS_PARAMETER = "/aws/service/powertools/python/arm64/python3.13/3.37.0"


@pytest.fixture(scope="module")
def config() -> CaseLinkerConfig:
    return CaseLinkerConfig(cases_domain_id=DOMAIN_ID, connect_instance_arn=INSTANCE_ARN)


# --- stateful resources keep their logical IDs ------------------------------------------------------------
@pytest.mark.parametrize(
    ("logical_id", "resource_type"),
    [
        (MAIN_QUEUE, "AWS::SQS::Queue"),
        (PROCESSING_DLQ, "AWS::SQS::Queue"),
        (RULE_TARGET_DLQ, "AWS::SQS::Queue"),
        (IDEMPOTENCY_TABLE, "AWS::DynamoDB::Table"),
    ],
)
def test_stateful_resources_keep_their_pinned_logical_ids(
    template: Template, logical_id: str, resource_type: str
) -> None:
    assert template.to_json()["Resources"][logical_id]["Type"] == resource_type


@pytest.mark.parametrize("logical_id", [MAIN_QUEUE, PROCESSING_DLQ, RULE_TARGET_DLQ, IDEMPOTENCY_TABLE])
def test_stateful_resources_are_retained_by_default(template: Template, logical_id: str) -> None:
    resource = template.to_json()["Resources"][logical_id]
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")


@pytest.mark.parametrize("logical_id", [MAIN_QUEUE, PROCESSING_DLQ, RULE_TARGET_DLQ, IDEMPOTENCY_TABLE])
def test_removal_policy_destroy_deletes_stateful_resources(full_synth: Synthesized, logical_id: str) -> None:
    resource = full_synth.json["Resources"][logical_id]
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Delete", "Delete")


# --- EventBridge -------------------------------------------------------------------------------------------
def test_the_contact_rule_matches_completed_contacts_of_the_configured_instance(template: Template) -> None:
    assert properties(template, CONTACT_RULE)["EventPattern"] == {
        "source": ["aws.connect"],
        "detail-type": ["Amazon Connect Contact Event"],
        "detail": {"eventType": ["COMPLETED"], "instanceArn": [INSTANCE_ARN]},
    }


def test_the_contact_rule_is_on_the_default_bus_and_enabled(template: Template) -> None:
    rule = properties(template, CONTACT_RULE)
    assert "EventBusName" not in rule
    assert rule["State"] == "ENABLED"


def test_the_rule_pattern_is_the_one_the_local_pipeline_reuses(
    template: Template, config: CaseLinkerConfig
) -> None:
    assert properties(template, CONTACT_RULE)["EventPattern"] == config.contact_event_pattern


def test_the_rule_targets_the_main_queue_with_its_own_dlq_retry_policy_and_max_age(
    template: Template,
) -> None:
    assert properties(template, CONTACT_RULE)["Targets"] == [
        {
            "Arn": arn_of(MAIN_QUEUE),
            "Id": "Target0",
            "DeadLetterConfig": {"Arn": arn_of(RULE_TARGET_DLQ)},
            "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
        }
    ]


def test_only_the_contact_rule_matches_events_without_a_request_source(template: Template) -> None:
    # The other rule on the default bus is the sweeper's schedule, which matches no event.
    rules = template.find_resources("AWS::Events::Rule")
    assert [logical_id for logical_id, rule in rules.items() if "EventPattern" in rule["Properties"]] == [
        CONTACT_RULE
    ]


def test_configured_event_types_reach_the_rule_pattern(full_template: Template) -> None:
    assert properties(full_template, CONTACT_RULE)["EventPattern"]["detail"]["eventType"] == [
        "COMPLETED",
        "DISCONNECTED",
    ]


def test_a_request_source_adds_a_rule_for_related_item_requests(full_template: Template) -> None:
    _, rule = only(
        full_template.find_resources(
            "AWS::Events::Rule",
            {"Properties": {"EventPattern": {"detail-type": ["Case Related Item Request"]}}},
        )
    )
    assert rule["Properties"]["EventPattern"] == {
        "source": ["com.example.crm"],
        "detail-type": ["Case Related Item Request"],
    }
    assert rule["Properties"]["Targets"] == [
        {
            "Arn": arn_of(MAIN_QUEUE),
            "Id": "Target0",
            "DeadLetterConfig": {"Arn": arn_of(RULE_TARGET_DLQ)},
            "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
        }
    ]


def test_only_the_rule_may_send_to_the_main_queue(template: Template) -> None:
    _, policy = only(
        template.find_resources("AWS::SQS::QueuePolicy", {"Properties": {"Queues": [{"Ref": MAIN_QUEUE}]}})
    )
    allows = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"],
            "Resource": arn_of(MAIN_QUEUE),
            "Condition": {"ArnEquals": {"aws:SourceArn": arn_of(CONTACT_RULE)}},
        }
    ]


def test_only_the_rule_may_send_to_the_rule_target_dlq(template: Template) -> None:
    _, policy = only(
        template.find_resources(
            "AWS::SQS::QueuePolicy", {"Properties": {"Queues": [{"Ref": RULE_TARGET_DLQ}]}}
        )
    )
    allows = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1
    assert allows[0]["Principal"] == {"Service": "events.amazonaws.com"}
    assert allows[0]["Action"] == "sqs:SendMessage"
    assert allows[0]["Condition"] == {"ArnEquals": {"aws:SourceArn": arn_of(CONTACT_RULE)}}


# --- queues ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("logical_id", [MAIN_QUEUE, PROCESSING_DLQ, RULE_TARGET_DLQ])
def test_every_queue_is_encrypted_with_sse_sqs(template: Template, logical_id: str) -> None:
    queue = properties(template, logical_id)
    assert queue["SqsManagedSseEnabled"] is True
    # Not the AWS-managed alias/aws/sqs key: EventBridge could not send to the queue.
    assert "KmsMasterKeyId" not in queue


@pytest.mark.parametrize("logical_id", [MAIN_QUEUE, PROCESSING_DLQ, RULE_TARGET_DLQ])
def test_every_queue_denies_requests_without_tls(template: Template, logical_id: str) -> None:
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": logical_id}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Effect": "Deny",
                            "Principal": {"AWS": "*"},
                            "Action": "sqs:*",
                            "Resource": arn_of(logical_id),
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ]
                )
            },
        },
    )


@pytest.mark.parametrize("logical_id", [PROCESSING_DLQ, RULE_TARGET_DLQ])
def test_dead_letter_queues_keep_messages_fourteen_days(template: Template, logical_id: str) -> None:
    assert properties(template, logical_id)["MessageRetentionPeriod"] == 1_209_600


def test_the_main_queue_redrives_to_the_processing_dlq_after_max_receive_count(
    template: Template, config: CaseLinkerConfig
) -> None:
    assert properties(template, MAIN_QUEUE)["RedrivePolicy"] == {
        "deadLetterTargetArn": arn_of(PROCESSING_DLQ),
        "maxReceiveCount": config.max_receive_count,
    }
    assert config.max_receive_count >= 5


def test_the_main_queue_keeps_messages_seven_days(template: Template, config: CaseLinkerConfig) -> None:
    assert properties(template, MAIN_QUEUE)["MessageRetentionPeriod"] == 604_800
    assert config.main_queue_retention_seconds == 604_800


@pytest.mark.parametrize("dlq", [PROCESSING_DLQ, RULE_TARGET_DLQ])
def test_each_dlq_keeps_messages_longer_than_the_main_queue(template: Template, dlq: str) -> None:
    # A redriven message keeps its first enqueue time: it must not expire on arrival in the DLQ.
    main = properties(template, MAIN_QUEUE)["MessageRetentionPeriod"]
    assert properties(template, dlq)["MessageRetentionPeriod"] - main >= 7 * 24 * 3600


def test_visibility_timeout_is_six_function_timeouts_plus_the_batching_window(template: Template) -> None:
    _, function = function_with_handler(template)
    _, mapping = only(template.find_resources("AWS::Lambda::EventSourceMapping"))
    timeout = function["Timeout"]
    window = mapping["Properties"]["MaximumBatchingWindowInSeconds"]
    assert properties(template, MAIN_QUEUE)["VisibilityTimeout"] >= 6 * timeout + window


def test_visibility_timeout_follows_the_config(template: Template, config: CaseLinkerConfig) -> None:
    assert properties(template, MAIN_QUEUE)["VisibilityTimeout"] == config.visibility_timeout_seconds == 480


# --- the function ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def function(template: Template) -> dict[str, Any]:
    _, props = function_with_handler(template)
    return props


def test_the_function_runs_python_3_13_on_arm64(function: dict[str, Any]) -> None:
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]


def test_the_function_handler_is_the_linkers_entry_point(function: dict[str, Any]) -> None:
    assert function["Handler"] == "case_linker.handler.lambda_handler"


def test_the_function_uses_the_powertools_layer_of_the_tested_release_from_its_public_ssm_parameter(
    template: Template, function: dict[str, Any]
) -> None:
    # A versioned parameter: every deploy resolves the same layer (".../latest" drifted with each release).
    [layer] = function["Layers"]
    parameter = template.to_json()["Parameters"][layer["Ref"]]
    assert parameter == {"Type": "AWS::SSM::Parameter::Value<String>", "Default": POWERTOOLS_PARAMETER}


def test_the_function_traces_with_x_ray(function: dict[str, Any]) -> None:
    assert function["TracingConfig"] == {"Mode": "Active"}


def test_the_function_timeout_fits_a_batch_at_the_paced_rate(
    function: dict[str, Any], config: CaseLinkerConfig
) -> None:
    assert function["Timeout"] == config.function_timeout_seconds == 80


def test_the_function_has_more_than_the_default_memory(function: dict[str, Any]) -> None:
    assert function["MemorySize"] == 256


def test_the_function_logs_to_its_own_log_group_with_retention(
    template: Template, function: dict[str, Any]
) -> None:
    log_group_id = function["LoggingConfig"]["LogGroup"]["Ref"]
    assert properties(template, log_group_id)["RetentionInDays"] == 30


def test_the_function_environment_points_at_the_queues_the_table_and_the_instance(
    function: dict[str, Any],
) -> None:
    assert function["Environment"]["Variables"] == {
        "CASES_DOMAIN_ID": DOMAIN_ID,
        "CASE_ID_ATTRIBUTE": "caseId",
        "CONTACT_EVENT_TYPES": "COMPLETED",
        "CONNECT_INSTANCE_ARN": INSTANCE_ARN,
        "DEAD_LETTER_QUEUE_URL": {"Ref": PROCESSING_DLQ},
        "IDEMPOTENCY_TABLE_NAME": {"Ref": IDEMPOTENCY_TABLE},
        "MAIN_QUEUE_URL": {"Ref": MAIN_QUEUE},
        "MAX_RECEIVE_COUNT": "10",
        "PERFORMED_BY": "case-linker",
        "CASES_MAX_RPS": "1",
        "CASES_MAX_BURST": "5",
        "CASES_QUOTA_RPS": "2",
        "CASES_QUOTA_BURST": "10",
        "CASES_BUDGET": "shared",
        "POWERTOOLS_SERVICE_NAME": "case-linker",
        "POWERTOOLS_METRICS_NAMESPACE": "CaseLinker",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_configured_options_reach_the_function_environment(full_template: Template) -> None:
    _, function = function_with_handler(full_template)
    variables = function["Environment"]["Variables"]
    assert variables["CASE_ID_ATTRIBUTE"] == "linkedCase"
    assert variables["CONTACT_EVENT_TYPES"] == "COMPLETED,DISCONNECTED"
    assert variables["PERFORMED_BY"] == "agent"
    assert variables["CASES_MAX_RPS"] == "2"  # 8 req/s shared by 4 environments


# --- the SQS event source ----------------------------------------------------------------------------------
def test_the_event_source_reads_the_main_queue_in_paced_partial_batches(template: Template) -> None:
    _, mapping = only(template.find_resources("AWS::Lambda::EventSourceMapping"))
    function_id, _ = function_with_handler(template)
    assert mapping["Properties"] == {
        "EventSourceArn": arn_of(MAIN_QUEUE),
        "FunctionName": {"Ref": function_id},
        "BatchSize": 10,
        "MaximumBatchingWindowInSeconds": 0,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": 2},
    }


def test_configured_batch_size_and_concurrency_reach_the_event_source(full_template: Template) -> None:
    full_template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping", {"BatchSize": 5, "ScalingConfig": {"MaximumConcurrency": 4}}
    )


# --- IAM ---------------------------------------------------------------------------------------------------
def test_the_role_has_no_managed_policies(template: Template) -> None:
    roles = template.find_resources("AWS::IAM::Role")
    assert roles
    for role in roles.values():
        assert "ManagedPolicyArns" not in role["Properties"]
        assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
        ]


def test_cases_actions_are_granted_on_the_domain_and_its_cases_only(template: Template) -> None:
    statement = statement_with(template, "cases:CreateRelatedItem")
    assert statement["Action"] == [
        "cases:CreateRelatedItem",
        "cases:GetMergeCasesStatus",
        "cases:ListCasesForContact",
        "cases:SearchCases",
        "cases:SearchRelatedItems",
    ]
    domain = f"arn:${{AWS::Partition}}:cases:${{AWS::Region}}:${{AWS::AccountId}}:domain/{DOMAIN_ID}"
    assert [joined(resource) for resource in statement["Resource"]] == [domain, f"{domain}/case/*"]


def test_connect_reads_are_granted_on_the_instances_contacts_only(template: Template) -> None:
    statement = statement_with(template, "connect:GetContactAttributes")
    assert statement["Action"] == ["connect:DescribeContact", "connect:GetContactAttributes"]
    assert statement["Resource"] == f"{INSTANCE_ARN}/contact/*"


def test_describe_user_is_not_granted_unless_agents_are_recorded(template: Template) -> None:
    actions = {action for s in role_statements(template) for action in as_list(s["Action"])}
    assert "connect:DescribeUser" not in actions


def test_recording_the_agent_grants_describe_user_on_the_instances_agents_only(
    full_template: Template,
) -> None:
    statement = statement_with(full_template, "connect:DescribeUser")
    assert statement["Action"] == "connect:DescribeUser"
    assert statement["Resource"] == f"{INSTANCE_ARN}/agent/*"


def test_the_function_sends_only_to_the_processing_dlq_and_the_main_queue(template: Template) -> None:
    senders = [s for s in role_statements(template) if "sqs:SendMessage" in as_list(s["Action"])]
    assert sorted(json.dumps(s["Resource"]) for s in senders) == sorted(
        json.dumps(arn_of(queue)) for queue in (PROCESSING_DLQ, MAIN_QUEUE)
    )
    [to_dlq] = [s for s in senders if s["Resource"] == arn_of(PROCESSING_DLQ)]
    assert to_dlq["Action"] == ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"]


def test_the_function_consumes_the_main_queue_and_may_put_a_record_back(template: Template) -> None:
    # ChangeMessageVisibility hands a record back; SendMessage re-enqueues a copy of a record (issue 11).
    statement = statement_with(template, "sqs:ReceiveMessage")
    assert statement["Action"] == [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
    ]
    assert statement["Resource"] == arn_of(MAIN_QUEUE)


def test_the_function_has_only_the_item_access_its_ledger_and_budget_use(template: Template) -> None:
    # What functions/ calls, no more: no Scan or Query, and no DeleteItem (a linker that could delete ledger
    # records could forget what it created) nor transactions (none is made).
    statement = statement_with(template, "dynamodb:PutItem")
    assert statement["Action"] == [
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ]
    assert statement["Resource"] == arn_of(IDEMPOTENCY_TABLE)


def test_the_function_writes_to_its_own_log_group_only(template: Template, function: dict[str, Any]) -> None:
    statement = statement_with(template, "logs:PutLogEvents")
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == arn_of(function["LoggingConfig"]["LogGroup"]["Ref"])


def test_only_x_ray_is_granted_on_every_resource(template: Template) -> None:
    wildcard = [s for s in role_statements(template) if "*" in as_list(s["Resource"])]
    assert wildcard == [
        {"Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "Effect": "Allow", "Resource": "*"}
    ]


@pytest.mark.parametrize("fixture", ["template", "full_template"])
def test_no_cases_or_connect_action_has_a_star_resource(request: pytest.FixtureRequest, fixture: str) -> None:
    statements = role_statements(request.getfixturevalue(fixture))
    scoped = [
        s for s in statements if any(a.startswith(("cases:", "connect:")) for a in as_list(s["Action"]))
    ]
    assert len(scoped) >= 2
    for statement in scoped:
        assert statement["Effect"] == "Allow"
        for resource in as_list(statement["Resource"]):
            rendered = joined(resource)
            assert rendered != "*"
            assert "*" not in rendered.rsplit("/", 1)[0], f"wildcard before the last path segment: {rendered}"
        assert all("*" not in action for action in as_list(statement["Action"]))


def test_every_grant_is_an_allow_without_wildcard_actions(template: Template) -> None:
    for statement in role_statements(template):
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in as_list(statement["Action"]))


# --- idempotency table -------------------------------------------------------------------------------------
def test_the_idempotency_table_has_the_powertools_key_and_ttl(template: Template) -> None:
    table = properties(template, IDEMPOTENCY_TABLE)
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_the_idempotency_table_is_on_demand_encrypted_and_recoverable(template: Template) -> None:
    table = properties(template, IDEMPOTENCY_TABLE)
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_retained_table_is_deletion_protected(template: Template, full_template: Template) -> None:
    assert properties(template, IDEMPOTENCY_TABLE)["DeletionProtectionEnabled"] is True
    assert properties(full_template, IDEMPOTENCY_TABLE)["DeletionProtectionEnabled"] is False


# --- alarms ------------------------------------------------------------------------------------------------
def alarm_on(template: Template, metric_name: str, dimension: dict[str, Any]) -> dict[str, Any]:
    _, alarm = only(
        template.find_resources(
            "AWS::CloudWatch::Alarm",
            {"Properties": {"MetricName": metric_name, "Dimensions": Match.array_with([dimension])}},
        )
    )
    props: dict[str, Any] = alarm["Properties"]
    return props


def topic_ref(template: Template) -> dict[str, str]:
    return {"Ref": next(iter(template.find_resources("AWS::SNS::Topic")))}


@pytest.mark.parametrize("queue", [PROCESSING_DLQ, RULE_TARGET_DLQ])
def test_a_message_on_either_dlq_raises_an_alarm(template: Template, queue: str) -> None:
    alarm = alarm_on(
        template,
        "ApproximateNumberOfMessagesVisible",
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}},
    )
    assert alarm["Namespace"] == "AWS/SQS"
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == [topic_ref(template)]


def test_an_old_message_on_the_main_queue_raises_an_alarm(
    template: Template, config: CaseLinkerConfig
) -> None:
    alarm = alarm_on(
        template,
        "ApproximateAgeOfOldestMessage",
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [MAIN_QUEUE, "QueueName"]}},
    )
    # Ten receives at the visibility timeout: older than that, a message waits in a backlog, not in a retry.
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 4800)
    assert alarm["Threshold"] == config.oldest_message_alarm_seconds
    assert alarm["AlarmActions"] == [topic_ref(template)]


def test_function_errors_raise_an_alarm(template: Template) -> None:
    function_id, _ = function_with_handler(template)
    alarm = alarm_on(template, "Errors", {"Name": "FunctionName", "Value": {"Ref": function_id}})
    assert (alarm["Namespace"], alarm["Statistic"]) == ("AWS/Lambda", "Sum")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == [topic_ref(template)]


@pytest.mark.parametrize("metric_name", ["FailedInvocations", "InvocationsSentToDlq"])
def test_rule_delivery_failures_raise_an_alarm(template: Template, metric_name: str) -> None:
    alarm = alarm_on(template, metric_name, {"Name": "RuleName", "Value": {"Ref": CONTACT_RULE}})
    assert (alarm["Namespace"], alarm["Statistic"]) == ("AWS/Events", "Sum")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == [topic_ref(template)]


def test_the_request_rule_has_its_own_delivery_alarms(full_template: Template) -> None:
    request_rule = next(
        logical_id
        for logical_id in full_template.find_resources("AWS::Events::Rule")
        if logical_id != CONTACT_RULE
    )
    for metric_name in ("FailedInvocations", "InvocationsSentToDlq"):
        alarm_on(full_template, metric_name, {"Name": "RuleName", "Value": {"Ref": request_rule}})


def test_idle_periods_do_not_raise_alarms_except_a_sweeper_that_stopped_running(template: Template) -> None:
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    assert len(alarms) == 11  # 7 for the linker's path, 4 for the sweeper
    missing = {a["Properties"]["MetricName"]: a["Properties"]["TreatMissingData"] for a in alarms.values()}
    assert missing.pop("Invocations") == "breaching"  # no sweeper invocation for two intervals
    assert set(missing.values()) == {"notBreaching"}
    assert all(a["Properties"]["OKActions"] == [topic_ref(template)] for a in alarms.values())


def test_the_alarm_topic_is_encrypted_with_a_rotating_key_cloudwatch_may_use(template: Template) -> None:
    key_id, key = only(template.find_resources("AWS::KMS::Key"))
    assert key["Properties"]["EnableKeyRotation"] is True
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": arn_of(key_id)})


def alarm_topic_policy(template: Template) -> list[dict[str, Any]]:
    _, policy = only(template.find_resources("AWS::SNS::TopicPolicy"))
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


THIS_ACCOUNTS_ALARMS = "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"


def test_cloudwatch_may_publish_to_the_alarm_topic_for_this_accounts_alarms_only(template: Template) -> None:
    # GIVEN the topic policy (it replaces SNS's default policy, which would have let CloudWatch publish)
    allows = [s for s in alarm_topic_policy(template) if s["Effect"] == "Allow"]
    # THEN CloudWatch alarms of this account and Region, and only they, may publish
    assert len(allows) == 1
    [allow] = allows
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Resource"] == topic_ref(template)
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert {key: joined(value) for key, value in allow["Condition"]["ArnLike"].items()} == {
        "aws:SourceArn": THIS_ACCOUNTS_ALARMS
    }


@pytest.mark.parametrize("fixture", ["template", "full_template"])
def test_every_alarm_notifies_the_topic_cloudwatch_may_publish_to(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    synthesized: Template = request.getfixturevalue(fixture)
    topic = topic_ref(synthesized)
    [allow] = [s for s in alarm_topic_policy(synthesized) if s["Effect"] == "Allow"]
    assert allow["Resource"] == topic
    for alarm in synthesized.find_resources("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [topic]


def test_the_alarm_topic_key_lets_cloudwatch_encrypt_for_this_accounts_alarms_only(
    template: Template,
) -> None:
    _, key = only(template.find_resources("AWS::KMS::Key"))
    [statement] = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert {key: joined(value) for key, value in statement["Condition"]["ArnLike"].items()} == {
        "aws:SourceArn": THIS_ACCOUNTS_ALARMS
    }


def test_the_alarm_topic_denies_publishing_without_tls(template: Template) -> None:
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            }
        },
    )


def test_an_alarm_email_subscribes_to_the_topic(template: Template, full_template: Template) -> None:
    assert template.find_resources("AWS::SNS::Subscription") == {}
    full_template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"}
    )


# --- dashboard ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dashboard(template: Template) -> dict[str, Any]:
    _, resource = only(template.find_resources("AWS::CloudWatch::Dashboard"))
    body: dict[str, Any] = json.loads(joined(resource["Properties"]["DashboardBody"]))
    return body


def graphed(dashboard: dict[str, Any]) -> list[list[Any]]:
    return [line for widget in dashboard["widgets"] for line in widget["properties"].get("metrics", [])]


def expressions(dashboard: dict[str, Any]) -> dict[str, str]:
    """Each math expression on the dashboard, by its label."""
    return {line[0]["label"]: line[0]["expression"] for line in graphed(dashboard) if "expression" in line[0]}


@pytest.mark.parametrize("metric_name", [m for m in LINKER_METRICS if m not in LINKER_METRIC_BREAKDOWNS])
def test_the_dashboard_graphs_each_plain_linker_metric_as_powertools_emits_it(
    dashboard: dict[str, Any], metric_name: str
) -> None:
    assert ["CaseLinker", metric_name, "service", "case-linker"] in [line[:4] for line in graphed(dashboard)]


@pytest.mark.parametrize(("metric_name", "dimension"), LINKER_METRIC_BREAKDOWNS.items())
def test_the_dashboard_graphs_broken_down_metrics_in_total_and_per_dimension_value(
    dashboard: dict[str, Any], metric_name: str, dimension: str
) -> None:
    search = (
        f'SEARCH(\'{{CaseLinker,service,{dimension}}} MetricName="{metric_name}" '
        f"service=\"case-linker\"', 'Sum', 300)"
    )
    found = expressions(dashboard)
    assert found[metric_name] == f"SUM({search})"
    assert found[f"{metric_name} ${{PROP('Dim.{dimension}')}}"] == search


def test_the_dashboard_graphs_queues_function_and_rule(dashboard: dict[str, Any]) -> None:
    names = {(line[0], line[1]) for line in graphed(dashboard) if isinstance(line[0], str)}
    assert {
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/Events", "FailedInvocations"),
        ("AWS/Events", "InvocationsSentToDlq"),
    } <= names


# --- outputs -----------------------------------------------------------------------------------------------
def test_the_stack_outputs_the_contract_names(template: Template) -> None:
    outputs = template.to_json()["Outputs"]
    function_id, function = function_with_handler(template)
    sweeper_id, sweeper = function_with_handler(template, SWEEPER_HANDLER)
    topic_id = next(iter(template.find_resources("AWS::SNS::Topic")))
    dashboard_id = next(iter(template.find_resources("AWS::CloudWatch::Dashboard")))
    [schedule_id] = [
        logical_id
        for logical_id, rule in template.find_resources("AWS::Events::Rule").items()
        if "ScheduleExpression" in rule["Properties"]
    ]
    assert {key: value["Value"] for key, value in outputs.items()} == {
        "MainQueueUrl": {"Ref": MAIN_QUEUE},
        "MainQueueArn": arn_of(MAIN_QUEUE),
        "ProcessingDlqUrl": {"Ref": PROCESSING_DLQ},
        "RuleTargetDlqUrl": {"Ref": RULE_TARGET_DLQ},
        "FunctionName": {"Ref": function_id},
        "IdempotencyTableName": {"Ref": IDEMPOTENCY_TABLE},
        "AlarmTopicArn": {"Ref": topic_id},
        "RuleArn": arn_of(CONTACT_RULE),
        "LogGroupName": function["LoggingConfig"]["LogGroup"],
        "DashboardUrl": outputs["DashboardUrl"]["Value"],
        "SweeperFunctionName": {"Ref": sweeper_id},
        "SweeperLogGroupName": sweeper["LoggingConfig"]["LogGroup"],
        "SweeperRuleArn": arn_of(schedule_id),
    }
    assert joined(outputs["DashboardUrl"]["Value"]) == (
        "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=${AWS::Region}"
        f"#dashboards/dashboard/${{{dashboard_id}}}"
    )


def test_the_default_stack_is_named_case_linker(default_synth: Synthesized) -> None:
    assert default_synth.stack.stack_name == "CaseLinker"


def test_the_construct_exposes_its_resources_as_attributes(default_synth: Synthesized) -> None:
    linker = default_synth.stack.linker
    assert linker.request_rule is None
    assert linker.topic is linker.monitoring.topic
    for attribute in (
        "queue",
        "processing_dlq",
        "rule_target_dlq",
        "function",
        "table",
        "rule",
        "topic",
        "role",
        "sweeper",
    ):
        assert getattr(linker, attribute) is not None


def test_throttling_that_persists_for_fifteen_minutes_raises_an_alarm(template: Template) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "Throttled",
            "Namespace": "CaseLinker",
            "Period": 300,
            "EvaluationPeriods": 3,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
        },
    )
