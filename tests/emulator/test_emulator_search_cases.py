"""GIVEN cases with reference ids, THEN every case has one (unique per domain regardless of case), GetCase and
SearchCases return it as a field, and SearchCases filters, searches, sorts and pages."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import REFERENCE_ID_FIELD, Emulator
from emulator.model import ApiError
from tests.emulator.helpers import World


def equal_to(field_id: str, value: Any) -> dict[str, Any]:
    member = "doubleValue" if isinstance(value, float) else "stringValue"
    return {"field": {"equalTo": {"id": field_id, "value": {member: value}}}}


def case_ids(answer: dict[str, Any]) -> list[str]:
    return [c["caseId"] for c in answer["cases"]]


def test_every_case_gets_a_reference_id_unique_in_its_domain(emu: Emulator, cases: Any, world: World):
    template = cases.get_case(domainId=world.domain_id, caseId=world.case_id, fields=[{"id": "title"}])[
        "templateId"
    ]
    created = [
        cases.create_case(
            domainId=world.domain_id,
            templateId=template,
            fields=[{"id": "title", "value": {"stringValue": "t"}}],
        )["caseId"]
        for _ in range(20)
    ]

    references = [emu.reference_id(world.domain_id, c) for c in created]

    assert all(r and len(r) <= 50 for r in references)
    assert len({r.lower() for r in references if r}) == 20
    fetched = cases.get_case(domainId=world.domain_id, caseId=created[0], fields=[{"id": REFERENCE_ID_FIELD}])
    assert fetched["fields"] == [{"id": REFERENCE_ID_FIELD, "value": {"stringValue": references[0]}}]


def test_a_seeded_reference_id_is_kept_and_a_clash_in_any_case_is_refused(emu: Emulator, world: World):
    assert emu.reference_id(world.domain_id, world.case_id) == "REF-A"

    with pytest.raises(ApiError, match="already used"):
        emu.create_case(world.domain_id, title="clash", reference_id="ref-a")
    with pytest.raises(ApiError, match="Reference ID"):
        emu.create_case(world.domain_id, title="too long", reference_id="R" * 51)
    other_domain = emu.create_domain("other")
    assert emu.create_case(other_domain, title="same reference elsewhere", reference_id="REF-A")


def test_create_case_cannot_set_the_reference_id(cases: Any, world: World):
    template = cases.get_case(domainId=world.domain_id, caseId=world.case_id, fields=[{"id": "title"}])[
        "templateId"
    ]

    with pytest.raises(ClientError) as excinfo:
        cases.create_case(
            domainId=world.domain_id,
            templateId=template,
            fields=[{"id": REFERENCE_ID_FIELD, "value": {"stringValue": "MINE"}}],
        )

    assert excinfo.value.response["Error"]["Code"] == "ValidationException"


def test_search_cases_finds_a_case_by_reference_id_regardless_of_case(
    cases: Any, world: World, other_case: str
):
    answer = cases.search_cases(
        domainId=world.domain_id,
        filter=equal_to(REFERENCE_ID_FIELD, "ref-b"),
        fields=[{"id": REFERENCE_ID_FIELD}, {"id": "title"}],
    )

    assert case_ids(answer) == [other_case]
    assert answer["cases"][0]["fields"] == [
        {"id": REFERENCE_ID_FIELD, "value": {"stringValue": "REF-B"}},
        {"id": "title", "value": {"stringValue": "Billing question"}},
    ]
    assert answer["totalCount"] == 1
    assert answer["cases"][0]["templateId"]


def test_search_cases_combines_filters_with_and_all_or_all_and_not(emu: Emulator, cases: Any, world: World):
    urgent = emu.create_case(world.domain_id, title="Router down", fields={"priority": "high", "score": 9})
    emu.create_case(world.domain_id, title="Router slow", fields={"priority": "low", "score": 2})

    both = cases.search_cases(
        domainId=world.domain_id,
        filter={"andAll": [equal_to("status", "open"), equal_to("priority", "high")]},
    )
    either = cases.search_cases(
        domainId=world.domain_id,
        filter={"orAll": [equal_to("priority", "high"), equal_to(REFERENCE_ID_FIELD, "REF-A")]},
    )
    negated = cases.search_cases(domainId=world.domain_id, filter={"not": equal_to("priority", "low")})
    scored = cases.search_cases(
        domainId=world.domain_id,
        filter={"field": {"greaterThan": {"id": "score", "value": {"doubleValue": 5.0}}}},
    )

    assert case_ids(both) == [urgent]
    assert sorted(case_ids(either)) == sorted([urgent, world.case_id])
    assert sorted(case_ids(negated)) == sorted([world.case_id, urgent])
    assert case_ids(scored) == [urgent]


def test_search_term_matches_a_substring_of_any_text_field(emu: Emulator, cases: Any, world: World):
    emu.create_case(world.domain_id, title="Invoice dispute")

    found = cases.search_cases(domainId=world.domain_id, searchTerm="ROUTER")

    assert case_ids(found) == [world.case_id]


def test_search_cases_pages_sorts_and_counts(emu: Emulator, cases: Any, world: World):
    for n in range(5):
        emu.create_case(world.domain_id, title=f"bulk {n}", fields={"rank": float(n)})

    first = cases.search_cases(
        domainId=world.domain_id,
        searchTerm="bulk",
        maxResults=3,
        sorts=[{"fieldId": "rank", "sortOrder": "Desc"}],
        fields=[{"id": "rank"}],
    )
    second = cases.search_cases(
        domainId=world.domain_id,
        searchTerm="bulk",
        maxResults=3,
        sorts=[{"fieldId": "rank", "sortOrder": "Desc"}],
        fields=[{"id": "rank"}],
        nextToken=first["nextToken"],
    )

    ranks = [c["fields"][0]["value"]["doubleValue"] for c in first["cases"] + second["cases"]]
    assert ranks == [4.0, 3.0, 2.0, 1.0, 0.0]
    assert first["totalCount"] == second["totalCount"] == 5
    assert "nextToken" not in second


def test_search_cases_in_an_unknown_domain_is_resource_not_found(cases: Any):
    with pytest.raises(ClientError) as excinfo:
        cases.search_cases(domainId="no-such-domain")

    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
