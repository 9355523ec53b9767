"""README's Deploy section states the numbers infra/config.py derives: the backlog table cannot drift."""

from __future__ import annotations

import pytest

from infra.config import CaseLinkerConfig
from tests.infra.synth import DOMAIN_ID, INSTANCE_ARN, REPO_ROOT

#: The backlogs the README's table describes, in contacts arriving at once.
BACKLOGS = (1_000, 10_000, 100_000, 500_000, 1_000_000)


def deploy_section() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    return readme[readme.index("\n## Deploy") : readme.index("\n## Operate")]


def duration(seconds: float) -> str:
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def row(config: CaseLinkerConfig, contacts: int) -> str:
    backlog = config.backlog(contacts)
    alarm = "no" if backlog.alarm_after_seconds is None else f"after {duration(backlog.alarm_after_seconds)}"
    if backlog.expired_contacts:
        left = f"none: the last {backlog.expired_contacts:,} expire"
    else:
        left = duration(backlog.margin_seconds)
    return f"| {contacts:,} | {duration(backlog.drain_seconds)} | {alarm} | {left} |"


@pytest.mark.parametrize("contacts", BACKLOGS)
def test_the_backlog_table_matches_the_defaults(contacts: int) -> None:
    defaults = CaseLinkerConfig(cases_domain_id=DOMAIN_ID, connect_instance_arn=INSTANCE_ARN)
    assert row(defaults, contacts) in deploy_section()


def test_the_deploy_section_states_the_retention_and_the_alarm_threshold() -> None:
    defaults = CaseLinkerConfig(cases_domain_id=DOMAIN_ID, connect_instance_arn=INSTANCE_ARN)
    section = deploy_section()
    assert f"{defaults.main_queue_retention_seconds // 86400} days" in section
    assert f"{defaults.oldest_message_alarm_seconds:,} s" in section
