"""GIVEN a late commit, THEN the client loses the response with nothing committed, and the same request commits
seconds later on its own: what a look-up within any settle delay cannot see."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from botocore.exceptions import ConnectionClosedError

from emulator import Emulator, Faults
from tests.emulator.helpers import STANDARD, World, client


def link(cases: Any, world: World) -> Any:
    return cases.create_related_item(
        domainId=world.domain_id,
        caseId=world.case_id,
        type="Contact",
        content={"contact": {"contactArn": world.contact_arn}},
    )


def test_the_response_is_lost_and_the_item_appears_later(emu: Emulator, cases: Any, world: World):
    emu.configure(late_commit_s=0.5)
    emu.script("CreateRelatedItem", ["late_commit"])

    started, asked = time.monotonic(), dt.datetime.now(dt.UTC)
    with pytest.raises(ConnectionClosedError):
        link(cases, world)
    listed = cases.list_cases_for_contact(domainId=world.domain_id, contactArn=world.contact_arn)["cases"]

    assert emu.related_items() == []
    assert listed == []
    assert emu.late_commits_pending() == 1
    assert emu.wait_for_late_commits(5)
    [item] = emu.related_items()
    assert item.content == {"contact": {"contactArn": world.contact_arn}}
    assert time.monotonic() - started >= 0.45
    assert item.association_time >= asked + dt.timedelta(seconds=0.45)  # associated when it committed
    assert [c.outcome for c in emu.calls_to("CreateRelatedItem")] == ["late_commit"]
    counts = emu.fault_counts()["CreateRelatedItem"]
    assert (counts["late_commit"], counts["late_commit_landed"]) == (1, 1)


def test_a_naive_retry_plus_the_late_commit_make_a_duplicate(emu: Emulator, world: World):
    emu.configure(late_commit_s=1.5)  # longer than botocore's first backoff (at most 1 s)
    emu.script("CreateRelatedItem", ["late_commit"])

    link(client("connectcases", emu, STANDARD), world)  # botocore retries the dropped connection
    assert len(emu.related_items()) == 1
    assert emu.wait_for_late_commits(5)

    assert len(emu.related_items()) == 2  # CreateRelatedItem has no client token: the hazard to handle


def test_a_late_commit_to_a_merging_secondary_fails_when_it_runs(
    emu: Emulator, cases: Any, world: World, other_case: str
):
    emu.configure(late_commit_s=0.2)
    emu.script("CreateRelatedItem", ["late_commit"])
    with pytest.raises(ConnectionClosedError):
        cases.create_related_item(
            domainId=world.domain_id,
            caseId=other_case,
            type="Comment",
            content={"comment": {"body": "late", "contentType": "Text/Plain"}},
        )
    emu.merge_cases(world.domain_id, world.case_id, other_case, duration_s=30)

    assert emu.wait_for_late_commits(5)

    assert emu.related_items(case_id=other_case) == []
    assert emu.fault_counts()["CreateRelatedItem"]["late_commit_failed"] == 1


def test_random_late_commits_follow_the_fault_rate(emu: Emulator, cases: Any, world: World):
    emu.configure(throttling=False, late_commit_s=0.1, faults={"CreateRelatedItem": Faults(late_commit=1.0)})

    for _ in range(3):
        with pytest.raises(ConnectionClosedError):
            link(cases, world)

    assert emu.wait_for_late_commits(5)
    assert len(emu.related_items()) == 3


def test_reset_abandons_pending_late_commits(emu: Emulator, cases: Any, world: World):
    emu.configure(late_commit_s=30)
    emu.script("CreateRelatedItem", ["late_commit"])
    with pytest.raises(ConnectionClosedError):
        link(cases, world)

    emu.reset()

    assert emu.wait_for_late_commits(2)
    assert emu.related_items() == []
    assert emu.fault_counts() == {}
