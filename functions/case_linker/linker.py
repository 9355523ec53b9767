"""Make sure a related item exists exactly once on its case.

CreateRelatedItem has no client token, so a retry after a lost response would duplicate the item. The
create client therefore makes one attempt per call (botocore does not retry it) and this loop retries
instead: hand-written because botocore cannot look for the item between attempts. Throttling (429) means
nothing was committed, so it is retried directly; after an ambiguous failure (dropped connection, timeout,
5xx) the next attempt first looks for the item.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from case_linker.errors import AmbiguousError, ThrottledError, TransientError
from case_linker.mapping import RelatedItem
from case_linker.pacing import BatchGuard
from case_linker.telemetry import RETRIED, Counters

CREATED: Literal["created"] = "created"
ALREADY_LINKED: Literal["already_linked"] = "already_linked"


class CasesPort(Protocol):
    def contact_on_case(self, domain_id: str, contact_arn: str, case_id: str) -> bool: ...

    def find_item(self, item: RelatedItem) -> str | None: ...

    def create(self, item: RelatedItem) -> str: ...


@dataclass(frozen=True)
class LinkResult:
    """What ensure() did. Stored as the idempotency record's response: ids and outcome only."""

    outcome: Literal["created", "already_linked"]
    type: str
    related_item_id: str | None = None
    recovered: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "type": self.type,
            "relatedItemId": self.related_item_id,
            "recovered": self.recovered,
        }


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff, as botocore's standard mode computes it."""

    throttle_base: float = 1.0
    other_base: float = 0.05
    cap: float = 20.0
    # After an ambiguous failure, give a create still in flight on the server time to land before looking.
    settle: float = 1.0

    def delay(self, attempt: int, throttled: bool, rand: Callable[[], float] = random.random) -> float:
        base = self.throttle_base if throttled else self.other_base
        return rand() * min(base * 2 ** (attempt - 1), self.cap)


class Linker:
    """Looks before it creates, and creates at most once per attempt that could have committed."""

    def __init__(
        self,
        cases: CasesPort,
        guard: BatchGuard,
        counters: Counters,
        *,
        create_attempts: int = 4,
        backoff: Backoff = Backoff(),
    ) -> None:
        if create_attempts < 1:
            raise ValueError("create_attempts must be at least 1")
        self._cases = cases
        self._guard = guard
        self._counters = counters
        self._create_attempts = create_attempts
        self._backoff = backoff

    def ensure(self, item: RelatedItem, *, redelivered: bool) -> LinkResult:
        """Create `item` unless it is already there.

        Contacts are always looked up first (a flow may have linked them). Other types are looked up when
        the message was delivered before: the earlier delivery may have created the item and then failed.
        """
        if item.type == "Contact" or redelivered:
            found = self._existing(item)
            if found is not None:
                return LinkResult(ALREADY_LINKED, item.type, found or None)
        return self._create(item)

    def _existing(self, item: RelatedItem) -> str | None:
        """'' or the item's id when it exists (ListCasesForContact gives no id), None when it does not."""
        self._guard.check_breaker()
        try:
            if item.contact_arn is not None:
                return (
                    ""
                    if self._cases.contact_on_case(item.domain_id, item.contact_arn, item.case_id)
                    else None
                )
            return self._cases.find_item(item)
        except ThrottledError:
            self._guard.trip()  # botocore already spent its retries on this read
            raise

    def _create(self, item: RelatedItem) -> LinkResult:
        attempt = 1
        while True:
            self._guard.check_breaker()
            try:
                return LinkResult(CREATED, item.type, self._cases.create(item) or None)
            except (ThrottledError, AmbiguousError) as error:
                failure: TransientError = error
            if attempt >= self._create_attempts:
                break
            throttled = isinstance(failure, ThrottledError)
            delay = self._backoff.delay(attempt, throttled=throttled)
            self._guard.sleep(delay if throttled else max(delay, self._backoff.settle))
            self._counters.incr(RETRIED)
            attempt += 1
            if isinstance(failure, AmbiguousError):
                found = self._existing(item)
                if found is not None:
                    return LinkResult(CREATED, item.type, found or None, recovered=True)
        if isinstance(failure, ThrottledError):
            self._guard.trip()
        raise failure
