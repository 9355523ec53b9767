"""The fleet-wide Cases budget on a fake clock and the in-memory store (no network).

Several SharedBudget instances on one store stand for several execution environments.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import pytest
from case_linker.budget import (
    KEY_PREFIX,
    BudgetConfig,
    BudgetState,
    FleetClock,
    MemoryBudgetStore,
    SharedBudget,
    StaleBudget,
)
from case_linker.errors import OutOfTimeError
from case_linker.pacing import Pacer

OP = "CreateRelatedItem"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Caller:
    """Which thread is calling: the budget pairs each reserve with the record of the same thread."""

    def __init__(self) -> None:
        self.current = 0

    def __call__(self) -> int:
        return self.current

    def next(self) -> int:
        self.current += 1
        return self.current


def budget(
    store: Any,
    clock: FakeClock,
    *,
    environments: int = 2,
    caller: Caller | None = None,
    rand: Any = lambda: 0.0,
    **overrides: Any,
) -> SharedBudget:
    config = BudgetConfig(rate=overrides.pop("rate", 2.0), burst=overrides.pop("burst", 10.0), **overrides)
    fallback = Pacer(config.rate / environments, config.burst / environments, clock=clock)
    return SharedBudget(
        store, config, fallback, clock=clock, wall=clock, caller=caller or Caller(), rand=rand
    )


def burst_used(sends: list[float], rate: float) -> float:
    """The largest (calls in [s_i, s_j]) - rate * (s_j - s_i) over all pairs: at most the burst if conforming."""
    best, lowest = 0.0, math.inf
    for j, at in enumerate(sorted(sends)):
        lowest = min(lowest, j - rate * at)
        best = max(best, (j + 1) - rate * at - lowest)
    return best


def take(shared: SharedBudget, clock: FakeClock, count: int, **kwargs: Any) -> list[float]:
    """`count` threads each ask for a slot now and make their call; their send times."""
    caller = shared._caller
    assert isinstance(caller, Caller)
    sends = []
    for _ in range(count):
        caller.next()
        sends.append(clock.now + shared.reserve(OP, **kwargs))
        shared.record(OP, throttled=False)
    return sends


def test_given_an_idle_fleet_when_one_environment_drains_then_it_gets_the_whole_burst_and_rate() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    busy, _idle = budget(store, clock), budget(store, clock)

    sends = take(busy, clock, 30)

    # The account's burst at once (one token of it kept back for calls landing late in their slot) ...
    assert sends[:9] == [clock.now] * 9
    # ... then the whole quota, 2 per second
    assert sends[9] == pytest.approx(clock.now + 0.5)
    assert sends[-1] == pytest.approx(clock.now + 21 / 2.0)
    assert burst_used(sends, 2.0) == pytest.approx(9.0)


def test_given_a_backlog_when_the_budget_is_busy_then_one_store_request_serves_at_least_five_calls() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    shared = budget(store, clock)

    for _ in range(20):  # batches of 10 calls; every call of a batch has the batch's deadline
        deadline = clock.now + 60
        sends = take(shared, clock, 10, not_after=deadline)
        clock.now = max(sends)

    assert shared.stats.requests / 200 <= 1 / 5


def test_given_batches_when_one_needed_ten_calls_then_the_next_leases_ten_in_one_request() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    shared = budget(store, clock)
    clock.now = max(take(shared, clock, 10, not_after=clock.now + 60))
    requests = shared.stats.requests

    clock.now = max(take(shared, clock, 10, not_after=clock.now + 60))

    assert shared.stats.requests == requests + 1
    assert shared.stats.expired == 0


@pytest.mark.parametrize("environments", [2, 10, 100])
def test_given_many_environments_asking_at_random_then_the_fleet_never_exceeds_the_burst(
    environments: int,
) -> None:
    # GIVEN environments sharing one store, landing at random points of their slots
    clock = FakeClock()
    store = MemoryBudgetStore()
    rng = random.Random(environments)
    fleet = [budget(store, clock, environments=environments, rand=rng.random) for _ in range(environments)]
    sends: list[float] = []

    # WHEN they ask at random moments, with idle spells that refill the bucket
    for _ in range(40):
        clock.now += rng.expovariate(1.0)
        for shared in rng.sample(fleet, k=max(1, environments // 3)):
            sends.extend(take(shared, clock, rng.randint(1, 10)))

    # THEN the fleet's calls in any interval t number at most burst + rate * t
    assert len(sends) > 150
    assert burst_used(sends, 2.0) <= 10.0 + 1e-6


def test_given_a_trickle_when_calls_come_one_at_a_time_then_leases_stay_small() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    shared = budget(store, clock)

    for _ in range(20):
        take(shared, clock, 1, not_after=clock.now + 60)
        clock.now += 5.0  # a lone call every five seconds, each its own batch

    # An idle environment gives up what it did not use: after the first batch, one slot per call.
    assert shared.stats.leased <= 10 + 19
    assert shared.stats.expired <= 9


def test_given_a_deadline_when_no_slot_fits_then_out_of_time_and_the_schedule_is_untouched() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    shared = budget(store, clock, max_lease=1)
    take(shared, clock, 9)  # the burst is spent
    before = store.items[KEY_PREFIX + OP]

    with pytest.raises(OutOfTimeError):
        take(shared, clock, 1, not_after=clock.now + 0.2)

    assert store.items[KEY_PREFIX + OP] == before
    assert take(shared, clock, 1, not_after=clock.now + 0.5) == [pytest.approx(clock.now + 0.5)]


def test_given_a_slot_when_asked_again_after_the_wait_then_it_still_stands() -> None:
    clock = FakeClock()
    shared = budget(MemoryBudgetStore(), clock)
    take(shared, clock, 9)
    caller = shared._caller
    assert isinstance(caller, Caller)
    caller.next()
    wait = shared.reserve(OP)
    leased = shared.stats.leased

    clock.now += wait

    assert wait == pytest.approx(0.5)
    assert shared.reserve(OP) == 0.0  # the same slot: send now
    assert shared.stats.leased == leased


def test_given_a_throttle_when_other_threads_hold_slots_then_their_slots_are_revoked() -> None:
    # GIVEN two threads of one environment holding the next two slots
    clock = FakeClock()
    caller = Caller()
    shared = budget(MemoryBudgetStore(), clock, caller=caller, increase_per_s=0.0)
    take(shared, clock, 9)
    caller.current = 100
    first = shared.reserve(OP)
    caller.current = 101
    second = shared.reserve(OP)

    # WHEN the first one's call is throttled
    clock.now += first
    caller.current = 100
    shared.record(OP, throttled=True)

    # THEN the second, asking again when its slot comes, is sent later, at the lower rate
    clock.now += second - first
    caller.current = 101
    again = shared.reserve(OP)
    assert again > 0
    assert shared.stats.dropped >= 1


def test_given_a_throttle_when_several_environments_report_it_then_the_fleet_slows_once() -> None:
    # GIVEN two environments whose calls were granted under the same epoch
    clock = FakeClock()
    store = MemoryBudgetStore()
    first, second = budget(store, clock), budget(store, clock)
    first.reserve(OP)
    second.reserve(OP)

    # WHEN both are throttled
    first.record(OP, throttled=True)
    second.record(OP, throttled=True)

    # THEN one decrease (x0.7), and the second environment learned it instead of decreasing again
    state = store.items[KEY_PREFIX + OP]
    assert state.epoch == 1
    assert state.rate == pytest.approx(1.4)
    assert second.fleet_rate(OP) == pytest.approx(1.4)


def test_given_a_decrease_when_time_passes_then_the_rate_grows_back_to_the_quota_and_no_further() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    shared = budget(store, clock, increase_per_s=0.05, increase_doubling_s=math.inf)
    shared.reserve(OP)
    shared.record(OP, throttled=True)

    rates = []
    for _ in range(40):
        clock.now += 1.0
        rates.append(shared.fleet_rate(OP))

    assert rates[0] == pytest.approx(1.4 + 0.1)  # additive: 5% of the quota per second
    assert max(r for r in rates if r is not None) == 2.0  # never above the configured quota
    assert rates[-1] == 2.0


def test_given_a_long_quiet_spell_then_the_increase_speeds_up() -> None:
    clock = FakeClock()
    shared = budget(MemoryBudgetStore(), clock, increase_per_s=0.001, increase_doubling_s=10.0)
    shared.reserve(OP)
    shared.record(OP, throttled=True)

    def rate_after(seconds: float) -> float:
        clock.now += seconds
        rate = shared.fleet_rate(OP)
        assert rate is not None
        return rate

    first = rate_after(10) - 1.4
    both = rate_after(10) - 1.4
    assert both - first == pytest.approx(2 * first)  # the slope doubled in the second ten seconds


def test_given_a_throttle_then_the_new_slots_are_paced_at_the_lower_rate() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    shared = budget(store, clock, increase_per_s=0.0, max_lease=1)
    take(shared, clock, 9)  # burst spent
    shared.reserve(OP)
    shared.record(OP, throttled=True)

    sends = take(shared, clock, 3)

    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert gaps == [pytest.approx(1 / 1.4)] * 2


def test_given_a_success_then_nothing_is_written() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    shared = budget(store, clock)
    shared.reserve(OP)
    requests = shared.stats.requests

    shared.record(OP, throttled=False)

    assert shared.stats.requests == requests


class CountingStore(MemoryBudgetStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def read(self, key: str) -> BudgetState | None:
        self.reads += 1
        return super().read(key)


def test_given_no_decrease_then_the_schedule_is_never_read() -> None:
    clock = FakeClock()
    store = CountingStore()
    shared = budget(store, clock)
    for _ in range(40):
        clock.now += 0.5
        take(shared, clock, 1)
    assert store.reads == 0


def test_given_a_decrease_known_when_another_comes_before_a_held_slot_is_sent_then_it_is_read_and_re_timed() -> (
    None
):
    # GIVEN an environment that knows of a decrease (alert) and holds a slot handed out a few seconds ahead
    clock = FakeClock()
    store = CountingStore()
    settings: dict[str, Any] = {"increase_per_s": 0.0, "refresh_calls": 0.0, "decrease_gap_s": 0.0}
    other = budget(store, clock, **settings)
    caller = Caller()
    shared = budget(store, clock, caller=caller, **settings)
    other.reserve(OP)
    other.record(OP, throttled=True)  # epoch 1: 1.4/s
    take(shared, clock, 9)  # the burst
    caller.current = 100
    wait = shared.reserve(OP)
    assert wait > 1.0
    # WHEN the other environment decreases again before the slot's time (epoch 2: 0.98/s)
    other.reserve(OP)
    other.record(OP, throttled=True)
    assert store.items[KEY_PREFIX + OP].epoch == 2

    # THEN asking again when its slot comes, the environment reads the item and sends later, on the newer clock
    clock.now += wait
    reads = store.reads
    again = shared.reserve(OP)
    assert store.reads == reads + 1
    assert again > 0
    assert shared.fleet_rate(OP) == pytest.approx(0.98)
    # ... and knowing fresh news, asks the store nothing more within the second
    clock.now += min(again, 0.5)
    shared.reserve(OP)
    assert store.reads == reads + 1


def test_given_alert_off_then_a_held_slot_is_sent_on_time_without_a_read() -> None:
    clock = FakeClock()
    store = CountingStore()
    other = budget(store, clock, increase_per_s=0.0, decrease_gap_s=0.0)
    caller = Caller()
    shared = budget(store, clock, caller=caller, increase_per_s=0.0, alert_window_s=0.0, decrease_gap_s=0.0)
    other.reserve(OP)
    other.record(OP, throttled=True)
    take(shared, clock, 9)
    caller.current = 100
    wait = shared.reserve(OP)
    other.reserve(OP)
    other.record(OP, throttled=True)

    clock.now += wait
    assert shared.reserve(OP) == 0.0
    assert store.reads == 0


def test_given_a_decrease_when_another_slot_of_its_epoch_is_refused_at_once_then_no_second_decrease() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    first, second = budget(store, clock), budget(store, clock)
    first.reserve(OP)
    first.record(OP, throttled=True)  # epoch 1
    second.reserve(OP)  # a slot of epoch 1 (the burst: at once)

    second.record(OP, throttled=True)  # refused within decrease_gap_s of the decrease
    assert store.items[KEY_PREFIX + OP].epoch == 1

    clock.now += 2.0
    second.reserve(OP)
    second.record(OP, throttled=True)
    assert store.items[KEY_PREFIX + OP].epoch == 2


def test_given_alert_when_the_schedule_is_promised_far_ahead_then_the_caller_waits_without_a_slot() -> None:
    # GIVEN a decrease this environment knows of, and the schedule promised about 60 s ahead by another
    clock = FakeClock()
    store = MemoryBudgetStore()
    caller = Caller()
    other = budget(store, clock, increase_per_s=0.0, max_lease=100)
    shared = budget(store, clock, caller=caller, increase_per_s=0.0, horizon_calls=0.0, refresh_calls=0.0)
    other.reserve(OP)
    other.record(OP, throttled=True)  # 1.4/s from now on
    take(shared, clock, 1)
    take(other, clock, 85)
    tat = store.items[KEY_PREFIX + OP].tat
    clock.now += 1.5  # this environment's news are older than refresh_after_s: it reads the item first

    # WHEN this environment asks for a slot
    caller.current = 7
    wait = shared.reserve(OP)

    # THEN it is told to ask again when the schedule is 3 s (alert_horizon_s) ahead, and took nothing
    assert wait > 40
    assert store.items[KEY_PREFIX + OP].tat == tat
    # ... but a call that cannot wait that long is not told to: no slot fits its deadline, it is out of time now
    caller.current = 8
    with pytest.raises(OutOfTimeError):
        shared.reserve(OP, not_after=clock.now + 30)
    clock.now += wait
    caller.current = 7
    again = shared.reserve(OP)
    assert again == pytest.approx(3.0 + 1 / 1.4)  # the first slot after the promised ones
    assert store.items[KEY_PREFIX + OP].tat > tat


class BrokenStore(MemoryBudgetStore):
    """Unreachable until `healthy`; optionally slow (advances the clock per call)."""

    def __init__(
        self, clock: FakeClock, latency: float = 0.0, shared: MemoryBudgetStore | None = None
    ) -> None:
        super().__init__()
        if shared is not None:  # another environment's view of the same items
            self.items, self._lock = shared.items, shared._lock
        self.healthy = False
        self.clock = clock
        self.latency = latency

    def extend(self, key: str, **kwargs: Any) -> BudgetState:
        return self._call(super().extend, key, **kwargs)

    def refill(self, key: str, **kwargs: Any) -> BudgetState:
        return self._call(super().refill, key, **kwargs)

    def _call(self, method: Any, key: str, **kwargs: Any) -> BudgetState:
        self.clock.now += self.latency
        if not self.healthy:
            raise ConnectionError("endpoint unreachable")
        result: BudgetState = method(key, **kwargs)
        return result


def test_given_an_unreachable_store_then_the_environment_paces_itself_and_tries_again_later() -> None:
    # GIVEN the store is down; the fallback is the static share: 1 req/s (2 environments), started without
    # its burst (the shared schedule may have promised the account's burst already)
    clock = FakeClock()
    store = BrokenStore(clock)
    shared = budget(store, clock)

    # WHEN calls are made
    waits = [send - clock.now for send in take(shared, clock, 7)]

    # THEN they are paced locally, never refused
    assert waits == [pytest.approx(n) for n in range(1, 8)]
    assert shared.stats.degraded == 1
    assert shared.stats.fallback_calls == 7

    # AND once the store is back and the pause is over (the wall clock's next-but-one 30 s boundary, within
    # a second), the shared budget is used again
    store.healthy = True
    clock.now += 60 + 1
    take(shared, clock, 1)
    assert shared.stats.leased >= 1


def test_given_a_slow_store_then_its_answers_are_used_and_two_slow_in_a_row_make_the_environment_pace_itself() -> (
    None
):
    clock = FakeClock()
    store = BrokenStore(clock, latency=0.5)
    store.healthy = True
    shared = budget(store, clock, max_lease=1)

    take(shared, clock, 3)

    assert shared.stats.degraded == 1
    assert shared.stats.requests == 2
    assert shared.stats.fallback_calls == 1


def test_given_one_slow_answer_then_the_shared_budget_is_kept() -> None:
    # GIVEN the environment's first store call is slow (a cold connection, a busy moment), the next ones not:
    # one slow answer must not send the environment to its static share (quota / maxConcurrency) for 30 s
    clock = FakeClock()
    store = BrokenStore(clock, latency=0.5)
    store.healthy = True
    shared = budget(store, clock, max_lease=1)
    take(shared, clock, 1)
    store.latency = 0.01

    take(shared, clock, 5)

    assert shared.stats.degraded == 0
    assert shared.stats.fallback_calls == 0


def test_given_live_and_background_work_competing_then_background_gets_at_most_its_share() -> None:
    # GIVEN one environment with live and one with background work, both with more to do than the quota
    clock = FakeClock()
    store = MemoryBudgetStore()
    live_env = budget(store, clock, max_lease=5, caller=Caller())
    background_env = budget(store, clock, max_lease=5, caller=Caller())
    live: list[float] = []
    background: list[float] = []
    next_live = next_background = clock.now

    # WHEN each sends a call as soon as its previous one is out, for 200 seconds
    while clock.now < 1_700_000_200:
        if next_live <= next_background:
            clock.now = next_live
            next_live = take(live_env, clock, 1)[0]
            live.append(next_live)
        else:
            clock.now = next_background
            next_background = take(background_env, clock, 1, background=True)[0]
            background.append(next_background)

    # THEN background work had about a quarter of the quota, never more, and was not starved
    share = len(background) / (len(live) + len(background))
    assert 0.15 <= share <= 0.27
    assert burst_used(live + background, 2.0) <= 10.0 + 1e-6


def test_memory_store_conditions() -> None:
    store = MemoryBudgetStore()
    created = store.refill("k", tat=10.0, floor=5.0, epoch=0, rate=2.0, expires=0)
    assert created == BudgetState(10.0, 2.0, 0.0, 0)

    with pytest.raises(StaleBudget) as stale:
        store.refill("k", tat=20.0, floor=9.0, epoch=0, rate=2.0, expires=0)  # not idle: tat >= floor
    assert stale.value.current == created
    with pytest.raises(StaleBudget):
        store.extend("k", seconds=1.0, floor=0.0, ceiling=9.0, epoch=0, expires=0)  # too far ahead
    assert store.extend("k", seconds=1.0, floor=0.0, ceiling=10.0, epoch=0, expires=0).tat == 11.0
    assert store.decrease("k", rate=1.4, since=3.0, vsince=2.5, epoch=0, expires=0) == BudgetState(
        11.0, 1.4, 3.0, 1, 2.5
    )
    with pytest.raises(StaleBudget):
        store.decrease("k", rate=1.0, since=4.0, vsince=3.5, epoch=0, expires=0)  # epoch moved on


def test_given_a_burst_lease_when_threads_arrive_late_then_its_slots_keep_one_slot_width_only() -> None:
    # GIVEN a batch of 10 in an idle fleet (2 req/s): its first call leases 10 slots of the burst
    clock = FakeClock()
    shared = budget(MemoryBudgetStore(), clock)
    deadline = clock.now + 60
    take(shared, clock, 1, not_after=deadline, expected=10)
    requests = shared.stats.requests

    # WHEN threads reach the hook 0.2 s later, and one more 0.4 s after that
    clock.now += 0.2
    soon = [send - clock.now for send in take(shared, clock, 4, not_after=deadline, expected=10)]
    clock.now += 0.4
    take(shared, clock, 1, not_after=deadline, expected=10)

    # THEN the first ones use the lease; the burst's unused slots are given up after one slot width (0.5 s):
    # a slot used later than that could put the fleet beyond the burst, which keeps one token back for it
    assert soon == [0.0] * 4
    assert shared.stats.expired == 4
    assert shared.stats.requests == requests  # the last thread took the lease's one slot still due


@pytest.mark.parametrize("seed", range(40))
def test_given_threads_reaching_the_hook_late_and_at_random_then_the_fleet_never_exceeds_the_burst(
    seed: int,
) -> None:
    # GIVEN 1-5 environments sharing one store, each batch's threads reaching the hook after their own delay
    rng = random.Random(seed)
    clock = FakeClock()
    store = MemoryBudgetStore()
    environments = rng.choice([1, 2, 3, 5])
    callers = [Caller() for _ in range(environments)]
    fleet = [budget(store, clock, environments=environments, caller=c, rand=rng.random) for c in callers]
    arrivals: list[tuple[float, int, float, int, int]] = []  # time, environment, deadline, batch size, thread
    at = clock.now
    for _ in range(60):
        at += rng.expovariate(0.4)
        environment, size = rng.randrange(environments), rng.randint(1, 10)
        spread = rng.choice([0.05, 0.3, 1.0])
        for _ in range(size):
            callers[environment].current += 1
            thread = callers[environment].current
            arrivals.append((at + rng.expovariate(1 / spread), environment, at + 60, size, thread))

    # WHEN every thread asks when it arrives and sends when told
    sends: list[float] = []
    for arrival, environment, deadline, size, thread in sorted(arrivals):
        clock.now = max(clock.now, arrival)
        callers[environment].current = thread
        try:
            sends.append(clock.now + fleet[environment].reserve(OP, deadline, expected=size))
        except OutOfTimeError:
            continue
        fleet[environment].record(OP, throttled=False)

    # THEN the fleet's calls in any interval t number at most burst + rate * t
    assert len(sends) > 200
    assert burst_used(sends, 2.0) <= 10.0 + 1e-6


def test_given_slots_promised_to_others_when_the_store_fails_then_local_pacing_starts_after_them() -> None:
    # GIVEN an environment that saw the schedule promised 5 s ahead (the fleet is using the whole quota)
    clock = FakeClock()
    store = MemoryBudgetStore()
    others = budget(store, clock, environments=2)
    take(others, clock, 9)  # the burst
    view = BrokenStore(clock, shared=store)
    view.healthy = True
    shared = budget(view, clock, environments=2)
    take(shared, clock, 10, not_after=clock.now + 60, expected=10)
    promised = store.items[KEY_PREFIX + OP].tat

    # WHEN the store becomes unreachable
    view.healthy = False
    clock.now += 1.0
    waits = [send - clock.now for send in take(shared, clock, 2)]

    # THEN its own pacing (1 req/s) begins where the fleet's promises end, not on top of them
    assert shared.stats.degraded == 1
    assert clock.now + waits[0] >= promised - 1e-6
    assert waits[1] - waits[0] == pytest.approx(1.0)


def test_given_two_apis_whose_requests_fail_together_then_one_fallback_and_both_wait_for_the_promises() -> (
    None
):
    # GIVEN an environment that saw the schedule promised ahead, and whose store fails while a request of
    # each API is in flight (a batch's ListCasesForContact and CreateRelatedItem leases)
    clock = FakeClock()
    store = MemoryBudgetStore()
    others = budget(store, clock, environments=2)
    take(others, clock, 9)  # the burst
    caller = Caller()
    view = BrokenStore(clock, shared=store)
    view.healthy = True
    shared = budget(view, clock, environments=2, caller=caller)
    take(shared, clock, 10, not_after=clock.now + 60, expected=10)
    promised = store.items[KEY_PREFIX + OP].tat
    view.healthy = False
    clock.now += 1.0
    waits: dict[str, float] = {}
    in_flight: list[str] = []

    class FailsWithAnotherInFlight(BrokenStore):
        def _call(self, method: Any, key: str, **kwargs: Any) -> BudgetState:
            if not in_flight:  # the other API's request fails while this one is still waiting for its answer
                in_flight.append(key)
                caller.next()
                waits["other"] = shared.reserve("ListCasesForContact")
            return super()._call(method, key, **kwargs)

    shared._store = FailsWithAnotherInFlight(clock, shared=store)

    # WHEN both requests fail
    caller.next()
    waits[OP] = shared.reserve(OP)

    # THEN the environment fell back once, and neither API paces locally before the fleet's promises end
    assert shared.stats.degraded == 1
    assert min(waits.values()) >= promised - clock.now - 1e-6


def test_given_environments_that_lost_the_store_at_different_times_then_they_rejoin_together() -> None:
    # GIVEN two environments whose store calls fail 7 s apart
    clock = FakeClock()
    clock.now = 1_700_000_011.0
    store = MemoryBudgetStore()
    views = [BrokenStore(clock, shared=store), BrokenStore(clock, shared=store)]
    fleet = [
        budget(view, clock, environments=2, rand=random.Random(n).random) for n, view in enumerate(views)
    ]
    take(fleet[0], clock, 1)
    clock.now += 7.0
    take(fleet[1], clock, 1)
    for view in views:
        view.healthy = True

    # WHEN both keep calling, once every 100 ms
    rejoined: list[float | None] = [None, None]
    for _ in range(900):
        clock.now += 0.1
        for n, shared in enumerate(fleet):
            leased = shared.stats.leased
            take(shared, clock, 1)
            if rejoined[n] is None and shared.stats.leased > leased:
                rejoined[n] = clock.now

    # THEN they return to the shared budget within a second of each other: none paces locally on top of a
    # schedule the other is using again
    first, second = rejoined
    assert first is not None
    assert second is not None
    assert abs(first - second) <= 1.0


@pytest.mark.parametrize(
    ("increase", "doubling"), [(0.005, 10.0), (0.05, math.inf), (0.0, 10.0), (1e-9, 10.0)], ids=str
)
def test_given_a_decrease_then_the_fleet_clock_runs_at_the_fleet_rate_and_inverts(
    increase: float, doubling: float
) -> None:
    config = BudgetConfig(rate=2.0, burst=10.0, increase_per_s=increase, increase_doubling_s=doubling)
    state = BudgetState(tat=0.0, rate=0.6, since=1000.0, epoch=3, vsince=990.0)
    clock = FleetClock.of(state, config)

    assert clock.virtual(1000.0) == pytest.approx(990.0)  # continuous at the decrease
    for wall in (995.0, 1000.5, 1003.0, 1010.0, 1040.0, 1100.0, 2000.0):
        # it advances at the fleet's rate over the quota ...
        step = 1e-4
        speed = (clock.virtual(wall + step) - clock.virtual(wall - step)) / (2 * step)
        assert speed == pytest.approx(clock.rate(wall) / 2.0, rel=1e-3)
        # ... and wall_at finds the wall time of any point of it
        assert clock.wall_at(clock.virtual(wall)) == pytest.approx(wall, abs=1e-6)


def test_given_a_schedule_never_decreased_then_its_clock_is_the_wall_clock() -> None:
    config = BudgetConfig(rate=2.0, burst=10.0)
    for state in (None, BudgetState(tat=5.0, rate=2.0, since=0.0, epoch=0)):
        clock = FleetClock.of(state, config)
        assert clock.virtual(1_700_000_000.5) == 1_700_000_000.5
        assert clock.wall_at(1_700_000_000.5) == 1_700_000_000.5


def test_given_slots_promised_while_the_rate_grows_back_then_they_are_sent_at_the_rate_of_their_time() -> (
    None
):
    # GIVEN a fleet slowed to 0.6 req/s (quota 2), growing back by 5% of the quota per second
    clock = FakeClock()
    store = MemoryBudgetStore()
    # (its burst spent: the schedule is promised up to now)
    store.items[KEY_PREFIX + OP] = BudgetState(clock.now, 0.6, clock.now, 1, clock.now)
    shared = budget(store, clock, increase_per_s=0.05, increase_doubling_s=math.inf)

    # WHEN 30 calls are promised at once (a backlog: three leases)
    sends = take(shared, clock, 30, not_after=clock.now + 60, expected=30)

    # THEN the later ones are closer together: each is paced at the rate of its own time, not at the rate of
    # the moment it was promised (a schedule booked far ahead follows the fleet's recovery at once)
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert gaps[0] > 1 / 1.0  # about the rate of the first seconds: 0.6-0.8 req/s
    assert gaps[-1] < 0.5 * gaps[0]
    assert all(later <= earlier + 1e-9 for earlier, later in itertools.pairwise(gaps))


@pytest.mark.parametrize(
    "overrides",
    [
        {"min_rate_fraction": 0.0},
        {"increase_per_s": -0.1},
        {"increase_doubling_s": 0.0},
        {"decrease_factor": 1.0},
    ],
    ids=str,
)
def test_given_settings_the_clock_cannot_run_on_then_the_config_is_refused(
    overrides: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match="<"):
        BudgetConfig(rate=2.0, burst=10.0, **overrides)
