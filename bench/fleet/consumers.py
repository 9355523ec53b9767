"""The consumers the simulation compares, each one execution environment at a time.

- `LinkerEnvironment`: case-linker's record flow (GetContactAttributes, ListCasesForContact paced and retried
  as botocore's standard mode does with 4 attempts, CreateRelatedItem paced and retried by the linker's own
  loop, 4 attempts), ten records of a batch in flight at once, the real BatchGuard (deadline, breaker) and the
  real pacing: `SharedBudget` (issue 15) or today's static split `Pacer(quota / maxConcurrency, burst share)`.
  The pacing hooks are called exactly where `cases.install_guards` calls them: before each HTTP attempt
  (`reserve`, not after the batch's last start) and after each response (`record`).
- `PlainEnvironment`: the benchmark's plain consumer (bench/baseline.py): records one after another,
  GetContactAttributes then CreateRelatedItem with botocore's default standard retries (3 attempts, retry
  quota), no pacing; with `adaptive=True`, botocore's `adaptive` retry mode: its own ClientRateLimiter,
  TokenBucket, CubicCalculator and RateClocker classes, on the virtual clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import CapacityNotAvailableError
from botocore.retries import adaptive, bucket, standard, throttling
from botocore.retries.quota import RetryQuota
from case_linker.budget import SharedBudget
from case_linker.errors import CircuitOpenError, OutOfTimeError, ThrottledError
from case_linker.pacing import BatchGuard

from bench.fleet.engine import Event, Sim, Task
from bench.fleet.world import FLEET, AccountQuota, Message

LIST = "ListCasesForContact"
CREATE = "CreateRelatedItem"
GB_PER_ENVIRONMENT = 0.25  # the stack's 256 MB


class Pacing(Protocol):
    def reserve(self, operation: str, not_after: float = math.inf) -> float: ...

    def record(self, operation: str, throttled: bool) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Timing:
    """Latencies and the function's limits, in simulated seconds."""

    function_timeout: float
    cases_latency: float = 0.05  # one Cases call, request to response
    network_jitter: float = 0.01  # a call reaches Cases up to this much after it is sent
    connect_latency: float = 0.02  # GetContactAttributes (Connect's own quota is not simulated)
    record_overhead: float = 0.012  # per record: idempotency/ledger writes and the handler's own work
    cold_start: float = 0.6  # init: importing Powertools and building clients (bench/coldstart.py)
    safety_margin: float = 3.0  # Tuning.safety_margin
    attempt_seconds: float = 7.0  # Tuning.connect_timeout + read_timeout
    read_attempts: int = 4  # Tuning.read_attempts
    create_attempts: int = 4  # Tuning.create_attempts
    plain_attempts: int = 3  # botocore's default
    capacity_delay_cap: float = 60.0  # Tuning.capacity_delay_cap


@dataclass
class EnvironmentStats:
    invocations: int = 0
    busy_seconds: float = 0.0  # invocations + init: what Lambda bills
    timed_out: int = 0
    breaker_trips: int = 0
    out_of_time: int = 0


@dataclass
class Outcome:
    """What one invocation did with each record of its batch."""

    deleted: list[Message] = field(default_factory=list)
    handed_back: list[Message] = field(default_factory=list)


class Environment(Protocol):
    stats: EnvironmentStats

    def invoke(self, batch: list[Message]) -> Generator[float | Event, None, Outcome]: ...


class LinkerEnvironment:
    """One execution environment of case-linker."""

    def __init__(
        self, sim: Sim, account: AccountQuota, pacing: Pacing, timing: Timing, rng: random.Random
    ) -> None:
        self._sim = sim
        self._account = account
        self._pacing = pacing
        self._timing = timing
        self._rng = rng
        self._guard = BatchGuard(attempt_seconds=timing.attempt_seconds, clock=sim.clock)
        self._recheck = isinstance(pacing, SharedBudget)
        self.stats = EnvironmentStats()

    def invoke(self, batch: list[Message]) -> Generator[float | Event, None, Outcome]:
        sim, timing = self._sim, self._timing
        started = sim.clock()
        self._guard.start_batch(timing.function_timeout, timing.safety_margin, records=len(batch))
        done = Event(sim)
        outcome = Outcome()
        pending = [len(batch)]

        def finished() -> None:
            pending[0] -= 1
            if pending[0] == 0:
                done.set()

        for message in batch:
            sim.spawn(self._record(message, outcome, finished))
        yield done
        self.stats.invocations += 1
        self.stats.busy_seconds += sim.clock() - started
        return outcome

    def _record(self, message: Message, outcome: Outcome, finished: Callable[[], None]) -> Task:
        timing, guard = self._timing, self._guard
        try:
            yield timing.connect_latency  # GetContactAttributes
            guard.check_breaker()
            try:  # Linker._existing: ListCasesForContact, botocore retrying throttles
                yield from self._read(LIST)
            except ThrottledError:
                guard.trip()
                raise
            yield from self._create(message)
            yield timing.record_overhead
            outcome.deleted.append(message)
        except (ThrottledError, CircuitOpenError, OutOfTimeError) as error:
            if isinstance(error, OutOfTimeError):
                self.stats.out_of_time += 1
            outcome.handed_back.append(message)
        finally:
            finished()

    def _attempt(self, operation: str) -> Generator[float, None, bool]:
        """One HTTP attempt through install_guards' before-send and needs-retry hooks."""
        guard = self._guard
        guard.check_breaker()
        if isinstance(self._pacing, SharedBudget):
            wait = self._pacing.reserve(operation, not_after=guard.last_start, expected=guard.expected(False))
        else:
            wait = self._pacing.reserve(operation, not_after=guard.last_start)
        while wait > 0:
            guard.check_time(wait)
            yield wait
            # The shared budget is asked again after the wait (a throttle meanwhile revokes the slot);
            # a plain Pacer is not: asking it again would take a second token.
            wait = self._pacing.reserve(operation, not_after=guard.last_start) if self._recheck else 0.0
        yield self._rng.random() * self._timing.network_jitter
        accepted = self._account.attempt(operation, FLEET)
        yield self._timing.cases_latency
        self._pacing.record(operation, throttled=not accepted)
        return accepted

    def _read(self, operation: str) -> Generator[float, None, None]:
        attempts = self._timing.read_attempts
        for attempt in range(1, attempts + 1):
            if (yield from self._attempt(operation)):
                return
            if attempt < attempts:
                worst = min(2.0 ** (attempt - 1), 20.0)
                self._guard.check_time(worst)  # install_guards' needs-retry check
                yield self._rng.random() * worst  # botocore's full-jitter backoff
        raise ThrottledError("ThrottlingException", f"{operation} throttled on every attempt")

    def _create(self, message: Message) -> Generator[float, None, None]:
        attempts = self._timing.create_attempts
        for attempt in range(1, attempts + 1):
            self._guard.check_breaker()
            if (yield from self._attempt(CREATE)):
                _created(message, self._sim)
                return
            if attempt < attempts:
                delay = self._rng.random() * min(2.0 ** (attempt - 1), 20.0)  # linker.Backoff
                self._guard.check_time(delay)
                yield delay
        self._guard.trip()
        self.stats.breaker_trips += 1
        raise ThrottledError("ThrottlingException", "CreateRelatedItem throttled on every attempt")


def _created(message: Message, sim: Sim) -> None:
    message.items += 1
    if message.first_item_at is None:
        message.first_item_at = sim.clock()


class _VirtualClock(bucket.Clock):
    """botocore's clock interface on the simulation's clock (its classes only read current_time)."""

    def __init__(self, sim: Sim) -> None:
        self._sim = sim

    def current_time(self) -> float:
        return self._sim.clock()

    def sleep(self, amount: float) -> None:
        raise RuntimeError("the simulation sleeps by yielding, never inside botocore")


class AdaptiveLimiter(adaptive.ClientRateLimiter):
    """botocore's ClientRateLimiter, built as `adaptive.register_retry_handler` builds it, on the virtual
    clock. Its token bucket blocks on a condition variable when empty; here the wait is returned instead,
    computed by the bucket itself, and the simulation sleeps it and tries again, as the blocking call would."""

    def __init__(self, sim: Sim) -> None:
        clock = _VirtualClock(sim)
        super().__init__(
            rate_adjustor=throttling.CubicCalculator(starting_max_rate=0, start_time=clock.current_time()),
            rate_clocker=adaptive.RateClocker(clock),
            token_bucket=bucket.TokenBucket(max_rate=1, clock=clock),
            throttling_detector=standard.ThrottlingErrorDetector(
                retry_event_adapter=standard.RetryEventAdapter()
            ),
            clock=clock,
        )

    def wait_to_send(self) -> float:
        """0 when a token was taken (or the limiter is not engaged yet), else seconds until one is."""
        if not self._enabled:
            return 0.0
        try:
            self._token_bucket.acquire(block=False)
        except CapacityNotAvailableError:
            return max(1e-6, float(self._token_bucket._sleep_amount(1)))
        return 0.0

    def received(self, throttled: bool, attempt: int) -> None:
        """The needs-retry event, with the response botocore parses for a 429 or a 200."""
        status, parsed = (
            (429, {"Error": {"Code": "ThrottlingException"}}) if throttled else (200, {"relatedItemId": "x"})
        )
        self.on_receiving_response(
            response=(_Http(status), parsed),
            attempts=attempt,
            operation=_CREATE_MODEL,
            caught_exception=None,
            request_dict={"context": {}},
        )


@dataclass(frozen=True)
class _Http:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)


def _create_model() -> Any:
    import botocore.session

    model = botocore.session.get_session().get_service_model("connectcases")
    return model.operation_model(CREATE)


_CREATE_MODEL = _create_model()


class PlainEnvironment:
    """One execution environment of the plain consumer (bench/baseline.py), standard or adaptive retries."""

    def __init__(
        self, sim: Sim, account: AccountQuota, timing: Timing, rng: random.Random, *, adaptive_mode: bool
    ) -> None:
        self._sim = sim
        self._account = account
        self._timing = timing
        self._rng = rng
        self._limiter = AdaptiveLimiter(sim) if adaptive_mode else None
        self._quota = RetryQuota()
        self.stats = EnvironmentStats()

    def invoke(self, batch: list[Message]) -> Generator[float | Event, None, Outcome]:
        sim, timing = self._sim, self._timing
        started = sim.clock()
        deadline = started + timing.function_timeout
        outcome = Outcome()
        for message in batch:
            yield timing.connect_latency
            linked = yield from self._create(message, deadline)
            if sim.clock() > deadline:
                # Lambda stops the invocation at its timeout: the whole batch goes back, done or not.
                self.stats.timed_out += 1
                self.stats.invocations += 1
                self.stats.busy_seconds += timing.function_timeout
                return Outcome(handed_back=list(batch))
            (outcome.deleted if linked else outcome.handed_back).append(message)
        self.stats.invocations += 1
        self.stats.busy_seconds += sim.clock() - started
        return outcome

    def _create(self, message: Message, deadline: float) -> Generator[float, None, bool]:
        acquired = 0
        for attempt in range(1, self._timing.plain_attempts + 1):
            if self._limiter is not None:
                while (wait := self._limiter.wait_to_send()) > 0:
                    yield wait
                    if self._sim.clock() > deadline:
                        return False
            yield self._rng.random() * self._timing.network_jitter
            accepted = self._account.attempt(CREATE, FLEET)
            yield self._timing.cases_latency
            if self._limiter is not None:
                self._limiter.received(throttled=not accepted, attempt=attempt)
            if accepted:
                _created(message, self._sim)
                # standard mode's retry quota: a success gives back what its retries took, or 1
                self._quota.release(acquired or 1)
                return True
            if attempt == self._timing.plain_attempts or not self._quota.acquire(5):
                return False
            acquired = 5
            yield self._rng.random() * min(2.0 ** (attempt - 1), 20.0)
        return False
