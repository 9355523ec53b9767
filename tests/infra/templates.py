"""Reading a synthesized template in tests: find a resource, render an intrinsic, pick a function's grants."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk.assertions import Template

LINKER_HANDLER = "case_linker.handler.lambda_handler"
SWEEPER_HANDLER = "case_linker.sweeper.lambda_handler"

# Stateful resources: a changed logical ID means CloudFormation replaces them (messages and idempotency
# records lost). Change these only with a migration plan.
MAIN_QUEUE = "CaseLinkerQueue26F254E3"
PROCESSING_DLQ = "CaseLinkerProcessingDlq5AB3BA1D"
RULE_TARGET_DLQ = "CaseLinkerRuleTargetDlq4F48D096"
IDEMPOTENCY_TABLE = "CaseLinkerIdempotencyTable069EDA6C"
CONTACT_RULE = "CaseLinkerContactEventRule8DE72170"


def arn_of(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def only(resources: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, f"expected exactly one match, got {sorted(resources)}"
    return next(iter(resources.items()))


def properties(template: Template, logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = template.to_json()["Resources"][logical_id]["Properties"]
    return props


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def joined(value: Any) -> str:
    """Render a Fn::Join of strings, Refs and GetAtts as text (`${Ref}`, `${Id.Attr}`), for readable assertions."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(joined(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"${{{value['Ref']}}}"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"${{{'.'.join(value['Fn::GetAtt'])}}}"
    raise AssertionError(f"cannot render {value!r}")


def function_with_handler(template: Template, handler: str = LINKER_HANDLER) -> tuple[str, dict[str, Any]]:
    """(logical id, properties) of the one function running `handler`."""
    logical_id, resource = only(
        {
            logical_id: resource
            for logical_id, resource in template.find_resources("AWS::Lambda::Function").items()
            if resource["Properties"]["Handler"] == handler
        }
    )
    props: dict[str, Any] = resource["Properties"]
    return logical_id, props


def role_statements(template: Template, handler: str = LINKER_HANDLER) -> list[dict[str, Any]]:
    """The statements of the policy attached to the role of the function running `handler`."""
    _, function = function_with_handler(template, handler)
    role_id = function["Role"]["Fn::GetAtt"][0]
    _, policy = only(
        {
            logical_id: policy
            for logical_id, policy in template.find_resources("AWS::IAM::Policy").items()
            if {"Ref": role_id} in policy["Properties"]["Roles"]
        }
    )
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def statement_with(template: Template, action: str, handler: str = LINKER_HANDLER) -> dict[str, Any]:
    """The one statement of that function's role granting `action`."""
    matches = [s for s in role_statements(template, handler) if action in as_list(s["Action"])]
    assert len(matches) == 1, f"{action} should be granted by exactly one statement"
    return matches[0]
