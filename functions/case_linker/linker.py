"""Make sure a related item exists exactly once on its case, whatever happens to the messages that ask.

The ledger (ledger.py) remembers, per item identity, every create that may have committed. It alone decides
whether to look for the item before creating it; the receive count and message attributes play no part.
- Comments go through BatchCreateRelatedItem with a client token derived from the identity: a retried
  create gets the original item back from the service itself, so nothing needs to be looked for (unless
  the first attempt is older than we trust the service to remember tokens). The service also answers a
  reused token with its first *failure*: after an answer that the item was not created (a per-case
  failure), the ledger moves to the next token.
- Contacts: a contact ARN on the case is exact identity, so a contact is always looked for first (a flow
  may have linked it), on the case or on the case it was merged into.
- Other types have no client token. After a create that may have committed, the linker waits until it must
  have landed and search shows it (`Backoff.settle`), then looks for an item that can only be ours: same
  content, the same performer when the result shows one, associated between our first attempt and the settle
  time after our last, and claimed by no other identity. Every new item but a contact is claimed as made.
- A retry of a create that may have committed goes out as that create did (the ledger's `sentAs`: the
  performer and the reference id's spelling), so its client token and look-up match.
The create client makes one attempt per call (botocore does not retry it) and this loop retries instead:
hand-written because botocore cannot consult the ledger between attempts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from case_linker.cases import Created
from case_linker.errors import (
    AmbiguousError,
    CaseBusyError,
    OutOfTimeError,
    PermanentError,
    SettlingError,
    ThrottledError,
    TransientError,
)
from case_linker.ledger import AlreadyCreated, Claim, Ledger, PayloadConflict
from case_linker.mapping import RelatedItem
from case_linker.pacing import BatchGuard
from case_linker.telemetry import RETRIED, Counters

CREATED: Literal["created"] = "created"
ALREADY_LINKED: Literal["already_linked"] = "already_linked"
IDEMPOTENCY_KEY_CONFLICT = "IdempotencyKeyConflict"


class CasesPort(Protocol):
    def contact_on_case(self, domain_id: str, contact_arn: str, case_id: str) -> bool: ...

    def find_items(self, item: RelatedItem, *, since: float, until: float) -> list[str]: ...

    def create(self, item: RelatedItem, *, client_token: str, on_send: Callable[[], None]) -> Created: ...


@dataclass(frozen=True)
class LinkResult:
    """What link() did: ids and outcome only."""

    outcome: Literal["created", "already_linked"]
    type: str
    related_item_id: str | None = None
    # Created by an earlier attempt whose answer was lost, and found now.
    recovered: bool = False
    case_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "type": self.type,
            "relatedItemId": self.related_item_id,
            "recovered": self.recovered,
        }


@dataclass(frozen=True)
class Backoff:
    """Retry timing: full-jitter exponential backoff (as botocore's standard mode), and the settle rules."""

    throttle_base: float = 1.0
    other_base: float = 0.05
    cap: float = 20.0
    # A create that has not committed this long after it was sent is taken never to commit, and list and
    # search results are taken to show a write by then (neither is documented by AWS).
    settle: float = 60.0
    # Wait for the settle time inside the invocation when no longer than this; otherwise hand the record
    # back to come again when the time is up.
    settle_in_place: float = 5.0
    # How long the service is trusted to remember a client token (its retention is not documented).
    token_trust: float = 3600.0
    # Clock difference allowed between the function and Cases' associationTime.
    clock_skew: float = 2.0

    def delay(self, attempt: int, throttled: bool, rand: Callable[[], float] = random.random) -> float:
        base = self.throttle_base if throttled else self.other_base
        return rand() * min(base * 2 ** (attempt - 1), self.cap)


class Linker:
    """Creates each item at most once per attempt that could have committed, and never twice in all."""

    def __init__(
        self,
        cases: CasesPort,
        ledger: Ledger,
        guard: BatchGuard,
        counters: Counters,
        *,
        resolve_case: Callable[[RelatedItem], RelatedItem],
        create_attempts: int = 4,
        backoff: Backoff = Backoff(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if create_attempts < 1:
            raise ValueError("create_attempts must be at least 1")
        self._cases = cases
        self._ledger = ledger
        self._guard = guard
        self._counters = counters
        self._resolve_case = resolve_case
        self._create_attempts = create_attempts
        self._backoff = backoff
        self._clock = clock

    def link(self, item: RelatedItem) -> LinkResult:
        """Create `item` unless it exists. Raises PermanentError (dead-letter) or TransientError (hand back)."""
        try:
            claim = self._ledger.begin(item.identity, lease_until=self._clock() + self._guard.remaining())
        except AlreadyCreated as done:
            return LinkResult(ALREADY_LINKED, item.type, done.related_item_id, case_id=item.case_id)
        except PayloadConflict:
            raise PermanentError(
                IDEMPOTENCY_KEY_CONFLICT, "idempotencyKey was already used for a different related item"
            ) from None
        try:
            return self._ensure(item, claim)
        except BaseException:
            self._release(claim)
            raise

    def _ensure(self, item: RelatedItem, claim: Claim) -> LinkResult:
        item = _as_first_sent(item, claim)
        if claim.in_doubt:
            found = self._recover(item, claim)
            if found is not None:
                claim.created(found or None)
                return LinkResult(CREATED, item.type, found or None, recovered=True, case_id=item.case_id)
        elif self._contact_on_case(item):
            claim.created(None)
            return LinkResult(ALREADY_LINKED, item.type, case_id=item.case_id)
        return self._create(item, claim)

    def _recover(self, item: RelatedItem, claim: Claim) -> str | None:
        """After an earlier create that may have committed: '' or the id of our item if it is there."""
        first = claim.first_doubt if claim.first_doubt is not None else self._clock()
        if item.uses_client_token and self._clock() - first < self._backoff.token_trust:
            return None  # the create below reuses the token: the service returns the original item
        self._await_settled(claim)
        return self._find_own(item, claim)

    def _find_own(self, item: RelatedItem, claim: Claim) -> str | None:
        """'' or the id of the item an earlier attempt of ours made, None if none is on the case."""
        self._guard.check_breaker()
        if item.case_id is None:
            item = self._resolve_case(item)
        try:
            if item.contact_arn is not None and item.case_id is not None:
                return (
                    ""
                    if self._cases.contact_on_case(item.domain_id, item.contact_arn, item.case_id)
                    else None
                )
            # Our attempts could land from the first one's send until the settle time after the last one's.
            now = self._clock()
            first = claim.first_doubt if claim.first_doubt is not None else now
            last = claim.last_doubt if claim.last_doubt is not None else now
            skew = self._backoff.clock_skew
            since, until = first - skew, last + self._backoff.settle + skew
            for candidate in self._cases.find_items(item, since=since, until=until):
                if self._ledger.claim_item(candidate, item.identity):
                    return candidate
            return None
        except ThrottledError:
            self._guard.trip()  # botocore already spent its retries on this read
            raise

    def _contact_on_case(self, item: RelatedItem) -> bool:
        """Whether `item` is a Contact on its case or the one it was merged into (a flow may link it)."""
        if item.contact_arn is None or item.case_id is None:
            return False
        self._guard.check_breaker()
        try:
            return self._cases.contact_on_case(item.domain_id, item.contact_arn, item.case_id)
        except ThrottledError:
            self._guard.trip()
            raise

    def _await_settled(self, claim: Claim) -> None:
        """Return once every earlier attempt has had time to commit and show up in search."""
        last = claim.last_doubt if claim.last_doubt is not None else self._clock()
        remaining = last + self._backoff.settle - self._clock()
        if remaining <= 0:
            return
        if remaining <= self._backoff.settle_in_place:
            try:
                self._guard.sleep(remaining)
            except OutOfTimeError:
                pass
            else:
                return
        raise SettlingError(retry_after=remaining + random.random())  # noqa: S311 - jitter, not crypto

    def _create(self, item: RelatedItem, claim: Claim) -> LinkResult:
        attempt = 1
        while True:
            self._guard.check_breaker()
            token = item.identity.token(claim.token_generation)
            try:
                made = self._cases.create(
                    item, client_token=token, on_send=functools.partial(claim.before_send, _sent_as(item))
                )
            except (ThrottledError, CaseBusyError) as error:
                claim.rejected(token_spent=error.token_spent)
                failure: TransientError = error
            except AmbiguousError as error:
                claim.ambiguous()
                failure = error
            except PermanentError as error:
                claim.rejected(token_spent=error.token_spent)
                raise
            except TransientError as error:
                if not error.token_spent:
                    raise  # not sent: the breaker is open or the time is up
                # A per-case failure (INTERNAL_ERROR, a code we do not know): nothing was created, and the
                # service keeps that answer for the token, so the next attempt takes the next one.
                claim.rejected(token_spent=True)
                failure = error
            else:
                if self._taken_by_another(item, made.related_item_id):
                    twins = self._twins_item(item, claim, made)
                    if twins is not None:
                        return twins
                    # None left: make ours again, under the next token (the same one would only return that
                    # item).
                    claim.rejected(token_spent=item.uses_client_token)
                    if attempt >= self._create_attempts:
                        raise TransientError(
                            "ItemClaimedByAnother", "the new item was claimed by another request"
                        )
                    attempt += 1
                    continue
                claim.created(made.related_item_id or None)
                return LinkResult(CREATED, item.type, made.related_item_id or None, case_id=made.case_id)
            if isinstance(failure, CaseBusyError) or attempt >= self._create_attempts:
                break
            throttled = isinstance(failure, ThrottledError)
            self._guard.sleep(self._backoff.delay(attempt, throttled=throttled))
            self._counters.incr(RETRIED)
            attempt += 1
            if isinstance(failure, AmbiguousError) and not item.uses_client_token:
                self._await_settled(claim)
                found = self._find_own(item, claim)
                if found is not None:
                    claim.created(found or None)
                    return LinkResult(CREATED, item.type, found or None, recovered=True, case_id=item.case_id)
        if isinstance(failure, ThrottledError):
            self._guard.trip()
        raise failure

    def _taken_by_another(self, item: RelatedItem, related_item_id: str) -> bool:
        """Claim a new item that look-ups can find (any but a contact) for `item`'s identity.

        Without the claim, a request with the same content whose own create was lost would, looking for an
        item only it can have made, find this one unclaimed and take it for its own: two requests, one item.
        Comments too: past the time their client token is trusted, they are looked for the same way.
        True when such a look-up claimed it first.
        """
        if item.contact_arn is not None or not related_item_id:
            return False
        return not self._ledger.claim_item(related_item_id, item.identity)

    def _twins_item(self, item: RelatedItem, claim: Claim, made: Created) -> LinkResult | None:
        """Our new item was claimed first by another identity's look-up (before our claim, or while our claim
        write failed): take that identity's own item if it is on the case, unclaimed, in our window.

        That identity looked only once its own creates had settled, and took ours because it came first: one
        of its own may be there after it, which nobody would claim, so making another would leave the case
        with one item too many. None when there is none.
        """
        claim.ambiguous()  # our window now covers this create
        found = self._find_own(_on_case(item, made.case_id), claim)
        if not found:
            return None
        claim.created(found)
        return LinkResult(CREATED, item.type, found, recovered=True, case_id=made.case_id or item.case_id)

    def _release(self, claim: Claim) -> None:
        # Best effort: if it fails, the lease still ends with the invocation and pendingAt stays in doubt.
        with contextlib.suppress(TransientError):
            claim.release()


def _on_case(item: RelatedItem, case_id: str | None) -> RelatedItem:
    """`item` with the case id a create answered with, when it named its case by reference id alone."""
    if item.case_id is not None or case_id is None:
        return item
    return dataclasses.replace(item, case_id=case_id)


def _sent_as(item: RelatedItem) -> dict[str, Any] | None:
    """What of a create can differ between two messages for one item: the ledger keeps the latest's.

    None for a contact: it is looked for by its ARN, so how it went out never matters (_as_first_sent).
    """
    if item.contact_arn is not None:
        return None
    return {
        "performedBy": item.performed_by,
        "referenceId": item.reference_id if item.case_id is None else None,
    }


def _as_first_sent(item: RelatedItem, claim: Claim) -> RelatedItem:
    """`item` as an earlier attempt that may have committed sent it: its performer (PERFORMED_BY may have been
    redeployed since) and the reference id as spelled then (reference ids ignore case). Its client token and
    look-ups then match that attempt's, whichever message asks for the item now. Not for a contact (found by its
    ARN), nor when nothing earlier can have committed (it goes out as asked now)."""
    sent = claim.sent_as
    if sent is None or not claim.in_doubt or item.contact_arn is not None:
        return item
    changes: dict[str, Any] = {}
    if "performedBy" in sent:
        changes["performed_by"] = sent["performedBy"]
    if item.case_id is None and sent.get("referenceId"):
        changes["reference_id"] = str(sent["referenceId"])
    return dataclasses.replace(item, **changes)
