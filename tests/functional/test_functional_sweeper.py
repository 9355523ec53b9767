"""The reconciliation sweeper against moto (SQS, DynamoDB) and the emulator (SearchContacts, Cases), over HTTP.

Each test puts finished contacts in the emulator, lets the real linker handle the contact events that did
arrive, runs the real sweeper, then feeds what it enqueued to the real linker: what reached Cases is the proof.
The rig is tests/functional/sweeper_rig.py (fixture `rig` in conftest.py).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from case_linker import sweeper as sweeper_module
from case_linker.budget import DynamoDBBudgetStore
from case_linker.errors import PermanentError, ThrottledError, TransientError
from case_linker.settings import SweeperSettings
from case_linker.sweeper import build_sweeper, make_lambda_handler

from emulator import Quota
from tests.functional.conftest import DOMAIN_ID, lambda_context
from tests.functional.sweeper_rig import (
    CASE_A,
    CASE_B,
    CASE_C,
    FAST_SWEEP,
    INSTANCE_ARN,
    INSTANCE_ID,
    Rig,
    connect_event,
    contact_arn,
    contact_ids,
    emf,
    finished,
    new_id,
)

# --- what it enqueues -------------------------------------------------------------------------------------


def test_given_contacts_whose_events_were_lost_when_the_sweeper_runs_then_only_they_are_enqueued_and_linked_once(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    delivered = finished(rig.emu, new_id(), case_id=CASE_A)
    lost_attribute = finished(rig.emu, new_id(), case_id=CASE_B, channel="CHAT", initiation_method="API")
    lost_tag = finished(rig.emu, new_id(), tag_case_id=CASE_C)
    rig.events_arrive(connect_event(delivered))
    capsys.readouterr()

    result = rig.sweep()

    messages = rig.enqueued()
    assert sorted(contact_ids(messages)) == sorted([lost_attribute, lost_tag])
    chat = next(m for m in messages if m["detail"]["contactId"] == lost_attribute)
    assert chat["source"] == "case-linker.sweeper"
    assert chat["detail-type"] == "Amazon Connect Contact Event"
    assert chat["resources"] == [INSTANCE_ARN, contact_arn(lost_attribute)]
    assert {k: chat["detail"][k] for k in ("eventType", "initialContactId", "channel", "instanceArn")} == {
        "eventType": "COMPLETED",
        "initialContactId": lost_attribute,
        "channel": "CHAT",
        "instanceArn": INSTANCE_ARN,
    }
    assert chat["detail"]["initiationMethod"] == "API"
    assert chat["detail"]["disconnectTimestamp"].endswith("Z")
    tagged = next(m for m in messages if m["detail"]["contactId"] == lost_tag)
    assert tagged["detail"]["tags"] == {"caseId": CASE_C}
    metrics = emf(capsys.readouterr().out)
    counts = ("SweepContactsFound", "SweepAlreadyHandled", "SweepEnqueued", "SweepNeverSeen", "SweepNoCaseId")
    assert {k: metrics[k] for k in counts} == dict(zip(counts, (3, 1, 2, 2, 0), strict=True))
    assert metrics["EventCoverage"] == pytest.approx(1 / 3)
    assert metrics["dimensions"] == [["service"]]
    assert result["complete"] is True

    rig.link(messages)

    assert rig.cases_of(delivered) == [CASE_A]
    assert rig.cases_of(lost_attribute) == [CASE_B]
    assert rig.cases_of(lost_tag) == [CASE_C]


def test_given_a_window_of_several_pages_when_swept_then_every_contact_is_enqueued_once_page_by_page(
    rig: Rig,
) -> None:
    ids = {finished(rig.emu, new_id(), minutes_ago=20 + i * 0.2) for i in range(230)}

    result = rig.sweep()

    messages = rig.enqueued()
    assert sorted(contact_ids(messages)) == sorted(ids)
    assert result["SweepSearchPages"] == 3
    assert result["SweepEnqueued"] == 230
    searches = rig.emu.calls_to("SearchContacts")
    assert [c.params.get("MaxResults") for c in searches] == [100, 100, 100]


@pytest.mark.parametrize("total_capped", [False, True], ids=["total-of-all-matches", "total-capped"])
def test_given_more_contacts_than_one_search_returns_when_swept_then_it_searches_on_from_the_last_one_and_misses_none(
    rig: Rig, total_capped: bool
) -> None:
    # AWS returns the first 10,000 results of a search; the emulator, set to 20, behaves alike. Whether TotalCount
    # then counts every match or only those 20 is not documented: neither may end the sweep early.
    rig.emu.configure(contact_search_max_results=20, contact_search_total_capped=total_capped)
    ids = [finished(rig.emu, new_id(), minutes_ago=20 + i * 0.5) for i in range(51)]
    ids += [
        finished(rig.emu, new_id(), minutes_ago=20 + 35 * 0.5) for _ in range(3)
    ]  # same instant as one above

    result = rig.sweep(rig.sweeper(page_size=10, search_result_limit=20))

    enqueued = contact_ids(rig.enqueued())
    assert sorted(enqueued) == sorted(ids)
    assert len(enqueued) == len(set(enqueued)) == result["SweepEnqueued"] == 54
    assert result["complete"] is True
    assert len({c.params["TimeRange"]["StartTime"] for c in rig.emu.calls_to("SearchContacts")}) >= 3


def test_given_the_default_search_quota_when_swept_then_searches_are_paced_below_it_and_never_throttled(
    rig: Rig,
) -> None:
    # AWS's figures: 0.5 requests/s, burst 1. The sweeper paces at a little less (network jitter could make
    # two requests sent 2 s apart arrive closer); three pages then take at least 4.4 s.
    rig.emu.configure(throttling=True, quotas={"SearchContacts": Quota(rate=0.5, burst=1)})
    for i in range(201):
        finished(rig.emu, new_id(), minutes_ago=20 + i * 0.2)
    started = time.monotonic()

    result = rig.sweep(rig.sweeper(connect_search_rps=0.45))

    assert time.monotonic() - started >= 4.4
    assert result["SweepEnqueued"] == 201
    assert [c.status for c in rig.emu.calls_to("SearchContacts")] == [200, 200, 200]


def test_given_searchcontacts_throttles_when_swept_then_botocore_retries_and_the_run_completes(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    lost = finished(rig.emu, new_id())
    rig.emu.script("SearchContacts", ["ThrottlingException", "ThrottlingException"])

    result = rig.sweep()

    assert contact_ids(rig.enqueued()) == [lost]
    assert result["complete"] is True
    metrics = emf(capsys.readouterr().out)
    assert metrics["SweepThrottled"] == 2
    assert metrics["SweepRetried"] == 2


def test_given_searchcontacts_throttles_past_the_retries_when_swept_then_the_run_fails_after_whole_pages_and_the_next_run_covers_the_rest(
    rig: Rig,
) -> None:
    ids = [finished(rig.emu, new_id(), minutes_ago=20 + i * 0.5) for i in range(15)]
    rig.emu.script("SearchContacts", ["ok", *["ThrottlingException"] * FAST_SWEEP.read_attempts])
    app = rig.sweeper(page_size=10)

    with pytest.raises(ThrottledError):
        rig.sweep(app)

    first = rig.enqueued()
    assert len(first) == 10  # the first page, whole
    rig.handled(first)

    result = rig.sweep(app)

    second = rig.enqueued()
    assert result["SweepAlreadyHandled"] == 10
    assert sorted(contact_ids(first) + contact_ids(second)) == sorted(ids)


def test_given_a_deadline_near_when_swept_then_it_stops_cleanly_after_whole_pages_and_the_next_run_finishes(
    rig: Rig,
) -> None:
    ids = [finished(rig.emu, new_id(), minutes_ago=20 + i * 0.5) for i in range(25)]
    # One search every 2 s and 6 s left: an attempt (2.5 s) must end before the deadline less the 0.5 s margin.
    app = rig.sweeper(connect_search_rps=0.5, page_size=10)

    result = rig.sweep(app, remaining_ms=6_000)

    first = rig.enqueued()
    assert result["complete"] is False
    assert result["SweepCutShort"] == 1
    assert len(first) == result["SweepEnqueued"] == 20  # two whole pages, nothing of the third
    order = {c: i for i, c in enumerate(ids)}
    assert sorted(order[c] for c in contact_ids(first)) == list(range(5, 25))  # the oldest first
    rig.handled(first)

    again = rig.sweep(app)

    second = rig.enqueued()
    assert again["complete"] is True
    assert sorted(contact_ids(second)) == sorted(set(ids) - set(contact_ids(first)))


def test_given_overlapping_windows_when_a_handled_contact_is_found_again_then_it_is_not_enqueued_twice(
    rig: Rig,
) -> None:
    linked = finished(rig.emu, new_id(), minutes_ago=40, case_id=CASE_A)
    never = finished(rig.emu, new_id(), minutes_ago=45)  # no case id: enqueued again while in the window
    now = dt.datetime.now(dt.UTC)
    rig.link(rig.enqueued() or [])
    first_run = rig.sweep(rig.sweeper(clock=lambda: now))
    rig.link(rig.enqueued())
    assert rig.cases_of(linked) == [CASE_A]

    # Fifteen minutes later, the window still holds both contacts.
    second_run = rig.sweep(rig.sweeper(clock=lambda: now + dt.timedelta(minutes=15)))

    assert first_run["SweepEnqueued"] == 2
    assert contact_ids(rig.enqueued()) == [never]
    assert second_run["SweepAlreadyHandled"] == 1
    assert second_run["SweepNoCaseId"] == 1
    assert rig.cases_of(linked) == [CASE_A]


def test_given_a_case_id_set_after_the_contact_ended_when_swept_then_the_contact_is_linked_while_in_the_window(
    rig: Rig,
) -> None:
    late = finished(rig.emu, new_id(), minutes_ago=30)
    too_old = finished(rig.emu, new_id(), minutes_ago=80)  # its window has passed: never looked at again
    rig.events_arrive(connect_event(late), connect_event(too_old))  # no case id yet: recorded no_case_id
    rig.emu.put_contact(INSTANCE_ID, late, {"caseId": CASE_B})  # an agent sets it during after-contact work
    rig.emu.put_contact(INSTANCE_ID, too_old, {"caseId": CASE_B})
    for contact_id, minutes in ((late, 30), (too_old, 80)):  # put_contact moved the times: put them back
        finished(rig.emu, contact_id, minutes_ago=minutes, case_id=CASE_B)

    result = rig.sweep()

    messages = rig.enqueued()
    assert contact_ids(messages) == [late]
    assert result["SweepNoCaseId"] == 1
    assert result["EventCoverage"] == 1.0  # the events had seen it; only its case id came late
    rig.link(messages)
    assert rig.cases_of(late) == [CASE_B]
    assert rig.cases_of(too_old) == []


def test_given_contacts_found_by_the_sweeper_when_a_later_run_finds_them_linked_then_coverage_still_counts_them_as_missed(
    rig: Rig,
) -> None:
    by_event = finished(rig.emu, new_id(), case_id=CASE_A)
    by_sweeper = finished(rig.emu, new_id(), case_id=CASE_B)
    rig.events_arrive(connect_event(by_event))
    rig.sweep()
    rig.link(rig.enqueued())

    later = rig.sweep()

    assert later["SweepAlreadyHandled"] == 2
    assert later["SweepEnqueued"] == 0
    assert later["EventCoverage"] == 0.5
    assert rig.cases_of(by_sweeper) == [CASE_B]


# --- contact chains ---------------------------------------------------------------------------------------


def test_given_a_transfer_leg_whose_first_contact_is_linked_when_its_event_is_lost_then_it_joins_that_case_without_asking_cases(
    rig: Rig,
) -> None:
    first = finished(rig.emu, new_id(), minutes_ago=40, tag_case_id=CASE_A)
    leg = finished(rig.emu, new_id(), minutes_ago=35, initial_contact_id=first, previous_contact_id=first)
    rig.events_arrive(connect_event(first, tags={"caseId": CASE_A}))
    lookups_before = len(rig.emu.calls_to("ListCasesForContact"))

    result = rig.sweep()

    messages = rig.enqueued()
    assert len(rig.emu.calls_to("ListCasesForContact")) == lookups_before
    assert contact_ids(messages) == [leg]
    assert messages[0]["detail"]["chainCaseId"] == CASE_A
    assert result["SweepChainCase"] == 1
    assert result["SweepChainLookups"] == 0
    rig.link(messages)
    assert rig.cases_of(leg) == [CASE_A]


def chain_of_callbacks(rig: Rig) -> tuple[str, list[str]]:
    """A contact a flow linked to CASE_C (its event came, without a case id) and two callbacks after it: one
    ListCasesForContact finds the callbacks' case. The first contact's id, and the callbacks'."""
    flow_linked = finished(rig.emu, new_id(), minutes_ago=60)
    rig.emu.add_related_item(
        DOMAIN_ID, CASE_C, "Contact", {"contact": {"contactArn": contact_arn(flow_linked)}}
    )
    rig.events_arrive(connect_event(flow_linked))  # no case id in its attributes: no_case_id
    callbacks = [
        finished(
            rig.emu,
            new_id(),
            minutes_ago=50 - i,
            previous_contact_id=flow_linked,
            initiation_method="CALLBACK",
        )
        for i in range(2)
    ]
    return flow_linked, callbacks


def test_given_callbacks_after_a_contact_a_flow_linked_when_swept_then_cases_is_asked_once_for_the_chain(
    rig: Rig,
) -> None:
    flow_linked, callbacks = chain_of_callbacks(rig)

    result = rig.sweep()

    messages = rig.enqueued()
    chained = {m["detail"]["contactId"]: m["detail"].get("chainCaseId") for m in messages}
    assert chained == {flow_linked: None, **dict.fromkeys(callbacks, CASE_C)}
    assert result["SweepChainLookups"] == 1
    assert len(rig.emu.calls_to("ListCasesForContact")) == 1
    rig.link(messages)
    assert [rig.cases_of(c) for c in callbacks] == [[CASE_C], [CASE_C]]


def test_given_a_chain_look_up_the_deadline_stops_when_swept_then_only_the_look_ups_asked_are_counted(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two chains to look up, and a local share of ListCasesForContact that has one call for this run
    chain_of_callbacks(rig)
    second = finished(rig.emu, new_id(), minutes_ago=45)
    finished(rig.emu, new_id(), minutes_ago=40, previous_contact_id=second, initiation_method="CALLBACK")
    monkeypatch.setattr(sweeper_module, "CHAIN_LOOKUP_RPS", 0.001)

    result = rig.sweep()

    # THEN the second look-up waits for the next run, and the metric counts the one call made
    assert result["SweepCutShort"] == 1
    assert len(rig.emu.calls_to("ListCasesForContact")) == 1
    assert result["SweepChainLookups"] == 1


def test_given_a_chain_on_several_cases_when_swept_then_nothing_is_guessed_and_the_ambiguity_is_counted(
    rig: Rig,
) -> None:
    first = finished(rig.emu, new_id(), minutes_ago=60)
    for case_id in (CASE_A, CASE_B):
        rig.emu.add_related_item(
            DOMAIN_ID, case_id, "Contact", {"contact": {"contactArn": contact_arn(first)}}
        )
    leg = finished(rig.emu, new_id(), minutes_ago=55, initial_contact_id=first, previous_contact_id=first)
    rig.events_arrive(connect_event(first))

    result = rig.sweep()

    messages = rig.enqueued()
    assert [m["detail"].get("chainCaseId") for m in messages if m["detail"]["contactId"] == leg] == [None]
    assert result["SweepChainAmbiguous"] == 1
    rig.link(messages)
    assert rig.cases_of(leg) == []


def test_given_a_chain_on_no_case_when_swept_then_one_lookup_finds_nothing_and_the_contact_stays_unlinked(
    rig: Rig,
) -> None:
    first = finished(rig.emu, new_id(), minutes_ago=60)
    leg = finished(rig.emu, new_id(), minutes_ago=55, initial_contact_id=first, previous_contact_id=first)

    result = rig.sweep()

    messages = rig.enqueued()
    assert sorted(contact_ids(messages)) == sorted([first, leg])
    assert all("chainCaseId" not in m["detail"] for m in messages)
    assert result["SweepChainLookups"] == 1
    assert (result["SweepChainCase"], result["SweepChainAmbiguous"]) == (0, 0)
    rig.link(messages)
    assert rig.cases_of(leg) == []


def test_given_chains_turned_off_when_swept_then_no_chain_is_followed(rig: Rig) -> None:
    first = finished(rig.emu, new_id(), minutes_ago=40, tag_case_id=CASE_A)
    leg = finished(rig.emu, new_id(), minutes_ago=35, initial_contact_id=first, previous_contact_id=first)
    rig.events_arrive(connect_event(first, tags={"caseId": CASE_A}))

    result = rig.sweep(rig.sweeper(follow_contact_chain=False))

    messages = rig.enqueued()
    assert contact_ids(messages) == [leg]
    assert "chainCaseId" not in messages[0]["detail"]
    assert result["SweepChainLookups"] == 0


def budget_items(rig: Rig) -> dict[str, dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=rig.aws.table_name)["Items"]
    return {i["id"]["S"]: i for i in items if i["id"]["S"].startswith("case-linker#budget#")}


def test_given_the_fleets_shared_budget_when_a_chain_is_looked_up_then_it_takes_a_background_slot(
    rig: Rig,
) -> None:
    # GIVEN the account's Cases quota configured (the stack sets it): the linker's fleet paces on it
    _, callbacks = chain_of_callbacks(rig)
    sweeper = rig.sweeper(cases_quota_rps=2.0, cases_quota_burst=10.0)

    result = rig.sweep(sweeper)

    # THEN the look-up drew on the same budget as the linker's calls, as background work (the sweeper's
    # calls never starve live contacts), so the fleet and the sweeper together stay within the quota
    assert result["SweepChainLookups"] == 1
    assert set(budget_items(rig)) == {
        "case-linker#budget#v2#ListCasesForContact#background",
        "case-linker#budget#v2#ListCasesForContact",
    }
    assert sweeper.budget is not None
    assert sweeper.budget.stats.degraded == 0
    chained = {m["detail"]["contactId"]: m["detail"].get("chainCaseId") for m in rig.enqueued()}
    assert [chained[c] for c in callbacks] == [CASE_C, CASE_C]


def test_given_the_shared_budget_unreachable_when_a_chain_is_looked_up_then_it_is_paced_locally(
    rig: Rig,
) -> None:
    _, callbacks = chain_of_callbacks(rig)
    sweeper = rig.sweeper(cases_quota_rps=2.0, cases_quota_burst=10.0)
    assert sweeper.budget is not None
    sweeper.budget._store = DynamoDBBudgetStore(boto3.client("dynamodb"), "no-such-table")

    result = rig.sweep(sweeper)

    # THEN the run still follows the chain, at the sweeper's own local share (degrade, never stop)
    assert result["complete"] is True
    assert result["SweepChainLookups"] == 1
    assert sweeper.budget.stats.degraded == 1
    assert budget_items(rig) == {}
    chained = {m["detail"]["contactId"]: m["detail"].get("chainCaseId") for m in rig.enqueued()}
    assert [chained[c] for c in callbacks] == [CASE_C, CASE_C]


def test_given_the_role_may_not_list_cases_when_swept_then_the_run_enqueues_everything_then_fails(
    rig: Rig,
) -> None:
    first = finished(rig.emu, new_id(), minutes_ago=60)
    leg = finished(rig.emu, new_id(), minutes_ago=55, initial_contact_id=first, previous_contact_id=first)
    rig.emu.script("ListCasesForContact", ["AccessDeniedException"])

    with pytest.raises(PermanentError) as failure:
        rig.sweep()

    assert failure.value.code == "AccessDeniedException"
    assert sorted(contact_ids(rig.enqueued())) == sorted([first, leg])


# --- a failed run ---------------------------------------------------------------------------------------


def test_given_connect_failing_when_swept_then_the_run_fails_naming_the_error_and_the_next_run_covers_the_window(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    lost = finished(rig.emu, new_id(), case_id=CASE_A)
    rig.emu.script("SearchContacts", ["InternalServiceException"] * FAST_SWEEP.read_attempts)

    with pytest.raises(TransientError) as failure:
        rig.sweep()

    assert failure.value.code == "InternalServiceException"
    assert rig.enqueued() == []
    assert emf(capsys.readouterr().out)["SweepEnqueued"] == 0

    rig.sweep()

    messages = rig.enqueued()
    assert contact_ids(messages) == [lost]
    rig.link(messages)
    assert rig.cases_of(lost) == [CASE_A]


def test_given_the_queue_gone_when_swept_then_the_run_fails_rather_than_reporting_contacts_enqueued(
    rig: Rig,
) -> None:
    finished(rig.emu, new_id(), case_id=CASE_A)
    rig.aws.sqs.delete_queue(QueueUrl=rig.queue_url)

    with pytest.raises(TransientError) as failure:
        rig.sweep()

    assert "NonExistentQueue" in failure.value.code or "QueueDoesNotExist" in failure.value.code


def test_given_a_chain_whose_first_contact_has_a_malformed_case_tag_when_swept_then_a_leg_with_its_own_case_is_linked(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a flow wrote something that is not a case id into the first contact's tag, and a transfer leg that
    # has its own case id (an attribute), both events lost
    bad = "jane.doe@example.com"
    first = finished(rig.emu, new_id(), minutes_ago=50, tag_case_id=bad)
    leg = finished(
        rig.emu, new_id(), minutes_ago=45, case_id=CASE_B, initial_contact_id=first, previous_contact_id=first
    )

    # WHEN the sweeper runs and the linker handles its messages
    rig.sweep()
    messages = rig.enqueued()
    rig.link(messages)

    # THEN the bad tag is no chain's case, never logged, and the leg is linked to its own case
    assert all("chainCaseId" not in m["detail"] or m["detail"]["chainCaseId"] is None for m in messages)
    assert rig.cases_of(leg) == [CASE_B]
    assert caplog.records
    assert not [r for r in caplog.records if bad in str(vars(r))]


@pytest.mark.parametrize("microseconds", [0, 400, 600])
def test_given_an_instant_shared_across_the_search_limit_when_swept_then_none_of_its_contacts_is_missed(
    rig: Rig, microseconds: int
) -> None:
    # GIVEN a search limited to 11 results, and three contacts that ended at one instant straddling that limit
    # (with sub-millisecond times: Connect keeps milliseconds, so they must not decide what a search returns)
    rig.emu.configure(contact_search_max_results=11)
    base = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=50)).replace(microsecond=0)
    ids = []
    for i in range(9):
        ids.append(new_id())
        rig.emu.put_contact(
            INSTANCE_ID, ids[-1], {}, initiation_time=base, disconnect_time=base + dt.timedelta(seconds=i)
        )
    instant = base + dt.timedelta(seconds=100, microseconds=microseconds)
    for i in range(8):
        ids.append(new_id())
        ended = instant if i < 3 else instant + dt.timedelta(seconds=i)
        rig.emu.put_contact(INSTANCE_ID, ids[-1], {}, initiation_time=base, disconnect_time=ended)

    # WHEN the sweeper runs with pages of ten
    result = rig.sweep(rig.sweeper(page_size=10))

    # THEN every contact is enqueued once, and the run is complete
    assert sorted(contact_ids(rig.enqueued())) == sorted(ids)
    assert result["complete"] is True


class _SecondSendFails:
    """The sweeper's SQS client, whose second SendMessageBatch fails (the first batch is on the queue)."""

    def __init__(self, real: Any) -> None:
        self._real, self._sends = real, 0

    def send_message_batch(self, **kwargs: Any) -> Any:
        self._sends += 1
        if self._sends == 2:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "down"}}, "SendMessageBatch")
        return self._real.send_message_batch(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_given_sqs_failing_after_a_first_batch_when_swept_then_the_metric_and_logs_count_what_was_enqueued(
    rig: Rig, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(25):
        finished(rig.emu, new_id(), minutes_ago=20 + i * 0.2)
    app = rig.sweeper()
    app.sweeper._queue._sqs = _SecondSendFails(app.sweeper._queue._sqs)  # type: ignore[attr-defined]
    capsys.readouterr()

    with pytest.raises(TransientError):
        rig.sweep(app)

    sent = contact_ids(rig.enqueued())
    assert len(sent) == 10
    assert emf(capsys.readouterr().out)["SweepEnqueued"] == len(sent)
    assert len([r for r in caplog.records if r.getMessage() == "contact enqueued"]) == len(sent)


# --- search limits and malformed case ids (audit of issue 12) -----------------------------------------------


def test_given_a_search_limit_and_a_trailing_empty_page_when_swept_then_no_contact_is_missed(
    rig: Rig,
) -> None:
    rig.emu.configure(contact_search_max_results=20, contact_search_trailing_empty_page=True)
    ids = [new_id() for _ in range(45)]
    base = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=60)
    for i, contact_id in enumerate(ids):
        at = base + dt.timedelta(seconds=10 * i)
        rig.emu.put_contact(INSTANCE_ID, contact_id, {}, initiation_time=at, disconnect_time=at)
    app = rig.sweeper(page_size=10, search_result_limit=20)

    result = rig.sweep(app)

    assert sorted(contact_ids(rig.enqueued())) == sorted(ids)
    assert result["complete"] is True


def test_given_more_contacts_at_one_instant_than_a_search_returns_when_swept_then_the_run_is_not_complete(
    rig: Rig,
) -> None:
    rig.emu.configure(contact_search_max_results=20)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    app = rig.sweeper(page_size=10, search_result_limit=20, clock=lambda: now)
    start, _ = app.sweeper.window(now)
    for _ in range(25):
        rig.emu.put_contact(INSTANCE_ID, new_id(), {}, initiation_time=start, disconnect_time=start)
    later = start + dt.timedelta(minutes=10)
    after = [new_id() for _ in range(3)]
    for contact_id in after:
        rig.emu.put_contact(INSTANCE_ID, contact_id, {}, initiation_time=later, disconnect_time=later)

    result = rig.sweep(app)

    enqueued = contact_ids(rig.enqueued())
    assert len(enqueued) == 23
    assert set(after) <= set(enqueued)  # the rest of the window is still swept
    assert result["complete"] is False


@pytest.mark.parametrize("where", ["attribute", "tag"])
def test_given_a_lost_contact_with_a_malformed_case_id_when_swept_then_it_is_a_counted_refusal_naming_the_field_once(
    rig: Rig, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    bad = "jane.doe@example.com"
    contact_id = (
        finished(rig.emu, new_id(), case_id=bad)
        if where == "attribute"
        else finished(rig.emu, new_id(), tag_case_id=bad)
    )

    first = rig.sweep()
    rig.link(rig.enqueued())
    again = rig.sweep()

    dead = rig.aws.dead_letters()
    assert len(dead) == 1
    attributes = {k: v.get("StringValue") for k, v in dead[0].get("MessageAttributes", {}).items()}
    assert "caseId" in str(attributes)
    assert bad not in str(attributes)
    assert first["SweepEnqueued"] == 1
    assert (again["SweepEnqueued"], again["SweepAlreadyHandled"]) == (0, 1)
    assert rig.cases_of(contact_id) == []
    assert not [r for r in caplog.records if bad in str(vars(r))]


# --- the entry point ------------------------------------------------------------------------------------


def test_given_the_stack_environment_when_the_scheduled_handler_runs_then_it_sweeps_with_those_settings(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = finished(rig.emu, new_id(), minutes_ago=100, tag_case_id=CASE_A)
    environment = {
        "CONNECT_INSTANCE_ARN": INSTANCE_ARN,
        "MAIN_QUEUE_URL": rig.queue_url,
        "IDEMPOTENCY_TABLE_NAME": rig.aws.table_name,
        "CASES_DOMAIN_ID": DOMAIN_ID,
        "CASE_ID_ATTRIBUTE": "caseId",
        "SWEEP_WINDOW_MINUTES": "120",
        "SWEEP_LAG_MINUTES": "15",
        "CONNECT_SEARCH_RPS": "5",
        "FOLLOW_CONTACT_CHAIN": "true",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    handler = make_lambda_handler(lambda: build_sweeper(SweeperSettings.from_env(__import__("os").environ)))

    result = handler(
        {"source": "aws.events", "detail-type": "Scheduled Event", "time": "2020-01-01T00:00:00Z"},
        lambda_context(),
    )

    assert result["complete"] is True
    assert contact_ids(rig.enqueued()) == [lost]  # 100 minutes ago: only inside the 120-minute window
