"""Thread-safe per-batch counters, published as EMF metrics once per batch."""

from __future__ import annotations

import threading
from collections import Counter

from aws_lambda_powertools import Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

# Metric names (issue 3). Dimensions: RelatedItemCreated by `type`, DeadLettered by `errorCode`; no ids ever.
RELATED_ITEM_CREATED = "RelatedItemCreated"
ALREADY_LINKED = "AlreadyLinked"
NO_CASE_ID = "NoCaseId"
EVENT_IGNORED = "EventIgnored"
THROTTLED = "Throttled"
RETRIED = "Retried"
DEAD_LETTERED = "DeadLettered"
# A record handed back for redelivery (dimension `reason`: our error code, e.g. ThrottlingException).
HANDED_BACK = "HandedBack"
# A record handed back for want of Cases capacity close to maxReceiveCount: re-sent as a new message instead.
REQUEUED = "Requeued"
# The shared Cases budget (budget.py): its DynamoDB requests (cost: about one per ten Cases calls at full load),
# slots it leased and gave up unused, and times an environment fell back to pacing itself (the table failed
# or was slow; reason in the log).
BUDGET_REQUESTS = "BudgetRequests"
BUDGET_SLOTS_UNUSED = "BudgetSlotsUnused"
BUDGET_DEGRADED = "BudgetDegraded"

MetricKey = tuple[str, str | None, str | None]  # name, dimension name, dimension value


class Counters:
    """Counts shared by the threads of one batch."""

    def __init__(self) -> None:
        self._counts: Counter[MetricKey] = Counter()
        self._lock = threading.Lock()

    def incr(self, name: str, dimension: tuple[str, str] | None = None, value: int = 1) -> None:
        key: MetricKey = (name, *dimension) if dimension else (name, None, None)
        with self._lock:
            self._counts[key] += value

    def take(self) -> dict[MetricKey, int]:
        """Return the counts so far and start again from zero."""
        with self._lock:
            counts = dict(self._counts)
            self._counts.clear()
        return counts

    def total(self, name: str) -> int:
        with self._lock:
            return sum(v for (n, _, _), v in self._counts.items() if n == name)


def publish(counts: dict[MetricKey, int], metrics: Metrics) -> None:
    """Write the batch's counts as EMF: plain ones in one blob, each dimensioned one in its own.

    Flushed here rather than by `log_metrics`, which warns on batches that had nothing to count.
    """
    plain = False
    for (name, dimension, dimension_value), value in sorted(counts.items(), key=str):
        if dimension is None or dimension_value is None:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
            plain = True
            continue
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=value,
            default_dimensions=dict(metrics.default_dimensions),
        ) as metric:
            metric.add_dimension(name=dimension, value=dimension_value)
    if plain:
        metrics.flush_metrics()
