"""Exactly one related item, decided by the ledger: a scripted Cases fake, a real ledger on in-process moto."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from case_linker.cases import Created
from case_linker.errors import (
    AmbiguousError,
    CaseBusyError,
    CircuitOpenError,
    PermanentError,
    SettlingError,
    ThrottledError,
)
from case_linker.ledger import Busy, Ledger
from case_linker.linker import Backoff, Linker
from case_linker.mapping import RelatedItem
from case_linker.pacing import BatchGuard
from case_linker.telemetry import RETRIED, Counters

from tests.unit.conftest import LEDGER_TABLE, Clock

US = {"customEntity": "case-linker"}
CONTACT = RelatedItem("d", "case-1", "Contact", {"contact": {"contactArn": "arn:contact/1"}}, US)
COMMENT = RelatedItem("d", "case-1", "Comment", {"comment": {"body": "b", "contentType": "Text/Plain"}}, US)
CUSTOM = RelatedItem(
    "d", "case-1", "Custom", {"custom": {"fields": [{"id": "f", "value": {"stringValue": "v"}}]}}, US
)
TABLE = LEDGER_TABLE


@dataclass
class Stored:
    id: str
    content: dict[str, object]
    performed_by: dict[str, str] | None
    at: float
    token: str | None = None


@dataclass
class FakeCases:
    """Cases as the linker sees it: scripted create outcomes over a store that honours client tokens."""

    clock: Clock
    outcomes: list[str] = field(default_factory=list)
    items: list[Stored] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def add(self, item: RelatedItem, at: float) -> None:
        self.items.append(Stored(f"pre-{len(self.items)}", item.content, item.performed_by, at))

    def contact_on_case(self, domain_id: str, contact_arn: str, case_id: str) -> bool:
        self.calls.append("ListCasesForContact")
        return any(s.content.get("contact") == {"contactArn": contact_arn} for s in self.items)

    def find_items(self, item: RelatedItem, *, since: float, until: float) -> list[str]:
        self.calls.append("SearchRelatedItems")
        return [
            s.id
            for s in self.items
            if s.content == item.content and s.performed_by == item.performed_by and since <= s.at <= until
        ]

    def create(self, item: RelatedItem, *, client_token: str, on_send: Callable[[], None]) -> Created:
        operation = "BatchCreateRelatedItem" if item.uses_client_token else "CreateRelatedItem"
        self.calls.append(operation)
        self.tokens.append(client_token)
        on_send()
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if outcome == "case_conflict":  # BatchCreateRelatedItem's failedItems CONFLICT: the token keeps it
            error = CaseBusyError("ConflictException", "merging", retry_after=30.0)
            error.token_spent = True
            raise error
        if outcome == "throttle":
            raise ThrottledError("ThrottlingException", "throttled")
        if outcome == "conflict":
            raise CaseBusyError("ConflictException", "merging", retry_after=30.0)
        if outcome == "not_found":
            raise PermanentError("ResourceNotFoundException", "no case")
        if outcome == "drop":
            raise AmbiguousError("ConnectionClosedError", "dropped before commit")
        token = client_token if item.uses_client_token else None
        existing = next((s for s in self.items if token is not None and s.token == token), None)
        stored = existing or Stored(
            f"item-{len(self.items) + 1}", item.content, item.performed_by, self.clock(), token
        )
        if existing is None:
            self.items.append(stored)
        if outcome == "drop_after_commit":
            raise AmbiguousError("ConnectionClosedError", "dropped after commit")
        return Created(stored.id, item.case_id)

    def count(self, item: RelatedItem) -> int:
        return sum(1 for s in self.items if s.content == item.content)


@pytest.fixture
def ledger(dynamodb: Any, clock: Clock) -> Ledger:
    return Ledger(dynamodb, TABLE, clock=clock)


@dataclass
class Rig:
    linker: Linker
    cases: FakeCases
    guard: BatchGuard
    counters: Counters
    clock: Clock


SETTLE = Backoff(throttle_base=0.0, other_base=0.0, settle=10.0, settle_in_place=20.0)


@pytest.fixture
def make(ledger: Ledger, clock: Clock) -> Callable[..., Rig]:
    def build(outcomes: list[str] | None = None, attempts: int = 4, backoff: Backoff = SETTLE) -> Rig:
        cases = FakeCases(clock, list(outcomes or []))
        guard = BatchGuard(attempt_seconds=0.0, clock=clock, sleep=clock.sleep)
        guard.start_batch(600.0, 0.0)
        counters = Counters()
        linker = Linker(
            cases,
            ledger,
            guard,
            counters,
            resolve_case=lambda item: item,
            create_attempts=attempts,
            backoff=backoff,
            clock=clock,
        )
        return Rig(linker, cases, guard, counters, clock)

    return build


def again(rig: Rig, outcomes: list[str] | None = None) -> Rig:
    """A later delivery: a new batch, the same Cases and ledger."""
    rig.cases.outcomes = list(outcomes or [])
    rig.guard.start_batch(600.0, 0.0)
    return rig


# --- contacts -------------------------------------------------------------------------------------------


def test_given_a_contact_not_yet_linked_when_linked_then_looked_up_then_created(
    make: Callable[..., Rig],
) -> None:
    rig = make()

    result = rig.linker.link(CONTACT)

    assert (result.outcome, result.related_item_id) == ("created", "item-1")
    assert rig.cases.calls == ["ListCasesForContact", "CreateRelatedItem"]


def test_given_a_contact_a_flow_already_linked_when_linked_then_no_create_and_no_second_lookup(
    make: Callable[..., Rig],
) -> None:
    rig = make()
    rig.cases.add(CONTACT, at=rig.clock.now - 100)

    assert rig.linker.link(CONTACT).outcome == "already_linked"
    assert rig.linker.link(CONTACT).outcome == "already_linked"
    assert rig.cases.calls == ["ListCasesForContact"]


def test_given_a_contact_whose_create_was_ambiguous_when_redelivered_then_found_exactly(
    make: Callable[..., Rig],
) -> None:
    rig = make(["drop_after_commit"], attempts=1)
    with pytest.raises(AmbiguousError):
        rig.linker.link(CONTACT)

    result = again(rig).linker.link(CONTACT)

    assert (result.outcome, result.recovered) == ("created", True)
    assert rig.cases.count(CONTACT) == 1


# --- comments: the service's client token ---------------------------------------------------------------


def test_given_a_first_comment_when_linked_then_created_with_its_token_and_no_lookup(
    make: Callable[..., Rig],
) -> None:
    rig = make()

    rig.linker.link(COMMENT)

    assert rig.cases.calls == ["BatchCreateRelatedItem"]


def test_given_a_comment_create_dropped_after_commit_when_retried_then_the_token_returns_the_same_item(
    make: Callable[..., Rig],
) -> None:
    rig = make(["drop_after_commit"])

    result = rig.linker.link(COMMENT)

    assert result.related_item_id == "item-1"
    assert rig.cases.calls == ["BatchCreateRelatedItem", "BatchCreateRelatedItem"]
    assert rig.cases.count(COMMENT) == 1


def test_given_an_ambiguous_comment_handed_back_when_it_comes_as_another_message_then_the_token_prevents_a_twin(
    make: Callable[..., Rig],
) -> None:
    rig = make(["drop_after_commit"], attempts=1)
    with pytest.raises(AmbiguousError):
        rig.linker.link(COMMENT)

    again(rig).linker.link(dataclasses.replace(COMMENT))

    assert rig.cases.count(COMMENT) == 1
    assert "SearchRelatedItems" not in rig.cases.calls


def test_given_an_ambiguous_comment_older_than_the_token_is_trusted_when_redelivered_then_it_is_looked_for(
    make: Callable[..., Rig],
) -> None:
    rig = make(["drop_after_commit"], attempts=1, backoff=dataclasses.replace(SETTLE, token_trust=60.0))
    with pytest.raises(AmbiguousError):
        rig.linker.link(COMMENT)
    rig.cases.tokens.clear()
    for stored in rig.cases.items:
        stored.token = None  # the service has forgotten the token
    rig.clock.sleep(3600)

    result = again(rig).linker.link(COMMENT)

    assert result.recovered
    assert rig.cases.count(COMMENT) == 1


def test_given_the_service_answered_a_token_with_a_failure_when_retried_later_then_a_new_token_is_used(
    make: Callable[..., Rig],
) -> None:
    rig = make(["case_conflict"])
    with pytest.raises(CaseBusyError):
        rig.linker.link(COMMENT)

    again(rig).linker.link(COMMENT)

    first, second = rig.cases.tokens
    assert first == COMMENT.identity.client_token
    assert second != first
    assert rig.cases.count(COMMENT) == 1


def test_given_an_ambiguous_create_when_retried_then_the_same_token_is_used(make: Callable[..., Rig]) -> None:
    rig = make(["drop"])

    rig.linker.link(COMMENT)

    assert len(set(rig.cases.tokens)) == 1


# --- types without a token: the ledger's time window and claims -----------------------------------------


def test_given_an_identical_item_made_before_our_first_attempt_when_recovering_then_it_is_not_taken_for_ours(
    make: Callable[..., Rig],
) -> None:
    rig = make(["drop"], attempts=1)
    rig.cases.add(CUSTOM, at=rig.clock.now - 1000)  # another request's item, days ago
    with pytest.raises(AmbiguousError):
        rig.linker.link(CUSTOM)
    rig.clock.sleep(30)

    result = again(rig).linker.link(CUSTOM)

    assert (result.outcome, result.recovered) == ("created", False)
    assert rig.cases.count(CUSTOM) == 2


def test_given_a_custom_create_dropped_after_commit_when_retried_in_place_then_found_after_settling(
    make: Callable[..., Rig],
) -> None:
    rig = make(["drop_after_commit"])
    started = rig.clock.now

    result = rig.linker.link(CUSTOM)

    assert (result.outcome, result.recovered) == ("created", True)
    assert rig.cases.count(CUSTOM) == 1
    assert rig.clock.now - started >= SETTLE.settle
    assert rig.cases.calls == ["CreateRelatedItem", "SearchRelatedItems"]


def test_given_a_settle_time_longer_than_the_invocation_may_wait_when_ambiguous_then_handed_back_with_a_delay(
    make: Callable[..., Rig],
) -> None:
    rig = make(["drop_after_commit"], backoff=dataclasses.replace(SETTLE, settle=120.0, settle_in_place=5.0))

    with pytest.raises(SettlingError) as raised:
        rig.linker.link(CUSTOM)

    assert raised.value.retry_after is not None
    assert 119 <= raised.value.retry_after <= 122
    rig.clock.sleep(125)
    result = again(rig).linker.link(CUSTOM)
    assert result.recovered
    assert rig.cases.count(CUSTOM) == 1


def test_given_two_identities_with_the_same_content_when_both_recover_then_each_claims_a_different_item(
    make: Callable[..., Rig],
) -> None:
    rig = make(["drop_after_commit"], attempts=1)
    first = dataclasses.replace(CUSTOM, idempotency_key="k1")
    second = dataclasses.replace(CUSTOM, idempotency_key="k2")
    with pytest.raises(AmbiguousError):
        rig.linker.link(first)
    rig.cases.outcomes = ["drop"]
    with pytest.raises(AmbiguousError):
        rig.linker.link(second)  # its create never committed
    rig.clock.sleep(30)

    assert again(rig).linker.link(first).recovered
    created = again(rig).linker.link(second)

    assert not created.recovered  # the only item on the case is first's: second makes its own
    assert rig.cases.count(CUSTOM) == 2


def test_given_an_identical_item_created_plainly_by_another_identity_when_recovering_then_it_is_not_taken(
    make: Callable[..., Rig],
) -> None:
    # GIVEN two distinct requests with the same content (their own keys), the first created without a hitch
    # while the second's create was lost before it committed (found by the chaos run: twin Custom requests)
    rig = make(attempts=1)
    first = dataclasses.replace(CUSTOM, idempotency_key="k1")
    second = dataclasses.replace(CUSTOM, idempotency_key="k2")
    rig.cases.outcomes = ["drop"]
    with pytest.raises(AmbiguousError):
        rig.linker.link(second)
    assert again(rig).linker.link(first).outcome == "created"
    rig.clock.sleep(30)

    # WHEN the second comes back and looks for an item only it can have made
    created = again(rig).linker.link(second)

    # THEN the first's item is the first's: the second makes its own
    assert not created.recovered
    assert rig.cases.count(CUSTOM) == 2


def test_given_our_new_item_claimed_first_by_another_identitys_look_up_then_we_make_our_own(
    make: Callable[..., Rig], ledger: Ledger
) -> None:
    # GIVEN another request with the same content, looking for its lost create, claims the item our create
    # makes before our claim lands (the race between our answer and its look-up)
    rig = make()
    ours = dataclasses.replace(CUSTOM, idempotency_key="k1")
    other = dataclasses.replace(CUSTOM, idempotency_key="k2")
    assert ledger.claim_item("item-1", other.identity)

    # WHEN ours is linked
    result = rig.linker.link(ours)

    # THEN it made a second item, and that one is claimed for it
    assert (result.outcome, result.related_item_id) == ("created", "item-2")
    assert rig.cases.count(CUSTOM) == 2
    assert not ledger.claim_item("item-2", other.identity)


def test_given_a_create_left_pending_by_a_killed_invocation_when_a_duplicate_comes_then_it_looks_first(
    make: Callable[..., Rig], ledger: Ledger
) -> None:
    rig = make()
    claim = ledger.begin(CUSTOM.identity, lease_until=rig.clock.now + 5)
    claim.before_send()  # ... and the invocation dies while the create is in flight
    rig.cases.add(CUSTOM, at=rig.clock.now + 1)  # the create commits
    rig.clock.sleep(60)  # the lease has expired

    result = again(rig).linker.link(CUSTOM)

    assert result.recovered
    assert rig.cases.count(CUSTOM) == 1


def test_given_another_delivery_holds_the_lease_when_linked_then_busy_with_a_retry_delay(
    make: Callable[..., Rig], ledger: Ledger
) -> None:
    rig = make()
    ledger.begin(CUSTOM.identity, lease_until=rig.clock.now + 40)

    with pytest.raises(Busy) as raised:
        rig.linker.link(CUSTOM)

    assert raised.value.retry_after == pytest.approx(40)
    assert rig.cases.calls == []


def test_given_an_idempotency_key_reused_for_other_content_when_linked_then_permanent_conflict(
    make: Callable[..., Rig],
) -> None:
    rig = make()
    rig.linker.link(dataclasses.replace(CUSTOM, idempotency_key="k"))

    with pytest.raises(PermanentError) as raised:
        rig.linker.link(dataclasses.replace(COMMENT, idempotency_key="k"))

    assert raised.value.code == "IdempotencyKeyConflict"


# --- throttling, conflicts and permanent errors ---------------------------------------------------------


def test_given_three_throttles_when_created_then_retried_without_lookups_and_one_item(
    make: Callable[..., Rig],
) -> None:
    rig = make(["throttle"] * 3)

    result = rig.linker.link(CUSTOM)

    assert result.outcome == "created"
    assert rig.cases.calls == ["CreateRelatedItem"] * 4
    assert rig.counters.total(RETRIED) == 3


def test_given_throttled_until_handed_back_when_redelivered_then_nothing_is_in_doubt(
    make: Callable[..., Rig],
) -> None:
    rig = make(["throttle"] * 4)
    with pytest.raises(ThrottledError):
        rig.linker.link(CUSTOM)
    assert rig.guard.tripped

    again(rig).linker.link(CUSTOM)

    assert "SearchRelatedItems" not in rig.cases.calls  # a 429 never committed: no look-up needed


def test_given_the_breaker_tripped_when_another_item_follows_then_no_call(make: Callable[..., Rig]) -> None:
    rig = make()
    rig.guard.trip()

    with pytest.raises(CircuitOpenError):
        rig.linker.link(CUSTOM)
    assert rig.cases.calls == []


def test_given_a_case_being_merged_when_created_then_handed_back_at_once_with_a_delay(
    make: Callable[..., Rig],
) -> None:
    rig = make(["conflict"])

    with pytest.raises(CaseBusyError) as raised:
        rig.linker.link(CUSTOM)

    assert raised.value.retry_after == 30.0
    assert rig.cases.calls == ["CreateRelatedItem"]


def test_given_a_permanent_error_when_created_then_it_propagates_without_retry(
    make: Callable[..., Rig],
) -> None:
    rig = make(["not_found"])

    with pytest.raises(PermanentError):
        rig.linker.link(CUSTOM)
    assert rig.cases.calls == ["CreateRelatedItem"]


def test_backoff_is_full_jitter_exponential_and_capped() -> None:
    backoff = Backoff(throttle_base=1.0, other_base=0.05, cap=20.0)
    assert backoff.delay(1, throttled=True, rand=lambda: 1.0) == 1.0
    assert backoff.delay(3, throttled=True, rand=lambda: 1.0) == 4.0
    assert backoff.delay(10, throttled=True, rand=lambda: 1.0) == 20.0
    assert backoff.delay(2, throttled=False, rand=lambda: 0.5) == pytest.approx(0.05)


def test_create_attempts_below_one_are_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="create_attempts"):
        Linker(
            FakeCases(Clock()),
            ledger,
            BatchGuard(0.0),
            Counters(),
            resolve_case=lambda i: i,
            create_attempts=0,
        )
