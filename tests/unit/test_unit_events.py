"""Every sample event in events/ is classified as events/expected.json says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from case_linker.mapping import CreateItem, Ignore, Invalid, LinkContact, classify
from case_linker.settings import Settings

EVENTS = Path(__file__).resolve().parents[2] / "events"
EXPECTED = json.loads((EVENTS / "expected.json").read_text())
SETTINGS = Settings(
    cases_domain_id=EXPECTED["casesDomainId"],
    dead_letter_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
    idempotency_table_name="idempotency",
)
# Outcomes that depend on the API (the case's existence, the contact's attributes) are checked in
# tests/functional; here only what the body alone decides.
API_DECIDED = {"ResourceNotFoundException", "NoCaseId", "AlreadyLinked"}


def test_every_event_file_has_an_expected_outcome_and_vice_versa() -> None:
    files = {
        p.relative_to(EVENTS).as_posix()
        for p in EVENTS.rglob("*")
        if p.is_file()
        and p.name not in {"README.md", "expected.json", "seed.json"}
        and not p.name.startswith(".")
    }
    assert files == set(EXPECTED["events"])


def test_the_deliberately_bad_samples_are_the_ones_that_end_in_the_dlq() -> None:
    bad = {name for name in EXPECTED["events"] if name.startswith("bad/")}
    dead_lettered = {name for name, spec in EXPECTED["events"].items() if spec["outcome"] == "dead_lettered"}
    assert bad == dead_lettered
    assert (EVENTS / "bad" / ".deliberately-bad").is_file()


@pytest.mark.parametrize("name", sorted(EXPECTED["events"]))
def test_sample_event_is_classified_as_expected(name: str) -> None:
    expected = EXPECTED["events"][name]
    decision = classify((EVENTS / name).read_text(), SETTINGS)

    if expected["outcome"] == "dead_lettered" and expected["error_code"] not in API_DECIDED:
        assert isinstance(decision, Invalid)
        assert decision.code == expected["error_code"]
    elif expected["outcome"] == "skipped" and expected["reason"] == "EventIgnored":
        assert isinstance(decision, Ignore)
    elif isinstance(decision, LinkContact):
        assert expected.get("contactArn", decision.contact_arn) == decision.contact_arn
        if name == "contact-completed-tag-case-id.json":
            assert decision.tag_case_id == expected["case"]
    else:
        assert isinstance(decision, CreateItem)
        assert expected["outcome"] == "dead_lettered" or decision.item.case_id == expected["case"]
