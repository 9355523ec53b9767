"""One Cases-call budget per API, shared by every execution environment of the function (issue 15).

The account quota (CreateRelatedItem 2 requests/s, burst 10 by default, per account, Region and API) is one
bucket that every caller drains. A fixed share per environment (quota / maxConcurrency) wastes the shares of
idle environments and knows nothing of other callers. Here the whole fleet draws from one schedule per API,
kept in the function's DynamoDB table, and slows down together when Cases throttles.

How it works
- Schedule: one item per operation, `id = case-linker#budget#v2#<operation>`, holds a GCRA schedule (the
  token bucket written as a time): `tat`, the moment up to which calls are already promised. At time t the
  bucket holds min(burst, (t - tat) * quota) tokens. Taking k tokens moves `tat` from max(tat, t - burst/quota)
  to that plus k/quota, in ONE conditional UpdateItem (`tat = tat + :d` when the bucket is not full; a
  conditional reset when it is). The k calls get the k consecutive slots; the fleet's calls in any interval
  of t seconds therefore never exceed burst + rate * t, whatever the number of environments.
- The schedule's clock (FleetClock): times on the schedule are not wall-clock seconds but seconds of a clock
  that runs at the fleet's current rate over the quota: the wall clock itself until the first decrease, slower
  after one, and back to full speed as the rate grows back. An environment turns a slot into a wall time when
  it hands the slot to a caller, so slots promised far ahead go out at the rate of their own time, not at the
  rate of the moment they were promised (v1 stored wall times: a backlog promised at a low rate kept it for
  as long as the promises lasted).
- Leases: an environment takes up to `max_lease` slots per request, so the budget costs one DynamoDB request
  per several Cases calls. The lease size follows demand: it doubles while every slot is used and falls back
  to what was used when slots expire, so a trickle costs one slot per call and a backlog ten. A slot not used
  within `lease_ttl_s` of its time is dropped: an idle environment never sits on the fleet's budget.
- AIMD: the item also holds the fleet's rate after the last decrease, when it happened (`since`) and the
  schedule's clock then (`vsince`). The rate grows back after each decrease (`increase_per_s` of the quota per
  second, a slope that doubles every `increase_doubling_s`; computed by every reader from `since`, so growth
  costs no writes) and is never above the configured quota. A throttled call (429) multiplies it by
  `decrease_factor` once per epoch: the decrease is conditional on the epoch under which the throttled call's
  slot was granted, so one congestion event is one decrease however many environments saw it, as in TCP. The
  schedule's clock slows down with the rate, so every slot promised and not yet handed out stretches; the
  environment that was throttled also drops its own remaining slots and has its callers ask again.
- Alert: an environment hears of a decrease only from the store, at its next lease or its own refusal, and a
  busy one holds slots up to ten seconds ahead. For a while after any decrease it knows of (`alert_window_s`),
  it reads the item again (one GetItem) before handing out or sending a slot when its last answer is old
  (`refresh_after_s`, `refresh_calls`), and sends the slot on the newer clock; and it leases no slot further
  ahead than `alert_horizon_s` (`horizon_calls`), so that the next decrease reaches the calls within seconds.
  Nothing is read and nothing waits while nothing is throttled. Decreases are at least `decrease_gap_s` apart.
- Background work (sweeper, backfill, replays) first takes its slots from a second schedule that runs at
  `background_share` of the fleet's current rate, then from the main one: live contacts keep at least
  1 - background_share of the budget and background work is never starved.

Failing safe
- Every store call has a short timeout (the caller's DynamoDB client). When it fails, or two answers in a row
  are slower than `slow_call_s`, the environment uses its own Pacer (the static share, quota /
  maxConcurrency) and then tries the shared budget again: degrade, never stop. Local pacing and the schedule
  must not run side by side beyond the quota, so (1) coming off the schedule, the first local call waits until
  the others must have noticed too (the slots promised as last seen, plus two of their leases: at most
  `degraded_for_s` / 2), and (2) every environment rejoins at the same moment, the wall clock's
  next-but-one multiple of `degraded_for_s` (within `rejoin_spread_s`), without the burst for a while.
- Only operation names and numbers are stored: no customer data.

Hand-written because neither botocore (its `adaptive` mode limits one client in one process) nor the
Powertools layer shares a rate across processes.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from case_linker.errors import OutOfTimeError, error_code
from case_linker.pacing import Clock, Pacer

KEY_PREFIX = "case-linker#budget#v2#"
# Set (per record: each runs in its own copy of the context) for work that may wait for live contacts:
# replays, the sweeper's and backfill's messages. The pacing hook passes it to reserve(background=...).
BACKGROUND_WORK: ContextVar[bool] = ContextVar("case_linker_background_work", default=False)
BACKGROUND_SUFFIX = "#background"
# Stands for "no deadline" in a condition (DynamoDB numbers cannot be infinite): year 2286.
_FAR = 1e10
_LN2 = math.log(2)
_T = TypeVar("_T")
_DOUBLINGS = 60.0  # the increase's slope stops doubling after this many doublings
_ATTRIBUTE_NAMES = {
    "#id": "id",
    "#tat": "tat",
    "#rate": "rate",
    "#since": "since",
    "#epoch": "epoch",
    "#vs": "vsince",
    "#exp": "expiration",
}


@dataclass(frozen=True)
class BudgetState:
    """One operation's shared schedule, as stored."""

    tat: float  # on the fleet's clock (FleetClock): calls are promised up to here
    rate: float  # the fleet's rate right after the last decrease, requests/s
    since: float  # epoch seconds of the last decrease (0: never)
    epoch: int  # number of decreases so far
    vsince: float = 0.0  # the fleet's clock at `since`


class StaleBudget(Exception):
    """A conditional write found the item changed; `current` is what is stored now (None: no item)."""

    def __init__(self, current: BudgetState | None) -> None:
        super().__init__("the shared budget changed")
        self.current = current


class BudgetUnavailable(Exception):
    """The store failed or answered too slowly: pace locally for a while."""


class BudgetStore(Protocol):
    """The three conditional writes the budget makes; each returns the item as written. And one read.

    Each raises StaleBudget(current) when its condition fails, and anything else when the store is
    unreachable. Implementations: DynamoDBBudgetStore (the function), MemoryBudgetStore (tests, simulation).
    """

    def extend(
        self,
        key: str,
        *,
        seconds: float,
        floor: float,
        ceiling: float,
        epoch: int,
        expires: int,
        rate: float | None = None,
    ) -> BudgetState:
        """tat += seconds, if floor <= tat <= ceiling and the epoch is `epoch`. With `rate`, an absent item is
        created as if its tat were `floor` (with that rate, epoch 0)."""
        ...

    def refill(
        self, key: str, *, tat: float, floor: float, epoch: int, rate: float, expires: int
    ) -> BudgetState:
        """tat = `tat`, if there is no item yet (created with `rate`, epoch 0) or tat < floor at `epoch`."""
        ...

    def decrease(
        self, key: str, *, rate: float, since: float, vsince: float, epoch: int, expires: int
    ) -> BudgetState:
        """rate, since, vsince = the arguments, epoch += 1, if the epoch is `epoch`."""
        ...

    def read(self, key: str) -> BudgetState | None:
        """The item as stored (strongly consistent), None when there is none."""
        ...


class MemoryBudgetStore:
    """BudgetStore in memory with the same conditions as DynamoDBBudgetStore (tests, fleet simulation)."""

    def __init__(self) -> None:
        self.items: dict[str, BudgetState] = {}
        self._lock = threading.Lock()

    def extend(
        self,
        key: str,
        *,
        seconds: float,
        floor: float,
        ceiling: float,
        epoch: int,
        expires: int,
        rate: float | None = None,
    ) -> BudgetState:
        with self._lock:
            item = self.items.get(key)
            if item is None and rate is not None:
                item = BudgetState(floor, rate, 0.0, 0)
            elif item is None or not (floor <= item.tat <= ceiling and item.epoch == epoch):
                raise StaleBudget(item)
            self.items[key] = item = BudgetState(
                item.tat + seconds, item.rate, item.since, item.epoch, item.vsince
            )
            return item

    def refill(
        self, key: str, *, tat: float, floor: float, epoch: int, rate: float, expires: int
    ) -> BudgetState:
        with self._lock:
            item = self.items.get(key)
            if item is None:
                item = BudgetState(tat, rate, 0.0, 0)
            elif item.tat < floor and item.epoch == epoch:
                item = BudgetState(tat, item.rate, item.since, item.epoch, item.vsince)
            else:
                raise StaleBudget(item)
            self.items[key] = item
            return item

    def decrease(
        self, key: str, *, rate: float, since: float, vsince: float, epoch: int, expires: int
    ) -> BudgetState:
        with self._lock:
            item = self.items.get(key)
            if item is None or item.epoch != epoch:
                raise StaleBudget(item)
            self.items[key] = item = BudgetState(item.tat, rate, since, epoch + 1, vsince)
            return item

    def read(self, key: str) -> BudgetState | None:
        with self._lock:
            return self.items.get(key)


class DynamoDBBudgetStore:
    """BudgetStore on the function's DynamoDB table (partition key `id`, TTL attribute `expiration`).

    Each write is one UpdateItem; a failed condition returns the stored item (ReturnValuesOnConditionCheckFailure)
    so the caller can retry at once without a read. Give it a client with short timeouts and few attempts:
    a slow store must make the budget degrade, not stall the batch.
    """

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def extend(
        self,
        key: str,
        *,
        seconds: float,
        floor: float,
        ceiling: float,
        epoch: int,
        expires: int,
        rate: float | None = None,
    ) -> BudgetState:
        values: dict[str, float | int] = {
            ":d": seconds,
            ":floor": floor,
            ":ceiling": ceiling,
            ":e": epoch,
            ":exp": expires,
        }
        if rate is None:
            update, condition = (
                "SET #tat = #tat + :d, #exp = :exp",
                "#tat BETWEEN :floor AND :ceiling AND #epoch = :e",
            )
        else:
            update = (
                "SET #tat = if_not_exists(#tat, :floor) + :d, #rate = if_not_exists(#rate, :rate), "
                "#since = if_not_exists(#since, :zero), #epoch = if_not_exists(#epoch, :zero), "
                "#vs = if_not_exists(#vs, :zero), #exp = :exp"
            )
            condition = "attribute_not_exists(#id) OR (#tat BETWEEN :floor AND :ceiling AND #epoch = :e)"
            values.update({":rate": rate, ":zero": 0})
        return self._update(key, update, condition, values)

    def refill(
        self, key: str, *, tat: float, floor: float, epoch: int, rate: float, expires: int
    ) -> BudgetState:
        return self._update(
            key,
            "SET #tat = :tat, #rate = if_not_exists(#rate, :rate), #since = if_not_exists(#since, :zero), "
            "#epoch = if_not_exists(#epoch, :zero), #vs = if_not_exists(#vs, :zero), #exp = :exp",
            "attribute_not_exists(#id) OR (#tat < :floor AND #epoch = :e)",
            {":tat": tat, ":rate": rate, ":zero": 0, ":floor": floor, ":e": epoch, ":exp": expires},
        )

    def decrease(
        self, key: str, *, rate: float, since: float, vsince: float, epoch: int, expires: int
    ) -> BudgetState:
        return self._update(
            key,
            "SET #rate = :rate, #since = :since, #vs = :vs, #epoch = #epoch + :one, #exp = :exp",
            "#epoch = :e",
            {":rate": rate, ":since": since, ":vs": vsince, ":one": 1, ":e": epoch, ":exp": expires},
        )

    def read(self, key: str) -> BudgetState | None:
        response = self._client.get_item(TableName=self._table, Key={"id": {"S": key}}, ConsistentRead=True)
        return _state(response.get("Item"))

    def _update(self, key: str, update: str, condition: str, values: dict[str, float | int]) -> BudgetState:
        from botocore.exceptions import ClientError

        names = {
            name: value for name, value in _ATTRIBUTE_NAMES.items() if name in update or name in condition
        }
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"id": {"S": key}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={name: {"N": _number(value)} for name, value in values.items()},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                raise StaleBudget(_state(error.response.get("Item"))) from error
            raise
        state = _state(response.get("Attributes"))
        if state is None:  # unreachable: a successful update returns the item
            raise RuntimeError("DynamoDB returned no budget item")
        return state


def _number(value: float | int) -> str:
    # Microseconds are plenty, and a fixed precision keeps DynamoDB's decimals exact.
    return str(value) if isinstance(value, int) else f"{Decimal(repr(value)):.6f}"


def _state(item: dict[str, Any] | None) -> BudgetState | None:
    if not item or "tat" not in item:
        return None
    return BudgetState(
        tat=float(item["tat"]["N"]),
        rate=float(item["rate"]["N"]),
        since=float(item["since"]["N"]),
        epoch=int(Decimal(item["epoch"]["N"])),
        vsince=float(item.get("vsince", {"N": "0"})["N"]),
    )


@dataclass(frozen=True, kw_only=True)
class BudgetConfig:
    """The account quota of each Cases API and how the fleet shares it."""

    rate: float  # the account's quota per API, requests/s (CASES_QUOTA_RPS)
    burst: float  # the account's burst per API (CASES_QUOTA_BURST)
    max_lease: int = 10  # slots per DynamoDB request at most
    lease_ttl_s: float = 1.0  # a slot unused this long after its time is given up
    decrease_factor: float = 0.7  # multiplicative decrease on throttling (botocore's adaptive mode: 0.7)
    # Additive increase: this fraction of `rate` regained per second, a slope that doubles every
    # `increase_doubling_s` without a throttle (slow near the last throttle, quick once others have left).
    increase_per_s: float = 0.0025
    increase_doubling_s: float = 10.0
    min_rate_fraction: float = 0.05  # never slower than this fraction of `rate`
    # Alert: for `alert_window_s` after a decrease this environment knows of (of either API with
    # `alert_any_operation`: the co-tenants that empty one API's bucket often call the other too; 0: never),
    # a slot is not handed out or sent on what the store said longer ago than `refresh_after_s` or the time
    # the fleet takes for `refresh_calls` calls at its rate, whichever is longer: the item is read again first
    # (one GetItem), so a newer decrease is heard within a second at a large fleet (where thousands of calls
    # would go out on stale news) and the slot goes out on the newer clock; a small fleet, whose own leases
    # keep it informed, reads seldom. Without throttling nothing is read. The slot still counts for the epoch
    # it was granted under: counted for the newer one (so the fleet could cut once per second, not once per
    # promise horizon), the simulation's fleet over-corrected (goodput 0.72-0.77 of a bursty co-tenant's rest).
    alert_window_s: float = 60.0
    refresh_after_s: float = 1.0
    refresh_calls: float = 40.0
    alert_any_operation: bool = True
    # In alert, no lease while the schedule is promised further ahead than `alert_horizon_s` or
    # `horizon_calls` calls at the fleet's rate (whichever is longer): the caller waits and asks again. A new
    # epoch's slots come after every slot already promised, so this bounds how long a decrease takes to reach
    # the calls (1,000 environments holding ten slots each promise 10-30 s ahead), not the rate.
    alert_horizon_s: float = 3.0
    horizon_calls: float = 500.0
    # No decrease within this long of the last one (as this environment knows it): an idle schedule's burst
    # lets each new epoch's first slots go out at once into an account bucket still empty, which cut
    # ListCasesForContact from 14 to 1 req/s in 12 decreases within 5 s in the simulation.
    decrease_gap_s: float = 2.0
    background_share: float = 0.25  # at most this fraction of the fleet's rate for background work
    # After a store failure, pace locally until the wall clock's next-but-one multiple of this (30-60 s),
    # then try the store again within `rejoin_spread_s`.
    degraded_for_s: float = 30.0
    rejoin_spread_s: float = 1.0
    # Two store answers in a row slower than this count as a failure. One alone does not: an environment's
    # first call opens its connection (TLS on a cold start), and the fallback costs 30 s at a static share.
    slow_call_s: float = 0.25
    expires_after_s: int = 7 * 24 * 3600  # TTL of the budget items after their last write

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError("rate must be a positive number of requests per second")
        if not (self.burst >= 1 and math.isfinite(self.burst)):
            raise ValueError("burst must be at least one request")
        if self.max_lease < 1 or not 0 < self.decrease_factor < 1 or not 0 < self.background_share < 1:
            raise ValueError("max_lease >= 1, 0 < decrease_factor < 1 and 0 < background_share < 1")
        if not 0 < self.min_rate_fraction <= 1 or self.increase_per_s < 0 or not self.increase_doubling_s > 0:
            raise ValueError("0 < min_rate_fraction <= 1, increase_per_s >= 0 and increase_doubling_s > 0")


@dataclass(frozen=True)
class FleetClock:
    """The clock the fleet's schedule of one operation runs on: virtual seconds that pass at the fleet's rate
    over the quota. A schedule never decreased runs on the wall clock itself. After a decrease its clock runs
    slower and speeds up as the rate grows back, so slots promised as times on it stretch and shrink with the
    fleet's rate: an environment converting its slot to a wall time when it hands it out paces at the rate of
    that moment (the growth after a decrease is known in advance), not the rate when the slot was granted.
    """

    quota: float
    start: float  # the fleet's rate at `since`, as a fraction of the quota
    since: float  # wall clock (epoch seconds) of the last decrease
    vsince: float  # this clock at `since`
    increase: float  # BudgetConfig.increase_per_s
    doubling: float  # BudgetConfig.increase_doubling_s

    @classmethod
    def of(cls, state: BudgetState | None, config: BudgetConfig) -> FleetClock:
        if state is None:  # a new schedule: the whole quota, never decreased
            return cls(config.rate, 1.0, 0.0, 0.0, config.increase_per_s, config.increase_doubling_s)
        start = max(config.min_rate_fraction, min(1.0, state.rate / config.rate))
        return cls(
            config.rate, start, state.since, state.vsince, config.increase_per_s, config.increase_doubling_s
        )

    def rate(self, wall: float) -> float:
        """The fleet's rate at `wall`, requests/s."""
        return self.quota * self._fraction(max(0.0, wall - self.since))

    def virtual(self, wall: float) -> float:
        """This clock's time at `wall`."""
        elapsed = wall - self.since
        if elapsed <= 0:
            return self.vsince + elapsed * self.start
        ramp_end, at_end, after = self._ramp_end()
        if elapsed >= ramp_end:
            return self.vsince + at_end + (elapsed - ramp_end) * after
        return self.vsince + self._integral(elapsed)

    def wall_at(self, virtual: float) -> float:
        """The wall clock's time when this clock reaches `virtual` (the inverse of `virtual`)."""
        ahead = virtual - self.vsince
        if ahead <= 0:
            return self.since + ahead / self.start
        ramp_end, at_end, after = self._ramp_end()
        if ahead >= at_end:
            return self.since + ramp_end + (ahead - at_end) / after
        low, high = 0.0, ramp_end  # the integral is increasing: bisect (60 halvings: far below a microsecond)
        for _ in range(60):
            middle = (low + high) / 2
            low, high = (middle, high) if self._integral(middle) < ahead else (low, middle)
        return self.since + high

    # The growth after a decrease: the fraction of the quota rises by `increase` per second, a slope that
    # doubles every `doubling` seconds (capped after 60 doublings), up to the whole quota.

    def _ramp(self, elapsed: float) -> float:
        if math.isinf(self.doubling):
            return elapsed
        return self.doubling / _LN2 * math.expm1(min(elapsed / self.doubling, _DOUBLINGS) * _LN2)

    def _fraction(self, elapsed: float) -> float:
        return min(1.0, self.start + self.increase * self._ramp(elapsed))

    def _integral(self, elapsed: float) -> float:
        """The clock's advance over `elapsed` seconds after `since`, while the rate is still growing."""
        if math.isinf(self.doubling):
            return self.start * elapsed + self.increase * elapsed * elapsed / 2
        scale = self.doubling / _LN2
        return self.start * elapsed + self.increase * scale * (scale * math.expm1(elapsed / scale) - elapsed)

    def _ramp_end(self) -> tuple[float, float, float]:
        """When the growth ends (the quota reached, or the slope's cap), the clock's advance by then, and its
        speed after."""
        if self.increase <= 0 or self.start >= 1.0:
            return 0.0, 0.0, self.start
        missing = (1.0 - self.start) / self.increase  # of _ramp
        if math.isinf(self.doubling):
            return missing, self._integral(missing), 1.0
        cap = _DOUBLINGS * self.doubling
        end = min(cap, self.doubling * math.log2(1 + missing * _LN2 / self.doubling))
        return end, self._integral(end), self._fraction(end)


@dataclass
class BudgetStats:
    """What the budget did in this environment (for metrics and the simulation)."""

    requests: int = 0  # store calls, successful or not
    stale: int = 0  # conditional writes that found the item changed
    leased: int = 0  # slots granted by the store
    expired: int = 0  # slots given up unused
    dropped: int = 0  # slots dropped after a throttle
    decreases: int = 0  # decreases this environment wrote
    degraded: int = 0  # times the budget fell back to local pacing
    fallback_calls: int = 0  # calls paced locally while degraded


@dataclass
class _Slot:
    at: float  # on the fleet's clock (FleetClock): not before
    until: float  # on the fleet's clock: given up after
    epoch: int
    spread: float  # 1 / the fleet's rate when granted: the slot's width


@dataclass
class _Held:
    """A slot handed to a caller and not yet used (its attempt not yet recorded)."""

    send_at: float  # wall clock
    spread: float
    generation: int  # the lane's generation when handed out: a throttle since revokes it
    epoch: int | None  # the fleet's epoch it was granted under (None: paced locally)
    at: float = 0.0  # the slot's time on the fleet's clock (the schedule's slots only)
    jitter: float = 0.0  # how far into the slot it was placed, seconds
    clock_epoch: int = 0  # the epoch of the fleet's clock `send_at` was computed on
    waiting: bool = False  # no slot: told to ask again at `send_at` (the schedule is promised far ahead)


@dataclass
class _Lane:
    """One operation and class of work in this environment: its local slots and lease size."""

    key: str
    operation: str
    share: float  # of the fleet's rate and burst
    slots: deque[_Slot] = field(default_factory=deque)
    known: BudgetState | None = None
    # Lease sizing. A batch is recognised by its deadline (every call of a batch passes the same
    # `not_after`). It is expected to make `expected` calls (the caller's hint: the batch's records), or
    # as many as the previous batch made. Without either, the size doubles while leases are used up and
    # falls back to what was used when slots expire.
    lease_size: int = 1
    handed_out: int = 0  # from the current lease
    batch: float = math.nan  # `not_after` of the batch being served
    calls: int = 0  # reserve calls in this batch
    expected: int = 0  # calls this batch is expected to make (0: unknown)
    held: dict[Hashable, _Held] = field(default_factory=dict)  # by caller (thread)
    generation: int = 0  # bumped by each throttle: slots held from before are revoked
    revoked: int = 0  # callers whose slot was revoked and who have not asked again yet
    lock: threading.Lock = field(default_factory=threading.Lock)


class SharedBudget:
    """The fleet's Cases-call budget, as one execution environment sees it. Thread-safe.

    `reserve(operation, not_after)` returns how long to wait before sending, like Pacer.reserve;
    `record(operation, throttled)` feeds back each HTTP attempt's result.
    """

    def __init__(
        self,
        store: BudgetStore,
        config: BudgetConfig,
        fallback: Pacer,
        *,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
        caller: Callable[[], Hashable] = threading.get_ident,
        rand: Callable[[], float] = random.random,
        on_degraded: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._config = config
        self._fallback = fallback
        self._clock = clock
        self._wall = wall
        self._caller = caller
        self._rand = rand
        self._on_degraded = on_degraded
        self._lanes: dict[tuple[str, bool], _Lane] = {}
        self._lanes_lock = threading.Lock()
        self._known: dict[str, BudgetState] = {}
        self._heard: dict[str, float] = {}  # per operation: wall time of the store's last answer
        self._busy: dict[str, bool] = {}  # by schedule key: was it busy (extended) at the last lease
        self._degraded_until = -math.inf
        self._slow_answers = 0  # store answers in a row slower than slow_call_s
        self._on_schedule = False  # the store answered since this environment last paced locally
        # After pacing locally, rejoin the schedule without its burst for a while: other environments may
        # still be pacing locally, on top of the schedule.
        self._no_burst_until = -math.inf
        self.stats = BudgetStats()

    # --- the interface the function calls -------------------------------------------------------------

    def reserve(
        self,
        operation: str,
        not_after: float = math.inf,
        *,
        background: bool = False,
        expected: int | None = None,
    ) -> float:
        """Seconds to wait before sending `operation`; OutOfTimeError when no slot fits before `not_after`.

        Ask again after waiting: the answer is 0 when the slot still stands, or a new wait when a throttle
        in this environment revoked it meanwhile (calls already promised must not keep going at the old
        rate). `not_after` is on the monotonic clock, as BatchGuard.last_start is. `background`: sweeper,
        backfill and replays, which get a lower share. `expected`: how many calls of `operation` the batch
        will make (its number of records), so leases fit the batch.
        """
        lane = self._lane(operation, background)
        caller = self._caller()
        with lane.lock:
            wall = self._wall()
            held = lane.held.pop(caller, None)
            waited = held is not None and held.waiting
            if waited:
                held = None  # told to wait without a slot: the same call, asking again
            elif held is not None and held.generation == lane.generation:
                if wall <= held.send_at + max(held.spread, self._config.lease_ttl_s):
                    if held.epoch is not None:
                        self._refresh(operation, wall)
                        known = self._known[operation]
                        if known.epoch > held.clock_epoch:
                            # A decrease since the slot was handed out: it goes out on the newer clock.
                            retimed = FleetClock.of(known, self._config).wall_at(held.at) + held.jitter
                            held.send_at = max(held.send_at, retimed)
                            held.clock_epoch = known.epoch
                    lane.held[caller] = held
                    return max(0.0, held.send_at - wall)
                held = None  # handed out and never used: this is another call
            if held is not None:
                lane.revoked = max(0, lane.revoked - 1)  # revoked: the same call, asking for a new slot
            elif not waited:
                if not_after != lane.batch:
                    lane.expected = lane.calls
                    lane.batch, lane.calls = not_after, 0
                if expected:
                    lane.expected = expected
                lane.calls += 1
            if self._clock() < self._degraded_until:
                wait = self._paced_locally(operation, not_after)
                lane.held[caller] = _Held(wall + wait, 0.0, lane.generation, None)
                return wait
            deadline = wall + (not_after - self._clock())
            self._expire(lane, wall)
            if not lane.slots and not background:
                hold = self._horizon_wait(operation, wall, deadline)
                if hold > 0:
                    lane.held[caller] = _Held(wall + hold, 0.0, lane.generation, None, waiting=True)
                    return hold
            if not lane.slots:
                try:
                    self._lease(lane, operation, self._lease_size(lane), wall, deadline, background)
                except BudgetUnavailable:
                    wait = self._paced_locally(operation, not_after)
                    lane.held[caller] = _Held(wall + wait, 0.0, lane.generation, None)
                    return wait
            slot = lane.slots[0]
            self._refresh(operation, wall)
            wait = max(0.0, self._fleet_clock(operation).wall_at(slot.at) - wall)
            jitter = 0.0
            if wait > 0:
                # Land at a random point of the slot, not on its edge: calls paced exactly at the rate the
                # account's bucket refills would win every race for a fresh token, leaving the refusals
                # (and so the signal to slow down) to the other callers on the quota.
                jitter = self._rand() * slot.spread
                wait += jitter
            if wall + wait > deadline:
                raise OutOfTimeError("the shared Cases budget leaves no slot before the deadline")
            lane.slots.popleft()
            lane.handed_out += 1
            if not lane.slots and lane.handed_out >= lane.lease_size:
                lane.lease_size = min(self._config.max_lease, lane.lease_size * 2)
            clock_epoch = self._known[operation].epoch
            lane.held[caller] = _Held(
                wall + wait, slot.spread, lane.generation, slot.epoch, slot.at, jitter, clock_epoch
            )
            return wait

    def record(self, operation: str, throttled: bool) -> None:
        """Feedback after each HTTP attempt: a throttle slows the whole fleet down (once per epoch)."""
        caller = self._caller()
        epoch: int | None = None
        lanes = [lane for b in (False, True) if (lane := self._lanes.get((operation, b))) is not None]
        for lane in lanes:
            with lane.lock:
                held = lane.held.pop(caller, None)
                if held is not None:
                    epoch = held.epoch
                if throttled:
                    # Every slot this environment holds was granted at a rate the account just refused.
                    self.stats.dropped += len(lane.slots) + len(lane.held)
                    lane.slots.clear()
                    lane.generation += 1
                    # Those callers will ask again (those told to wait without a slot do anyway).
                    lane.revoked = sum(1 for other in lane.held.values() if not other.waiting)
                    lane.lease_size = max(1, lane.lease_size // 2)
        if not throttled or epoch is None:
            return
        known = self._known.get(operation)
        if known is None or known.epoch != epoch:
            return  # granted before a decrease this environment already knows of
        wall = self._wall()
        if known.since > 0 and wall - known.since < self._config.decrease_gap_s:
            return
        clock = FleetClock.of(known, self._config)
        lower = max(
            self._config.rate * self._config.min_rate_fraction,
            clock.rate(wall) * self._config.decrease_factor,
        )
        # The fleet's clock slows down from here: every slot promised and not yet handed out stretches with it.
        state: BudgetState | None
        try:
            state = self._call(
                self._store.decrease,
                KEY_PREFIX + operation,
                rate=lower,
                since=wall,
                vsince=clock.virtual(wall),
                epoch=epoch,
                expires=self._expires(wall),
            )
            self.stats.decreases += 1
        except StaleBudget as stale:
            state = stale.current
        except BudgetUnavailable:
            return
        if state is not None:
            self._learn(operation, state)

    # --- inside -------------------------------------------------------------------------------------------

    def fleet_rate(self, operation: str) -> float | None:
        """The fleet's current rate for `operation` as this environment last saw it (None: not yet)."""
        known = self._known.get(operation)
        return None if known is None else self._rate(known, self._wall())

    def _refresh(self, operation: str, wall: float) -> bool:
        """In alert (a decrease known within `alert_window_s`), read the schedule again when the store's
        last answer is older than `refresh_after_s`; whether it was read."""
        known = self._known.get(operation)
        if known is None or not self._alert(known, wall):
            return False
        every = max(self._config.refresh_after_s, self._config.refresh_calls / self._rate(known, wall))
        if wall - self._heard.get(operation, -math.inf) <= every:
            return False
        if self._clock() < self._degraded_until:
            return False
        try:
            state = self._call(self._store.read, KEY_PREFIX + operation)
        except BudgetUnavailable:
            return False
        if state is None:
            return False
        self._learn(operation, state)
        return True

    def _horizon_wait(self, operation: str, wall: float, deadline: float) -> float:
        """In alert, how long to wait before leasing (0: now): while the schedule is promised more than
        `alert_horizon_s` ahead, a new slot would only come after it, so a decrease would take that long to
        reach the fleet's calls. Never when the wait could cost the call its deadline."""
        horizon = self._config.alert_horizon_s
        known = self._known.get(operation)
        if math.isinf(horizon) or known is None or not self._alert(known, wall):
            return 0.0
        self._refresh(operation, wall)
        known = self._known[operation]
        clock = FleetClock.of(known, self._config)
        horizon = max(horizon, self._config.horizon_calls / clock.rate(wall))
        start = clock.wall_at(known.tat)
        ahead = start - wall - horizon
        if ahead <= 0 or start + 2 * horizon > deadline:
            return 0.0
        return ahead + self._rand() * min(1.0, horizon)

    def _alert(self, known: BudgetState, wall: float) -> bool:
        """Whether this environment knows of a decrease within `alert_window_s`, of this operation or (with
        `alert_any_operation`) of another: the co-tenants that fill one API's bucket often call the other."""
        window = self._config.alert_window_s
        if window <= 0:
            return False
        states = self._known.values() if self._config.alert_any_operation else (known,)
        since = max((state.since for state in states), default=0.0)
        return since > 0 and wall - since <= window

    def _lane(self, operation: str, background: bool) -> _Lane:
        with self._lanes_lock:
            lane = self._lanes.get((operation, background))
            if lane is None:
                key = KEY_PREFIX + operation + (BACKGROUND_SUFFIX if background else "")
                share = self._config.background_share if background else 1.0
                lane = self._lanes[(operation, background)] = _Lane(key=key, operation=operation, share=share)
            return lane

    def _expire(self, lane: _Lane, wall: float) -> None:
        expired = 0
        now = self._fleet_clock(lane.operation).virtual(wall) if lane.slots else wall
        while lane.slots and lane.slots[0].until < now:
            lane.slots.popleft()
            expired += 1
        if expired:
            self.stats.expired += expired
            lane.lease_size = max(1, lane.handed_out)

    def _lease_size(self, lane: _Lane) -> int:
        if math.isinf(lane.batch) or not lane.expected:
            return lane.lease_size + lane.revoked
        # What the rest of this batch is expected to ask for, this call and the revoked ones included.
        return max(1, min(self._config.max_lease, max(0, lane.expected - lane.calls) + lane.revoked + 1))

    def _lease(
        self, lane: _Lane, operation: str, size: int, wall: float, deadline: float, background: bool
    ) -> None:
        background_times: list[float] = []
        if background:
            # The background schedule first (its share of the fleet's rate), then the fleet's own.
            share = self._config.background_share
            rate = self._rate(self._known.get(operation), wall) * share
            background_times = self._take(operation, lane, size, wall, deadline, rate, share)
            size = len(background_times)
        granted = self._take(operation, None, size, wall, deadline, None, 1.0)
        known = self._known[operation]
        clock = FleetClock.of(known, self._config)
        if background_times:
            granted = [max(a, clock.virtual(b)) for a, b in zip(granted, background_times, strict=False)]
        current_rate = clock.rate(wall)
        # A slot may be used at most `late` after its time (after the lease, for a slot of the burst): the
        # calls that land late are covered by the tokens of the burst the schedule keeps back (_kept_back),
        # so the fleet stays within the burst. Held longer, the slot is given up. (On the fleet's clock.)
        late = min(self._config.lease_ttl_s * current_rate, self._kept_back()) / self._config.rate
        now = clock.virtual(wall)
        lane.handed_out = 0
        for at in granted:
            lane.slots.append(
                _Slot(at=at, until=max(at, now) + late, epoch=known.epoch, spread=1.0 / current_rate)
            )
        self.stats.leased += len(granted)

    def _kept_back(self) -> float:
        """Tokens of the account's burst the schedule never promises: room for calls that land up to one
        slot width late. One token: more (and slots held longer) made the fleet overshoot with a co-tenant
        on a large quota in the simulation, slots held a second being sent in bunches."""
        return 1.0 if self._config.burst >= 2 else 0.0

    def _take(
        self,
        operation: str,
        lane: _Lane | None,
        size: int,
        wall: float,
        deadline: float,
        rate: float | None,
        share: float,
    ) -> list[float]:
        """Take up to `size` consecutive slots; their times.

        From the fleet's schedule of `operation` (lane None: times on its FleetClock), or from the lane's own
        schedule at `rate` (background work: wall-clock times).
        """
        key = KEY_PREFIX + operation if lane is None else lane.key
        known: BudgetState | None = self._known.get(operation) if lane is None else lane.known
        burst = (self._config.burst - self._kept_back()) * share
        if self._clock() < self._no_burst_until:
            burst = 0.0
        fresh = False  # `known` came from the store just now (not from this environment's last lease)
        for _ in range(4):
            if rate is None:  # the fleet's schedule, on its own clock; a slot is 1 / quota of it
                clock = FleetClock.of(known, self._config)
                now, unit = clock.virtual(wall), 1.0 / self._config.rate
                end = deadline if math.isinf(deadline) else clock.virtual(deadline)
            else:
                now, unit, end = wall, 1.0 / rate, deadline
            floor = now - burst * unit
            start = floor if known is None else max(known.tat, floor)
            fits = size if math.isinf(end) else math.floor((end - start) / unit + 1e-9)
            if fits < 1:
                raise OutOfTimeError("the shared Cases budget leaves no slot before the deadline")
            # Which write fits: a reset of an idle (full) bucket, or an extension of a busy one. What this
            # environment saw at its last lease may be old; if the schedule was busy then, it likely still
            # is (one write, not a failed reset and then an extension, at full load). An environment that
            # has seen nothing yet extends too, creating the item if there is none: a fleet at full load is
            # busy, and a new fleet has no item (one write either way; an idle schedule costs a second).
            idle = known is not None and known.tat < floor and (fresh or not self._busy.get(key, False))
            count = min(size, fits)
            try:
                if idle and known is not None:
                    state = self._call(
                        self._store.refill,
                        key,
                        tat=floor + count * unit,
                        floor=floor,
                        epoch=known.epoch,
                        rate=self._config.rate * share,
                        expires=self._expires(wall),
                    )
                else:
                    state = self._call(
                        self._store.extend,
                        key,
                        seconds=count * unit,
                        floor=floor,
                        ceiling=min(end - count * unit, _FAR),
                        epoch=0 if known is None else known.epoch,
                        expires=self._expires(wall),
                        rate=self._config.rate * share if known is None else None,
                    )
            except StaleBudget as stale:
                self.stats.stale += 1
                known, fresh = stale.current, True
                self._remember(operation, lane, known)
                continue
            self._busy[key] = not idle
            self._remember(operation, lane, state)
            return [state.tat - (count - i) * unit for i in range(1, count + 1)]
        self._degrade("contention")
        raise BudgetUnavailable("the shared budget kept changing under this environment")

    def _remember(self, operation: str, lane: _Lane | None, state: BudgetState | None) -> None:
        if state is None:
            return
        if lane is not None:
            lane.known = state
        else:
            self._learn(operation, state)

    def _learn(self, operation: str, state: BudgetState) -> None:
        known = self._known.get(operation)
        if known is None or state.epoch >= known.epoch:
            self._known[operation] = state
            self._heard[operation] = self._wall()

    def _rate(self, state: BudgetState | None, wall: float) -> float:
        return FleetClock.of(state, self._config).rate(wall)

    def _fleet_clock(self, operation: str) -> FleetClock:
        return FleetClock.of(self._known.get(operation), self._config)

    def _call(self, method: Callable[..., _T], key: str, **kwargs: Any) -> _T:
        """One store request. StaleBudget passes through; any other failure degrades the budget."""
        self.stats.requests += 1
        started = self._clock()
        try:
            answer = method(key, **kwargs)
        except StaleBudget:
            self._on_schedule = True
            raise
        except Exception as error:
            # Whatever broke in the store (botocore, network, throttling of the table): degrade, never stop.
            self._degrade(type(error).__name__)
            raise BudgetUnavailable(type(error).__name__) from error
        else:
            self._on_schedule = True
            return answer
        finally:
            if self._clock() - started <= self._config.slow_call_s:
                self._slow_answers = 0
            else:
                self._slow_answers += 1
                if self._slow_answers >= 2 and self._clock() >= self._degraded_until:
                    # Answered, but too slowly to pace by, twice: use it this time, pace locally for a while.
                    self._slow_answers = 0
                    self._degrade("slow")

    def _degrade(self, reason: str) -> None:
        now, wall = self._clock(), self._wall()
        if now < self._degraded_until:
            # Already pacing locally: another request (the other API's lease, in flight on another thread)
            # failed with the same store. Computed again, the hold would be zero (this environment is no
            # longer on the schedule) and local pacing could start before the fleet's promises end.
            return
        period = self._config.degraded_for_s
        # Rejoin at the next-but-one boundary of the wall clock's `period`s, the same for every environment:
        # those that lost the store together come back together, so none paces locally on top of a schedule
        # the others already use again. The jitter spreads their first requests over a second.
        rejoin = (math.floor(wall / period) + 2) * period
        self._degraded_until = now + (rejoin - wall) + self._rand() * self._config.rejoin_spread_s
        self._no_burst_until = self._degraded_until + period
        # Pace locally at the rate only (the schedule may have promised the account's burst already). Coming
        # off the schedule, start once the others can no longer be using it either: after the slots it
        # promised as last seen here, and two of their leases later (each environment notices at its next
        # request, or at its second slow answer; a busy fleet's environment asks once per max_lease slots
        # of its share, which is the fallback's rate). A failed rejoin needs no wait: the others left together.
        hold = 0.0
        if self._on_schedule:
            promised = max(
                (FleetClock.of(state, self._config).wall_at(state.tat) for state in self._known.values()),
                default=wall,
            )
            notice = 2 * self._config.max_lease / self._fallback.rate
            hold = min(period / 2, max(0.0, promised - wall) + notice)
        self._on_schedule = False
        self._fallback.empty(hold)
        self.stats.degraded += 1
        if self._on_degraded is not None:
            self._on_degraded(reason)

    def _paced_locally(self, operation: str, not_after: float) -> float:
        self.stats.fallback_calls += 1
        return self._fallback.reserve(operation, not_after)

    def _expires(self, wall: float) -> int:
        return int(wall) + self._config.expires_after_s
