"""The checks that need no stack: run them before the first deploy (`doctor --pre-deploy`) and after it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from infra.config import REQUIRED_CONTEXT_KEYS, CaseLinkerConfig
from ops.doctor.target import Target
from ops.doctor.verdict import (
    Check,
    call_failed,
    guarded,
    not_found,
    ok,
    problem,
    stack_missing,
    stack_usable,
)
from ops.errors import error_code, is_access_denied

#: The oldest bootstrap stack the app's synthesizer accepts: aws-cdk-lib's DefaultStackSynthesizer asks for 6,
#: and the template's CheckBootstrapVersion rule refuses older ones at deploy.
MIN_BOOTSTRAP_VERSION = 6


def check_context(target: Target) -> Check:
    """The context a deploy would use: the required keys present, every value valid (infra/config.py)."""
    name = "context"
    config = target.config
    if config is not None:
        values = {
            "casesDomainId": config.cases_domain_id,
            "connectInstanceArn": config.connect_instance_arn,
        }
        return ok(name, _with_origins(values, target.origins, fallback=_files(target)))
    problems = target.context_problems
    missing = [key for key in REQUIRED_CONTEXT_KEYS if f"{key} is required" in problems]
    invalid = [p for p in problems if p not in {f"{key} is required" for key in missing}]
    # The keys the other problems name, where they were set: a fix for those values, not for the required keys.
    named = [key for key in target.context if any(_names(p, key) for p in invalid)]
    where: list[str] = [_origin(key, target.origins) for key in named]
    fixes: list[str] = []
    if missing:
        looked = f"nor in {', '.join(target.sources)}" if target.sources else _files(target)
        where.append(f"{' and '.join(missing)}: not on the command line, {looked}")
        options = " and ".join(_OPTIONS[key] for key in missing)
        fixes.append(
            f"pass {options}, or put {' and '.join(missing)} in cdk.context.json as for cdk "
            "(README, Deploy: Context)"
        )
    if invalid:
        which = ", ".join(_origin(key, target.origins) for key in named) or "the values above"
        in_files = any(not target.origins.get(key, "-").startswith("-") for key in named)
        overrides = "; --context KEY=VALUE overrides a file" if in_files else ""
        fixes.append(f"correct {which} (README, Deploy: Context lists every key and its values{overrides})")
    return problem(name, "; ".join(problems) + f" ({'; '.join(where)})", "; ".join(fixes))


#: The doctor's own options for the required keys (`--context KEY=VALUE` gives any key).
_OPTIONS = {"casesDomainId": "--cases-domain-id", "connectInstanceArn": "--connect-instance-arn"}


def _names(problem_text: str, key: str) -> bool:
    """The problem is about `key` (named as a word: `maxConcurrency must be ...`, `unknown context key 'x'`)."""
    return re.search(rf"(?<![\w@:-]){re.escape(key)}(?![\w:-])", problem_text) is not None


def _origin(key: str, origins: Mapping[str, str]) -> str:
    """`maxConcurrency given with -c`, `casesDomainId in ./cdk.context.json`, or the key alone when unknown."""
    origin = origins.get(key)
    if origin is None:
        return key
    return f"{key} given with {origin}" if origin.startswith("-") else f"{key} in {origin}"


def _files(target: Target) -> str:
    return ", ".join(target.sources) or "no cdk.json or cdk.context.json here"


def _with_origins(values: Mapping[str, str], origins: Mapping[str, str], *, fallback: str) -> str:
    """`k1 v1, k2 v2 (where)` when the values came from one place (`fallback` when not known), else each value
    with its own."""
    places = {origins.get(key, fallback) for key in values}
    if len(places) == 1:
        return ", ".join(f"{key} {value}" for key, value in values.items()) + f" ({places.pop()})"
    return ", ".join(f"{key} {value} ({origins.get(key, fallback)})" for key, value in values.items())


@dataclass(frozen=True)
class Identity:
    account: str
    arn: str


def check_credentials(sts: Any) -> tuple[Check, Identity | None]:
    """STS GetCallerIdentity: are there working credentials, and whose."""
    name = "credentials"
    fix = "configure credentials for the Connect instance's account (aws configure, aws sso login, or --profile)"
    try:
        found = sts.get_caller_identity()
    except NoCredentialsError:
        return problem(name, "no AWS credentials found", fix), None
    except ClientError as e:
        if is_access_denied(e):
            return problem(name, f"the credentials were refused ({error_code(e)})", fix), None
        return call_failed(name, e), None
    except BotoCoreError as e:
        return call_failed(name, e), None
    identity = Identity(account=str(found["Account"]), arn=str(found["Arn"]))
    return ok(name, f"account {identity.account} as {identity.arn}"), identity


def check_account(identity: Identity, config: CaseLinkerConfig) -> Check:
    """The credentials' account is the Connect instance's (Connect publishes its events only there)."""
    name = "account"
    expected = config.connect_instance_account
    if identity.account == expected:
        return ok(name, f"{expected}, the Connect instance's account")
    return problem(
        name,
        f"the credentials are for account {identity.account}, the Connect instance is in account {expected}",
        f"use credentials for account {expected} (--profile), or fix connectInstanceArn",
    )


def check_region(region: str | None, config: CaseLinkerConfig) -> Check:
    """The Region the deploy and these calls go to is the Connect instance's."""
    name = "region"
    expected = config.connect_instance_region
    if region == expected:
        return ok(name, f"{expected}, the Connect instance's Region")
    found = f"Region {region}" if region else "no Region"
    return problem(
        name,
        f"{found} configured, the Connect instance is in {expected} (it publishes contact events only there)",
        f"pass --region {expected} (or set AWS_REGION={expected}) here and for cdk deploy",
    )


@guarded("connect-instance")
def check_connect_instance(connect: Any, config: CaseLinkerConfig) -> Check:
    """Connect DescribeInstance: the instance exists and is active."""
    name = "connect-instance"
    try:
        instance = connect.describe_instance(InstanceId=config.connect_instance_id)["Instance"]
    except ClientError as e:
        if not not_found(e):
            raise
        return problem(
            name,
            f"no Connect instance {config.connect_instance_id} in this account and Region",
            "copy the instance ARN from the Amazon Connect console (Instances > your instance > Distribution "
            "settings / Account overview) into connectInstanceArn",
        )
    status = instance.get("InstanceStatus", "?")
    if status == "ACTIVE":
        return ok(name, f"{config.connect_instance_id} is ACTIVE")
    return problem(
        name,
        f"{config.connect_instance_id} is {status}",
        "wait for the instance to be created, or fix connectInstanceArn to name an active instance",
    )


@guarded("cases-domain")
def check_cases_domain(cases: Any, config: CaseLinkerConfig) -> Check:
    """Cases GetDomain: the domain exists and is active."""
    name = "cases-domain"
    try:
        domain = cases.get_domain(domainId=config.cases_domain_id)
    except ClientError as e:
        if not not_found(e):
            raise
        return problem(
            name,
            f"no Cases domain {config.cases_domain_id} in this account and Region",
            "copy the domain id from the Amazon Connect console (your instance > Cases / Customer Profiles "
            "domain) into casesDomainId",
        )
    status = domain.get("domainStatus", "?")
    if status == "Active":
        return ok(name, f"{config.cases_domain_id} ({domain.get('name', '?')}) is Active")
    return problem(name, f"{config.cases_domain_id} is {status}", "wait until the domain is Active")


@guarded("cases-domain-association")
def check_cases_domain_association(connect: Any, config: CaseLinkerConfig) -> Check:
    """Connect ListIntegrationAssociations: the domain is the instance's Cases domain (CASES_DOMAIN)."""
    name = "cases-domain-association"
    wanted = f":domain/{config.cases_domain_id}"
    associated: list[str] = []
    kwargs: dict[str, Any] = {"InstanceId": config.connect_instance_id, "IntegrationType": "CASES_DOMAIN"}
    while True:
        page = connect.list_integration_associations(**kwargs)
        associated += [s.get("IntegrationArn", "") for s in page.get("IntegrationAssociationSummaryList", [])]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    if any(arn.endswith(wanted) for arn in associated):
        return ok(
            name, f"domain {config.cases_domain_id} is the Cases domain of {config.connect_instance_id}"
        )
    others = f" (it uses {', '.join(associated)})" if associated else " (it has no Cases domain)"
    return problem(
        name,
        f"domain {config.cases_domain_id} is not associated with instance {config.connect_instance_id}{others}",
        "in the Amazon Connect console, open the instance > Cases and enable Cases with this domain, or set "
        "casesDomainId to the domain the instance uses",
    )


@guarded("cdk-bootstrap")
def check_bootstrap(cloudformation: Any, target: Target, where: str) -> Check:
    """CloudFormation DescribeStacks on the toolkit stack: the account and Region are bootstrapped for CDK."""
    name = "cdk-bootstrap"
    fix = f"npx cdk bootstrap {where} (once per account and Region; README, Before you start)"
    try:
        stacks = cloudformation.describe_stacks(StackName=target.toolkit_stack_name)["Stacks"]
    except ClientError as e:
        if not stack_missing(e):
            raise
        return problem(name, f"no bootstrap stack {target.toolkit_stack_name}", fix)
    stack = stacks[0]
    status = str(stack.get("StackStatus", "?"))
    # A failed update rolled back leaves the version before in place, which still serves deploys.
    if not (stack_usable(status) or status in ("UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE")):
        return problem(name, f"bootstrap stack {target.toolkit_stack_name} is {status}", fix)
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
    qualifier = parameters.get("Qualifier")
    if qualifier is not None and qualifier != target.bootstrap_qualifier:
        return problem(
            name,
            f"{target.toolkit_stack_name} was bootstrapped with qualifier {qualifier}, the app deploys with "
            f"{target.bootstrap_qualifier}",
            f"npx cdk bootstrap --qualifier {target.bootstrap_qualifier} --toolkit-stack-name <another name>, "
            "or set the context @aws-cdk/core:bootstrapQualifier to the bootstrapped one",
        )
    outputs = {o["OutputKey"]: o.get("OutputValue") for o in stack.get("Outputs", [])}
    version = outputs.get("BootstrapVersion")
    if version is not None and version.isdigit() and int(version) < MIN_BOOTSTRAP_VERSION:
        return problem(
            name,
            f"{target.toolkit_stack_name} is bootstrap version {version}, the app needs {MIN_BOOTSTRAP_VERSION} or later",
            fix,
        )
    return ok(
        name, f"{target.toolkit_stack_name} {status}, version {version or '?'}, qualifier {qualifier or '?'}"
    )
