"""Settings of the emulator: quotas, latency, fault injection, and the timing of AWS behaviour that is not
read-after-write (late commits, search lag, merges, client-token retention)."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from emulator.faults import Faults

__all__ = ["DEFAULT_QUOTAS", "TOKEN_IN_FLIGHT_MODES", "EmulatorConfig", "Faults", "Quota", "TokenInFlight"]


@dataclass(frozen=True)
class Quota:
    """A token bucket: `rate` requests per second refilled, at most `burst` at once."""

    rate: float
    burst: int


# Per-account, per-Region rates. Documented by AWS: CreateRelatedItem, ListCasesForContact, SearchRelatedItems
# 2/s burst 10; GetCase 4/s burst 15; Connect GetContactAttributes and DescribeContact 10/s (burst 20 assumed);
# SearchContacts 0.5/s burst 1 (public figures); Connect's default for other APIs 2/s burst 5.
# Assumed, no published figure: BatchCreateRelatedItem (authorised as cases:CreateRelatedItem) gets its own
# bucket at CreateRelatedItem's 2/s burst 10; SearchCases, SearchAllRelatedItems, StartMergeCases and
# GetMergeCasesStatus get the Cases read figure 2/s burst 10. CreateCase, CreateDomain, GetDomain and
# ListDomains are not throttled unless configured.
DEFAULT_QUOTAS: dict[str, Quota] = {
    "CreateRelatedItem": Quota(rate=2.0, burst=10),
    "BatchCreateRelatedItem": Quota(rate=2.0, burst=10),
    "ListCasesForContact": Quota(rate=2.0, burst=10),
    "SearchRelatedItems": Quota(rate=2.0, burst=10),
    "SearchAllRelatedItems": Quota(rate=2.0, burst=10),
    "SearchCases": Quota(rate=2.0, burst=10),
    "StartMergeCases": Quota(rate=2.0, burst=10),
    "GetMergeCasesStatus": Quota(rate=2.0, burst=10),
    "GetCase": Quota(rate=4.0, burst=15),
    "GetContactAttributes": Quota(rate=10.0, burst=20),
    "DescribeContact": Quota(rate=10.0, burst=20),
    "SearchContacts": Quota(rate=0.5, burst=1),
    "ListAssociatedContacts": Quota(rate=2.0, burst=5),
    "DescribeInstance": Quota(rate=2.0, burst=5),
    "ListIntegrationAssociations": Quota(rate=2.0, burst=5),
}


class TokenInFlight(enum.StrEnum):
    """What a request gets when its client token belongs to a request that has not committed yet."""

    WAIT = "wait"  # block until that request commits (then answer its result) or fails (then run itself)
    CONFLICT = "conflict"  # ConflictException (409) at once, which the caller retries later


TOKEN_IN_FLIGHT_MODES = tuple(mode.value for mode in TokenInFlight)

_WEEK_S = 7 * 24 * 3600.0


@dataclass
class EmulatorConfig:
    """Everything that shapes the emulator's behaviour; change it live with `Emulator.configure`.

    `quotas` is merged over DEFAULT_QUOTAS; map an operation to None to leave it unthrottled.
    `quota_scale` multiplies every rate (not the burst), to run load tests faster than AWS would allow.
    `after_commit_share` is the fraction of dropped/slow responses that happen after the state change
    was committed (a lost response). `seed` seeds the fault RNG.
    """

    region: str = "us-east-1"
    account_id: str = "123456789012"
    throttling: bool = True
    quotas: dict[str, Quota | None] = field(default_factory=dict)
    quota_scale: float = 1.0
    latency_s: float = 0.0
    op_latency_s: dict[str, float] = field(default_factory=dict)
    faults: dict[str, Faults] = field(default_factory=dict)
    slow_response_s: float = 10.0
    after_commit_share: float = 0.5
    seed: int | None = None
    max_related_items_per_case: int = 200
    # Real AWS rejects unsigned requests; tests that speak raw HTTP can turn this off.
    require_auth: bool = True
    # When True, CreateRelatedItem of a Contact needs the contact to be known (put_contact), as AWS
    # describes the contact first. Off by default so tests need not seed every contact.
    require_known_contact: bool = False
    # A late commit lands this long after its response was lost: longer than any client's settle delay.
    late_commit_s: float = 3.0
    # A late commit whose request carries a client token claims the token when it arrives, so a retry waits
    # for it (token_in_flight). False: the token is only seen at commit time, so a retry can commit first
    # and the late commit then finds the token taken and creates nothing.
    late_commit_claims_token: bool = True
    token_in_flight: str = "wait"  # noqa: S105 - a mode name, not a secret
    # SearchRelatedItems results carry the item's performedBy (optional in the API's model): False leaves it out.
    search_shows_performed_by: bool = True
    # How long a committed client token is remembered; None: forever (AWS documents no retention).
    client_token_ttl_s: float | None = None
    # ListCasesForContact, SearchRelatedItems, SearchAllRelatedItems and SearchCases see a write this long
    # after it committed (AWS documents no read-after-write consistency for them).
    search_lag_s: float = 0.0
    # How long a merge started by StartMergeCases (or Emulator.merge_cases) runs.
    merge_duration_s: float = 2.0
    # Cases whose related-item creates (CreateRelatedItem, BatchCreateRelatedItem naming them) all answer a
    # 500 and commit nothing: a failure that outlasts every delivery of a record. Throttling still comes first.
    failing_cases: frozenset[str] = frozenset()
    # Contact attribute keys configured as searchable (SearchContacts' SearchableContactAttributes).
    searchable_contact_attributes: tuple[str, ...] = ()
    # SearchContacts limits. AWS documents them for the console (windows up to 8 weeks, 2 years back,
    # the first 10,000 results), not for the API; the emulator enforces them. None lifts one.
    contact_search_max_range_s: float | None = 8 * _WEEK_S
    contact_search_lookback_s: float | None = 104 * _WEEK_S
    contact_search_max_results: int | None = 10_000
    # Whether a search past that limit reports TotalCount as the limit (True) or as every match (False); the API
    # documents neither.
    contact_search_total_capped: bool = False
    # Whether a search's last page (the end of its matches, or of the results it serves) carries a NextToken that
    # leads to an empty page; the API does not say that it never does.
    contact_search_trailing_empty_page: bool = False

    def __post_init__(self) -> None:
        if self.token_in_flight not in TOKEN_IN_FLIGHT_MODES:
            raise ValueError(f"token_in_flight must be one of {', '.join(TOKEN_IN_FLIGHT_MODES)}")
        for name in ("late_commit_s", "search_lag_s", "merge_duration_s", "slow_response_s", "latency_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0")
        if self.client_token_ttl_s is not None and not self.client_token_ttl_s >= 0:
            raise ValueError("client_token_ttl_s must be >= 0, or None for forever")
        self.searchable_contact_attributes = tuple(self.searchable_contact_attributes)

    def quota_for(self, operation: str) -> Quota | None:
        """The effective quota of an operation, or None when it is not throttled."""
        if not self.throttling:
            return None
        quota = {**DEFAULT_QUOTAS, **self.quotas}.get(operation)
        if quota is None:
            return None
        return Quota(rate=quota.rate * self.quota_scale, burst=quota.burst)
