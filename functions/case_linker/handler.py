"""Composition root: builds clients once per execution environment, wires them, and delegates.

Entry point: `case_linker.handler.lambda_handler` (an SQS batch; returns a partial batch response).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import boto3
import botocore.session
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from case_linker.budget import BudgetConfig, BudgetStats, DynamoDBBudgetStore, SharedBudget
from case_linker.cases import CasesGateway, install_guards
from case_linker.dlq import DeadLetterQueue
from case_linker.ledger import Ledger
from case_linker.linker import Backoff, Linker
from case_linker.pacing import BatchGuard, Pacer
from case_linker.processor import CaseResolver, RecordProcessor
from case_linker.redelivery import Redelivery
from case_linker.settings import Settings
from case_linker.telemetry import (
    BUDGET_DEGRADED,
    BUDGET_REQUESTS,
    BUDGET_SLOTS_UNUSED,
    Counters,
    MetricKey,
    publish,
)

logger = Logger()
metrics = Metrics()
# With Lambda's JSON log format the runtime sets the root logger to the application log level; at DEBUG, botocore
# would log every request's parameters and body (comment text, contact attributes) and urllib3 every URL. Their
# warnings and errors still come through; the function's own DEBUG lines are Powertools' (POWERTOOLS_LOG_LEVEL).
for _library in ("botocore", "boto3", "urllib3", "s3transfer"):
    logging.getLogger(_library).setLevel(logging.INFO)

# Service models newer than the runtime's botocore may carry (see data/README.md).
SERVICE_MODELS = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Tuning:
    """Timing knobs (not environment settings): defaults for Lambda, tests shrink them."""

    max_workers: int = 10
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    # botocore standard mode, calls per operation (reads and Connect). CreateRelatedItem: see Linker.
    read_attempts: int = 4
    create_attempts: int = 4
    # Kept free at the end of the invocation for dead-letter sends and ledger writes.
    safety_margin: float = 3.0
    backoff: Backoff = field(default_factory=Backoff)
    # Burst of the per-operation token bucket, overriding CASES_MAX_BURST (experiments only).
    bucket_capacity: float | None = None
    # Longest delay before a record handed back for want of Cases capacity comes again.
    capacity_delay_cap: float = 60.0

    @property
    def attempt_seconds(self) -> float:
        return self.connect_timeout + self.read_timeout


@dataclass(frozen=True)
class Clients:
    """One client per service (two for Cases: reads retried by botocore, creates not)."""

    cases: Any
    cases_create: Any
    connect: Any
    sqs: Any
    dynamodb: Any
    # The shared Cases budget's: short timeouts and one retry, so a slow table makes the budget fall back
    # to local pacing (budget.py) instead of stalling the batch.
    budget_dynamodb: Any = None


def model_session() -> boto3.session.Session:
    """A boto3 session whose botocore reads our shipped service models before its own."""
    core = botocore.session.get_session()
    core.get_component("data_loader").search_paths.insert(0, str(SERVICE_MODELS))
    return boto3.session.Session(botocore_session=core)


def build_clients(tuning: Tuning, session: boto3.session.Session | None = None) -> Clients:
    """Create the boto3 clients (about 150 ms each to build: once per execution environment)."""
    session = session or model_session()

    def config(attempts: int, read_timeout: float | None = None) -> Config:
        return Config(
            retries={"mode": "standard", "total_max_attempts": attempts},
            connect_timeout=tuning.connect_timeout,
            read_timeout=read_timeout or tuning.read_timeout,
            max_pool_connections=max(10, tuning.max_workers),
        )

    return Clients(
        cases=session.client("connectcases", config=config(tuning.read_attempts)),
        cases_create=session.client("connectcases", config=config(1)),
        connect=session.client("connect", config=config(tuning.read_attempts)),
        sqs=session.client("sqs", config=config(3, read_timeout=2.0)),
        dynamodb=session.client("dynamodb", config=config(3, read_timeout=2.0)),
        budget_dynamodb=session.client(
            "dynamodb",
            config=Config(
                retries={"mode": "standard", "total_max_attempts": 2},
                connect_timeout=0.5,
                read_timeout=0.5,
                max_pool_connections=max(10, tuning.max_workers),
            ),
        ),
    )


def fleet_budget(
    rate: float | None,
    burst: float | None,
    clients: Clients,
    table_name: str,
    fallback: Pacer,
    app_logger: Logger,
) -> SharedBudget | None:
    """The fleet's shared Cases budget (budget.py) in the ledger's table, pacing at `fallback` while the table
    fails; None when no quota is configured (CASES_BUDGET=local) or there is no client for it."""
    if rate is None or clients.budget_dynamodb is None:
        return None
    return SharedBudget(
        DynamoDBBudgetStore(clients.budget_dynamodb, table_name),
        BudgetConfig(rate=rate, burst=burst or 10.0),
        fallback,
        on_degraded=lambda reason: app_logger.warning(
            "shared Cases budget unavailable; pacing locally", extra={"reason": reason}
        ),
    )


@dataclass(frozen=True)
class BatchResult:
    response: dict[str, Any]
    counts: dict[MetricKey, int]


class App:
    """The wired function: `handle(event, context)` processes one SQS batch."""

    def __init__(self, settings: Settings, clients: Clients, tuning: Tuning, app_logger: Logger) -> None:
        self.settings = settings
        self.tuning = tuning
        self.guard = BatchGuard(attempt_seconds=tuning.attempt_seconds)
        self.counters = Counters()
        fallback = Pacer(settings.cases_max_rps, tuning.bucket_capacity or settings.cases_max_burst)
        # One budget for the fleet; the static share above is its fallback when the table fails.
        self.budget = fleet_budget(
            settings.cases_quota_rps,
            settings.cases_quota_burst,
            clients,
            settings.idempotency_table_name,
            fallback,
            app_logger,
        )
        pacer: Pacer | SharedBudget = self.budget or fallback
        self._budget_seen = BudgetStats()
        for client, attempts in ((clients.cases, tuning.read_attempts), (clients.cases_create, 1)):
            install_guards(
                client,
                guard=self.guard,
                counters=self.counters,
                max_attempts=attempts,
                pacer=pacer,
                breaker=True,
            )
        install_guards(
            clients.connect, guard=self.guard, counters=self.counters, max_attempts=tuning.read_attempts
        )
        gateway = CasesGateway(
            cases=clients.cases,
            cases_create=clients.cases_create,
            connect=clients.connect,
            counters=self.counters,
        )
        self.ledger = Ledger(clients.dynamodb, settings.idempotency_table_name)
        resolver = CaseResolver(gateway, self.ledger, app_logger, search_lag=tuning.backoff.settle)
        linker = Linker(
            gateway,
            self.ledger,
            self.guard,
            self.counters,
            resolve_case=resolver.resolve,
            create_attempts=tuning.create_attempts,
            backoff=tuning.backoff,
        )
        self.records = RecordProcessor(
            settings=settings,
            contacts=gateway,
            resolver=resolver,
            linker=linker,
            ledger=self.ledger,
            dead_letters=DeadLetterQueue(clients.sqs, settings.dead_letter_queue_url, app_logger),
            redelivery=Redelivery(clients.sqs, settings.main_queue_url, app_logger),
            guard=self.guard,
            counters=self.counters,
            logger=app_logger,
            capacity_delay_cap=tuning.capacity_delay_cap,
        )
        self._executor = ThreadPoolExecutor(max_workers=tuning.max_workers, thread_name_prefix="record")
        self._logger = app_logger

    def run_batch(self, event: dict[str, Any], context: LambdaContext) -> BatchResult:
        """Process the batch concurrently; return the partial batch response and this batch's counts."""
        self.counters.take()
        self.guard.start_batch(
            context.get_remaining_time_in_millis() / 1000,
            self.tuning.safety_margin,
            records=len(event.get("Records", [])),
        )
        # Reporting every record as failed is a valid partial response; raising would only add noise.
        processor = AsyncBatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False)
        response = async_process_partial_response(
            event=event, record_handler=self._record_handler, processor=processor, context=context
        )
        self._count_budget()
        counts = self.counters.take()
        self._logger.info(
            "batch done",
            extra={
                "records": len(event.get("Records", [])),
                "failed": len(response["batchItemFailures"]),
                "breaker_tripped": self.guard.tripped,
            },
        )
        return BatchResult(response=dict(response), counts=counts)

    def _count_budget(self) -> None:
        """Add what the shared budget did since the last batch to this batch's counts."""
        if self.budget is None:
            return
        now = replace(self.budget.stats)
        for name, value in (
            (BUDGET_REQUESTS, now.requests - self._budget_seen.requests),
            (BUDGET_SLOTS_UNUSED, now.expired - self._budget_seen.expired),
            (BUDGET_DEGRADED, now.degraded - self._budget_seen.degraded),
        ):
            if value > 0:
                self.counters.incr(name, value=value)
        self._budget_seen = now

    def handle(
        self, event: dict[str, Any], context: LambdaContext, sink: Metrics | None = None
    ) -> dict[str, Any]:
        result = self.run_batch(event, context)
        publish(result.counts, sink or metrics)
        return result.response

    async def _record_handler(self, record: SQSRecord) -> str:
        # boto3 is blocking: each record runs in a worker thread, with its own copy of the logging context.
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        return await loop.run_in_executor(self._executor, context.run, self.records.process, record)


def build_app(
    settings: Settings,
    clients: Clients | None = None,
    tuning: Tuning | None = None,
    app_logger: Logger | None = None,
) -> App:
    """Wire the function from settings; clients default to boto3's (AWS_ENDPOINT_URL_* honoured)."""
    tuning = tuning or Tuning()
    return App(settings, clients or build_clients(tuning), tuning, app_logger or logger)


class Handles(Protocol):
    """What an entry point delegates to: the linker's App, the sweeper's SweeperApp."""

    def handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]: ...


def make_lambda_handler(
    app_factory: Callable[[], Handles],
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """A Lambda entry point that builds its app on first use and keeps it for the execution environment."""
    built: list[Handles] = []

    # Never the event, whatever POWERTOOLS_LOGGER_LOG_EVENT says: its bodies are customer data.
    @logger.inject_lambda_context(clear_state=True, log_event=False)
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        if not built:
            built.append(app_factory())
        return built[0].handle(event, context)

    return handler


lambda_handler = make_lambda_handler(lambda: build_app(Settings.from_env(os.environ)))
