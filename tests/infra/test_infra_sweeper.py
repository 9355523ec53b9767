"""The sweeper's part of the template (issue 12): function, schedule, IAM, log group, alarms, dashboard, outputs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.config import CaseLinkerConfig
from tests.infra.synth import DOMAIN_ID, INSTANCE_ARN, Synthesized
from tests.infra.templates import (
    IDEMPOTENCY_TABLE,
    LINKER_HANDLER,
    MAIN_QUEUE,
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

DOMAIN_ARN = f"arn:${{AWS::Partition}}:cases:${{AWS::Region}}:${{AWS::AccountId}}:domain/{DOMAIN_ID}"


@pytest.fixture(scope="module")
def sweeper(template: Template) -> dict[str, Any]:
    return function_with_handler(template, SWEEPER_HANDLER)[1]


@pytest.fixture(scope="module")
def sweeper_id(template: Template) -> str:
    return function_with_handler(template, SWEEPER_HANDLER)[0]


def schedule(template: Template) -> tuple[str, dict[str, Any]]:
    logical_id, rule = only(
        {
            logical_id: rule
            for logical_id, rule in template.find_resources("AWS::Events::Rule").items()
            if "ScheduleExpression" in rule["Properties"]
        }
    )
    props: dict[str, Any] = rule["Properties"]
    return logical_id, props


def alarm_on_metric(template: Template, metric_name: str) -> dict[str, Any]:
    _, alarm = only(
        template.find_resources("AWS::CloudWatch::Alarm", {"Properties": {"MetricName": metric_name}})
    )
    props: dict[str, Any] = alarm["Properties"]
    return props


def alarm_on_function(template: Template, metric_name: str, function_id: str) -> dict[str, Any]:
    _, alarm = only(
        template.find_resources(
            "AWS::CloudWatch::Alarm",
            {
                "Properties": {
                    "MetricName": metric_name,
                    "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": function_id}}],
                }
            },
        )
    )
    props: dict[str, Any] = alarm["Properties"]
    return props


# --- the function ----------------------------------------------------------------------------------------
def test_the_sweeper_runs_the_same_asset_runtime_and_layer_as_the_linker(
    template: Template, sweeper: dict[str, Any]
) -> None:
    _, linker = function_with_handler(template, LINKER_HANDLER)
    assert sweeper["Handler"] == "case_linker.sweeper.lambda_handler"
    for shared in ("Code", "Runtime", "Architectures", "Layers", "TracingConfig", "MemorySize"):
        assert sweeper[shared] == linker[shared], shared


def test_the_sweeper_environment_follows_the_contract(sweeper: dict[str, Any]) -> None:
    assert sweeper["Environment"]["Variables"] == {
        "CONNECT_INSTANCE_ARN": INSTANCE_ARN,
        "MAIN_QUEUE_URL": {"Ref": MAIN_QUEUE},
        "IDEMPOTENCY_TABLE_NAME": {"Ref": IDEMPOTENCY_TABLE},
        "CASES_DOMAIN_ID": DOMAIN_ID,
        "CASE_ID_ATTRIBUTE": "caseId",
        "SWEEP_WINDOW_MINUTES": "60",
        "SWEEP_LAG_MINUTES": "15",
        "CONNECT_SEARCH_RPS": "0.5",
        "FOLLOW_CONTACT_CHAIN": "true",
        "CASES_QUOTA_RPS": "2",
        "CASES_QUOTA_BURST": "10",
        "CASES_BUDGET": "shared",
        "POWERTOOLS_SERVICE_NAME": "case-linker",
        "POWERTOOLS_METRICS_NAMESPACE": "CaseLinker",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_configured_sweep_settings_reach_the_sweeper(full_template: Template) -> None:
    _, function = function_with_handler(full_template, SWEEPER_HANDLER)
    variables = function["Environment"]["Variables"]
    assert {
        key: variables[key] for key in variables if key.startswith(("SWEEP_", "CONNECT_S", "FOLLOW_"))
    } == {
        "SWEEP_WINDOW_MINUTES": "30",
        "SWEEP_LAG_MINUTES": "20",
        "CONNECT_SEARCH_RPS": "1",
        "FOLLOW_CONTACT_CHAIN": "false",
    }
    assert variables["CASE_ID_ATTRIBUTE"] == "linkedCase"


def test_the_sweeper_timeout_is_one_interval_at_most_and_leaves_room_to_search(
    sweeper: dict[str, Any], full_template: Template
) -> None:
    # Default: every 15 minutes -> 900 s, of which 870 s of SearchContacts at 0.5 req/s = 435 pages.
    assert sweeper["Timeout"] == 900
    defaults = CaseLinkerConfig(cases_domain_id=DOMAIN_ID, connect_instance_arn=INSTANCE_ARN)
    assert defaults.sweeper_search_pages_per_run == 435
    assert defaults.sweeper_contacts_per_run == 43_500
    _, configured = function_with_handler(full_template, SWEEPER_HANDLER)
    assert configured["Timeout"] == 600  # every 10 minutes


def test_runs_never_overlap_without_reserving_account_concurrency(
    template: Template, sweeper: dict[str, Any]
) -> None:
    # A run ends within one interval and is never retried, so the next scheduled run starts after it ends. No
    # reserved concurrency: in an account at Lambda's minimum unreserved pool it would fail the deploy.
    _, rule = schedule(template)
    assert rule["ScheduleExpression"] == f"rate({sweeper['Timeout'] // 60} minutes)"
    assert "ReservedConcurrentExecutions" not in sweeper


def test_a_failed_run_is_not_retried_the_next_run_covers_it(template: Template, sweeper_id: str) -> None:
    _, config = only(
        template.find_resources(
            "AWS::Lambda::EventInvokeConfig", {"Properties": {"FunctionName": {"Ref": sweeper_id}}}
        )
    )
    assert config["Properties"]["MaximumRetryAttempts"] == 0
    assert config["Properties"]["MaximumEventAgeInSeconds"] == 900


def test_the_sweeper_logs_to_its_own_log_group_with_retention(
    template: Template, sweeper: dict[str, Any]
) -> None:
    _, linker = function_with_handler(template, LINKER_HANDLER)
    log_group = sweeper["LoggingConfig"]["LogGroup"]
    assert log_group != linker["LoggingConfig"]["LogGroup"]
    assert properties(template, log_group["Ref"])["RetentionInDays"] == 30
    statement = statement_with(template, "logs:PutLogEvents", SWEEPER_HANDLER)
    assert statement["Resource"] == arn_of(log_group["Ref"])


# --- the schedule --------------------------------------------------------------------------------------------
def test_a_scheduled_rule_runs_the_sweeper_every_interval(template: Template, sweeper_id: str) -> None:
    _, rule = schedule(template)
    assert rule["ScheduleExpression"] == "rate(15 minutes)"
    assert rule["State"] == "ENABLED"
    [target] = rule["Targets"]
    assert target["Arn"] == arn_of(sweeper_id)
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0


def test_only_the_schedule_may_invoke_the_sweeper(template: Template, sweeper_id: str) -> None:
    schedule_id, _ = schedule(template)
    permissions = template.find_resources(
        "AWS::Lambda::Permission", {"Properties": {"FunctionName": arn_of(sweeper_id)}}
    )
    assert [p["Properties"] for p in permissions.values()] == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": arn_of(sweeper_id),
            "Principal": "events.amazonaws.com",
            "SourceArn": arn_of(schedule_id),
        }
    ]


def test_the_configured_interval_reaches_the_schedule(full_template: Template) -> None:
    assert schedule(full_template)[1]["ScheduleExpression"] == "rate(10 minutes)"


# --- IAM ---------------------------------------------------------------------------------------------------
def test_the_sweeper_searches_the_configured_instance_only(template: Template) -> None:
    statement = statement_with(template, "connect:SearchContacts", SWEEPER_HANDLER)
    assert (statement["Action"], statement["Resource"]) == ("connect:SearchContacts", INSTANCE_ARN)


def test_the_sweeper_may_describe_the_instances_contacts_search_depends_on(template: Template) -> None:
    statement = statement_with(template, "connect:DescribeContact", SWEEPER_HANDLER)
    assert (statement["Action"], statement["Resource"]) == (
        "connect:DescribeContact",
        f"{INSTANCE_ARN}/contact/*",
    )


def test_the_sweeper_only_sends_to_the_main_queue(template: Template) -> None:
    sqs = [
        s
        for s in role_statements(template, SWEEPER_HANDLER)
        if any(a.startswith("sqs:") for a in as_list(s["Action"]))
    ]
    assert sqs == [{"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": arn_of(MAIN_QUEUE)}]


def test_the_sweeper_only_reads_the_ledger(template: Template) -> None:
    statement = statement_with(template, "dynamodb:GetItem", SWEEPER_HANDLER)
    assert statement["Action"] == ["dynamodb:BatchGetItem", "dynamodb:GetItem"]
    assert statement["Resource"] == arn_of(IDEMPOTENCY_TABLE)


def test_the_sweeper_writes_only_the_shared_budgets_items(template: Template) -> None:
    # Its chain look-ups draw on the fleet's Cases budget: one UpdateItem per lease, on budget keys alone
    statement = statement_with(template, "dynamodb:UpdateItem", SWEEPER_HANDLER)
    assert statement["Action"] == "dynamodb:UpdateItem"
    assert statement["Resource"] == arn_of(IDEMPOTENCY_TABLE)
    assert statement["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["case-linker#budget#*"]}
    }


def test_without_contact_chains_the_sweeper_has_no_budget_to_write(full_template: Template) -> None:
    actions = {a for s in role_statements(full_template, SWEEPER_HANDLER) for a in as_list(s["Action"])}
    assert "dynamodb:UpdateItem" not in actions


def test_following_contact_chains_grants_list_cases_for_contact_on_the_domain_only(
    template: Template,
) -> None:
    statement = statement_with(template, "cases:ListCasesForContact", SWEEPER_HANDLER)
    assert statement["Action"] == "cases:ListCasesForContact"
    assert joined(statement["Resource"]) == DOMAIN_ARN


def test_without_contact_chains_the_sweeper_has_no_cases_access(full_template: Template) -> None:
    actions = {a for s in role_statements(full_template, SWEEPER_HANDLER) for a in as_list(s["Action"])}
    assert not {a for a in actions if a.startswith("cases:")}


def test_the_linker_stays_the_only_function_that_creates_related_items(template: Template) -> None:
    actions = {a for s in role_statements(template, SWEEPER_HANDLER) for a in as_list(s["Action"])}
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
        "connect:SearchContacts",
        "connect:DescribeContact",
        "cases:ListCasesForContact",
        "sqs:SendMessage",
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
    }


# --- alarms ----------------------------------------------------------------------------------------------
def topic_ref(template: Template) -> dict[str, str]:
    return {"Ref": next(iter(template.find_resources("AWS::SNS::Topic")))}


def test_a_failed_sweep_raises_an_alarm(template: Template, sweeper_id: str) -> None:
    alarm = alarm_on_function(template, "Errors", sweeper_id)
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 900, 1)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == [topic_ref(template)]


def test_a_sweeper_that_stopped_running_raises_an_alarm(template: Template, sweeper_id: str) -> None:
    alarm = alarm_on_function(template, "Invocations", sweeper_id)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["TreatMissingData"]) == (900, 2, "breaching")
    assert alarm["AlarmActions"] == [topic_ref(template)]


def test_a_schedule_that_cannot_invoke_the_sweeper_raises_an_alarm(template: Template) -> None:
    schedule_id, _ = schedule(template)
    [alarm] = [
        a["Properties"]
        for a in template.find_resources(
            "AWS::CloudWatch::Alarm", {"Properties": {"MetricName": "FailedInvocations"}}
        ).values()
        if a["Properties"]["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": schedule_id}}]
    ]
    assert (alarm["Namespace"], alarm["Threshold"]) == ("AWS/Events", 0)


def test_contacts_the_events_kept_missing_raise_an_alarm(template: Template) -> None:
    alarm = alarm_on_metric(template, "EventCoverage")
    assert alarm["Namespace"] == "CaseLinker"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "case-linker"}]
    assert (alarm["Statistic"], alarm["Period"]) == ("Average", 900)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 0.95)
    # "keeps finding": three sweeps in a row; a sweep that found nothing emits no coverage and breaks no run.
    assert (alarm["EvaluationPeriods"], alarm["TreatMissingData"]) == (3, "notBreaching")
    assert alarm["AlarmActions"] == [topic_ref(template)]


# --- dashboard ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "metric_name",
    ["SweepContactsFound", "SweepAlreadyHandled", "SweepEnqueued", "SweepNoCaseId", "EventCoverage"],
)
def test_the_dashboard_graphs_the_sweepers_metrics(template: Template, metric_name: str) -> None:
    _, resource = only(template.find_resources("AWS::CloudWatch::Dashboard"))
    body = json.loads(joined(resource["Properties"]["DashboardBody"]))
    lines = [line for widget in body["widgets"] for line in widget["properties"].get("metrics", [])]
    assert ["CaseLinker", metric_name, "service", "case-linker"] in [line[:4] for line in lines]


# --- turned off ------------------------------------------------------------------------------------------
def test_sweeper_enabled_false_leaves_no_sweeper_behind(no_sweeper_synth: Synthesized) -> None:
    template = no_sweeper_synth.template
    handlers = [f["Properties"]["Handler"] for f in template.find_resources("AWS::Lambda::Function").values()]
    assert handlers == [LINKER_HANDLER]
    assert [
        r
        for r in template.find_resources("AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
    ] == []
    assert not {key for key in template.to_json()["Outputs"] if key.startswith("Sweeper")}
    assert len(template.find_resources("AWS::CloudWatch::Alarm")) == 7
    assert no_sweeper_synth.stack.linker.sweeper is None


@pytest.mark.parametrize("fixture", ["template", "full_template"])
def test_every_alarm_evaluates_within_cloudwatchs_one_day_limit(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    synthesized: Template = request.getfixturevalue(fixture)
    for alarm in synthesized.find_resources("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        assert props["Period"] * props["EvaluationPeriods"] <= 24 * 3600, props["AlarmDescription"]
