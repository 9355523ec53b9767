"""GIVEN BatchCreateRelatedItem, THEN it answers as the API documents it: whole-request failures create nothing,
per-case failures land in failedItems, and a client token returns the original response instead of a duplicate."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from emulator import Emulator, Faults, Quota
from tests.emulator.helpers import World, by_id, by_reference, comment


def batch(client: Any, world: World, cases: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    answer: dict[str, Any] = client.batch_create_related_item(
        domainId=world.domain_id, content=comment(), cases=cases, **extra
    )
    return answer


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_one_comment_lands_on_each_case_named_by_id_or_reference_id(
    emu: Emulator, cases: Any, world: World, other_case: str
):
    answer = batch(
        cases,
        world,
        by_id(world.case_id) + by_reference("ref-b"),
        performedBy={"customEntity": "case-linker"},
    )

    assert answer["failedItems"] == []
    first, second = answer["successfulItems"]
    assert first["caseIdentifier"] == {"caseId": world.case_id, "referenceId": "REF-A"}
    assert second["caseIdentifier"] == {"caseId": other_case, "referenceId": "REF-B"}
    stored = {i.related_item_id: i for i in emu.related_items()}
    for entry in (first, second):
        item = stored[entry["relatedItemId"]]
        assert item.related_item_arn == entry["relatedItemArn"]
        assert (item.type, item.content, item.performed_by) == (
            "Comment",
            comment(),
            {"customEntity": "case-linker"},
        )
    assert {i.case_id for i in stored.values()} == {world.case_id, other_case}


CONTACT = {"contact": {"contactArn": "arn:aws:connect:us-east-1:123456789012:instance/i/contact/c"}}


@pytest.mark.parametrize(
    ("named", "content", "expected"),
    [
        (
            lambda w: by_id(w.case_id) + by_reference("NO-SUCH-REF"),
            comment(),
            ("ResourceNotFoundException", 404),
        ),
        (lambda w: by_id(w.case_id, w.case_id), comment(), ("ValidationException", 400)),
        (lambda w: by_id(w.case_id) + by_reference("ref-a"), comment(), ("ValidationException", 400)),
        (lambda w: by_reference("REF-A", "ref-a"), comment(), ("ValidationException", 400)),
        (lambda w: by_id(w.case_id), CONTACT, ("ValidationException", 400)),
    ],
    ids=[
        "unknown reference id",
        "duplicate case id",
        "id and reference of one case",
        "reference twice",
        "contact",
    ],
)
def test_whole_request_failures_create_nothing(
    emu: Emulator,
    cases: Any,
    world: World,
    named: Callable[[World], list[dict[str, Any]]],
    content: dict[str, Any],
    expected: tuple[str, int],
):
    with pytest.raises(ClientError) as excinfo:
        cases.batch_create_related_item(domainId=world.domain_id, content=content, cases=named(world))

    assert error_of(excinfo) == expected
    assert emu.related_items() == []


def test_an_unknown_domain_fails_the_whole_request(emu: Emulator, cases: Any, world: World):
    with pytest.raises(ClientError) as excinfo:
        cases.batch_create_related_item(
            domainId="no-such-domain", content=comment(), cases=by_id(world.case_id)
        )

    assert error_of(excinfo) == ("ResourceNotFoundException", 404)
    assert emu.related_items() == []


def test_an_unknown_case_id_fails_only_that_case(emu: Emulator, cases: Any, world: World):
    answer = batch(cases, world, by_id("no-such-case", world.case_id))

    assert [s["caseIdentifier"]["caseId"] for s in answer["successfulItems"]] == [world.case_id]
    [failed] = answer["failedItems"]
    assert failed["caseIdentifier"] == {"caseId": "no-such-case"}
    assert failed["errorCode"] == "CASE_NOT_FOUND"
    assert len(emu.related_items()) == 1


def test_a_full_case_fails_with_service_quota_exceeded_while_the_others_succeed(
    emu: Emulator, cases: Any, world: World, other_case: str
):
    emu.configure(max_related_items_per_case=1)
    emu.add_related_item(world.domain_id, world.case_id, "Comment", comment("already there"))

    answer = batch(cases, world, by_id(world.case_id, other_case))

    assert [f["errorCode"] for f in answer["failedItems"]] == ["SERVICE_QUOTA_EXCEEDED"]
    assert answer["failedItems"][0]["caseIdentifier"] == {"caseId": world.case_id, "referenceId": "REF-A"}
    assert [s["caseIdentifier"]["caseId"] for s in answer["successfulItems"]] == [other_case]


def test_the_same_token_and_parameters_return_the_original_response_and_create_nothing(
    emu: Emulator, cases: Any, world: World, other_case: str
):
    first = batch(cases, world, by_id(world.case_id, other_case), clientToken="token-1")
    again = batch(cases, world, by_id(world.case_id, other_case), clientToken="token-1")

    assert again["successfulItems"] == first["successfulItems"]
    assert len(emu.related_items()) == 2
    assert emu.fault_counts()["BatchCreateRelatedItem"]["token_replay"] == 1


def test_the_same_token_with_other_parameters_is_a_409_conflict(
    emu: Emulator, cases: Any, world: World, other_case: str
):
    batch(cases, world, by_id(world.case_id), clientToken="token-1")

    with pytest.raises(ClientError) as excinfo:
        batch(cases, world, by_id(world.case_id, other_case), clientToken="token-1")

    assert error_of(excinfo) == ("ConflictException", 409)
    assert len(emu.related_items()) == 1
    assert emu.fault_counts()["BatchCreateRelatedItem"]["token_conflict"] == 1


def test_a_failed_request_does_not_keep_its_token(emu: Emulator, cases: Any, world: World):
    with pytest.raises(ClientError):
        batch(cases, world, by_reference("NOT-YET"), clientToken="token-1")
    emu.create_case(world.domain_id, title="Arrived later", reference_id="NOT-YET")

    answer = batch(cases, world, by_reference("NOT-YET"), clientToken="token-1")

    assert len(answer["successfulItems"]) == 1


def test_tokens_are_forgotten_after_the_configured_ttl(emu: Emulator, cases: Any, world: World):
    emu.configure(client_token_ttl_s=0.2)
    first = batch(cases, world, by_id(world.case_id), clientToken="token-1")
    time.sleep(0.3)

    again = batch(cases, world, by_id(world.case_id), clientToken="token-1")

    assert again["successfulItems"][0]["relatedItemId"] != first["successfulItems"][0]["relatedItemId"]
    assert len(emu.related_items()) == 2  # what a retry after the retention period would do on AWS


def test_botocore_fills_the_token_so_its_retry_after_a_lost_response_creates_nothing(
    emu: Emulator, retrying_cases: Any, world: World
):
    emu.script("BatchCreateRelatedItem", ["drop_after_commit"])

    answer = batch(retrying_cases, world, by_id(world.case_id))

    [item] = emu.related_items()
    assert answer["successfulItems"][0]["relatedItemId"] == item.related_item_id
    first, retry = emu.calls_to("BatchCreateRelatedItem")
    assert first.params["clientToken"] == retry.params["clientToken"]
    assert emu.fault_counts()["BatchCreateRelatedItem"]["token_replay"] == 1


def test_a_retry_waits_for_the_late_commit_holding_its_token(emu: Emulator, cases: Any, world: World):
    emu.configure(late_commit_s=0.5)
    emu.script("BatchCreateRelatedItem", ["late_commit"])
    with pytest.raises(ConnectionClosedError):
        batch(cases, world, by_id(world.case_id), clientToken="token-1")
    assert emu.related_items() == []

    started = time.monotonic()
    answer = batch(cases, world, by_id(world.case_id), clientToken="token-1")

    assert time.monotonic() - started >= 0.3  # it waited for the late commit rather than creating
    [item] = emu.related_items()
    assert answer["successfulItems"][0]["relatedItemId"] == item.related_item_id
    assert emu.wait_for_late_commits(5)
    counts = emu.fault_counts()["BatchCreateRelatedItem"]
    assert (counts["late_commit"], counts["late_commit_landed"], counts["token_wait"]) == (1, 1, 1)


def test_in_conflict_mode_a_retry_gets_409_until_the_late_commit_lands(
    emu: Emulator, cases: Any, world: World
):
    emu.configure(late_commit_s=0.4, token_in_flight="conflict")
    emu.script("BatchCreateRelatedItem", ["late_commit"])
    with pytest.raises(ConnectionClosedError):
        batch(cases, world, by_id(world.case_id), clientToken="token-1")

    with pytest.raises(ClientError) as excinfo:
        batch(cases, world, by_id(world.case_id), clientToken="token-1")
    assert error_of(excinfo) == ("ConflictException", 409)
    assert emu.wait_for_late_commits(5)
    answer = batch(cases, world, by_id(world.case_id), clientToken="token-1")

    [item] = emu.related_items()
    assert answer["successfulItems"][0]["relatedItemId"] == item.related_item_id


def test_a_late_commit_whose_token_a_retry_already_committed_creates_nothing(
    emu: Emulator, cases: Any, world: World
):
    emu.configure(late_commit_s=0.4, late_commit_claims_token=False)
    emu.script("BatchCreateRelatedItem", ["late_commit"])
    with pytest.raises(ConnectionClosedError):
        batch(cases, world, by_id(world.case_id), clientToken="token-1")

    retried = batch(cases, world, by_id(world.case_id), clientToken="token-1")
    assert emu.wait_for_late_commits(5)

    [item] = emu.related_items()
    assert retried["successfulItems"][0]["relatedItemId"] == item.related_item_id
    assert emu.fault_counts()["BatchCreateRelatedItem"]["late_commit_replayed"] == 1


def test_requests_racing_with_one_token_create_one_item(emu: Emulator, world: World, cases: Any):
    emu.configure(throttling=False, op_latency_s={"BatchCreateRelatedItem": 0.05})
    answers: list[str] = []

    def send() -> None:
        answers.append(
            batch(cases, world, by_id(world.case_id), clientToken="race")["successfulItems"][0][
                "relatedItemId"
            ]
        )

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(emu.related_items()) == 1
    assert set(answers) == {emu.related_items()[0].related_item_id}
    assert len(answers) == 8


def test_batch_has_its_own_bucket_at_create_related_items_quota(emu: Emulator, cases: Any, world: World):
    statuses = []
    for _ in range(12):
        try:
            batch(cases, world, by_id(world.case_id))
            statuses.append(200)
        except ClientError as e:
            statuses.append(e.response["ResponseMetadata"]["HTTPStatusCode"])
    cases.create_related_item(
        domainId=world.domain_id, caseId=world.case_id, type="Comment", content=comment()
    )  # CreateRelatedItem's bucket is untouched

    assert statuses[:10] == [200] * 10
    assert 429 in statuses[10:]


def test_injected_errors_change_nothing_and_scripts_fail_every_case(
    emu: Emulator, cases: Any, world: World, other_case: str
):
    emu.configure(quotas={"BatchCreateRelatedItem": Quota(rate=100, burst=100)})
    emu.script(
        "BatchCreateRelatedItem", ["InternalServerException", "item_failure:INTERNAL_ERROR", "item_failure"]
    )

    with pytest.raises(ClientError) as excinfo:
        batch(cases, world, by_id(world.case_id, other_case))
    internal = batch(cases, world, by_id(world.case_id, other_case))
    throttled = batch(cases, world, by_id(world.case_id, other_case))

    assert error_of(excinfo) == ("InternalServerException", 500)
    assert [f["errorCode"] for f in internal["failedItems"]] == ["INTERNAL_ERROR", "INTERNAL_ERROR"]
    assert [f["errorCode"] for f in throttled["failedItems"]] == ["THROTTLED", "THROTTLED"]
    assert internal["successfulItems"] == throttled["successfulItems"] == []
    assert emu.related_items() == []
    assert emu.fault_counts()["BatchCreateRelatedItem"]["item_failure"] == 4


def test_random_item_failures_are_transient_codes_on_some_cases(emu: Emulator, cases: Any, world: World):
    many = [emu.create_case(world.domain_id, title=f"case {n}") for n in range(40)]
    emu.configure(faults={"BatchCreateRelatedItem": Faults(item_failure=0.5)}, seed=3)

    answer = batch(cases, world, by_id(*many))

    codes = {f["errorCode"] for f in answer["failedItems"]}
    assert codes <= {"THROTTLED", "INTERNAL_ERROR"}
    assert 0 < len(answer["failedItems"]) < 40
    assert len(emu.related_items()) == len(answer["successfulItems"])


def test_a_scripted_item_failure_no_case_takes_fails_the_next_request_that_can_take_it(
    emu: Emulator, cases: Any, world: World, other_case: str
):
    """Concurrent requests and retries arrive in any order: a script's per-case failure is not spent on a
    client token's replay or on a request whose only case is unknown."""
    first = batch(cases, world, by_id(world.case_id), clientToken="tok-1")
    emu.script("BatchCreateRelatedItem", ["item_failure:INTERNAL_ERROR"])

    replayed = batch(cases, world, by_id(world.case_id), clientToken="tok-1")
    unknown = batch(cases, world, by_id("no-such-case"))
    failed = batch(cases, world, by_id(other_case))
    after = batch(cases, world, by_id(other_case))

    assert replayed["successfulItems"] == first["successfulItems"]
    assert [f["errorCode"] for f in unknown["failedItems"]] == ["CASE_NOT_FOUND"]
    assert [f["errorCode"] for f in failed["failedItems"]] == ["INTERNAL_ERROR"]
    assert after["failedItems"] == []
    assert len(after["successfulItems"]) == 1
    assert emu.fault_counts()["BatchCreateRelatedItem"]["item_failure"] == 1
