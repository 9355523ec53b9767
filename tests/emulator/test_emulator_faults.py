"""GIVEN quotas, latency or injected faults, THEN clients see AWS-like failures and the state tells the truth."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from emulator import Emulator, Faults, Quota
from tests.emulator.helpers import STANDARD, World, client


def link(cases: Any, world: World) -> Any:
    return cases.create_related_item(
        domainId=world.domain_id,
        caseId=world.case_id,
        type="Contact",
        content={"contact": {"contactArn": world.contact_arn}},
    )


def outcomes(emu: Emulator, operation: str) -> list[tuple[int | None, str | None]]:
    return [(c.status, c.error_code) for c in emu.calls_to(operation)]


def test_throttling_allows_the_burst_then_answers_429(emu: Emulator, cases: Any, world: World):
    emu.configure(quotas={"CreateRelatedItem": Quota(rate=0.01, burst=3)})
    results = []
    for _ in range(5):
        try:
            link(cases, world)
            results.append("ok")
        except ClientError as e:
            results.append(e.response["Error"]["Code"])

    assert results == ["ok", "ok", "ok", "ThrottlingException", "ThrottlingException"]
    assert len(emu.related_items()) == 3


def test_default_quota_is_awss_burst_of_10_for_create_related_item(emu: Emulator, cases: Any, world: World):
    statuses = []
    for _ in range(12):
        try:
            link(cases, world)
            statuses.append(200)
        except ClientError as e:
            statuses.append(e.response["ResponseMetadata"]["HTTPStatusCode"])
    # 12 calls take far less than the 500 ms a token needs at 2/s, so at most one refill can sneak in.
    assert statuses[:10] == [200] * 10
    assert 429 in statuses[10:]


def test_standard_retry_mode_recovers_from_throttling(emu: Emulator, world: World):
    emu.configure(quotas={"CreateRelatedItem": Quota(rate=2.0, burst=2)})
    cases = client("connectcases", emu, STANDARD)

    for _ in range(4):
        link(cases, world)

    assert len(emu.related_items()) == 4
    assert outcomes(emu, "CreateRelatedItem").count((429, "ThrottlingException")) >= 1
    assert outcomes(emu, "CreateRelatedItem").count((200, None)) == 4


def test_throttling_can_be_switched_off_or_scaled(emu: Emulator, cases: Any, world: World):
    emu.configure(throttling=False)
    for _ in range(15):
        link(cases, world)
    emu.configure(throttling=True, quotas={"CreateRelatedItem": Quota(rate=1.0, burst=1)}, quota_scale=1e6)
    for _ in range(5):
        link(cases, world)  # a million tokens/s refills between sequential calls
    emu.configure(quotas={"CreateRelatedItem": None}, quota_scale=1.0)
    for _ in range(5):
        link(cases, world)

    assert len(emu.related_items()) == 25


def test_scripted_outcomes_apply_in_order_then_normal_service(emu: Emulator, world: World):
    cases = client("connectcases", emu, STANDARD)
    emu.script(
        "CreateRelatedItem", ["ThrottlingException", "InternalServerException", "InternalServerException"]
    )

    link(cases, world)

    assert outcomes(emu, "CreateRelatedItem") == [
        (429, "ThrottlingException"),
        (500, "InternalServerException"),
        (500, "InternalServerException"),
        (200, None),
    ]
    assert len(emu.related_items()) == 1


def test_script_rejects_unknown_operations(emu: Emulator):
    with pytest.raises(ValueError, match="unknown operation"):
        emu.script("CreateRelatedItems", ["drop"])


def test_dropped_connection_before_commit_stores_nothing(emu: Emulator, cases: Any, world: World):
    emu.script("CreateRelatedItem", ["drop"])

    with pytest.raises(ConnectionClosedError):
        link(cases, world)

    assert emu.related_items() == []
    assert emu.calls_to("CreateRelatedItem")[0].outcome == "drop"


def test_dropped_response_after_commit_makes_a_naive_retry_duplicate(emu: Emulator, world: World):
    cases = client("connectcases", emu, STANDARD)
    emu.script("CreateRelatedItem", ["drop_after_commit"])

    link(cases, world)  # botocore retries the lost response and succeeds

    items = emu.related_items()
    assert len(items) == 2  # the hazard the linker must handle: CreateRelatedItem has no client token
    assert {i.content["contact"]["contactArn"] for i in items} == {world.contact_arn}
    assert [c.outcome for c in emu.calls_to("CreateRelatedItem")] == ["drop_after_commit", "ok"]


def test_slow_responses_time_out_the_client_before_or_after_commit(emu: Emulator, world: World):
    emu.configure(slow_response_s=1.0)
    impatient = client("connectcases", emu, Config(read_timeout=0.2, retries={"total_max_attempts": 1}))
    emu.script("CreateRelatedItem", ["slow", "slow_after_commit"])

    with pytest.raises(ReadTimeoutError):
        link(impatient, world)
    assert emu.related_items() == []
    with pytest.raises(ReadTimeoutError):
        link(impatient, world)
    assert len(emu.related_items()) == 1


def test_a_patient_client_gets_the_slow_after_commit_answer(emu: Emulator, world: World):
    emu.configure(slow_response_s=0.3)
    patient = client("connectcases", emu, Config(read_timeout=5, retries={"total_max_attempts": 1}))
    emu.script("CreateRelatedItem", ["slow_after_commit"])

    started = time.monotonic()
    answer = link(patient, world)

    assert time.monotonic() - started >= 0.25
    assert answer["relatedItemId"] == emu.related_items()[0].related_item_id


def test_random_faults_split_between_before_and_after_commit(emu: Emulator, cases: Any, world: World):
    emu.configure(
        throttling=False, faults={"CreateRelatedItem": Faults(drop_connection=1.0)}, after_commit_share=1.0
    )
    with pytest.raises(ConnectionClosedError):
        link(cases, world)
    assert len(emu.related_items()) == 1

    emu.configure(after_commit_share=0.0)
    with pytest.raises(ConnectionClosedError):
        link(cases, world)
    assert len(emu.related_items()) == 1


def test_seeded_faults_are_reproducible(emu: Emulator, cases: Any, world: World):
    emu.configure(throttling=False, faults={"GetCase": Faults(server_error=0.5)}, seed=42)

    def run() -> list[int | None]:
        for _ in range(20):
            with contextlib.suppress(ClientError):  # the outcome is read from the recorded calls
                cases.get_case(domainId=world.domain_id, caseId=world.case_id, fields=[{"id": "title"}])
        statuses = [c.status for c in emu.calls_to("GetCase")]
        emu.configure(seed=42)  # reseeds the fault RNG
        return statuses

    first = run()
    second = run()[20:]  # calls accumulate: the second run's are the last 20

    assert first == second
    assert set(first) == {200, 500}


def test_latency_is_added_globally_and_per_operation(emu: Emulator, cases: Any, world: World):
    emu.configure(latency_s=0.1, op_latency_s={"GetCase": 0.2})

    started = time.monotonic()
    cases.get_case(domainId=world.domain_id, caseId=world.case_id, fields=[{"id": "title"}])
    elapsed = time.monotonic() - started

    assert elapsed >= 0.28


def test_calls_record_wall_and_monotonic_time_in_order(emu: Emulator, cases: Any, world: World):
    link(cases, world)
    cases.list_cases_for_contact(domainId=world.domain_id, contactArn=world.contact_arn)

    first, second = emu.calls
    assert (first.operation, second.operation) == ("CreateRelatedItem", "ListCasesForContact")
    assert first.monotonic <= second.monotonic
    assert first.at <= second.at
    assert second.params == {"domainId": world.domain_id, "contactArn": world.contact_arn}


def test_fault_counts_report_outcomes_and_events_per_operation(emu: Emulator, cases: Any, world: World):
    emu.configure(late_commit_s=0.1)
    emu.script("CreateRelatedItem", ["ThrottlingException", "drop_after_commit", "late_commit", "drop"])
    for _ in range(5):
        with contextlib.suppress(ClientError, ConnectionClosedError):
            link(cases, world)
    assert emu.wait_for_late_commits(5)
    cases.list_cases_for_contact(domainId=world.domain_id, contactArn=world.contact_arn)

    assert emu.fault_counts() == {
        "CreateRelatedItem": {
            "ThrottlingException": 1,
            "drop": 1,
            "drop_after_commit": 1,
            "late_commit": 1,
            "late_commit_landed": 1,
            "ok": 1,
        },
        "ListCasesForContact": {"ok": 1},
    }
    assert len(emu.related_items()) == 3


def test_a_failing_case_answers_every_create_on_it_with_a_5xx_until_healed(
    emu: Emulator, cases: Any, world: World
):
    # GIVEN one case whose related-item creates fail (an outage that outlasts every delivery of its records)
    other = emu.create_case(world.domain_id, title="Fine")
    emu.configure(failing_cases=frozenset({world.case_id}))
    comment = {"comment": {"body": "hello", "contentType": "Text/Plain"}}

    with pytest.raises(ClientError) as single:
        link(cases, world)
    with pytest.raises(ClientError) as batch:
        cases.batch_create_related_item(
            domainId=world.domain_id, content=comment, cases=[{"caseIdentifier": {"caseId": world.case_id}}]
        )
    fine = cases.batch_create_related_item(
        domainId=world.domain_id, content=comment, cases=[{"caseIdentifier": {"caseId": other}}]
    )

    # THEN creates on it get a 500 and commit nothing; other cases are served
    for failed in (single, batch):
        assert failed.value.response["Error"]["Code"] == "InternalServerException"
        assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert emu.related_items(world.domain_id, world.case_id) == []
    assert len(fine["successfulItems"]) == 1

    # WHEN healed THEN it takes writes again
    emu.configure(failing_cases=frozenset())
    link(cases, world)
    assert len(emu.related_items(world.domain_id, world.case_id)) == 1
