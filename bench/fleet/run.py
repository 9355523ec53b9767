"""One simulated scenario: a fleet of execution environments draining a queue against the account quota.

The event source mapping stand-in gives each of `environments` slots a batch as soon as it is idle and
records are visible (gathering for the batching window when fewer than a batch are), replaces environments
that reached their lifetime with fresh ones (a cold start: new pacing state, full local buckets), and deletes
or hands back records as the invocation reports them.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from case_linker.budget import BudgetConfig, SharedBudget
from case_linker.pacing import Pacer
from case_linker.redelivery import capacity_delay, requeue_due

from bench.fleet.consumers import (
    CREATE,
    GB_PER_ENVIRONMENT,
    LIST,
    Environment,
    LinkerEnvironment,
    Outcome,
    PlainEnvironment,
    Timing,
)
from bench.fleet.engine import Sim, Task
from bench.fleet.world import AccountQuota, CoTenant, DynamoDBModel, Message, Queue, SimStore
from infra.config import CaseLinkerConfig, ConfigError

Consumer = Literal["shared", "static", "adaptive", "plain"]
CONSUMERS: tuple[Consumer, ...] = ("shared", "static", "adaptive", "plain")
CONSUMER_NAMES = {
    "shared": "case-linker, shared budget (issue 15)",
    "static": "case-linker today: static split",
    "adaptive": "plain consumer, botocore adaptive mode",
    "plain": "plain consumer, botocore standard mode",
}
INSTANCE_ARN = "arn:aws:connect:us-east-1:123456789012:instance/00000000-0000-0000-0000-000000000000"

# Prices (us-east-1, on demand, public price lists): Lambda arm64 per GB-second and per request, DynamoDB
# on-demand per write request unit (the budget's conditional UpdateItems, failed ones included).
LAMBDA_GB_SECOND_USD = 0.0000133334
LAMBDA_REQUEST_USD = 0.20 / 1e6
DYNAMODB_WRITE_USD = 0.625 / 1e6


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """What to simulate. Arrivals: a backlog published at time 0, plus `arrival_rate` events/s after."""

    name: str
    environments: int
    quota: float  # requests/s per API
    burst: float | None = None  # None: 5 s of the quota (AWS's default 2/s burst 10), at least 10
    backlog: int = 0
    arrival_rate: float = 0.0
    arrival_until: float = 0.0
    bursty_arrivals: bool = False  # arrivals in 5 s waves at twice the rate, then 5 s of none
    cotenant: CoTenant | None = None
    churn_s: float | None = None  # mean lifetime of an execution environment (None: they live forever)
    dynamodb: DynamoDBModel = field(default_factory=DynamoDBModel)
    batch_size: int = 10
    batching_window: float | None = None  # None: the stack's
    horizon: float = 3600.0  # give up after this many simulated seconds
    budget: tuple[tuple[str, float], ...] = ()  # BudgetConfig overrides (experiments)
    seed: int = 1

    @property
    def account_burst(self) -> float:
        return self.burst if self.burst is not None else max(10.0, 5.0 * self.quota)

    def stack(self) -> CaseLinkerConfig:
        """The stack's settings for this quota and concurrency (raises ConfigError when not deployable)."""
        return CaseLinkerConfig(
            cases_domain_id="sim",
            connect_instance_arn=INSTANCE_ARN,
            max_concurrency=self.environments,
            cases_requests_per_second=self.quota,
            cases_burst=self.account_burst,
            batch_size=self.batch_size,
        )


@dataclass
class Result:
    """What one consumer did in one scenario. Shares are fractions; times simulated seconds."""

    scenario: str
    consumer: str
    environments: int
    quota: float
    burst: float
    cotenant: str
    events: int
    linked: int
    duplicates: int
    dead_lettered: int
    outstanding: int
    drain_s: float | None  # first publish to the last record deleted (None: not drained)
    span_s: float  # first fleet call to the last successful CreateRelatedItem
    goodput_over_remaining: float  # distinct items / span / (quota - what the co-tenant alone gets through)
    throttled_share: float  # CreateRelatedItem 429s / attempts
    list_throttled_share: float
    handed_back: int
    handed_back_after_10s: int
    requeued: int  # hand-backs sent again as new messages near maxReceiveCount (never to the DLQ)
    max_burst_used: float  # max over intervals [a, b] of the fleet's sends of one API - quota * (b - a)
    fleet_alone_refused: int  # the fleet's sends replayed alone against the account's bucket: 429s
    cotenant_refused_share: float | None
    cotenant_refused_alone: float | None
    cotenant_refused_rise_points: float | None
    dynamodb_requests_per_call: float | None
    max_fleet_rate: float | None  # the highest AIMD rate any environment saw (shared budget only)
    degraded: int
    fallback_calls: int
    lambda_gb_s_per_link: float
    cost_per_million_links_usd: float
    latency_p50_s: float | None  # publish to item on the case
    latency_p95_s: float | None
    cold_starts: int
    wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Fleet:
    """The event source mapping and the execution environments it runs."""

    def __init__(
        self,
        sim: Sim,
        scenario: Scenario,
        queue: Queue,
        make_environment: Callable[[], Environment],
        *,
        batching_window: float,
        cold_start: float,
        capacity_delay_cap: float,
        rng: random.Random,
    ) -> None:
        self._sim = sim
        self._scenario = scenario
        self._queue = queue
        self._make = make_environment
        self._window = batching_window
        self._cold_start = cold_start
        self._capacity_delay_cap = capacity_delay_cap
        self._rng = rng
        self.environments: list[Environment] = []
        self.cold_starts = 0
        self.stopped = False
        # case-linker since issue 15: a capacity hand-back comes again after a short, jittered delay and is
        # sent again as a new message near maxReceiveCount. False: the visibility timeout, as before.
        self.short_handback = False

    def _hand_back(self, message: Message) -> None:
        if not self.short_handback:
            self._queue.hand_back(message)  # back after the queue's visibility timeout
            return
        # processor._hand_back: every hand-back here is for want of capacity (throttled, breaker, no slot).
        count = message.receive_count
        delay = capacity_delay(count, self._capacity_delay_cap, self._rng.random)
        if requeue_due(count, self._queue.max_receive_count):
            self._queue.requeue(message, delay)
        else:
            self._queue.hand_back(message, delay)

    def start(self) -> None:
        for _ in range(self._scenario.environments):
            self._sim.spawn(self._slot())

    def _slot(self) -> Task:
        sim, queue = self._sim, self._queue
        environment: Environment | None = None
        retire_at = math.inf
        while not self.stopped:
            if queue.visible() == 0:
                next_at = queue.next_visible_at()
                yield 0.25 if next_at is None else min(0.25, max(0.001, next_at - sim.clock()))
                continue
            batch = queue.receive(self._scenario.batch_size)
            gathered_until = sim.clock() + self._window
            while len(batch) < self._scenario.batch_size and sim.clock() < gathered_until:
                yield min(0.1, gathered_until - sim.clock())
                batch.extend(queue.receive(self._scenario.batch_size - len(batch)))
            if not batch:
                continue
            if environment is None or sim.clock() >= retire_at:
                environment = self._make()
                self.environments.append(environment)
                self.cold_starts += 1
                churn = self._scenario.churn_s
                retire_at = sim.clock() + (self._rng.expovariate(1 / churn) if churn else math.inf)
                environment.stats.busy_seconds += self._cold_start
                yield self._cold_start
            outcome: Outcome = yield from environment.invoke(batch)
            for message in outcome.deleted:
                queue.delete(message)
            for message in outcome.handed_back:
                self._hand_back(message)


def _arrivals(sim: Sim, queue: Queue, scenario: Scenario, rng: random.Random) -> Task:
    while sim.clock() < scenario.arrival_until:
        rate = scenario.arrival_rate
        if scenario.bursty_arrivals:
            if (sim.clock() // 5.0) % 2 == 1:
                yield 5.0 - sim.clock() % 5.0
                continue
            rate *= 2
        yield rng.expovariate(rate)
        queue.publish()


def simulate(scenario: Scenario, consumer: Consumer) -> Result:
    """Run `consumer` through `scenario`; raises ConfigError when the stack would refuse the settings."""
    stack = scenario.stack()
    rng = random.Random(scenario.seed)
    sim = Sim()
    account = AccountQuota(sim, scenario.quota, scenario.account_burst)
    queue = Queue(
        sim, visibility_timeout=stack.visibility_timeout_seconds, max_receive_count=stack.max_receive_count
    )
    timing = Timing(function_timeout=float(stack.function_timeout_seconds))
    store = SimStore(sim, scenario.dynamodb, random.Random(scenario.seed + 1))
    budgets: list[SharedBudget] = []
    overrides: dict[str, Any] = dict(scenario.budget)

    def make_environment() -> Environment:
        env_rng = random.Random(rng.random())
        if consumer == "shared":
            fallback = Pacer(stack.cases_max_rps, stack.cases_burst / stack.max_concurrency, clock=sim.clock)
            shared = SharedBudget(
                store,
                BudgetConfig(rate=scenario.quota, burst=scenario.account_burst, **overrides),
                fallback,
                clock=sim.clock,
                wall=sim.clock,
                caller=lambda: sim.current,
                rand=env_rng.random,
            )
            budgets.append(shared)
            return LinkerEnvironment(sim, account, shared, timing, env_rng)
        if consumer == "static":
            return LinkerEnvironment(
                sim,
                account,
                _Static(Pacer(stack.cases_max_rps, stack.cases_max_burst, clock=sim.clock)),
                timing,
                env_rng,
            )
        return PlainEnvironment(sim, account, timing, env_rng, adaptive_mode=consumer == "adaptive")

    fleet = Fleet(
        sim,
        scenario,
        queue,
        make_environment,
        batching_window=(
            scenario.batching_window
            if scenario.batching_window is not None
            else float(stack.batching_window_seconds)
        ),
        cold_start=timing.cold_start,
        capacity_delay_cap=timing.capacity_delay_cap,
        rng=random.Random(scenario.seed + 2),
    )
    fleet.short_handback = consumer == "shared"
    queue.publish(scenario.backlog)
    if scenario.arrival_rate > 0:
        sim.spawn(_arrivals(sim, queue, scenario, random.Random(scenario.seed + 3)))
    last_arrival = max(scenario.arrival_until, 0.0)
    horizon = scenario.horizon
    if scenario.cotenant is not None:
        for index, operation in enumerate((CREATE, LIST)):
            cotenant_rng = random.Random(scenario.seed + 10 + index)
            sim.spawn(scenario.cotenant.run(sim, account, operation, cotenant_rng, horizon))
    fleet.start()
    rates: list[float] = []
    if budgets is not None and consumer == "shared":
        sim.spawn(_watch_rates(sim, budgets, rates, horizon))

    def drained() -> bool:
        return sim.clock() >= last_arrival and queue.outstanding() == 0

    sim.run(horizon, stop=drained)
    fleet.stopped = True
    return _result(scenario, consumer, sim, account, queue, fleet, store, budgets, rates)


class _Static:
    """Today's pacing: the per-environment Pacer; nothing is done with the feedback."""

    def __init__(self, pacer: Pacer) -> None:
        self._pacer = pacer

    def reserve(self, operation: str, not_after: float = math.inf) -> float:
        return self._pacer.reserve(operation, not_after)

    def record(self, operation: str, throttled: bool) -> None:
        pass


def _watch_rates(sim: Sim, budgets: list[SharedBudget], rates: list[float], until: float) -> Task:
    while sim.clock() < until:
        yield 1.0
        seen = [rate for budget in budgets if (rate := budget.fleet_rate(CREATE)) is not None]
        if seen:
            rates.append(max(seen))


def burst_used(sends: list[float], rate: float) -> float:
    """max over pairs i <= j of (j - i + 1) - rate * (s_j - s_i): the burst the sends needed (O(n))."""
    best, lowest = 0.0, math.inf
    for j, at in enumerate(sends):
        lowest = min(lowest, j - rate * at)
        best = max(best, (j + 1) - rate * at - lowest)
    return best


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def _result(
    scenario: Scenario,
    consumer: Consumer,
    sim: Sim,
    account: AccountQuota,
    queue: Queue,
    fleet: Fleet,
    store: SimStore,
    budgets: list[SharedBudget],
    rates: list[float],
) -> Result:
    create = account.logs.get(CREATE)
    listing = account.logs.get(LIST)
    messages = queue.messages
    linked = sum(1 for m in messages if m.items > 0)
    duplicates = sum(m.items - 1 for m in messages if m.items > 1)
    fleet_sends = create.fleet_sends if create else []
    accepted = create.fleet_accepted_at if create else []
    all_fleet = sorted(fleet_sends + (listing.fleet_sends if listing else []))
    span = (accepted[-1] - all_fleet[0]) if accepted and all_fleet else 0.0
    first_call = all_fleet[0] if all_fleet else 0.0
    refused_share, alone, rise, cotenant_rate = _cotenant(scenario, account, first_call, accepted)
    remaining = scenario.quota - cotenant_rate
    goodput = (linked / span / remaining) if span > 0 else 0.0
    deleted = [m.deleted_at for m in messages if m.deleted_at is not None]
    drain = max(deleted) if deleted and queue.outstanding() == 0 else None
    cases_calls = len(fleet_sends) + (len(listing.fleet_sends) if listing else 0)
    gb_s = sum(env.stats.busy_seconds for env in fleet.environments) * GB_PER_ENVIRONMENT
    invocations = sum(env.stats.invocations for env in fleet.environments)
    cost = gb_s * LAMBDA_GB_SECOND_USD + invocations * LAMBDA_REQUEST_USD
    cost += store.requests * DYNAMODB_WRITE_USD
    latencies = [m.first_item_at - m.published for m in messages if m.first_item_at is not None]
    return Result(
        scenario=scenario.name,
        consumer=CONSUMER_NAMES[consumer],
        environments=scenario.environments,
        quota=scenario.quota,
        burst=scenario.account_burst,
        cotenant=_describe(scenario.cotenant),
        events=len(messages),
        linked=linked,
        duplicates=duplicates,
        dead_lettered=queue.dead_lettered,
        outstanding=queue.outstanding(),
        drain_s=drain,
        span_s=span,
        goodput_over_remaining=goodput,
        throttled_share=(create.fleet_refused / len(fleet_sends)) if create and fleet_sends else 0.0,
        list_throttled_share=(
            listing.fleet_refused / len(listing.fleet_sends) if listing and listing.fleet_sends else 0.0
        ),
        handed_back=len(queue.handed_back),
        handed_back_after_10s=sum(1 for at in queue.handed_back if at > first_call + 10.0),
        requeued=queue.requeued,
        max_burst_used=max(
            burst_used(fleet_sends, scenario.quota),
            burst_used(listing.fleet_sends, scenario.quota) if listing else 0.0,
        ),
        fleet_alone_refused=sum(
            _refused_alone(log.fleet_sends, scenario.quota, scenario.account_burst)
            for log in account.logs.values()
        ),
        cotenant_refused_share=refused_share,
        cotenant_refused_alone=alone,
        cotenant_refused_rise_points=rise,
        dynamodb_requests_per_call=(store.requests / cases_calls)
        if consumer == "shared" and cases_calls
        else None,
        max_fleet_rate=max(rates) if rates else None,
        degraded=sum(b.stats.degraded for b in budgets),
        fallback_calls=sum(b.stats.fallback_calls for b in budgets),
        lambda_gb_s_per_link=gb_s / linked if linked else 0.0,
        cost_per_million_links_usd=cost / linked * 1e6 if linked else 0.0,
        latency_p50_s=_percentile(sorted(latencies), 0.5),
        latency_p95_s=_percentile(sorted(latencies), 0.95),
        cold_starts=fleet.cold_starts,
    )


def _describe(cotenant: CoTenant | None) -> str:
    if cotenant is None:
        return "none"
    return f"{cotenant.share:.0%} {'bursty' if cotenant.bursty else 'steady'}"


def _cotenant(
    scenario: Scenario, account: AccountQuota, first_call: float, accepted: list[float]
) -> tuple[float | None, float | None, float | None, float]:
    """The co-tenant's refused share while the fleet drained and alone (the same calls, no fleet), and
    the rate (per API) it gets through alone: what it leaves of the quota is the fleet's remaining capacity."""
    if scenario.cotenant is None or not accepted:
        return None, None, None, 0.0
    start, end = first_call, accepted[-1]
    with_fleet = _refused_share(account, start, end)
    sim = Sim()
    alone = AccountQuota(sim, scenario.quota, scenario.account_burst)
    for index, operation in enumerate((CREATE, LIST)):
        sim.spawn(
            scenario.cotenant.run(sim, alone, operation, random.Random(scenario.seed + 10 + index), end)
        )
    sim.run(end)
    log = alone.logs[CREATE]
    through = sum(1 for at in log.cotenant_sends if start <= at <= end) - sum(
        1 for at in log.cotenant_refused_at if start <= at <= end
    )
    alone_share = _refused_share(alone, start, end)
    rate = through / (end - start) if end > start else 0.0
    return with_fleet, alone_share, (with_fleet - alone_share) * 100, rate


def _refused_share(account: AccountQuota, start: float, end: float) -> float:
    sends = refused = 0
    for log in account.logs.values():
        sends += sum(1 for at in log.cotenant_sends if start <= at <= end)
        refused += sum(1 for at in log.cotenant_refused_at if start <= at <= end)
    return refused / sends if sends else 0.0


def _refused_alone(sends: list[float], rate: float, burst: float) -> int:
    """429s these sends would get from a bucket of `rate` and `burst`, full at the start, used by no one else."""
    tokens, last, refused = burst, 0.0, 0
    for at in sends:
        tokens = min(burst, tokens + (at - last) * rate)
        last = at
        if tokens >= 1.0 - 1e-9:
            tokens -= 1.0
        else:
            refused += 1
    return refused


def deployable(scenario: Scenario) -> bool:
    try:
        scenario.stack()
    except ConfigError:
        return False
    return True
