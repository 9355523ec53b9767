"""Exactly one related item: look before creating, retry throttles, re-check after ambiguous failures."""

from __future__ import annotations

import pytest
from case_linker.errors import AmbiguousError, CircuitOpenError, PermanentError, ThrottledError
from case_linker.linker import Backoff, Linker
from case_linker.mapping import RelatedItem
from case_linker.pacing import BatchGuard
from case_linker.telemetry import RETRIED, Counters

CONTACT = RelatedItem(
    "d", "case-1", "Contact", {"contact": {"contactArn": "arn:contact/1"}}, {"customEntity": "x"}
)
COMMENT = RelatedItem("d", "case-1", "Comment", {"comment": {"body": "b", "contentType": "Text/Plain"}})
NO_BACKOFF = Backoff(throttle_base=0.0, other_base=0.0, settle=0.0)


class FakeCases:
    """Scripted create outcomes; `committed` tracks what the server really holds."""

    def __init__(self, create_outcomes: list[str], linked: bool = False) -> None:
        self.create_outcomes = create_outcomes
        self.committed = 1 if linked else 0
        self.calls: list[str] = []

    def contact_on_case(self, domain_id: str, contact_arn: str, case_id: str) -> bool:
        self.calls.append("ListCasesForContact")
        return self.committed > 0

    def find_item(self, item: RelatedItem) -> str | None:
        self.calls.append("SearchRelatedItems")
        return "found-id" if self.committed else None

    def create(self, item: RelatedItem) -> str:
        self.calls.append("CreateRelatedItem")
        outcome = self.create_outcomes.pop(0) if self.create_outcomes else "ok"
        if outcome == "throttle":
            raise ThrottledError("ThrottlingException", "throttled")
        if outcome in ("drop_after_commit", "ok"):
            self.committed += 1
        if outcome.startswith("drop"):
            raise AmbiguousError("ConnectionClosedError", "dropped")
        if outcome == "not_found":
            raise PermanentError("ResourceNotFoundException", "no case")
        return f"item-{self.committed}"


def make(cases: FakeCases, attempts: int = 4) -> tuple[Linker, BatchGuard, Counters]:
    guard, counters = BatchGuard(attempt_seconds=0.0), Counters()
    return Linker(cases, guard, counters, create_attempts=attempts, backoff=NO_BACKOFF), guard, counters


def test_given_a_contact_not_yet_linked_when_ensured_then_looked_up_then_created() -> None:
    cases = FakeCases([])
    linker, _, _ = make(cases)

    result = linker.ensure(CONTACT, redelivered=False)

    assert (result.outcome, result.related_item_id) == ("created", "item-1")
    assert cases.calls == ["ListCasesForContact", "CreateRelatedItem"]


def test_given_a_contact_already_linked_when_ensured_then_no_create() -> None:
    cases = FakeCases([], linked=True)
    linker, _, _ = make(cases)

    assert linker.ensure(CONTACT, redelivered=False).outcome == "already_linked"
    assert cases.calls == ["ListCasesForContact"]


def test_given_a_first_delivery_of_a_comment_when_ensured_then_no_lookup() -> None:
    cases = FakeCases([])
    make(cases)[0].ensure(COMMENT, redelivered=False)
    assert cases.calls == ["CreateRelatedItem"]


def test_given_a_redelivered_comment_already_created_when_ensured_then_found_and_not_created_again() -> None:
    cases = FakeCases([], linked=True)

    result = make(cases)[0].ensure(COMMENT, redelivered=True)

    assert (result.outcome, result.related_item_id) == ("already_linked", "found-id")
    assert cases.calls == ["SearchRelatedItems"]


def test_given_three_throttles_when_created_then_retried_without_lookups_and_one_item() -> None:
    cases = FakeCases(["throttle"] * 3)
    linker, _, counters = make(cases)

    assert linker.ensure(COMMENT, redelivered=False).outcome == "created"
    assert cases.calls == ["CreateRelatedItem"] * 4
    assert cases.committed == 1
    assert counters.total(RETRIED) == 3


def test_given_constant_throttling_when_created_then_throttled_and_the_breaker_trips() -> None:
    cases = FakeCases(["throttle"] * 10)
    linker, guard, _ = make(cases, attempts=3)

    with pytest.raises(ThrottledError):
        linker.ensure(COMMENT, redelivered=False)
    assert guard.tripped
    assert cases.calls == ["CreateRelatedItem"] * 3
    with pytest.raises(CircuitOpenError):
        linker.ensure(COMMENT, redelivered=False)


def test_given_a_response_lost_after_commit_when_created_then_found_on_recheck_and_not_duplicated() -> None:
    cases = FakeCases(["drop_after_commit"])

    result = make(cases)[0].ensure(COMMENT, redelivered=False)

    assert (result.outcome, result.recovered) == ("created", True)
    assert cases.committed == 1
    assert cases.calls == ["CreateRelatedItem", "SearchRelatedItems"]


def test_given_a_contact_response_lost_after_commit_when_created_then_rechecked_with_list_cases() -> None:
    cases = FakeCases(["drop_after_commit"])

    make(cases)[0].ensure(CONTACT, redelivered=False)

    assert cases.committed == 1
    assert cases.calls == ["ListCasesForContact", "CreateRelatedItem", "ListCasesForContact"]


def test_given_a_connection_dropped_before_commit_when_created_then_rechecked_and_created_once() -> None:
    cases = FakeCases(["drop"])

    assert make(cases)[0].ensure(COMMENT, redelivered=False).outcome == "created"
    assert cases.committed == 1
    assert cases.calls == ["CreateRelatedItem", "SearchRelatedItems", "CreateRelatedItem"]


def test_given_ambiguous_failures_on_every_attempt_when_created_then_ambiguous_is_raised_for_redelivery() -> (
    None
):
    cases = FakeCases(["drop"] * 5)
    linker, guard, _ = make(cases, attempts=2)

    with pytest.raises(AmbiguousError):
        linker.ensure(COMMENT, redelivered=False)
    assert not guard.tripped


def test_given_a_permanent_error_when_created_then_it_propagates_without_retry() -> None:
    cases = FakeCases(["not_found"])
    with pytest.raises(PermanentError):
        make(cases)[0].ensure(COMMENT, redelivered=False)
    assert cases.calls == ["CreateRelatedItem"]


def test_backoff_is_full_jitter_capped_exponential() -> None:
    backoff = Backoff(throttle_base=1.0, other_base=0.05, cap=20.0)

    assert backoff.delay(1, throttled=True, rand=lambda: 1.0) == 1.0
    assert backoff.delay(3, throttled=True, rand=lambda: 1.0) == 4.0
    assert backoff.delay(10, throttled=True, rand=lambda: 1.0) == 20.0
    assert backoff.delay(2, throttled=False, rand=lambda: 0.5) == 0.05
