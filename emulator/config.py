"""Settings of the emulator: quotas, latency and fault injection."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Quota:
    """A token bucket: `rate` requests per second refilled, at most `burst` at once."""

    rate: float
    burst: int


@dataclass(frozen=True)
class Faults:
    """Probabilities (0..1) of injected failures for one operation, drawn per request."""

    server_error: float = 0.0
    drop_connection: float = 0.0
    slow_response: float = 0.0


# AWS's default per-account, per-Region rates (FACTS.md). Connect documents 10/s for the contact APIs but no
# burst: 20 is an assumption. CreateCase/CreateDomain/GetDomain/ListDomains are not throttled unless configured.
DEFAULT_QUOTAS: dict[str, Quota] = {
    "CreateRelatedItem": Quota(rate=2.0, burst=10),
    "ListCasesForContact": Quota(rate=2.0, burst=10),
    "SearchRelatedItems": Quota(rate=2.0, burst=10),
    "GetCase": Quota(rate=4.0, burst=15),
    "GetContactAttributes": Quota(rate=10.0, burst=20),
    "DescribeContact": Quota(rate=10.0, burst=20),
}


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

    def quota_for(self, operation: str) -> Quota | None:
        """The effective quota of an operation, or None when it is not throttled."""
        if not self.throttling:
            return None
        quota = {**DEFAULT_QUOTAS, **self.quotas}.get(operation)
        if quota is None:
            return None
        return Quota(rate=quota.rate * self.quota_scale, burst=quota.burst)
