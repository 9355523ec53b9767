"""What the fleet runs against: the account's Cases quota, the SQS queue, co-tenants and DynamoDB."""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from case_linker.budget import BudgetState, MemoryBudgetStore

from bench.fleet.engine import Sim, Task

FLEET = "fleet"
COTENANT = "cotenant"


@dataclass
class ApiLog:
    """Every attempt on one API: when, by whom, accepted or refused (429)."""

    fleet_sends: list[float] = field(default_factory=list)
    fleet_refused: int = 0
    fleet_accepted_at: list[float] = field(default_factory=list)
    cotenant_sends: list[float] = field(default_factory=list)
    cotenant_refused_at: list[float] = field(default_factory=list)


class AccountQuota:
    """The account's token bucket for each Cases API: `rate` per second, `burst` at most; 429 when empty."""

    def __init__(self, sim: Sim, rate: float, burst: float) -> None:
        self._sim = sim
        self.rate = rate
        self.burst = burst
        self._tokens: dict[str, float] = {}
        self._updated: dict[str, float] = {}
        self.logs: dict[str, ApiLog] = {}

    def attempt(self, operation: str, source: str) -> bool:
        """One request reaching Cases now; True when accepted."""
        now = self._sim.clock()
        tokens = min(
            self.burst,
            self._tokens.get(operation, self.burst) + (now - self._updated.get(operation, now)) * self.rate,
        )
        self._updated[operation] = now
        accepted = tokens >= 1.0 - 1e-9  # slots exactly 1/rate apart must not fail on rounding
        self._tokens[operation] = tokens - 1.0 if accepted else tokens
        log = self.logs.get(operation)
        if log is None:
            log = self.logs[operation] = ApiLog()
        if source == FLEET:
            log.fleet_sends.append(now)
            if accepted:
                log.fleet_accepted_at.append(now)
            else:
                log.fleet_refused += 1
        else:
            log.cotenant_sends.append(now)
            if not accepted:
                log.cotenant_refused_at.append(now)
        return accepted


@dataclass
class Message:
    ident: int
    published: float
    visible_at: float
    receive_count: int = 0
    deleted_at: float | None = None  # the consumer finished it and the ESM deleted it
    items: int = 0  # related items its deliveries created (more than one: duplicates)
    first_item_at: float | None = None


class Queue:
    """The main SQS queue: visibility timeout, receive counts, the DLQ after maxReceiveCount receives."""

    def __init__(self, sim: Sim, *, visibility_timeout: float, max_receive_count: int) -> None:
        self._sim = sim
        self.visibility_timeout = visibility_timeout
        self.max_receive_count = max_receive_count
        self._visible: deque[Message] = deque()
        self._delayed: list[tuple[float, int, Message]] = []  # a heap by visible_at
        self.messages: list[Message] = []
        self.dead_lettered = 0
        self.deleted = 0
        self.handed_back: list[float] = []  # when each hand-back happened
        self.requeued = 0  # of which sent again as new messages

    def publish(self, count: int = 1) -> None:
        now = self._sim.clock()
        for _ in range(count):
            message = Message(len(self.messages), now, now)
            self.messages.append(message)
            self._visible.append(message)

    def visible(self) -> int:
        self._wake()
        return len(self._visible)

    def receive(self, limit: int) -> list[Message]:
        self._wake()
        batch: list[Message] = []
        while self._visible and len(batch) < limit:
            message = self._visible.popleft()
            if message.receive_count >= self.max_receive_count:
                self.dead_lettered += 1  # SQS moves it to the DLQ instead of delivering it again
                continue
            message.receive_count += 1
            batch.append(message)
        return batch

    def delete(self, message: Message) -> None:
        message.deleted_at = self._sim.clock()
        self.deleted += 1

    def hand_back(self, message: Message, delay: float | None = None) -> None:
        """The record stays on the queue: visible again after the visibility timeout (or `delay`)."""
        now = self._sim.clock()
        self.handed_back.append(now)
        message.visible_at = now + (self.visibility_timeout if delay is None else delay)
        heapq.heappush(self._delayed, (message.visible_at, message.ident, message))

    def requeue(self, message: Message, delay: float) -> None:
        """The record is sent again as a new message (its receive count starts over) and the original is
        acknowledged: what case-linker does with a capacity hand-back close to maxReceiveCount."""
        self.requeued += 1
        message.receive_count = 0
        self.hand_back(message, delay)

    def _wake(self) -> None:
        now = self._sim.clock()
        while self._delayed and self._delayed[0][0] <= now:
            self._visible.append(heapq.heappop(self._delayed)[2])

    def outstanding(self) -> int:
        """Messages neither deleted nor dead-lettered."""
        return len(self.messages) - self.deleted - self.dead_lettered

    def next_visible_at(self) -> float | None:
        return self._delayed[0][0] if self._delayed else None


@dataclass(frozen=True)
class CoTenant:
    """Other callers on the same quota (agents in the Agent Workspace, flows, other integrations), at
    `share` of the quota on each API on average. They do not retry: a refused call counts as refused.

    Steady: evenly spaced calls. Bursty: random (Poisson) calls whose rate swings between 1.5x and 0.5x the
    share every `period` seconds, like a contact centre's busy and quiet spells."""

    share: float
    bursty: bool = False
    period: float = 30.0

    def run(self, sim: Sim, account: AccountQuota, operation: str, rng: random.Random, until: float) -> Task:
        rate = self.share * account.rate
        yield rng.random() / rate  # a random phase
        while sim.clock() < until:
            if self.bursty:
                busy = (sim.clock() // self.period) % 2 == 0
                yield rng.expovariate(rate * (1.5 if busy else 0.5))
            else:
                yield 1.0 / rate + rng.random() * 0.01  # network jitter, as the fleet's calls have
            account.attempt(operation, COTENANT)


@dataclass(frozen=True)
class DynamoDBModel:
    """Latency of the budget's DynamoDB calls, and when it is down or slow (simulated seconds)."""

    latency: float = 0.006
    jitter: float = 0.004
    outage: tuple[float, float] | None = None  # every call fails in [start, end)
    slow: tuple[float, float] | None = None  # every call takes `slow_latency` in [start, end)
    slow_latency: float = 0.6


class SimStore(MemoryBudgetStore):
    """The in-memory budget store with DynamoDB's latency, outages and request count."""

    def __init__(self, sim: Sim, model: DynamoDBModel, rng: random.Random) -> None:
        super().__init__()
        self._sim = sim
        self._model = model
        self._rng = rng
        self.requests = 0

    def extend(self, key: str, **kwargs: Any) -> BudgetState:
        self._round_trip()
        return super().extend(key, **kwargs)

    def refill(self, key: str, **kwargs: Any) -> BudgetState:
        self._round_trip()
        return super().refill(key, **kwargs)

    def decrease(self, key: str, **kwargs: Any) -> BudgetState:
        self._round_trip()
        return super().decrease(key, **kwargs)

    def read(self, key: str) -> BudgetState | None:
        self._round_trip()
        return super().read(key)

    def _round_trip(self) -> None:
        self.requests += 1
        now = self._sim.clock()
        model = self._model
        if model.outage is not None and model.outage[0] <= now < model.outage[1]:
            self._sim.spend(0.5)  # the client's connect timeout
            raise ConnectionError("DynamoDB unreachable (simulated)")
        if model.slow is not None and model.slow[0] <= now < model.slow[1]:
            self._sim.spend(model.slow_latency)
        else:
            self._sim.spend(model.latency + self._rng.random() * model.jitter)
