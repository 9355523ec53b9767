"""Client-side pacing of Cases calls and the per-batch time and throttling guard.

Hand-written because neither botocore nor the Powertools layer paces ahead of the quota: botocore's
`adaptive` mode only slows down after it has been throttled (FACTS.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from case_linker.errors import CircuitOpenError, OutOfTimeError

Clock = Callable[[], float]


class TokenBucket:
    """Thread-safe token bucket. Callers reserve a token and wait outside the lock until it is theirs.

    The capacity may be a fraction of one token: a request then waits until the bucket has filled to one
    token. Either way, the requests it lets through in any interval of t seconds number at most
    capacity + rate * t, so N buckets of capacity B/N and rate R/N together never exceed B + R * t.
    """

    def __init__(self, rate: float, capacity: float, clock: Clock = time.monotonic) -> None:
        if not (rate > 0 and capacity > 0 and math.isfinite(rate) and math.isfinite(capacity)):
            raise ValueError("rate and capacity must be positive and finite")
        self._rate = rate
        self._capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def reserve(self, not_after: float = math.inf) -> float:
        """Take the next token; return how long to wait before using it.

        Raises OutOfTimeError, taking nothing, when the token would only be ready after `not_after`.
        """
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self._rate
            if now + wait > not_after:
                raise OutOfTimeError("the Cases request rate leaves no slot before the deadline")
            # Tokens go negative: each waiting caller holds a later slot, so waits queue up fairly. With a
            # capacity below one, the first caller after an idle spell waits for the missing fraction.
            self._tokens -= 1
            return wait

    def empty(self, hold: float = 0.0) -> None:
        """Spend whatever burst the bucket holds, and let the next token come `hold` seconds late at the
        earliest: from now on it only refills."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._tokens + (now - self._updated) * self._rate, 0.0) - hold * self._rate
            self._updated = now


class Pacer:
    """One token bucket per Cases operation (AWS sets the quotas per API).

    `capacity` is this environment's share of the account burst and may be below one (see TokenBucket).
    """

    def __init__(self, rate: float, capacity: float | None = None, clock: Clock = time.monotonic) -> None:
        self._rate = rate
        self._capacity = capacity if capacity is not None else max(1.0, rate)
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self._empty = False
        self._hold_until = -math.inf  # on `clock`: buckets made before this wait for it

    @property
    def rate(self) -> float:
        """Requests per second per operation."""
        return self._rate

    def reserve(self, operation: str, not_after: float = math.inf) -> float:
        """Seconds to wait before sending `operation`."""
        with self._lock:
            bucket = self._buckets.get(operation)
            if bucket is None:
                bucket = self._buckets[operation] = TokenBucket(self._rate, self._capacity, self._clock)
                if self._empty:
                    bucket.empty(max(0.0, self._hold_until - self._clock()))
        return bucket.reserve(not_after)

    def empty(self, hold: float = 0.0) -> None:
        """Start every bucket, present and future, without its burst and no sooner than `hold` seconds
        from now (when taking over mid-flight from pacing that may still have calls in flight)."""
        with self._lock:
            self._empty = True
            self._hold_until = max(self._hold_until, self._clock() + hold)  # never shortened
            for bucket in self._buckets.values():
                bucket.empty(hold)


class BatchGuard:
    """The batch's deadline and circuit breaker, shared by every thread working on the batch.

    A call attempt may start only if it can finish (connect + read timeout) before the deadline, which
    already keeps a safety margin of the invocation's remaining time for dead-lettering and bookkeeping.
    """

    def __init__(
        self,
        attempt_seconds: float,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.attempt_seconds = attempt_seconds
        self._clock = clock
        self._sleep = sleep
        self._deadline = math.inf
        self._end = math.inf
        self._tripped = threading.Event()
        self.records = 0
        # The batch's records sorted so far by the class of work they are (True: background; None: no Cases call),
        # for the shared budget's lease sizes.
        self._sorted: dict[bool | None, int] = {}
        self._lock = threading.Lock()

    def start_batch(self, remaining_seconds: float, safety_margin: float, records: int = 0) -> None:
        """Reset for a new batch of `records` records: close the breaker and set the deadline."""
        self._end = self._clock() + remaining_seconds
        self._deadline = self._end - safety_margin
        self._tripped.clear()
        with self._lock:
            self.records = records
            self._sorted = {}

    def sort(self, background: bool | None) -> None:
        """Note that one of the batch's records is live work, background work, or (None) makes no Cases call."""
        with self._lock:
            self._sorted[background] = self._sorted.get(background, 0) + 1

    def expected(self, background: bool) -> int:
        """How many of the batch's records may call Cases as this class of work: for background work those sorted
        into it, for live work also those not sorted yet. Live and background work lease apart, and a lease
        sized by the whole batch leaves the other class's slots unused on the fleet's schedule: lost to every
        environment. What is left unsorted goes to live work, which comes first."""
        with self._lock:
            sorted_here = self._sorted.get(background, 0)
            if background:
                return sorted_here
            return sorted_here + max(0, self.records - sum(self._sorted.values()))

    def remaining(self) -> float:
        """Seconds until the invocation ends (safety margin included): how long a lease taken now must last."""
        return max(0.0, self._end - self._clock()) if math.isfinite(self._end) else 900.0

    @property
    def last_start(self) -> float:
        """The latest moment an attempt may start."""
        return self._deadline - self.attempt_seconds

    def trip(self) -> None:
        """Stop calling Cases for the rest of this batch."""
        self._tripped.set()

    @property
    def tripped(self) -> bool:
        return self._tripped.is_set()

    def check_breaker(self) -> None:
        if self._tripped.is_set():
            raise CircuitOpenError()

    def check_time(self, wait: float = 0.0) -> None:
        """Raise OutOfTimeError unless an attempt started after `wait` seconds still finishes in time."""
        if self._clock() + wait > self.last_start:
            raise OutOfTimeError()

    def sleep(self, seconds: float) -> None:
        """Back off, unless the attempt after the pause would no longer fit."""
        self.check_time(seconds)
        if seconds > 0:
            self._sleep(seconds)
