"""GIVEN search_lag_s, THEN ListCasesForContact, SearchRelatedItems, SearchAllRelatedItems and SearchCases see a
write only that long after it committed (AWS documents no read-after-write consistency for them); point reads
(GetCase) see it at once."""

from __future__ import annotations

import time
from typing import Any

from emulator import REFERENCE_ID_FIELD, Emulator
from tests.emulator.helpers import World


def link(cases: Any, world: World) -> None:
    cases.create_related_item(
        domainId=world.domain_id,
        caseId=world.case_id,
        type="Contact",
        content={"contact": {"contactArn": world.contact_arn}},
        performedBy={"customEntity": "case-linker"},
    )


def searches(cases: Any, world: World) -> dict[str, int]:
    """How many items (or cases) each lagging read finds for the world's contact."""
    contact_filter = [{"contact": {"contactArn": world.contact_arn}}]
    return {
        "ListCasesForContact": len(
            cases.list_cases_for_contact(domainId=world.domain_id, contactArn=world.contact_arn)["cases"]
        ),
        "SearchRelatedItems": len(
            cases.search_related_items(
                domainId=world.domain_id, caseId=world.case_id, filters=contact_filter
            )["relatedItems"]
        ),
        "SearchAllRelatedItems": len(
            cases.search_all_related_items(domainId=world.domain_id, filters=contact_filter)["relatedItems"]
        ),
    }


def test_without_lag_a_write_is_searchable_at_once(emu: Emulator, cases: Any, world: World):
    link(cases, world)

    assert searches(cases, world) == {
        "ListCasesForContact": 1,
        "SearchRelatedItems": 1,
        "SearchAllRelatedItems": 1,
    }


def test_with_lag_every_search_misses_a_fresh_write_then_finds_it(emu: Emulator, cases: Any, world: World):
    emu.configure(search_lag_s=0.5, throttling=False)
    link(cases, world)

    fresh = searches(cases, world)
    time.sleep(0.6)
    later = searches(cases, world)

    assert fresh == {"ListCasesForContact": 0, "SearchRelatedItems": 0, "SearchAllRelatedItems": 0}
    assert later == {"ListCasesForContact": 1, "SearchRelatedItems": 1, "SearchAllRelatedItems": 1}
    counts = emu.fault_counts()
    assert all(counts[op]["search_lag_miss"] == 1 for op in fresh)


def test_search_cases_lags_new_cases_but_get_case_does_not(emu: Emulator, cases: Any, world: World):
    emu.configure(search_lag_s=0.5)
    template = cases.get_case(domainId=world.domain_id, caseId=world.case_id, fields=[{"id": "title"}])[
        "templateId"
    ]
    created = cases.create_case(
        domainId=world.domain_id,
        templateId=template,
        fields=[{"id": "title", "value": {"stringValue": "New"}}],
    )["caseId"]
    reference = emu.reference_id(world.domain_id, created)
    by_reference = {"field": {"equalTo": {"id": REFERENCE_ID_FIELD, "value": {"stringValue": reference}}}}

    fresh = cases.search_cases(domainId=world.domain_id, filter=by_reference)
    direct = cases.get_case(domainId=world.domain_id, caseId=created, fields=[{"id": REFERENCE_ID_FIELD}])
    time.sleep(0.6)
    later = cases.search_cases(domainId=world.domain_id, filter=by_reference)

    assert fresh["cases"] == []
    assert direct["fields"][0]["value"]["stringValue"] == reference
    assert [c["caseId"] for c in later["cases"]] == [created]
    assert emu.fault_counts()["SearchCases"]["search_lag_miss"] == 1


def test_seeded_items_are_searchable_from_the_start(emu: Emulator, cases: Any, world: World):
    emu.configure(search_lag_s=30)
    emu.add_related_item(
        world.domain_id, world.case_id, "Contact", {"contact": {"contactArn": world.contact_arn}}
    )

    assert searches(cases, world) == {
        "ListCasesForContact": 1,
        "SearchRelatedItems": 1,
        "SearchAllRelatedItems": 1,
    }
    assert all("search_lag_miss" not in counts for counts in emu.fault_counts().values())


def test_a_lagging_index_still_shows_a_moved_item_where_it_was(
    emu: Emulator, cases: Any, world: World, other_case: str
):
    emu.add_related_item(
        world.domain_id, other_case, "Contact", {"contact": {"contactArn": world.contact_arn}}
    )
    emu.configure(search_lag_s=30)

    emu.merge_cases(world.domain_id, world.case_id, other_case, duration_s=0)
    found = cases.list_cases_for_contact(domainId=world.domain_id, contactArn=world.contact_arn)["cases"]

    assert [c["caseId"] for c in found] == [other_case]
    assert [i.case_id for i in emu.related_items() if i.type == "Contact"] == [world.case_id]


def test_search_related_items_returns_association_time_and_performer(emu: Emulator, cases: Any, world: World):
    before = time.time()
    link(cases, world)

    [item] = cases.search_related_items(domainId=world.domain_id, caseId=world.case_id)["relatedItems"]

    assert item["performedBy"] == {"customEntity": "case-linker"}
    assert before - 1 <= item["associationTime"].timestamp() <= time.time() + 1
    [everywhere] = cases.search_all_related_items(domainId=world.domain_id)["relatedItems"]
    assert everywhere["caseId"] == world.case_id
    assert everywhere["performedBy"] == {"customEntity": "case-linker"}
    assert everywhere["associationTime"] == item["associationTime"]
