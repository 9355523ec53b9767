"""Least privilege in the synthesized template: Cases and Connect actions name their resources, never `*`.

Synthesized with the same helper tests/infra uses (app.build, cdk.json feature flags, cdk-nag plugins), once
per session for the required context and once with every option switched on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.infra.synth import DOMAIN_ID, FULL_CONTEXT, INSTANCE_ARN, REQUIRED_CONTEXT, synthesize

pytestmark = pytest.mark.slow

INSTANCE_ID = INSTANCE_ARN.rsplit("/", 1)[-1]
GUARDED_SERVICES = ("cases", "connect")


@pytest.fixture(scope="session", params=["required-context", "full-context"])
def template_json(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    context = REQUIRED_CONTEXT if request.param == "required-context" else FULL_CONTEXT
    synthesized = synthesize(context, Path(tmp_path_factory.mktemp(f"security-{request.param}")))
    return synthesized.json


def render(value: Any) -> Any:
    """A CloudFormation value as text: Fn::Join joined, Ref and GetAtt as ${...} placeholders."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [render(item) for item in value]
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(render(part)) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return "${" + str(value["Ref"]) + "}"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    return repr(value)


def statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM statement: policies, managed policies and roles' inline policies."""
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        documents = []
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(properties["PolicyDocument"])
        if resource["Type"] == "AWS::IAM::Role":
            documents.extend(policy["PolicyDocument"] for policy in properties.get("Policies", []))
        for document in documents:
            found = document["Statement"]
            for statement in found if isinstance(found, list) else [found]:
                yield logical_id, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def guarded(template: dict[str, Any]) -> list[tuple[str, list[str], list[str]]]:
    """(logical id, actions, rendered resources) of statements with a Cases or Connect action."""
    found = []
    for logical_id, statement in statements(template):
        actions = [str(a) for a in as_list(statement.get("Action", []))]
        if any(a.split(":", 1)[0].lower() in GUARDED_SERVICES or a == "*" for a in actions):
            resources = [str(render(r)) for r in as_list(statement.get("Resource", "*"))]
            found.append((logical_id, actions, resources))
    return found


def test_given_the_stack_when_synthesized_then_cases_and_connect_permissions_exist(template_json) -> None:
    actions = {a for _, acts, _ in guarded(template_json) for a in acts}

    assert {"cases:CreateRelatedItem", "connect:GetContactAttributes"} <= actions


def test_given_the_stack_when_synthesized_then_no_cases_or_connect_action_has_a_wildcard_resource(
    template_json,
) -> None:
    for logical_id, actions, resources in guarded(template_json):
        for resource in resources:
            assert resource != "*", f"{logical_id}: {actions} on *"
            assert not resource.endswith((":*", ":domain/*", ":instance/*")), f"{logical_id}: {resource}"


def test_given_the_stack_when_synthesized_then_no_action_wildcards_for_cases_or_connect(
    template_json,
) -> None:
    for logical_id, actions, _ in guarded(template_json):
        for action in actions:
            assert "*" not in action, f"{logical_id}: {action}"
            assert not statement_is_not_action(template_json, logical_id), logical_id


def statement_is_not_action(template: dict[str, Any], logical_id: str) -> bool:
    return any("NotAction" in s or "NotResource" in s for lid, s in statements(template) if lid == logical_id)


def test_given_the_stack_when_synthesized_then_cases_resources_name_the_configured_domain(
    template_json,
) -> None:
    for logical_id, actions, resources in guarded(template_json):
        service = actions[0].split(":", 1)[0].lower()
        for resource in resources:
            if service == "cases":
                assert f":domain/{DOMAIN_ID}" in resource, f"{logical_id}: {resource}"
            elif resource == INSTANCE_ARN:
                # Only SearchContacts is authorised on the instance itself (the sweeper's search).
                assert actions == ["connect:SearchContacts"], f"{logical_id}: {actions} on the instance"
            else:
                assert f":instance/{INSTANCE_ID}/" in resource, f"{logical_id}: {resource}"


def test_given_the_stack_when_synthesized_then_the_sweeper_searches_only_the_configured_instance(
    template_json,
) -> None:
    searches = [
        (actions, resources)
        for _, actions, resources in guarded(template_json)
        if "connect:SearchContacts" in actions
    ]
    assert searches == [(["connect:SearchContacts"], [INSTANCE_ARN])]
