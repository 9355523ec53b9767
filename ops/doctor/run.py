"""The order of the checks, and what is skipped when something they need is missing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from ops.aws import Clients
from ops.doctor.alarms import check_topic_key, check_topic_policy
from ops.doctor.deployed import Deployed
from ops.doctor.health import (
    check_dead_lettered,
    check_linker_errors,
    check_main_queue,
    check_main_queue_age,
    check_processing_dlq,
    check_rule_target_dlq,
    check_sweeper_errors,
)
from ops.doctor.predeploy import (
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
from ops.doctor.target import Target
from ops.doctor.verdict import Check, Status, could_not_check, problem

#: The checks that need the Connect instance and the domain, in order (after context and credentials).
INSTANCE_CHECKS = ("account", "region", "connect-instance", "cases-domain", "cases-domain-association")
PRE_DEPLOY_CHECKS = ("context", "credentials", *INSTANCE_CHECKS, "cdk-bootstrap")
DeployedCheck = tuple[str, Callable[[Deployed], Check]]
#: After the stack check, in order.
DEPLOYED_CHECKS: tuple[DeployedCheck, ...] = (
    ("linker-function", check_linker_function),
    ("event-source-mapping", check_event_source_mapping),
    ("contact-event-rule", check_contact_rule),
    ("main-queue", check_main_queue),
    ("main-queue-age", check_main_queue_age),
    ("processing-dlq", check_processing_dlq),
    ("rule-target-dlq", check_rule_target_dlq),
    ("alarm-topic-policy", check_topic_policy),
    ("alarm-topic-key", check_topic_key),
    ("linker-errors", check_linker_errors),
    ("dead-lettered", check_dead_lettered),
)
#: Only when the stack has the sweeper.
SWEEPER_CHECKS: tuple[DeployedCheck, ...] = (
    ("sweeper-function", check_sweeper_function),
    ("sweeper-rule", check_sweeper_rule),
    ("sweeper-errors", check_sweeper_errors),
)


def _skipped(names: Iterable[str], why: str, fix: str = "") -> list[Check]:
    return [could_not_check(name, f"skipped: {why}", fix) for name in names]


def post_deploy_names(target: Target) -> list[str]:
    """The post-deploy checks' names, for a run that cannot reach the stack."""
    sweeper = target.config is None or target.config.sweeper_enabled
    return ["stack", *(name for name, _ in DEPLOYED_CHECKS + (SWEEPER_CHECKS if sweeper else ()))]


def run_checks(
    clients: Clients, target: Target, *, pre_deploy: bool, now: datetime | None = None
) -> list[Check]:
    """Every check in order: the pre-deploy ones, then (unless `pre_deploy`) the stack's."""
    checks = [check_context(target)]
    later = [] if pre_deploy else post_deploy_names(target)
    region = clients.region  # a --profile that does not exist stops here, as a usage error
    if region is None:  # no call can be made: say so once, where it belongs
        region_check = (
            check_region(None, target.instance)
            if target.instance is not None
            else problem("region", "no Region configured", "pass --region or set AWS_REGION")
        )
        return [
            *checks,
            *_skipped(PRE_DEPLOY_CHECKS[1:3], "needs a Region"),
            region_check,
            *_skipped([*PRE_DEPLOY_CHECKS[4:], *later], "needs a Region"),
        ]
    credentials, identity = check_credentials(clients.sts)
    checks.append(credentials)
    if identity is None:
        return checks + _skipped(
            [*PRE_DEPLOY_CHECKS[2:], *later], "needs working credentials", credentials.fix
        )
    instance = target.instance
    if instance is None:
        checks += _skipped(
            INSTANCE_CHECKS, "needs a valid casesDomainId and connectInstanceArn (see context)"
        )
    else:
        checks += [
            check_account(identity, instance),
            check_region(region, instance),
            check_connect_instance(clients.connect, instance),
            check_cases_domain(clients.connectcases, instance),
            check_cases_domain_association(clients.connect, instance),
        ]
    checks.append(check_bootstrap(clients.cloudformation, target, f"aws://{identity.account}/{region}"))
    if not pre_deploy:
        checks += post_deploy_checks(clients, target, now=now or datetime.now(UTC))
    return checks


def post_deploy_checks(clients: Clients, target: Target, *, now: datetime) -> list[Check]:
    """The stack, then everything its outputs name."""
    stack, outputs = check_stack(clients.cloudformation, target.stack_name, target.config)
    if outputs is None:
        return [stack, *_skipped(post_deploy_names(target)[1:], f"needs the stack {target.stack_name}")]
    deployed = Deployed(clients=clients, outputs=outputs, config=target.config, now=now)
    planned = DEPLOYED_CHECKS + (SWEEPER_CHECKS if deployed.has_sweeper else ())
    return [stack, *(check(deployed) for _, check in planned)]


def summary(checks: Sequence[Check]) -> dict[str, int]:
    """How many checks ended in each status, every status named."""
    return {str(status): sum(c.status is status for c in checks) for status in Status}
