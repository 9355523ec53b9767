"""The stack goes to the Connect instance's account and Region, or nowhere.

Connect publishes contact events only to the default bus of the instance's own account and Region: a stack
anywhere else deploys cleanly and never sees an event. Synth refuses a known, different environment; the
template's `Rules` refuse the deploy when the environment is only known to CloudFormation.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Environment
from aws_cdk.assertions import Template

from infra.config import CaseLinkerConfig, ConfigError
from infra.stack import CaseLinkerStack
from tests.infra.synth import DOMAIN_ID, INSTANCE_ARN, feature_flags

INSTANCE_ACCOUNT = "123456789012"
INSTANCE_REGION = "us-east-1"


@pytest.fixture(scope="module")
def config() -> CaseLinkerConfig:
    return CaseLinkerConfig(cases_domain_id=DOMAIN_ID, connect_instance_arn=INSTANCE_ARN)


def build(config: CaseLinkerConfig, env: Environment | None) -> CaseLinkerStack:
    return CaseLinkerStack(App(context=feature_flags()), "CaseLinker", config=config, env=env)


# --- synth time ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("account", "region", "named"),
    [
        ("999999999999", INSTANCE_REGION, ["account 999999999999"]),
        (INSTANCE_ACCOUNT, "eu-west-1", ["Region eu-west-1"]),
        ("999999999999", "eu-west-1", ["account 999999999999", "Region eu-west-1"]),
    ],
)
def test_given_a_known_environment_other_than_the_instances_when_synthesized_then_it_is_refused(
    config: CaseLinkerConfig, account: str, region: str, named: list[str]
) -> None:
    with pytest.raises(ConfigError) as raised:
        build(config, Environment(account=account, region=region))
    message = str(raised.value)
    assert "connectInstanceArn" in message
    for part in named:
        assert part in message


def test_given_the_instances_own_environment_when_synthesized_then_it_builds(
    config: CaseLinkerConfig,
) -> None:
    stack = build(config, Environment(account=INSTANCE_ACCOUNT, region=INSTANCE_REGION))
    assert stack.region == INSTANCE_REGION


def test_given_only_the_region_known_when_it_matches_then_it_builds(config: CaseLinkerConfig) -> None:
    stack = build(config, Environment(region=INSTANCE_REGION))
    assert stack.region == INSTANCE_REGION


def test_given_only_the_region_known_when_it_differs_then_it_is_refused(config: CaseLinkerConfig) -> None:
    with pytest.raises(ConfigError, match="Region eu-west-1"):
        build(config, Environment(region="eu-west-1"))


# --- deploy time: the template's Rules -----------------------------------------------------------------------
def evaluate(expression: Any, pseudo: dict[str, str]) -> Any:
    """CloudFormation's rule functions, as far as this template uses them."""
    if isinstance(expression, str):
        return expression
    if isinstance(expression, list):
        return [evaluate(item, pseudo) for item in expression]
    [(function, argument)] = expression.items()
    if function == "Ref":
        return pseudo[argument]
    if function == "Fn::Equals":
        left, right = evaluate(argument, pseudo)
        return left == right
    if function == "Fn::And":
        return all(evaluate(item, pseudo) for item in argument)
    if function == "Fn::Or":
        return any(evaluate(item, pseudo) for item in argument)
    if function == "Fn::Not":
        [inner] = argument
        return not evaluate(inner, pseudo)
    if function == "Fn::Contains":
        values, value = evaluate(argument, pseudo)
        return value in values
    raise AssertionError(f"rule function {function} is not evaluated here")


def deploy_allowed(
    template: Template, account: str, region: str, partition: str = "aws"
) -> tuple[bool, list[str]]:
    """Whether every assertion of every rule holds in `account`/`region`/`partition`, and the descriptions of
    those that fail."""
    pseudo = {"AWS::AccountId": account, "AWS::Region": region, "AWS::Partition": partition}
    failed: list[str] = []
    for name, rule in template.to_json().get("Rules", {}).items():
        if name == "CheckBootstrapVersion":  # CDK's own rule, about the bootstrap stack's parameter
            continue
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], pseudo):
            continue
        failed += [a["AssertDescription"] for a in rule["Assertions"] if not evaluate(a["Assert"], pseudo)]
    return not failed, failed


def test_the_template_deploys_in_the_instances_account_and_region(template: Template) -> None:
    assert deploy_allowed(template, INSTANCE_ACCOUNT, INSTANCE_REGION) == (True, [])


@pytest.mark.parametrize(
    ("account", "region"),
    [("999999999999", INSTANCE_REGION), (INSTANCE_ACCOUNT, "eu-west-1"), ("999999999999", "eu-west-1")],
)
def test_the_template_refuses_to_deploy_in_another_account_or_region(
    template: Template, account: str, region: str
) -> None:
    allowed, failed = deploy_allowed(template, account, region)
    assert not allowed
    [description] = failed
    assert INSTANCE_ARN in description


def test_the_template_refuses_to_deploy_in_another_partition(template: Template) -> None:
    # Same account id and Region name, another partition: the instance ARN (arn:aws:...) names nothing there.
    allowed, failed = deploy_allowed(template, INSTANCE_ACCOUNT, INSTANCE_REGION, partition="aws-iso")
    assert not allowed
    [description] = failed
    assert INSTANCE_ARN in description


def test_the_assertion_names_the_instance_and_the_fix(template: Template) -> None:
    [description] = deploy_allowed(template, "999999999999", "eu-west-1")[1]
    assert "connectInstanceArn" in description
    assert len(description) <= 1024  # CloudFormation's limit for AssertDescription
