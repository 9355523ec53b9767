"""Backlog drain: N queued contact COMPLETED events against a Cases quota, the linker vs the baseline.

Both consumers run through the same local pipeline (moto SQS + the poller standing in for Lambda's event source
mapping, one worker process per execution environment) with the same settings; only the handler differs.
Everything is read from evidence: the emulator's recorded calls and stored related items, the poller's
deliveries, the reconciliation of every published event.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from emulator import DEFAULT_QUOTAS, Call, EmulatorConfig, Quota
from local import LocalPipeline, PipelineOptions
from local.cotenant import CoTenant
from local.inputs import Input
from local.poller import Delivery, RecordOutcome

BASELINE_HANDLER = "bench.baseline.lambda_handler"
# The Cases operations AWS meters separately (per API); each gets the scaled quota and the same burst.
CASES_OPERATIONS = ("CreateRelatedItem", "ListCasesForContact", "SearchRelatedItems")
REAL_CREATE_RATE = DEFAULT_QUOTAS["CreateRelatedItem"].rate  # 2 req/s, AWS's default


@dataclass(frozen=True, kw_only=True)
class DrainSettings:
    events: int
    quota: float  # CreateRelatedItem (and the other Cases APIs) requests/s, scaled up from AWS's 2
    burst: int
    latency_s: float  # emulator latency per call
    max_concurrency: int
    batch_size: int
    function_timeout_s: float
    visibility_timeout_s: int
    timeout_s: float  # bound on each drain
    # Issue 15's scenarios. A co-tenant spending this share of the quota on each API, steadily, running
    # alone for `cotenant_alone_s` before the events are published (its refusals alone, for comparison).
    cotenant_share: float = 0.0
    cotenant_alone_s: float = 15.0
    # Publish one event every 1/arrival_rate seconds while the pipeline runs, instead of a backlog.
    arrival_rate: float | None = None
    batching_window_s: float | None = None  # None: the stack's

    @property
    def quota_scale(self) -> float:
        return self.quota / REAL_CREATE_RATE


@dataclass(frozen=True, kw_only=True)
class DrainRun:
    """What one consumer did with the backlog."""

    consumer: str
    events: int
    drained: bool
    items_created: int
    duplicates: int
    lost: int
    pending: int
    dead_lettered: int
    dlq_by_code: dict[str, dict[str, int]]
    create_calls: int
    create_throttled: int
    list_calls: int
    list_throttled: int
    handed_back: int  # deliveries not deleted after the invocation (batchItemFailures or a failed batch)
    redelivered: int  # deliveries with ApproximateReceiveCount > 1
    invocations: int
    invocation_status: dict[str, int]  # ok / error / timeout / killed
    max_invocation_s: float
    # Per execution environment: median seconds from one invocation's end to the next's. Below the paced
    # minimum (batch size / CASES_MAX_RPS) the environment could spend its whole share of the quota; above it,
    # something other than pacing (the handler or the local rig) held it back.
    median_cycle_s: float
    span_s: float  # first emulator call -> last successful CreateRelatedItem
    wall_s: float  # first publish -> queue drained (includes cold starts, batching window, quiet period)
    median_invocation_s: float
    goodput_over_quota: float
    # The same over the second half of the items created: the queue is then half as deep. Context for the
    # headline figure, which moto's ReceiveMessage (it walks every message: ~0.6 s per call at 1,000 queued,
    # measured) holds down while the backlog is deep; a real SQS queue costs the same at any depth.
    second_half_goodput_over_quota: float
    throttled_share: float
    handler_metrics: dict[str, int]
    poller_errors: list[str]
    handed_back_after_10s: int = 0  # hand-backs more than 10 s after the first Cases call
    cases_span_s: float = 0.0  # first Cases call (not Connect's) to the last successful CreateRelatedItem
    latency_p50_s: float | None = None  # publish to the item on the case
    latency_p95_s: float | None = None
    # With a co-tenant: the quota it left (its accepted rate alone), goodput over that, its refused shares.
    remaining_rate: float | None = None
    goodput_over_remaining: float | None = None
    cotenant_refused_alone: float | None = None
    cotenant_refused_with_drain: float | None = None
    cotenant_refused_rise_points: float | None = None
    # The shared budget's DynamoDB requests per Cases call (the handler's BudgetRequests metric); None when
    # the consumer has no shared budget.
    budget_requests_per_cases_call: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def emulator_config(settings: DrainSettings) -> EmulatorConfig:
    quotas: dict[str, Quota | None] = {
        op: Quota(rate=DEFAULT_QUOTAS[op].rate, burst=settings.burst) for op in CASES_OPERATIONS
    }
    return EmulatorConfig(
        throttling=True,
        quotas=quotas,
        quota_scale=settings.quota_scale,
        latency_s=settings.latency_s,
        seed=1,
    )


def run_drain(
    settings: DrainSettings, *, consumer: str, handler: str, extra_environment: dict[str, str] | None = None
) -> DrainRun:
    """Publish `settings.events` synthetic contact events, drain them with `handler`, judge the result."""
    options = PipelineOptions(
        contacts=settings.events,
        # Fifty contacts per case keeps every case well under the 200 related items quota.
        contacts_per_case=50,
        emulator_config=emulator_config(settings),
        context={"maxConcurrency": settings.max_concurrency, "batchSize": settings.batch_size},
        function_timeout_s=settings.function_timeout_s,
        visibility_timeout_s=settings.visibility_timeout_s,
        batching_window_s=settings.batching_window_s,
        handler=handler,
        extra_environment=extra_environment or {},
        # moto in its own process: with it in the poller's process, that one process (moto's SQS and DynamoDB,
        # the emulator, the poller) saturated one core and, not the quota, set the pace.
        moto_process=True,
    )
    published_at: dict[str, float] = {}
    cotenant_rate = settings.cotenant_share * settings.quota
    with LocalPipeline(options) as pipeline, CoTenant(pipeline.emulator, cotenant_rate) as cotenant:
        alone_from = time.monotonic()
        if cotenant_rate > 0:
            time.sleep(settings.cotenant_alone_s)
        alone_until = time.monotonic()
        started = time.monotonic()
        if settings.arrival_rate:
            pipeline.poller.start()
            for index, item in enumerate(pipeline.inputs):
                time.sleep(max(0.0, started + index / settings.arrival_rate - time.monotonic()))
                published_at[_contact_arn(item)] = time.monotonic()
                pipeline.publish([item])
        else:
            now = time.monotonic()
            published_at.update((_contact_arn(item), now) for item in pipeline.inputs)
            pipeline.publish_all()
        result = pipeline.drain(timeout_s=settings.timeout_s, quiet_period_s=1.0)
        wall = time.monotonic() - started
        cotenant.stop()
        domain = pipeline.config.cases_domain_id
        calls = [c for c in pipeline.emulator.calls if c.params.get("domainId", domain) == domain]
        deliveries = list(pipeline.poller.deliveries)
        invocations = list(pipeline.poller.invocations)
        quota_rate = pipeline.emulator.config.quota_for("CreateRelatedItem")
    creates = [c for c in calls if c.operation == "CreateRelatedItem"]
    lists = [c for c in calls if c.operation == "ListCasesForContact"]
    created = [c for c in creates if c.status == 200]
    span = _span(calls, created)
    rate = quota_rate.rate if quota_rate is not None else settings.quota
    first_call = min((c.monotonic for c in calls), default=started)
    handed_back = [d for d in deliveries if d.outcome is not RecordOutcome.DELETED]
    latencies = sorted(
        c.monotonic - published_at[arn]
        for c in created
        if (arn := c.params.get("content", {}).get("contact", {}).get("contactArn")) in published_at
    )
    extra: dict[str, Any] = {}
    if cotenant_rate > 0 and created:
        end = max(c.monotonic for c in created)
        alone = cotenant.refused_share(alone_from, alone_until)
        during = cotenant.refused_share(first_call, end)
        # What the co-tenant leaves of the quota: its rate, less what is refused even when it is alone.
        remaining = rate - cotenant_rate * (1 - alone)
        distinct = result.items_created - result.duplicates
        extra = {
            "remaining_rate": remaining,
            "goodput_over_remaining": distinct / span / remaining if span > 0 and remaining > 0 else 0.0,
            "cotenant_refused_alone": alone,
            "cotenant_refused_with_drain": during,
            "cotenant_refused_rise_points": (during - alone) * 100,
        }
    return DrainRun(
        consumer=consumer,
        events=settings.events,
        drained=result.drained,
        items_created=result.items_created,
        duplicates=result.duplicates,
        lost=result.lost,
        pending=result.pending,
        dead_lettered=result.summary()["dead_lettered"],
        dlq_by_code=result.dlq_by_code,
        create_calls=len(creates),
        create_throttled=_throttled(creates),
        list_calls=len(lists),
        list_throttled=_throttled(lists),
        handed_back=len(handed_back),
        redelivered=sum(1 for d in deliveries if d.receive_count > 1),
        invocations=len(invocations),
        invocation_status=dict(Counter(str(i.status) for i in invocations)),
        max_invocation_s=max((i.duration_s for i in invocations), default=0.0),
        median_cycle_s=_median_cycle(deliveries),
        span_s=span,
        wall_s=wall,
        median_invocation_s=statistics.median([i.duration_s for i in invocations]) if invocations else 0.0,
        # Duplicates spend quota without linking anything new: only distinct items count as goodput.
        goodput_over_quota=((result.items_created - result.duplicates) / span / rate) if span > 0 else 0.0,
        second_half_goodput_over_quota=_second_half_goodput(created, rate),
        throttled_share=_throttled(creates) / len(creates) if creates else 0.0,
        handler_metrics=dict(result.handler_metrics),
        poller_errors=list(result.poller_errors),
        handed_back_after_10s=sum(1 for d in handed_back if d.at > first_call + 10.0),
        cases_span_s=_span([c for c in calls if c.operation in CASES_OPERATIONS], created),
        latency_p50_s=_quantile(latencies, 0.5),
        latency_p95_s=_quantile(latencies, 0.95),
        budget_requests_per_cases_call=(
            result.handler_metrics["BudgetRequests"] / (len(creates) + len(lists))
            if "BudgetRequests" in result.handler_metrics and creates
            else None
        ),
        **extra,
    )


def _contact_arn(item: Input) -> str:
    detail = item.detail or {}
    return f"{detail.get('instanceArn')}/contact/{detail.get('contactId')}"


def _quantile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, round(share * (len(values) - 1)))]


def _median_cycle(deliveries: list[Delivery]) -> float:
    ends: dict[str, set[float]] = {}
    for delivery in deliveries:
        ends.setdefault(delivery.worker, set()).add(delivery.at)
    gaps = [b - a for times in ends.values() for a, b in itertools.pairwise(sorted(times))]
    return statistics.median(gaps) if gaps else 0.0


def _second_half_goodput(created: list[Call], rate: float) -> float:
    times = sorted(c.monotonic for c in created)
    half = len(times) // 2
    if half < 2 or times[-1] <= times[half]:
        return 0.0
    return (len(times) - half - 1) / (times[-1] - times[half]) / rate


def _throttled(calls: list[Call]) -> int:
    return sum(1 for c in calls if c.status == 429)


def _span(calls: list[Call], created: list[Call]) -> float:
    """Seconds from the first request the emulator saw to the last successful CreateRelatedItem.

    Starts at the first call, not at publish, so the execution environments' cold starts are not charged to
    the steady-state rate.
    """
    if not calls or not created:
        return 0.0
    return max(c.monotonic for c in created) - min(c.monotonic for c in calls)


def ideal_goodput_over_quota(events: int, quota: float, burst: int) -> float:
    """The best a consumer can score on this measure: the burst up front, then exactly the quota."""
    if events <= burst:
        return float("inf")
    return events / ((events - burst) / quota) / quota
