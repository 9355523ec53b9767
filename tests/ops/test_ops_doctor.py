"""`doctor`: each check's ok and problem paths, against moto's server (STS, CloudFormation, SQS, SNS, KMS,
EventBridge, Lambda, CloudWatch) and the emulator (Connect DescribeInstance, ListIntegrationAssociations, Cases
GetDomain), all over loopback HTTP.

The healthy world is built as the stack builds it, from infra/config.py's numbers: queues with their redrive and
visibility timeout, the linker and its event source mapping, the contact-event rule, the alarm topic with its
policy and key, the sweeper and its schedule, and a CloudFormation stack carrying the outputs. Each test breaks
one thing and reads what the check says. The command itself runs end to end in the tests at the bottom.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator import Emulator, EmulatorConfig
from infra.config import CaseLinkerConfig
from ops.aws import Clients
from ops.doctor import PERMISSIONS, PRE_DEPLOY_CHECKS, Check, Status, Target, post_deploy_names, run_checks
from ops.doctor.alarms import check_topic_key, check_topic_policy, statements
from ops.doctor.deployed import Deployed
from ops.doctor.health import (
    check_dead_lettered,
    check_main_queue,
    check_main_queue_age,
    check_processing_dlq,
    check_rule_target_dlq,
    check_sweeper_errors,
)
from ops.doctor.predeploy import (
    Identity,
    check_account,
    check_bootstrap,
    check_cases_domain,
    check_cases_domain_association,
    check_connect_instance,
    check_context,
    check_credentials,
    check_region,
)
from ops.doctor.stack import (
    check_contact_rule,
    check_event_source_mapping,
    check_linker_function,
    check_stack,
    check_sweeper_function,
    check_sweeper_rule,
)
from ops.errors import ExitCode
from tests.conftest import REPO_ROOT
from tests.ops.conftest import Invoke
from tests.ops.helpers import SECRET_COMMENT, comment_request, error_attributes, put

ACCOUNT = "123456789012"  # moto's and the emulator's
REGION = "us-east-1"
INSTANCE_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
LINKER = "CaseLinker-Function"
SWEEPER = "CaseLinker-Sweeper"
CONTACT_RULE = "CaseLinker-ContactEventRule"
SCHEDULE = "CaseLinker-SweeperSchedule"
MOTO_SERVICES = ("sts", "cloudformation", "sqs", "sns", "kms", "events", "lambda", "cloudwatch", "iam")


@pytest.fixture(scope="module")
def _emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(throttling=False)) as server:
        yield server


@pytest.fixture
def emu(_emulator: Emulator) -> Emulator:
    _emulator.reset()
    return _emulator


@pytest.fixture(scope="module")
def aws(moto_server: str, _emulator: Emulator) -> dict[str, Any]:
    """boto3 clients, built once: Connect and Cases on the emulator, the rest on moto."""
    clients = {
        name: boto3.client(name, endpoint_url=moto_server, region_name=REGION) for name in MOTO_SERVICES
    }
    for name in ("connect", "connectcases"):
        clients[name] = boto3.client(name, endpoint_url=_emulator.endpoint_url, region_name=REGION)
    return clients


@pytest.fixture
def clients(aws: dict[str, Any]) -> Clients:
    """The ops tool's clients, handed the test's."""
    return Clients(region=REGION, injected=aws)


@dataclass
class World:
    """A deployed case-linker, as moto and the emulator hold it."""

    aws: dict[str, Any]
    emu: Emulator
    domain_id: str
    instance_arn: str
    config: CaseLinkerConfig
    outputs: dict[str, str]
    mapping_uuid: str

    @property
    def context(self) -> dict[str, str]:
        return {"casesDomainId": self.domain_id, "connectInstanceArn": self.instance_arn}

    def target(self, **context: str) -> Target:
        return Target(stack_name="CaseLinker", context={**self.context, **context})

    def deployed(
        self, clients: Clients, *, outputs: dict[str, str] | None = None, **context: str
    ) -> Deployed:
        return Deployed(
            clients=clients,
            outputs=self.outputs if outputs is None else outputs,
            config=self.target(**context).config,
            now=datetime.now(UTC),
        )

    def republish(self, **outputs: str | None) -> None:
        """Replace the stack with one whose outputs are changed (None drops one)."""
        changed = {key: value for key, value in {**self.outputs, **outputs}.items() if value is not None}
        self.aws["cloudformation"].delete_stack(StackName="CaseLinker")
        publish_stack(self.aws["cloudformation"], "CaseLinker", changed)


def publish_stack(cloudformation: Any, name: str, outputs: dict[str, str], **extra: Any) -> None:
    """A stack of that name whose outputs are `outputs` (as local/outputs.py publishes the local pipeline's)."""
    template = {
        "Resources": {
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": f"/doctor/{name}"}}
        },
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        **extra,
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


def cloudwatch_may(*actions: str) -> str:
    """A resource policy letting CloudWatch alarms of this account do `actions`, and the account's admins all."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowCloudWatchAlarmsToPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": list(actions),
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
                },
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "*",
                    "Resource": "*",
                },
            ],
        }
    )


#: What CDK's enforce_ssl alone writes: it replaces SNS's default policy, so CloudWatch may no longer publish.
TLS_ONLY_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sns:Publish",
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
)


def zipped_handler() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


@pytest.fixture
def world(moto_endpoint: str, emu: Emulator, aws: dict[str, Any]) -> World:
    """Everything healthy: the instance and its Cases domain, the bootstrap stack, the deployed stack."""
    domain_id = emu.create_domain("support")
    instance_arn = emu.add_instance(INSTANCE_ID, alias="support-centre", cases_domain=domain_id)
    config = CaseLinkerConfig.from_context({"casesDomainId": domain_id, "connectInstanceArn": instance_arn})
    cloudformation, sqs = aws["cloudformation"], aws["sqs"]
    publish_stack(
        cloudformation,
        "CDKToolkit",
        {"BootstrapVersion": "28"},
        Parameters={"Qualifier": {"Type": "String", "Default": "hnb659fds"}},
    )
    # The queues, as infra/case_linker.py makes them.
    processing_dlq = sqs.create_queue(QueueName="CaseLinker-ProcessingDlq")["QueueUrl"]
    rule_target_dlq = sqs.create_queue(QueueName="CaseLinker-RuleTargetDlq")["QueueUrl"]
    arn = {
        url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for url in (processing_dlq, rule_target_dlq)
    }
    main = sqs.create_queue(
        QueueName="CaseLinker-Queue",
        Attributes={
            "VisibilityTimeout": str(config.visibility_timeout_seconds),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": arn[processing_dlq], "maxReceiveCount": str(config.max_receive_count)}
            ),
        },
    )["QueueUrl"]
    main_arn = sqs.get_queue_attributes(QueueUrl=main, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # The two functions, and the event source mapping with the settings infra/config.py derives.
    role = aws["iam"].create_role(RoleName="CaseLinker-Role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    functions = {
        name: aws["lambda"].create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": zipped_handler()},
        )["FunctionArn"]
        for name in (LINKER, SWEEPER)
    }
    mapping = aws["lambda"].create_event_source_mapping(
        FunctionName=LINKER,
        EventSourceArn=main_arn,
        BatchSize=config.batch_size,
        MaximumBatchingWindowInSeconds=config.batching_window_seconds,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        ScalingConfig={"MaximumConcurrency": config.max_concurrency},
    )
    # The contact-event rule (to the queue, with the rule-target DLQ) and the sweeper's schedule.
    events = aws["events"]
    rule_arn = events.put_rule(Name=CONTACT_RULE, EventPattern=json.dumps(config.contact_event_pattern))[
        "RuleArn"
    ]
    events.put_targets(
        Rule=CONTACT_RULE,
        Targets=[{"Id": "Target0", "Arn": main_arn, "DeadLetterConfig": {"Arn": arn[rule_target_dlq]}}],
    )
    schedule_arn = events.put_rule(
        Name=SCHEDULE, ScheduleExpression=f"rate({config.sweep_interval_minutes} minutes)"
    )["RuleArn"]
    events.put_targets(Rule=SCHEDULE, Targets=[{"Id": "Target0", "Arn": functions[SWEEPER]}])
    # The alarm topic, under its own key, both letting this account's CloudWatch alarms in.
    key = aws["kms"].create_key(Policy=cloudwatch_may("kms:Decrypt", "kms:GenerateDataKey*"))["KeyMetadata"]
    topic = aws["sns"].create_topic(
        Name="CaseLinker-AlarmTopic",
        Attributes={"KmsMasterKeyId": key["Arn"], "Policy": cloudwatch_may("sns:Publish")},
    )["TopicArn"]
    outputs = {
        "MainQueueUrl": main,
        "MainQueueArn": main_arn,
        "ProcessingDlqUrl": processing_dlq,
        "RuleTargetDlqUrl": rule_target_dlq,
        "FunctionName": LINKER,
        "IdempotencyTableName": "CaseLinker-IdempotencyTable",
        "AlarmTopicArn": topic,
        "RuleArn": rule_arn,
        "LogGroupName": f"/aws/lambda/{LINKER}",
        "DashboardUrl": f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#dashboards/x",
        "SweeperFunctionName": SWEEPER,
        "SweeperLogGroupName": f"/aws/lambda/{SWEEPER}",
        "SweeperRuleArn": schedule_arn,
    }
    publish_stack(cloudformation, "CaseLinker", outputs)
    return World(aws, emu, domain_id, instance_arn, config, outputs, mapping["UUID"])


def recently(minutes: int = 1) -> datetime:
    """A data point's time: CloudWatch stamps each one with the start of its minute, in the past."""
    return datetime.now(UTC) - timedelta(minutes=minutes)


def assert_ok(check: Check) -> None:
    assert check.status is Status.OK, check


def assert_problem(check: Check, detail: str) -> None:
    assert check.status is Status.PROBLEM, check
    assert detail in check.detail
    assert check.fix


# --- context, credentials, account, Region ------------------------------------------------------------------
def test_context_with_the_two_required_keys_is_ok(world: World) -> None:
    assert_ok(check_context(world.target()))


def test_context_without_the_required_keys_is_a_problem_naming_them() -> None:
    check = check_context(Target(stack_name="CaseLinker", context={}))
    assert_problem(check, "casesDomainId is required; connectInstanceArn is required")
    assert "--cases-domain-id" in check.fix


def test_a_bad_context_value_is_a_problem_but_the_instance_is_still_known(world: World) -> None:
    target = world.target(maxConcurrency="5000")
    assert_problem(check_context(target), "maxConcurrency must be 2..1000")
    assert target.config is None
    assert target.instance is not None
    assert target.instance.connect_instance_arn == world.instance_arn


def test_a_malformed_value_gets_a_fix_for_that_value_not_for_the_required_keys(world: World) -> None:
    check = check_context(world.target(maxConcurrency="1"))
    assert_problem(check, "maxConcurrency must be")
    assert "maxConcurrency" in check.fix
    assert "--cases-domain-id" not in check.fix
    assert "--connect-instance-arn" not in check.fix


def test_a_missing_key_gets_the_option_for_that_key_only() -> None:
    check = check_context(Target(stack_name="CaseLinker", context={"casesDomainId": "d-1"}))
    assert_problem(check, "connectInstanceArn is required")
    assert "--connect-instance-arn" in check.fix
    assert "--cases-domain-id" not in check.fix


def test_missing_keys_and_a_malformed_value_get_a_fix_for_each() -> None:
    check = check_context(Target(stack_name="CaseLinker", context={"maxConcurrency": "1"}))
    assert_problem(check, "casesDomainId is required; connectInstanceArn is required")
    assert "--cases-domain-id and --connect-instance-arn" in check.fix
    assert "correct maxConcurrency" in check.fix


def test_credentials_are_ok_and_say_whose(aws: dict[str, Any]) -> None:
    check, identity = check_credentials(aws["sts"])
    assert_ok(check)
    assert identity is not None
    assert identity.account == ACCOUNT


def test_no_credentials_is_a_problem(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_server: str
) -> None:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    sts = boto3.Session().client("sts", endpoint_url=moto_server, region_name=REGION)  # no cached keys
    check, identity = check_credentials(sts)
    assert identity is None
    assert_problem(check, "no AWS credentials found")
    assert "--profile" in check.fix


def test_the_instances_account_is_ok_another_is_a_problem(world: World) -> None:
    assert_ok(check_account(Identity(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/me"), world.config))
    check = check_account(Identity("210987654321", "arn:aws:iam::210987654321:user/me"), world.config)
    assert_problem(
        check, f"the credentials are for account 210987654321, the Connect instance is in account {ACCOUNT}"
    )


def test_the_instances_region_is_ok_another_or_none_is_a_problem(world: World) -> None:
    assert_ok(check_region(REGION, world.config))
    check = check_region("eu-west-2", world.config)
    assert_problem(check, f"Region eu-west-2 configured, the Connect instance is in {REGION}")
    assert check.fix.startswith(f"pass --region {REGION}")
    assert_problem(check_region(None, world.config), "no Region configured")


# --- Connect and Cases (the emulator) ---------------------------------------------------------------------
def test_an_existing_instance_is_ok_an_unknown_one_a_problem(world: World, aws: dict[str, Any]) -> None:
    assert_ok(check_connect_instance(aws["connect"], world.config))
    other = world.target(connectInstanceArn=world.instance_arn.replace(INSTANCE_ID, "ffffffff-0000"))
    assert other.config is not None
    assert_problem(check_connect_instance(aws["connect"], other.config), "no Connect instance ffffffff-0000")


def test_an_existing_domain_is_ok_an_unknown_one_a_problem(world: World, aws: dict[str, Any]) -> None:
    assert_ok(check_cases_domain(aws["connectcases"], world.config))
    other = world.target(casesDomainId="11111111-2222-3333-4444-555555555555").config
    assert other is not None
    assert_problem(check_cases_domain(aws["connectcases"], other), "no Cases domain 11111111-2222")


def test_the_instances_cases_domain_is_ok_another_is_a_problem(world: World, aws: dict[str, Any]) -> None:
    assert_ok(check_cases_domain_association(aws["connect"], world.config))
    sales = world.target(casesDomainId=world.emu.create_domain("sales")).config
    assert sales is not None
    check = check_cases_domain_association(aws["connect"], sales)
    assert_problem(check, f"it uses arn:aws:cases:{REGION}:{ACCOUNT}:domain/{world.domain_id}")
    assert "Amazon Connect console" in check.fix


def test_an_instance_without_cases_is_an_association_problem(world: World, aws: dict[str, Any]) -> None:
    bare = world.target(connectInstanceArn=world.emu.add_instance("bbbbbbbb-0000")).config
    assert bare is not None
    assert_problem(check_cases_domain_association(aws["connect"], bare), "(it has no Cases domain)")


def test_a_refused_call_is_could_not_check_naming_the_permission(world: World, aws: dict[str, Any]) -> None:
    world.emu.script("DescribeInstance", ["AccessDeniedException"])
    assert check_connect_instance(aws["connect"], world.config) == Check(
        "connect-instance",
        Status.COULD_NOT_CHECK,
        "connect:DescribeInstance was refused (AccessDeniedException)",
        "grant connect:DescribeInstance to these credentials (docs/operations.md, Permissions)",
    )


def test_a_failing_call_is_could_not_check_with_its_error(world: World, aws: dict[str, Any]) -> None:
    world.emu.script("GetDomain", ["InternalServerException"] * 5)
    check = check_cases_domain(aws["connectcases"], world.config)
    assert check.status is Status.COULD_NOT_CHECK
    assert check.detail.startswith("cases:GetDomain failed: InternalServerException")


# --- CDK bootstrap ----------------------------------------------------------------------------------------
WHERE = f"aws://{ACCOUNT}/{REGION}"


def test_the_bootstrap_stack_is_ok(world: World, aws: dict[str, Any]) -> None:
    check = check_bootstrap(aws["cloudformation"], world.target(), WHERE)
    assert_ok(check)
    assert check.detail == "CDKToolkit CREATE_COMPLETE, version 28, qualifier hnb659fds"


def test_no_bootstrap_stack_is_a_problem(world: World, aws: dict[str, Any]) -> None:
    aws["cloudformation"].delete_stack(StackName="CDKToolkit")
    check = check_bootstrap(aws["cloudformation"], world.target(), WHERE)
    assert_problem(check, "no bootstrap stack CDKToolkit")
    assert check.fix.startswith(f"npx cdk bootstrap {WHERE}")


def test_another_qualifier_is_a_bootstrap_problem(world: World, aws: dict[str, Any]) -> None:
    target = Target(stack_name="CaseLinker", context=world.context, bootstrap_qualifier="team42")
    check = check_bootstrap(aws["cloudformation"], target, WHERE)
    assert_problem(check, "bootstrapped with qualifier hnb659fds, the app deploys with team42")


class StackInStatus:
    """CloudFormation's DescribeStacks answering with the real toolkit stack in another status."""

    def __init__(self, real: Any, status: str) -> None:
        self._real, self._status = real, status

    def describe_stacks(self, **kwargs: Any) -> Any:
        answer = self._real.describe_stacks(**kwargs)
        answer["Stacks"][0]["StackStatus"] = self._status
        return answer


@pytest.mark.parametrize("status", ["UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"])
def test_a_bootstrap_stack_whose_update_rolled_back_still_serves(
    world: World, aws: dict[str, Any], status: str
) -> None:
    # A failed update (a newer `cdk bootstrap`) rolled back: the resources of the version before are there
    check = check_bootstrap(StackInStatus(aws["cloudformation"], status), world.target(), WHERE)
    assert_ok(check)


@pytest.mark.parametrize("status", ["ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "DELETE_IN_PROGRESS"])
def test_a_bootstrap_stack_that_cannot_serve_is_a_problem(
    world: World, aws: dict[str, Any], status: str
) -> None:
    check = check_bootstrap(StackInStatus(aws["cloudformation"], status), world.target(), WHERE)
    assert_problem(check, f"bootstrap stack CDKToolkit is {status}")


def test_an_old_bootstrap_version_is_a_problem(world: World, aws: dict[str, Any]) -> None:
    aws["cloudformation"].delete_stack(StackName="CDKToolkit")
    publish_stack(aws["cloudformation"], "CDKToolkit", {"BootstrapVersion": "4"})
    check = check_bootstrap(aws["cloudformation"], world.target(), WHERE)
    assert_problem(check, "bootstrap version 4, the app needs 6 or later")


# --- the stack --------------------------------------------------------------------------------------------
def test_the_stack_with_every_output_is_ok(world: World, aws: dict[str, Any]) -> None:
    check, outputs = check_stack(aws["cloudformation"], "CaseLinker", world.config)
    assert_ok(check)
    assert outputs == world.outputs


def test_no_stack_is_a_problem_pointing_at_the_deploy(world: World, aws: dict[str, Any]) -> None:
    check, outputs = check_stack(aws["cloudformation"], "CaseLinkerStaging", world.config)
    assert outputs is None
    assert_problem(check, "no stack CaseLinkerStaging")
    assert "make deploy" in check.fix


def test_missing_outputs_are_a_problem(world: World, aws: dict[str, Any]) -> None:
    world.republish(AlarmTopicArn=None, SweeperRuleArn=None)
    check, _ = check_stack(aws["cloudformation"], "CaseLinker", world.config)
    assert_problem(check, "lacks the outputs AlarmTopicArn, SweeperRuleArn")


def test_no_sweeper_outputs_are_fine_when_the_context_turns_the_sweeper_off(
    world: World, aws: dict[str, Any]
) -> None:
    world.republish(SweeperFunctionName=None, SweeperLogGroupName=None, SweeperRuleArn=None)
    check, _ = check_stack(aws["cloudformation"], "CaseLinker", world.config)
    assert_problem(check, "lacks the outputs SweeperFunctionName, SweeperLogGroupName, SweeperRuleArn")
    check, _ = check_stack(aws["cloudformation"], "CaseLinker", world.target(sweeperEnabled="false").config)
    assert_ok(check)


def test_a_check_whose_output_is_missing_says_so(world: World, clients: Clients) -> None:
    outputs = {key: value for key, value in world.outputs.items() if key != "AlarmTopicArn"}
    assert check_topic_policy(world.deployed(clients, outputs=outputs)) == Check(
        "alarm-topic-policy", Status.COULD_NOT_CHECK, "skipped: the stack has no output AlarmTopicArn"
    )


# --- the linker and its event source mapping ----------------------------------------------------------------
def test_the_linker_function_is_ok_a_missing_one_a_problem(world: World, clients: Clients) -> None:
    assert_ok(check_linker_function(world.deployed(clients)))
    gone = world.deployed(clients, outputs={**world.outputs, "FunctionName": "CaseLinker-Gone"})
    assert_problem(check_linker_function(gone), "no function CaseLinker-Gone")


def test_the_mapping_with_the_derived_settings_is_ok(world: World, clients: Clients) -> None:
    check = check_event_source_mapping(world.deployed(clients))
    assert_ok(check)
    assert check.detail == (
        "enabled, BatchSize 10, MaximumBatchingWindowInSeconds 0, MaximumConcurrency 2, ReportBatchItemFailures"
    )


def test_a_disabled_mapping_is_a_problem(world: World, clients: Clients, aws: dict[str, Any]) -> None:
    aws["lambda"].update_event_source_mapping(UUID=world.mapping_uuid, Enabled=False)
    check = check_event_source_mapping(world.deployed(clients))
    assert_problem(check, "is Disabled: nothing consumes the queue")
    assert f"--uuid {world.mapping_uuid} --enabled" in check.fix


def test_a_mapping_unlike_this_checkouts_settings_is_a_problem(world: World, clients: Clients) -> None:
    # Deployed with the defaults; this checkout now asks for 10 environments of 5 records each.
    check = check_event_source_mapping(world.deployed(clients, maxConcurrency="10", batchSize="5"))
    assert_problem(check, "BatchSize 10 (expected 5), MaximumConcurrency 2 (expected 10)")
    assert "--context KEY=VALUE" in check.fix


def test_a_mapping_without_partial_batch_responses_is_a_problem(
    world: World, clients: Clients, aws: dict[str, Any]
) -> None:
    aws["lambda"].delete_event_source_mapping(UUID=world.mapping_uuid)
    aws["lambda"].create_event_source_mapping(
        FunctionName=LINKER,
        EventSourceArn=world.outputs["MainQueueArn"],
        BatchSize=world.config.batch_size,
        MaximumBatchingWindowInSeconds=world.config.batching_window_seconds,
        ScalingConfig={"MaximumConcurrency": world.config.max_concurrency},
    )
    assert_problem(check_event_source_mapping(world.deployed(clients)), "lacks ReportBatchItemFailures")


def test_no_mapping_is_a_problem(world: World, clients: Clients, aws: dict[str, Any]) -> None:
    aws["lambda"].delete_event_source_mapping(UUID=world.mapping_uuid)
    check = check_event_source_mapping(world.deployed(clients))
    assert_problem(check, f"no event source mapping from the main queue to {LINKER}")


def test_a_mapping_is_not_compared_with_an_invalid_context(world: World, clients: Clients) -> None:
    check = check_event_source_mapping(world.deployed(clients, maxConcurrency="5000"))
    assert check.status is Status.COULD_NOT_CHECK
    assert "not compared: the context is invalid" in check.detail


# --- the contact-event rule --------------------------------------------------------------------------------
def test_the_contact_rule_is_ok(world: World, clients: Clients) -> None:
    assert_ok(check_contact_rule(world.deployed(clients)))


def test_a_disabled_rule_is_a_problem(world: World, clients: Clients, aws: dict[str, Any]) -> None:
    aws["events"].disable_rule(Name=CONTACT_RULE)
    check = check_contact_rule(world.deployed(clients))
    assert_problem(check, "is DISABLED: no contact event reaches the queue")
    assert check.fix.startswith(f"aws events enable-rule --name {CONTACT_RULE}")


def test_a_rule_without_its_queue_target_is_a_problem(
    world: World, clients: Clients, aws: dict[str, Any]
) -> None:
    aws["events"].remove_targets(Rule=CONTACT_RULE, Ids=["Target0"])
    assert_problem(check_contact_rule(world.deployed(clients)), "has no target on the main queue")


def test_a_rule_target_without_its_dlq_is_a_problem(
    world: World, clients: Clients, aws: dict[str, Any]
) -> None:
    aws["events"].put_targets(
        Rule=CONTACT_RULE, Targets=[{"Id": "Target0", "Arn": world.outputs["MainQueueArn"]}]
    )
    assert_problem(check_contact_rule(world.deployed(clients)), "has no dead-letter queue")


def test_a_rule_for_another_instance_is_a_problem(world: World, clients: Clients) -> None:
    other = world.instance_arn.replace(INSTANCE_ID, "cccccccc-0000")
    check = check_contact_rule(world.deployed(clients, connectInstanceArn=other))
    assert_problem(check, f"matches instance {world.instance_arn}, the context names {other}")


def test_a_rule_for_other_event_types_than_the_contexts_is_a_problem(world: World, clients: Clients) -> None:
    # Deployed for COMPLETED only; this checkout links DISCONNECTED too: those contacts would never be linked.
    check = check_contact_rule(world.deployed(clients, contactEventTypes="COMPLETED,DISCONNECTED"))
    assert_problem(check, "matches event types COMPLETED, the context names COMPLETED, DISCONNECTED")


# --- queues -------------------------------------------------------------------------------------------------
def test_empty_dlqs_are_ok_messages_in_one_are_a_problem(
    world: World, clients: Clients, aws: dict[str, Any]
) -> None:
    assert_ok(check_processing_dlq(world.deployed(clients)))
    assert_ok(check_rule_target_dlq(world.deployed(clients)))
    for _ in range(3):
        put(aws["sqs"], world.outputs["RuleTargetDlqUrl"], "{}")
    check = check_rule_target_dlq(world.deployed(clients))
    assert_problem(check, "CaseLinker-RuleTargetDlq holds 3 messages")
    assert "python -m ops dlq replay" in check.fix
    assert_ok(check_processing_dlq(world.deployed(clients)))


def test_a_deleted_queue_is_a_problem(world: World, clients: Clients, aws: dict[str, Any]) -> None:
    aws["sqs"].delete_queue(QueueUrl=world.outputs["ProcessingDlqUrl"])
    assert_problem(
        check_processing_dlq(world.deployed(clients)), "queue CaseLinker-ProcessingDlq does not exist"
    )


def put_age(aws: dict[str, Any], seconds: float) -> None:
    aws["cloudwatch"].put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": "CaseLinker-Queue"}],
                "Value": seconds,
                "Timestamp": recently(),
            }
        ],
    )


def test_the_main_queues_depth_is_reported(world: World, clients: Clients, aws: dict[str, Any]) -> None:
    put(aws["sqs"], world.outputs["MainQueueUrl"], "{}")
    check = check_main_queue(world.deployed(clients))
    assert_ok(check)
    assert check.detail == "CaseLinker-Queue: 1 waiting, 0 in flight, 0 delayed"


def test_a_backlog_older_than_the_alarm_threshold_is_a_problem(
    world: World, clients: Clients, aws: dict[str, Any]
) -> None:
    assert_ok(check_main_queue_age(world.deployed(clients)))  # empty
    put(aws["sqs"], world.outputs["MainQueueUrl"], "{}")
    threshold = world.config.oldest_message_alarm_seconds  # maxReceiveCount x visibility timeout
    put_age(aws, threshold - 1)
    assert_ok(check_main_queue_age(world.deployed(clients)))
    put_age(aws, threshold + 60)
    assert_problem(check_main_queue_age(world.deployed(clients)), f"over the backlog alarm's {threshold} s")


def test_a_backlog_cloudwatch_has_no_age_for_yet_is_could_not_check(
    world: World, clients: Clients, aws: dict[str, Any]
) -> None:
    put(aws["sqs"], world.outputs["MainQueueUrl"], "{}")
    assert check_main_queue_age(world.deployed(clients)).status is Status.COULD_NOT_CHECK


# --- the alarm topic ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "policy",
    [
        '{"Statement": {"Effect": "Allow"}}',
        {"Statement": {"Effect": "Allow"}},  # a parsed document, as some endpoints (moto's KMS) return it
    ],
)
def test_a_policy_document_is_read_as_text_or_as_a_parsed_document(policy: Any) -> None:
    assert statements(policy) == [{"Effect": "Allow"}]


def test_a_policy_that_is_not_a_json_object_has_no_statements_rather_than_crashing_the_run() -> None:
    assert statements("not json") == []
    assert statements("[1, 2]") == []


def test_the_topic_policy_letting_cloudwatch_in_is_ok(world: World, clients: Clients) -> None:
    check = check_topic_policy(world.deployed(clients))
    assert_ok(check)
    assert check.detail == "cloudwatch.amazonaws.com may publish, for this account's alarms only"


def test_a_tls_only_topic_policy_is_a_problem(world: World, clients: Clients, aws: dict[str, Any]) -> None:
    aws["sns"].set_topic_attributes(
        TopicArn=world.outputs["AlarmTopicArn"], AttributeName="Policy", AttributeValue=TLS_ONLY_POLICY
    )
    assert_problem(check_topic_policy(world.deployed(clients)), "every alarm fires into nothing")


def test_a_key_cloudwatch_may_use_is_ok_else_a_problem(
    world: World, clients: Clients, aws: dict[str, Any]
) -> None:
    assert_ok(check_topic_key(world.deployed(clients)))
    topic = world.outputs["AlarmTopicArn"]
    key = aws["sns"].get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"]
    aws["kms"].put_key_policy(KeyId=key, PolicyName="default", Policy=cloudwatch_may("kms:Decrypt"))
    assert_problem(check_topic_key(world.deployed(clients)), "does not let cloudwatch.amazonaws.com use it")


def test_the_aws_managed_sns_key_is_a_problem(world: World, clients: Clients, aws: dict[str, Any]) -> None:
    aws["sns"].set_topic_attributes(
        TopicArn=world.outputs["AlarmTopicArn"],
        AttributeName="KmsMasterKeyId",
        AttributeValue="alias/aws/sns",
    )
    assert_problem(check_topic_key(world.deployed(clients)), "AWS-managed aws/sns key")


def cloudwatch_of(account: str, region: str, *actions: str) -> str:
    """A resource policy letting only the CloudWatch alarms of `account` and `region` do `actions`, as the stack
    scopes it (aws:SourceAccount and aws:SourceArn)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": list(actions),
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account},
                        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{region}:{account}:alarm:*"},
                    },
                }
            ],
        }
    )


@pytest.mark.parametrize(
    ("account", "region"), [(ACCOUNT, REGION), ("999999999999", REGION), (ACCOUNT, "eu-west-1")]
)
def test_a_topic_policy_scoped_to_another_accounts_or_regions_alarms_is_a_problem(
    world: World, clients: Clients, aws: dict[str, Any], account: str, region: str
) -> None:
    # The stack's alarms publish as this account's, in this Region: an allow for others' lets none of them in.
    aws["sns"].set_topic_attributes(
        TopicArn=world.outputs["AlarmTopicArn"],
        AttributeName="Policy",
        AttributeValue=cloudwatch_of(account, region, "sns:Publish"),
    )
    check = check_topic_policy(world.deployed(clients))
    if (account, region) == (ACCOUNT, REGION):
        assert_ok(check)
    else:
        assert_problem(check, "every alarm fires into nothing")


@pytest.mark.parametrize(
    ("account", "region"), [(ACCOUNT, REGION), ("999999999999", REGION), (ACCOUNT, "eu-west-1")]
)
def test_a_key_policy_scoped_to_another_accounts_or_regions_alarms_is_a_problem(
    world: World, clients: Clients, aws: dict[str, Any], account: str, region: str
) -> None:
    topic = world.outputs["AlarmTopicArn"]
    key = aws["sns"].get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"]
    aws["kms"].put_key_policy(
        KeyId=key,
        PolicyName="default",
        Policy=cloudwatch_of(account, region, "kms:Decrypt", "kms:GenerateDataKey*"),
    )
    check = check_topic_key(world.deployed(clients))
    if (account, region) == (ACCOUNT, REGION):
        assert_ok(check)
    else:
        assert_problem(check, "does not let cloudwatch.amazonaws.com use it")


def test_an_unencrypted_alarm_topic_is_a_problem(world: World, clients: Clients, aws: dict[str, Any]) -> None:
    # The README promises a topic under its own customer managed key; the stack never deploys one without.
    aws["sns"].set_topic_attributes(
        TopicArn=world.outputs["AlarmTopicArn"], AttributeName="KmsMasterKeyId", AttributeValue=""
    )
    assert_problem(check_topic_key(world.deployed(clients)), "not encrypted")


# --- the sweeper ----------------------------------------------------------------------------------------------
def test_the_sweeper_and_its_schedule_are_ok(world: World, clients: Clients) -> None:
    assert_ok(check_sweeper_function(world.deployed(clients)))
    check = check_sweeper_rule(world.deployed(clients))
    assert_ok(check)
    assert check.detail == f"{SCHEDULE} ENABLED, rate(15 minutes)"


def test_a_disabled_sweeper_schedule_is_a_problem(
    world: World, clients: Clients, aws: dict[str, Any]
) -> None:
    aws["events"].disable_rule(Name=SCHEDULE)
    assert_problem(check_sweeper_rule(world.deployed(clients)), "the sweeper does not run")


def test_a_schedule_that_runs_something_else_is_a_problem(
    world: World, clients: Clients, aws: dict[str, Any]
) -> None:
    linker_arn = aws["lambda"].get_function_configuration(FunctionName=LINKER)["FunctionArn"]
    aws["events"].put_targets(Rule=SCHEDULE, Targets=[{"Id": "Target0", "Arn": linker_arn}])
    assert_problem(check_sweeper_rule(world.deployed(clients)), "does not target the sweeper function")


def test_a_missing_sweeper_function_is_a_problem(world: World, clients: Clients, aws: dict[str, Any]) -> None:
    aws["lambda"].delete_function(FunctionName=SWEEPER)
    assert_problem(check_sweeper_function(world.deployed(clients)), f"no function {SWEEPER}")


# --- the last hour's errors -------------------------------------------------------------------------------
def test_function_errors_in_the_last_hour_are_a_problem(
    world: World, clients: Clients, aws: dict[str, Any]
) -> None:
    assert_ok(check_sweeper_errors(world.deployed(clients)))
    aws["cloudwatch"].put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Errors",
                "Dimensions": [{"Name": "FunctionName", "Value": SWEEPER}],
                "Value": value,
                "Timestamp": recently(minutes),
            }
            for value, minutes in ((2, 1), (1, 30), (5, 90))  # the last is older than an hour
        ],
    )
    check = check_sweeper_errors(world.deployed(clients))
    assert_problem(check, f"3 errors from {SWEEPER} in the last hour")
    assert check.fix.startswith(f"aws logs tail /aws/lambda/{SWEEPER} --since 1h")


def test_dead_letters_in_the_last_hour_are_a_problem_counted_by_error_code(
    world: World, clients: Clients, aws: dict[str, Any]
) -> None:
    assert_ok(check_dead_lettered(world.deployed(clients)))

    def dead_lettered(code: str, count: int, service: str = "case-linker") -> dict[str, Any]:
        return {
            "MetricName": "DeadLettered",
            "Dimensions": [{"Name": "service", "Value": service}, {"Name": "errorCode", "Value": code}],
            "Value": count,
            "Timestamp": recently(),
        }

    aws["cloudwatch"].put_metric_data(
        Namespace="CaseLinker",
        MetricData=[
            dead_lettered("ValidationException", 3),
            dead_lettered("ResourceNotFoundException", 1),
            dead_lettered("Other", 9, service="another-service"),
        ],
    )
    assert_problem(
        check_dead_lettered(world.deployed(clients)),
        "4 records dead-lettered in the last hour (ValidationException 3, ResourceNotFoundException 1)",
    )


# --- the run ------------------------------------------------------------------------------------------------
def names_and_statuses(checks: list[Check]) -> dict[str, str]:
    return {check.name: str(check.status) for check in checks}


def test_a_healthy_deploy_is_ok_on_every_check_in_order(world: World, clients: Clients) -> None:
    checks = run_checks(clients, world.target(), pre_deploy=False)
    assert names_and_statuses(checks) == {
        name: "ok" for name in [*PRE_DEPLOY_CHECKS, *post_deploy_names(world.target())]
    }
    assert len(checks) == 23


def test_pre_deploy_runs_only_what_needs_no_stack(
    world: World, clients: Clients, aws: dict[str, Any]
) -> None:
    aws["cloudformation"].delete_stack(StackName="CaseLinker")
    checks = run_checks(clients, world.target(), pre_deploy=True)
    assert names_and_statuses(checks) == {name: "ok" for name in PRE_DEPLOY_CHECKS}


def test_without_the_stack_every_post_deploy_check_says_it_was_skipped(
    world: World, clients: Clients, aws: dict[str, Any]
) -> None:
    aws["cloudformation"].delete_stack(StackName="CaseLinker")
    checks = {check.name: check for check in run_checks(clients, world.target(), pre_deploy=False)}
    assert checks["stack"].status is Status.PROBLEM
    skipped = [name for name in post_deploy_names(world.target()) if name != "stack"]
    assert {checks[name].detail for name in skipped} == {"skipped: needs the stack CaseLinker"}


def test_without_a_region_the_region_is_the_problem_and_nothing_is_called(
    world: World, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(variable)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    checks = run_checks(Clients(injected=aws), world.target(), pre_deploy=False)
    assert {c.name: c.status for c in checks if c.status is not Status.COULD_NOT_CHECK} == {
        "context": Status.OK,
        "region": Status.PROBLEM,
    }
    assert [c.name for c in checks] == [*PRE_DEPLOY_CHECKS, *post_deploy_names(world.target())]
    assert next(c for c in checks if c.name == "region").fix.startswith(f"pass --region {REGION}")
    assert world.emu.calls == []


def test_without_a_valid_instance_the_instance_checks_say_why(world: World, clients: Clients) -> None:
    checks = {
        c.name: c for c in run_checks(clients, Target(stack_name="CaseLinker", context={}), pre_deploy=True)
    }
    assert checks["context"].status is Status.PROBLEM
    for name in ("account", "region", "connect-instance", "cases-domain", "cases-domain-association"):
        assert checks[name].status is Status.COULD_NOT_CHECK
        assert "connectInstanceArn" in checks[name].detail
    assert checks["cdk-bootstrap"].status is Status.OK


def test_without_the_sweeper_its_checks_are_not_run(
    world: World, clients: Clients, aws: dict[str, Any]
) -> None:
    world.republish(SweeperFunctionName=None, SweeperLogGroupName=None, SweeperRuleArn=None)
    checks = run_checks(clients, world.target(sweeperEnabled="false"), pre_deploy=False)
    assert set(names_and_statuses(checks).values()) == {"ok"}
    assert "sweeper-rule" not in names_and_statuses(checks)


# --- the command, end to end --------------------------------------------------------------------------------
@pytest.fixture
def project(world: World, emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory holds cdk.context.json naming the world's instance and domain, as after setup."""
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_ENDPOINT_URL_CONNECT", emu.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CONNECTCASES", emu.endpoint_url)
    (project / "cdk.context.json").write_text(json.dumps(world.context))
    return project


def doctor(run_cli: Invoke, *args: str) -> tuple[int, dict[str, dict[str, str]], Any]:
    """Run `doctor --output json`: the exit code, the checks by name, the whole document."""
    result = run_cli(["doctor", "--output", "json", *args])
    assert result.exit_code in (ExitCode.OK, ExitCode.FAILED), result.output
    document = json.loads(result.stdout)
    return result.exit_code, {c["check"]: c for c in document["checks"]}, document


def test_the_command_on_a_healthy_deploy_exits_0(project: Path, run_cli: Invoke) -> None:
    code, checks, document = doctor(run_cli)
    assert code == ExitCode.OK
    assert document["doctor"] == {
        "stack_name": "CaseLinker",
        "pre_deploy": False,
        "ok": 23,
        "problem": 0,
        "could-not-check": 0,
    }
    assert checks["context"]["detail"].endswith(f"({project / 'cdk.context.json'})")


def test_the_table_shows_a_problem_with_its_fix_and_exits_1(
    project: Path, run_cli: Invoke, aws: dict[str, Any]
) -> None:
    aws["events"].disable_rule(Name=CONTACT_RULE)
    result = run_cli(["doctor"])
    assert result.exit_code == ExitCode.FAILED
    assert "contact-event-rule" in result.stdout
    assert f"aws events enable-rule --name {CONTACT_RULE}" in result.stdout
    assert "22 ok, 1 problem, 0 could-not-check" in result.stdout
    assert result.stderr.strip() == "error: 1 check found a problem: see the fix beside each"


def test_query_and_text_output_work_as_for_every_command(
    project: Path, run_cli: Invoke, aws: dict[str, Any]
) -> None:
    aws["events"].disable_rule(Name=SCHEDULE)
    result = run_cli(["doctor", "--pre-deploy", "--output", "text", "--query", "checks[?status!='ok'].check"])
    assert (result.exit_code, result.stdout) == (ExitCode.OK, "")
    result = run_cli(["doctor", "--output", "text", "--query", "checks[?status!='ok'].check"])
    assert result.stdout.split() == ["sweeper-rule"]


def test_no_customer_data_is_printed_whatever_the_dlq_holds(
    project: Path, run_cli: Invoke, aws: dict[str, Any]
) -> None:
    put(
        aws["sqs"], aws_url(aws, "CaseLinker-ProcessingDlq"), comment_request("case-1"), error_attributes("X")
    )
    result = run_cli(["doctor"])
    assert result.exit_code == ExitCode.FAILED
    assert "holds 1 message" in result.stdout
    assert SECRET_COMMENT not in result.output
    assert "case-1" not in result.output


def aws_url(aws: dict[str, Any], name: str) -> str:
    return str(aws["sqs"].get_queue_url(QueueName=name)["QueueUrl"])


def test_options_and_context_flags_override_the_files_as_cdk_does(
    project: Path, world: World, run_cli: Invoke
) -> None:
    (project / "cdk.context.json").write_text(
        json.dumps({**world.context, "casesDomainId": "no-such-domain"})
    )
    _, checks, _ = doctor(run_cli, "--pre-deploy")
    assert checks["cases-domain"]["status"] == "problem"
    assert doctor(run_cli, "--pre-deploy", "--cases-domain-id", world.domain_id)[0] == ExitCode.OK
    assert doctor(run_cli, "--pre-deploy", "-c", f"casesDomainId={world.domain_id}")[0] == ExitCode.OK


def test_a_bad_value_from_the_command_line_is_named_as_given_there_with_its_own_fix(
    project: Path, run_cli: Invoke
) -> None:
    _, checks, _ = doctor(run_cli, "--pre-deploy", "-c", "maxConcurrency=1")
    context = checks["context"]
    assert context["status"] == "problem"
    assert "maxConcurrency given with -c" in context["detail"]
    assert "cdk.context.json" not in context["detail"]  # it holds only the two good values
    assert "maxConcurrency" in context["fix"]
    assert "--cases-domain-id" not in context["fix"]
    assert "--connect-instance-arn" not in context["fix"]


def test_the_context_check_names_the_options_that_gave_the_values_not_cdk_json(
    project: Path, world: World, run_cli: Invoke
) -> None:
    (project / "cdk.context.json").unlink()
    (project / "cdk.json").write_text(json.dumps({"app": "python app.py"}))
    _, checks, _ = doctor(
        run_cli,
        "--pre-deploy",
        "--cases-domain-id",
        world.domain_id,
        "-c",
        f"connectInstanceArn={world.instance_arn}",
    )
    detail = checks["context"]["detail"]
    assert checks["context"]["status"] == "ok"
    assert f"casesDomainId {world.domain_id} (--cases-domain-id)" in detail
    assert f"connectInstanceArn {world.instance_arn} (-c)" in detail
    assert "cdk.json" not in detail
    _, checks, _ = doctor(
        run_cli,
        "--pre-deploy",
        "-c",
        f"casesDomainId={world.domain_id}",
        "-c",
        f"connectInstanceArn={world.instance_arn}",
    )
    assert checks["context"]["detail"].endswith(" (-c)")


def test_the_stack_name_comes_from_the_context_unless_given(
    project: Path, world: World, run_cli: Invoke
) -> None:
    (project / "cdk.context.json").write_text(json.dumps({**world.context, "stackName": "CaseLinkerStaging"}))
    _, checks, document = doctor(run_cli)
    assert document["doctor"]["stack_name"] == "CaseLinkerStaging"
    assert checks["stack"]["detail"] == "no stack CaseLinkerStaging in this account and Region"
    assert doctor(run_cli, "--stack-name", "CaseLinker")[0] == ExitCode.OK


def test_the_stack_name_from_the_context_is_trimmed_as_the_app_trims_it(
    project: Path, world: World, run_cli: Invoke
) -> None:
    # app.py deploys `stackName` stripped of spaces; doctor must look for that stack, not "CaseLinkerStaging ".
    (project / "cdk.context.json").write_text(
        json.dumps({**world.context, "stackName": " CaseLinkerStaging "})
    )
    _, checks, document = doctor(run_cli)
    assert document["doctor"]["stack_name"] == "CaseLinkerStaging"
    assert checks["stack"]["detail"] == "no stack CaseLinkerStaging in this account and Region"


def test_the_toolkit_stack_name_comes_from_cdk_json(project: Path, run_cli: Invoke) -> None:
    (project / "cdk.json").write_text(json.dumps({"app": "python app.py", "toolkitStackName": "MyToolkit"}))
    _, checks, _ = doctor(run_cli, "--pre-deploy")
    assert checks["cdk-bootstrap"]["detail"] == "no bootstrap stack MyToolkit"
    _, checks, _ = doctor(run_cli, "--pre-deploy", "--toolkit-stack-name", "CDKToolkit")
    assert checks["cdk-bootstrap"]["status"] == "ok"


def test_no_credentials_is_a_problem_and_nothing_else_is_tried(
    project: Path, run_cli: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    code, checks, _ = doctor(run_cli)
    assert code == ExitCode.FAILED
    assert checks["credentials"]["status"] == "problem"
    assert {name for name, check in checks.items() if check["status"] == "ok"} == {"context"}
    assert checks["stack"]["detail"] == "skipped: needs working credentials"


def test_a_malformed_context_option_is_a_usage_error(project: Path, run_cli: Invoke) -> None:
    result = run_cli(["doctor", "--context", "maxConcurrency"])
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("error: --context 'maxConcurrency' is not KEY=VALUE")


def test_an_unreadable_cdk_json_is_a_usage_error(project: Path, run_cli: Invoke) -> None:
    (project / "cdk.json").write_text("{ not json")
    result = run_cli(["doctor"])
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith(f"error: cannot read {project / 'cdk.json'}")


def test_every_permission_doctor_needs_is_documented() -> None:
    documented = (REPO_ROOT / "docs" / "operations.md").read_text()
    permissions = documented[documented.index("`doctor` needs only reads") :]
    assert [action for action in PERMISSIONS.values() if f"`{action}`" not in permissions] == []
