"""GIVEN a case merge, THEN while it runs writes to the secondary are refused with ConflictException (409) or
CONFLICT per case; when it ends the secondary's items are on the primary and the secondary is closed."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import Emulator
from emulator.model import ApiError
from tests.emulator.helpers import INSTANCE_ID, World, by_id, comment

ALL_TYPES = {"comment": True, "contact": True, "custom": True, "connectCase": True}


def start_merge(cases: Any, world: World, secondary: str, **extra: Any) -> None:
    cases.start_merge_cases(
        domainId=world.domain_id,
        caseId=world.case_id,
        secondaryCaseIds=[secondary],
        relatedItemsConfiguration=ALL_TYPES,
        **extra,
    )


def add_comment(cases: Any, world: World, case_id: str) -> Any:
    return cases.create_related_item(
        domainId=world.domain_id, caseId=case_id, type="Comment", content=comment()
    )


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def wait_until_merged(emu: Emulator) -> None:
    deadline = time.monotonic() + 5
    while not all(m.completed for m in emu.merges()) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_while_a_merge_runs_writes_to_the_secondary_conflict_and_the_primary_takes_them(
    emu: Emulator, cases: Any, world: World, other_case: str
):
    emu.configure(merge_duration_s=30)
    start_merge(cases, world, other_case)

    with pytest.raises(ClientError) as excinfo:
        add_comment(cases, world, other_case)
    add_comment(cases, world, world.case_id)
    answer = cases.batch_create_related_item(
        domainId=world.domain_id, content=comment(), cases=by_id(world.case_id, other_case)
    )

    assert error_of(excinfo) == ("ConflictException", 409)
    assert [s["caseIdentifier"]["caseId"] for s in answer["successfulItems"]] == [world.case_id]
    [failed] = answer["failedItems"]
    assert (failed["caseIdentifier"]["caseId"], failed["errorCode"]) == (other_case, "CONFLICT")
    assert emu.related_items(case_id=other_case) == []
    counts = emu.fault_counts()
    assert (
        counts["CreateRelatedItem"]["merge_conflict"]
        == counts["BatchCreateRelatedItem"]["merge_conflict"]
        == 1
    )


def test_merge_status_is_in_progress_for_both_then_completed_for_the_secondary_only(
    emu: Emulator, cases: Any, world: World, other_case: str
):
    emu.configure(merge_duration_s=0.3)
    start_merge(cases, world, other_case)

    running = [
        cases.get_merge_cases_status(domainId=world.domain_id, caseId=c) for c in (world.case_id, other_case)
    ]
    wait_until_merged(emu)
    finished = cases.get_merge_cases_status(domainId=world.domain_id, caseId=other_case)
    with pytest.raises(ClientError) as primary_after:
        cases.get_merge_cases_status(domainId=world.domain_id, caseId=world.case_id)

    for status in running:
        assert (status["status"], status["primaryCaseId"], status["secondaryCaseIds"]) == (
            "IN_PROGRESS",
            world.case_id,
            [other_case],
        )
    assert (finished["status"], finished["primaryCaseId"]) == ("COMPLETED", world.case_id)
    assert error_of(primary_after) == ("ResourceNotFoundException", 404)


def test_after_the_merge_the_secondarys_items_are_on_the_primary_and_it_is_closed(
    emu: Emulator, cases: Any, world: World, other_case: str
):
    chat = emu.put_contact(INSTANCE_ID, "chat-1", channel="CHAT")
    emu.add_related_item(
        world.domain_id, world.case_id, "Contact", {"contact": {"contactArn": world.contact_arn}}
    )
    for content in ({"contact": {"contactArn": world.contact_arn}}, {"contact": {"contactArn": chat}}):
        emu.add_related_item(world.domain_id, other_case, "Contact", content)
    emu.add_related_item(world.domain_id, other_case, "Comment", comment("from the secondary"))
    emu.add_related_item(world.domain_id, other_case, "File", {"file": {"fileArn": "arn:aws:connect:f"}})
    emu.configure(merge_duration_s=0.2)

    start_merge(cases, world, other_case)
    wait_until_merged(emu)

    on_primary = emu.related_items(case_id=world.case_id)
    contacts = sorted(i.content["contact"]["contactArn"] for i in on_primary if i.type == "Contact")
    assert contacts == sorted([world.contact_arn, chat])  # the contact on both cases is kept once
    assert [i.content for i in on_primary if i.type == "Comment"] == [comment("from the secondary")]
    assert [i.content for i in on_primary if i.type == "ConnectCase"] == [
        {"connectCase": {"caseId": other_case}}
    ]
    assert all(
        i.related_item_arn.startswith(
            f"arn:aws:cases:us-east-1:123456789012:domain/{world.domain_id}/case/{world.case_id}/"
        )
        for i in on_primary
    )
    left = sorted(i.type for i in emu.related_items(case_id=other_case))
    assert left == ["ConnectCase", "File"]  # files stay; the secondary links back to the primary
    closed = cases.get_case(domainId=world.domain_id, caseId=other_case, fields=[{"id": "status"}])
    assert closed["fields"] == [{"id": "status", "value": {"stringValue": "closed"}}]
    searched = cases.search_related_items(
        domainId=world.domain_id, caseId=world.case_id, filters=[{"comment": {}}]
    )
    assert len(searched["relatedItems"]) == 1


def test_selected_fields_come_from_the_secondary_and_empty_ones_are_filled(
    emu: Emulator, cases: Any, world: World
):
    primary_fields = {"summary": "ours", "assigned_queue": None}
    secondary = emu.create_case(
        world.domain_id, title="dup", fields={"summary": "theirs", "assigned_queue": "q2"}
    )
    target = emu.create_case(world.domain_id, title="main", fields=primary_fields)

    emu.merge_cases(world.domain_id, target, secondary, duration_s=0, fields=["summary"])

    fields = emu.case_fields(world.domain_id, target)
    assert (fields["summary"], fields["assigned_queue"], fields["title"]) == ("theirs", "q2", "main")


@pytest.mark.parametrize(
    ("secondary", "extra", "expected"),
    [
        ("same", {}, ("ValidationException", 400)),
        (
            "other",
            {"fieldsConfiguration": [{"fieldIds": [{"id": "title"}], "sourceCaseId": "other"}]},
            ("ValidationException", 400),
        ),
        (
            "other",
            {"fieldsConfiguration": [{"fieldIds": [{"id": "summary"}], "sourceCaseId": "same"}]},
            ("ValidationException", 400),
        ),
        ("no-such-case", {}, ("ResourceNotFoundException", 404)),
    ],
    ids=["same case", "title is not mergeable", "source is not the secondary", "unknown case"],
)
def test_start_merge_refuses_what_the_api_documents_as_refused(
    emu: Emulator,
    cases: Any,
    world: World,
    other_case: str,
    secondary: str,
    extra: dict[str, Any],
    expected: Any,
):
    names = {"same": world.case_id, "other": other_case}
    for entry in extra.get("fieldsConfiguration", []):
        entry["sourceCaseId"] = names[entry["sourceCaseId"]]

    with pytest.raises(ClientError) as excinfo:
        start_merge(cases, world, names.get(secondary, secondary), **extra)

    assert error_of(excinfo) == expected
    assert emu.merges() == []


def test_a_case_in_a_running_or_finished_merge_cannot_be_merged_again(
    emu: Emulator, cases: Any, world: World, other_case: str
):
    third = emu.create_case(world.domain_id, title="third")
    emu.configure(merge_duration_s=0.2)
    start_merge(cases, world, other_case)

    with pytest.raises(ClientError) as running:
        cases.start_merge_cases(domainId=world.domain_id, caseId=third, secondaryCaseIds=[other_case])
    wait_until_merged(emu)
    with pytest.raises(ClientError) as finished:
        cases.start_merge_cases(domainId=world.domain_id, caseId=third, secondaryCaseIds=[other_case])

    assert error_of(running) == ("ConflictException", 409)
    assert error_of(finished) == ("ConflictException", 409)


def test_a_closed_case_cannot_be_merged(emu: Emulator, cases: Any, world: World):
    closed = emu.create_case(world.domain_id, title="closed", fields={"status": "closed"})

    with pytest.raises(ApiError, match="closed"):
        emu.merge_cases(world.domain_id, world.case_id, closed)


def test_a_seeded_merge_can_be_running_when_the_test_starts(emu: Emulator, cases: Any):
    emu.load_seed(
        {
            "domains": [
                {
                    "id": "d-1",
                    "name": "seeded",
                    "cases": [{"id": "primary"}, {"id": "secondary"}],
                    "merges": [{"primary": "primary", "secondary": "secondary", "durationSeconds": 30}],
                }
            ]
        }
    )

    status = cases.get_merge_cases_status(domainId="d-1", caseId="secondary")

    assert status["status"] == "IN_PROGRESS"
