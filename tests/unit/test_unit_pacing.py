"""Token bucket, per-operation pacing and the batch guard, on a fake clock."""

from __future__ import annotations

import itertools
import random
import threading

import pytest
from case_linker.errors import CircuitOpenError, OutOfTimeError
from case_linker.pacing import BatchGuard, Pacer, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_given_a_full_bucket_when_tokens_are_taken_then_the_burst_is_free_and_then_paced() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, capacity=2.0, clock=clock)

    waits = [bucket.reserve() for _ in range(5)]

    assert waits == [0.0, 0.0, 0.5, 1.0, 1.5]


def test_given_time_passes_when_a_token_is_taken_then_it_has_refilled_up_to_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, capacity=2.0, clock=clock)
    bucket.reserve()
    bucket.reserve()

    clock.now += 100

    assert [bucket.reserve(), bucket.reserve(), bucket.reserve()] == [0.0, 0.0, 0.5]


def test_given_a_deadline_when_the_next_slot_is_after_it_then_out_of_time_and_nothing_is_taken() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, capacity=1.0, clock=clock)
    bucket.reserve()

    with pytest.raises(OutOfTimeError):
        bucket.reserve(not_after=clock.now + 0.5)
    assert bucket.reserve(not_after=clock.now + 1.0) == 1.0


def test_given_many_threads_when_they_reserve_then_every_slot_is_distinct() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, capacity=1.0, clock=clock)
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        wait = bucket.reserve()
        with lock:
            waits.append(round(wait, 6))

    threads = [threading.Thread(target=take) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(waits) == [round(i / 10, 6) for i in range(50)]


def test_each_operation_has_its_own_bucket() -> None:
    pacer = Pacer(rate=1.0, clock=FakeClock())

    assert pacer.reserve("CreateRelatedItem") == 0.0
    assert pacer.reserve("ListCasesForContact") == 0.0
    assert pacer.reserve("CreateRelatedItem") == 1.0


def test_given_a_high_rate_when_no_capacity_is_given_then_the_burst_is_one_seconds_worth() -> None:
    pacer = Pacer(rate=20.0, clock=FakeClock())
    assert [pacer.reserve("Op") for _ in range(21)][-2:] == [0.0, 0.05]


def test_given_a_batch_when_an_attempt_would_end_after_the_deadline_then_out_of_time() -> None:
    clock = FakeClock()
    slept: list[float] = []
    guard = BatchGuard(attempt_seconds=2.0, clock=clock, sleep=slept.append)
    guard.start_batch(remaining_seconds=10.0, safety_margin=3.0)  # attempts must start by now + 5

    guard.check_time()
    guard.sleep(4.0)
    with pytest.raises(OutOfTimeError):
        guard.sleep(5.5)
    clock.now += 5.1
    with pytest.raises(OutOfTimeError):
        guard.check_time()
    assert slept == [4.0]


def test_given_a_tripped_breaker_when_checked_then_circuit_open_until_the_next_batch() -> None:
    guard = BatchGuard(attempt_seconds=1.0, clock=FakeClock())
    guard.start_batch(60, 1)
    guard.trip()

    with pytest.raises(CircuitOpenError):
        guard.check_breaker()
    guard.start_batch(60, 1)
    guard.check_breaker()


def test_given_a_capacity_below_one_when_idle_then_the_first_request_waits_for_the_missing_fraction() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, capacity=0.5, clock=clock)

    assert bucket.reserve() == pytest.approx(0.25)
    assert bucket.reserve() == pytest.approx(0.75)
    clock.now += 100
    assert bucket.reserve() == pytest.approx(0.25)


@pytest.mark.parametrize("environments", [2, 7, 20, 1000])
def test_given_environments_sharing_the_burst_when_they_start_together_then_the_fleet_sends_at_most_b_plus_rt(
    environments: int,
) -> None:
    # GIVEN the account's rate R and burst B split over N environments (capacity B/N, below one for N > B),
    # every bucket full at time 0, as after a quiet spell
    rate, burst = 2.0, 10.0
    clock = FakeClock()
    start = clock.now
    rng = random.Random(environments)
    pacers = [Pacer(rate / environments, burst / environments, clock=clock) for _ in range(environments)]
    per_environment: list[list[float]] = [[] for _ in pacers]

    # WHEN each environment asks for several calls at random moments
    for _ in range(6):
        for pacer, sent in zip(pacers, per_environment, strict=True):
            for _ in range(rng.randint(0, 3)):
                sent.append(clock.now + pacer.reserve("CreateRelatedItem"))
        clock.now += rng.uniform(0, 2 * environments / rate)

    # THEN by any time T after the start the fleet has sent at most B + R * T
    sends = sorted(at for sent in per_environment for at in sent)
    assert len(sends) > environments
    assert all(count <= burst + rate * (at - start) + 1e-9 for count, at in enumerate(sends, start=1))
    # and with a share of at most one token, no environment sends two calls closer than 1 / (R / N)
    if burst / environments <= 1:
        gaps = [b - a for sent in per_environment for a, b in itertools.pairwise(sent)]
        assert min(gaps) >= environments / rate - 1e-9


def test_given_a_zero_or_negative_capacity_then_the_bucket_is_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        TokenBucket(rate=1.0, capacity=0.0)


def test_given_a_pacer_taking_over_mid_flight_when_emptied_then_it_sends_at_its_rate_without_a_burst() -> (
    None
):
    clock = FakeClock()
    pacer = Pacer(rate=2.0, capacity=5.0, clock=clock)
    pacer.reserve("Op")

    pacer.empty()

    assert pacer.reserve("Op") == pytest.approx(0.5)
    assert pacer.reserve("Other") == pytest.approx(0.5)  # buckets made later start empty too


def test_given_a_batch_then_the_guard_knows_how_many_records_it_holds() -> None:
    guard = BatchGuard(attempt_seconds=1.0, clock=FakeClock())

    guard.start_batch(60, 1, records=7)

    assert guard.records == 7


def test_given_a_batch_sorted_into_live_and_background_work_then_each_expects_only_its_own_records() -> None:
    guard = BatchGuard(attempt_seconds=1.0, clock=FakeClock())
    guard.start_batch(60, 1, records=10)

    # one replay, two live records, one invalid record (no Cases call); six not sorted yet
    guard.sort(True)
    guard.sort(False)
    guard.sort(False)
    guard.sort(None)

    # background work leases for its own records only; live work also for those not sorted yet (it comes first)
    assert guard.expected(True) == 1
    assert guard.expected(False) == 8
    guard.start_batch(60, 1, records=3)
    assert (guard.expected(True), guard.expected(False)) == (0, 3)


def test_given_a_pacer_emptied_with_a_hold_then_its_first_call_waits_for_the_hold() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=2.0, capacity=5.0, clock=clock)
    pacer.reserve("Op")

    pacer.empty(hold=3.0)

    assert pacer.reserve("Op") == pytest.approx(3.5)
    assert pacer.reserve("Other") == pytest.approx(3.5)  # buckets made later wait as long
    clock.now += 1.0
    assert pacer.reserve("Later") == pytest.approx(2.5)


def test_given_a_hold_when_emptied_again_with_a_shorter_one_then_the_longer_hold_stands() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=2.0, capacity=5.0, clock=clock)
    pacer.reserve("Op")

    pacer.empty(hold=3.0)
    pacer.empty(hold=0.0)

    assert pacer.reserve("Op") == pytest.approx(3.5)
    assert pacer.reserve("Other") == pytest.approx(3.5)
