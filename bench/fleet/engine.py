"""A discrete-event loop on a virtual clock: tasks are generators that yield how long they sleep.

Hand-written (about 60 lines) because the simulation must drive the product's own pacing classes, which
call a clock function and return waits: a generator per simulated thread does that directly, where a
general simulation library (SimPy) would add a dependency for the same loop.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Generator
from typing import Any


class Event:
    """Something tasks wait for (`yield event`): set() wakes them all at the current virtual time."""

    def __init__(self, sim: Sim) -> None:
        self._sim = sim
        self.is_set = False
        self._waiters: list[tuple[int, Task]] = []

    def set(self) -> None:
        self.is_set = True
        for task_id, task in self._waiters:
            self._sim._resume(task_id, task, 0.0)
        self._waiters.clear()


# A simulated thread: yields seconds to sleep (or an Event to wait for), returns when done.
Task = Generator["float | Event", None, Any]


class Sim:
    """The virtual clock and the event queue.

    `clock()` is what the simulated code reads. Work that takes time inside one step without yielding
    (a DynamoDB round trip inside SharedBudget.reserve) calls `spend(seconds)`: the calling task's clock
    moves on, and its next sleep starts from there.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self._spent = 0.0
        self._queue: list[tuple[float, int, int, Task]] = []
        self._order = itertools.count()
        self._ids = itertools.count(1)
        self.current = 0  # id of the task being stepped: the "thread" that calls the pacing code

    def clock(self) -> float:
        return self.now + self._spent

    def spend(self, seconds: float) -> None:
        self._spent += seconds

    def spawn(self, task: Task, delay: float = 0.0) -> int:
        """Start `task` after `delay` seconds; returns its id."""
        task_id = next(self._ids)
        heapq.heappush(self._queue, (self.clock() + delay, next(self._order), task_id, task))
        return task_id

    def _resume(self, task_id: int, task: Task, delay: float) -> None:
        heapq.heappush(self._queue, (self.clock() + max(0.0, delay), next(self._order), task_id, task))

    def run(self, until: float, stop: Callable[[], bool] | None = None) -> None:
        """Step tasks in time order until `until` (virtual seconds) or until `stop()` holds."""
        queue = self._queue
        while queue and queue[0][0] <= until:
            when, _, task_id, task = heapq.heappop(queue)
            self.now, self._spent, self.current = when, 0.0, task_id
            try:
                delay = task.send(None)
            except StopIteration:
                continue
            if isinstance(delay, Event):
                if delay.is_set:
                    self._resume(task_id, task, 0.0)
                else:
                    delay._waiters.append((task_id, task))
            else:
                self._resume(task_id, task, delay)
            if stop is not None and stop():
                return
        self.now = max(self.now, min(until, queue[0][0]) if queue else until)
