"""A stand-in for Lambda's SQS event source mapping (ESM).

What it reproduces, because the linker's guarantees depend on it:
- each of `max_concurrency` workers loops: receive a batch, invoke, delete. The batch runs on an execution
  environment from a pool, as Lambda routes invocations: an idle warm one first (the most recently used), a
  new one (its init phase: a cold start) only when none is idle, so a trickle keeps to one warm environment;
- a batch is up to `batch_size` records gathered for at most `batching_window_s` (the 6 MB payload cap too);
- records stay in flight for the queue's own visibility timeout (the ESM never changes it);
- the event has Lambda's SQS shape (messageId, receiptHandle, body, attributes, messageAttributes in
  camelCase with base64 binary values, md5OfBody, eventSource, eventSourceARN, awsRegion);
- with ReportBatchItemFailures, only the records not named in `batchItemFailures` are deleted; an invalid
  identifier, a handler error, a timeout or a killed invocation fails the whole batch (nothing deleted);
- failed records come back after the visibility timeout, and SQS itself (moto) moves a record to the DLQ once
  it has been received maxReceiveCount times.
Chaos hooks: kill an invocation mid-batch, deliver records twice.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from local.context import ContextSpec
from local.runtime import ExecutionEnvironment, Invocation, InvocationStatus, Runtime
from ops.sqs import release

# Lambda's synchronous invocation payload limit; the ESM stops gathering a batch before it.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
SQS_MAX_RECEIVE = 10
_SHORT_POLL_INTERVAL_S = 0.05
_PROGRESS_INTERVAL_S = 2.0


@dataclass(frozen=True, kw_only=True)
class EsmSettings:
    """The event source mapping and function settings the poller honours (take them from infra/config.py)."""

    queue_url: str
    queue_arn: str
    batch_size: int = 10
    batching_window_s: float = 0.0
    max_concurrency: int = 2
    function_timeout_s: float = 30.0
    function_name: str = "case-linker-local"
    memory_mb: int = 256
    region: str = "us-east-1"
    report_batch_item_failures: bool = True
    # How long one idle poll waits for messages; Lambda long-polls 20 s, shorter keeps stop() responsive.
    receive_wait_s: float = 1.0


class DuplicateMode(StrEnum):
    REDELIVER = "redeliver"  # make the received record visible again at once: a second worker gets it too
    RESEND = (
        "resend"  # send the same body and attributes as a new message (new messageId), as a producer retry
    )


@dataclass(frozen=True, kw_only=True)
class ChaosHooks:
    """Faults the poller injects; rates are per invocation (kill) or per record (duplicate)."""

    kill_rate: float = 0.0
    # Invocation ordinals (1 = the poller's first invocation) that die whatever the rate: deterministic tests.
    kill_invocations: frozenset[int] = frozenset()
    kill_after_s: tuple[float, float] = (0.0, 0.5)
    duplicate_rate: float = 0.0
    duplicate_mode: DuplicateMode = DuplicateMode.REDELIVER
    seed: int | None = None


class RecordOutcome(StrEnum):
    DELETED = "deleted"  # the invocation succeeded for it: the ESM deleted it
    FAILED = "failed"  # named in batchItemFailures: left for redelivery
    BATCH_FAILED = "batch_failed"  # handler error, timeout or invalid response: whole batch left
    KILLED = "killed"  # the invocation died mid-batch (chaos)


@dataclass(frozen=True)
class Delivery:
    """One record in one invocation."""

    message_id: str
    body: str
    receive_count: int
    invocation_id: str
    worker: str
    outcome: RecordOutcome
    at: float
    duplicated: bool = False  # chaos made the message visible again (or sent a copy) as this delivery began

    @property
    def body_sha256(self) -> str:
        return body_sha256(self.body)


@dataclass(frozen=True)
class InvocationRecord:
    invocation_id: str
    worker: str
    size: int
    status: InvocationStatus
    failed_ids: tuple[str, ...]
    duration_s: float
    error: str | None = None


@dataclass
class PollerStats:
    invocations: int = 0
    records: int = 0
    deleted: int = 0
    failed: int = 0
    batch_failures: int = 0
    killed_invocations: int = 0
    duplicates_injected: int = 0
    max_in_flight: int = 0


def body_sha256(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """SQS API shape (StringValue, BinaryValue bytes) -> Lambda event shape (stringValue, base64 binaryValue)."""
    converted: dict[str, Any] = {}
    for name, value in attributes.items():
        item: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
        if "StringValue" in value:
            item["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            item["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
        converted[name] = item
    return converted


def lambda_sqs_record(message: dict[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """One SQS ReceiveMessage entry as the record Lambda puts in its event."""
    attributes = {key: value for key, value in message.get("Attributes", {}).items()}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": _lambda_message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(
    invocation: Invocation, batch_ids: list[str], *, report_failures: bool
) -> set[str] | None:
    """The records Lambda leaves on the queue after this invocation; None means the whole batch.

    Follows Lambda's documented rules for partial batch responses: an empty or null response or list is a
    complete success; an invalid JSON response, an empty, null or unknown itemIdentifier is a complete failure.
    """
    if invocation.status is not InvocationStatus.OK:
        return None
    if not report_failures:
        return set()
    response = invocation.response
    if response is None:
        return set()
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    known = set(batch_ids)
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in known:
            return None
        failed.add(identifier)
    return failed


class SqsPoller:
    """Runs `settings.max_concurrency` workers over the queue until `stop()` (or use `drain()`)."""

    def __init__(
        self,
        settings: EsmSettings,
        runtime: Runtime,
        sqs_client: Any,
        *,
        chaos: ChaosHooks | None = None,
        on_invocation: Callable[[InvocationRecord], None] | None = None,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.chaos = chaos or ChaosHooks()
        self._sqs = sqs_client
        self._on_invocation = on_invocation
        self._random = random.Random(self.chaos.seed)
        self._random_lock = threading.Lock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._environments: list[ExecutionEnvironment] = []
        self._idle: list[ExecutionEnvironment] = []  # a stack: the most recently used on top
        self._in_flight = 0
        self._busy_workers = 0
        self._ordinal = 0
        self._receive_lock = threading.Lock()
        self.stats = PollerStats()
        self.deliveries: list[Delivery] = []
        self.invocations: list[InvocationRecord] = []
        self.errors: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        for index in range(self.settings.max_concurrency):
            name = f"esm-worker-{index + 1}"
            thread = threading.Thread(target=self._work, args=(name,), name=name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, *, join_timeout_s: float | None = None) -> None:
        """Stop receiving; in-flight invocations finish (or time out) first."""
        self._stop.set()
        timeout = join_timeout_s if join_timeout_s is not None else self.settings.function_timeout_s + 5
        for thread in self._threads:
            thread.join(timeout)
        for environment in self._environments:
            environment.close()
        self._threads.clear()
        self._environments.clear()
        self._idle.clear()

    def __enter__(self) -> SqsPoller:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def busy(self) -> bool:
        """Whether a worker holds received records (gathering a batch or invoking)."""
        with self._lock:
            return self._busy_workers > 0

    def queue_depth(self) -> int:
        """Visible + in flight + delayed messages on the queue (approximate, as SQS reports them)."""
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.settings.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def drain(
        self,
        *,
        timeout_s: float,
        quiet_period_s: float = 1.0,
        poll_interval_s: float = 0.2,
        progress: Callable[[int], None] | None = None,
    ) -> bool:
        """Start if needed and wait until the queue stays empty and no worker is busy for `quiet_period_s`.

        Returns False when `timeout_s` passes first. The workers keep running; call `stop()` when done.
        """
        self.start()
        deadline = time.monotonic() + timeout_s
        quiet_since: float | None = None
        # GetQueueAttributes is not free on moto (it walks every message): while a worker holds records the
        # queue cannot be drained, so ask SQS only when idle, and for progress every couple of seconds.
        last_progress = -math.inf
        while time.monotonic() < deadline:
            busy = self.busy
            depth: int | None = None
            if progress is not None and time.monotonic() - last_progress >= _PROGRESS_INTERVAL_S:
                depth = self.queue_depth()
                progress(depth)
                last_progress = time.monotonic()
            if not busy and depth is None:
                depth = self.queue_depth()
            if not busy and depth == 0 and not self.busy:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= quiet_period_s:
                    return True
            else:
                quiet_since = None
            time.sleep(poll_interval_s)
        return False

    # -- the worker --------------------------------------------------------------------------------------------

    def _acquire(self) -> ExecutionEnvironment:
        """An idle environment, the most recently used first; a new one when none is idle (never more than
        max_concurrency: each worker holds at most one)."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            environment = self.runtime.environment(f"env-{len(self._environments) + 1}")
            self._environments.append(environment)
            return environment

    def _give_back(self, environment: ExecutionEnvironment) -> None:
        with self._lock:
            self._idle.append(environment)

    def _work(self, name: str) -> None:
        # Like the ESM's pollers, which read the queue independently of invocations, the next batch is received
        # while the current one runs: the slot is not left idle for a ReceiveMessage round trip.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-poll") as poller:
            ahead: Future[list[dict[str, Any]]] | None = None
            while not self._stop.is_set():
                try:
                    messages = ahead.result() if ahead is not None else self._gather_batch()
                    ahead = None
                    if not messages:
                        continue
                    ahead = poller.submit(self._gather_batch)
                    environment = self._acquire()
                    try:
                        self._run_batch(environment, messages)
                    finally:
                        self._give_back(environment)
                # A worker must outlive any one failed poll (a moto hiccup, a broken environment): record, go on.
                except Exception as error:  # noqa: BLE001
                    if ahead is not None and ahead.done():
                        held = [] if ahead.exception() is not None else ahead.result()
                        ahead = None
                        self._release(held)  # what was read ahead must not stay hidden and counted busy
                    with self._lock:
                        self.errors.append(f"{name}: {type(error).__name__}: {error}")
                    time.sleep(0.2)
            if ahead is not None and ahead.exception() is None:
                self._release(ahead.result())

    def _run_batch(self, environment: ExecutionEnvironment, messages: list[dict[str, Any]]) -> None:
        try:
            self._invoke(environment, messages)
        finally:
            with self._lock:
                self._busy_workers -= 1

    def _release(self, messages: list[dict[str, Any]]) -> None:
        """Give back a batch received but never invoked (the poller is stopping), as the ESM does."""
        if not messages:
            return
        try:
            release(self._sqs, self.settings.queue_url, [m["ReceiptHandle"] for m in messages])
        finally:
            with self._lock:
                self._busy_workers -= 1

    def _receive(self, max_messages: int, wait_s: float) -> list[dict[str, Any]]:
        """ReceiveMessage, long-polling up to `wait_s` by repeated short polls.

        One ReceiveMessage runs at a time: moto 5.2.5 moves a message to the DLQ inside receive without a
        lock, and two concurrent receives redriving the same message crash it (ValueError in list.remove).
        Polling short (WaitTimeSeconds=0) keeps that lock brief, so no worker waits behind another's long poll.
        """
        deadline = time.monotonic() + wait_s
        while True:
            with self._receive_lock:
                response = self._sqs.receive_message(
                    QueueUrl=self.settings.queue_url,
                    MaxNumberOfMessages=max_messages,
                    WaitTimeSeconds=0,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            messages: list[dict[str, Any]] = response.get("Messages", [])
            if messages or time.monotonic() >= deadline or self._stop.is_set():
                return messages
            time.sleep(min(_SHORT_POLL_INTERVAL_S, max(0.0, deadline - time.monotonic())))

    def _gather_batch(self) -> list[dict[str, Any]]:
        """Receive until the batch is full, the batching window has passed or the payload cap is near.

        The window starts with the first record, so a lone record waits for the window as it does in Lambda.
        The caller owns `_busy_workers` from the moment records are held.
        """
        settings = self.settings
        first = self._receive(min(SQS_MAX_RECEIVE, settings.batch_size), settings.receive_wait_s)
        if not first:
            return []
        with self._lock:
            self._busy_workers += 1
        batch = list(first)
        payload = sum(len(m["Body"].encode("utf-8")) for m in batch)
        window_ends = time.monotonic() + settings.batching_window_s
        while (
            len(batch) < settings.batch_size
            and payload < MAX_PAYLOAD_BYTES - 256 * 1024
            and time.monotonic() < window_ends
            and not self._stop.is_set()
        ):
            remaining = window_ends - time.monotonic()
            more = self._receive(min(SQS_MAX_RECEIVE, settings.batch_size - len(batch)), max(0.0, remaining))
            batch.extend(more)
            payload += sum(len(m["Body"].encode("utf-8")) for m in more)
        return batch

    def _chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._random_lock:
            return self._random.random() < rate

    def _inject_duplicates(self, messages: list[dict[str, Any]]) -> set[str]:
        """Deliver some of `messages` a second time; return their message ids."""
        duplicated: set[str] = set()
        for message in messages:
            if not self._chance(self.chaos.duplicate_rate):
                continue
            if self.chaos.duplicate_mode is DuplicateMode.REDELIVER:
                self._sqs.change_message_visibility(
                    QueueUrl=self.settings.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            else:
                extra: dict[str, Any] = {}
                if message.get("MessageAttributes"):
                    extra["MessageAttributes"] = message["MessageAttributes"]
                self._sqs.send_message(QueueUrl=self.settings.queue_url, MessageBody=message["Body"], **extra)
            duplicated.add(message["MessageId"])
            with self._lock:
                self.stats.duplicates_injected += 1
        return duplicated

    def _invoke(self, environment: ExecutionEnvironment, messages: list[dict[str, Any]]) -> None:
        settings = self.settings
        duplicated = self._inject_duplicates(messages)
        records = [
            lambda_sqs_record(m, queue_arn=settings.queue_arn, region=settings.region) for m in messages
        ]
        event = {"Records": records}
        spec = ContextSpec(
            function_name=settings.function_name,
            memory_limit_in_mb=settings.memory_mb,
            timeout_s=settings.function_timeout_s,
            region=settings.region,
            log_stream_name=environment.name,
        )
        with self._lock:
            self._ordinal += 1
            ordinal = self._ordinal
        kill_after: float | None = None
        if ordinal in self.chaos.kill_invocations or self._chance(self.chaos.kill_rate):
            low, high = self.chaos.kill_after_s
            with self._random_lock:
                kill_after = self._random.uniform(low, high)
        with self._lock:
            self._in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self._in_flight)
        try:
            invocation = environment.invoke(event, spec, kill_after_s=kill_after)
        finally:
            with self._lock:
                self._in_flight -= 1

        batch_ids = [r["messageId"] for r in records]
        failed = failed_message_ids(
            invocation, batch_ids, report_failures=settings.report_batch_item_failures
        )
        to_delete = [] if failed is None else [r for r in records if r["messageId"] not in failed]
        self._delete(to_delete)

        if invocation.status is InvocationStatus.KILLED:
            whole_batch = RecordOutcome.KILLED
        else:
            whole_batch = RecordOutcome.BATCH_FAILED
        now = time.time()
        deliveries = []
        for record in records:
            message_id = record["messageId"]
            if failed is None:
                outcome = whole_batch
            elif message_id in failed:
                outcome = RecordOutcome.FAILED
            else:
                outcome = RecordOutcome.DELETED
            deliveries.append(
                Delivery(
                    message_id=message_id,
                    body=record["body"],
                    receive_count=int(record["attributes"].get("ApproximateReceiveCount", "0")),
                    invocation_id=spec.aws_request_id,
                    worker=environment.name,
                    outcome=outcome,
                    at=now,
                    duplicated=message_id in duplicated,
                )
            )
        summary = InvocationRecord(
            invocation_id=spec.aws_request_id,
            worker=environment.name,
            size=len(records),
            status=invocation.status,
            failed_ids=tuple(sorted(failed)) if failed is not None else tuple(batch_ids),
            duration_s=invocation.duration_s,
            error=None
            if invocation.error_type is None
            else f"{invocation.error_type}: {invocation.error_message}",
        )
        with self._lock:
            self.deliveries.extend(deliveries)
            self.invocations.append(summary)
            self.stats.invocations += 1
            self.stats.records += len(records)
            self.stats.deleted += len(to_delete)
            self.stats.failed += len(records) - len(to_delete)
            if failed is None:
                self.stats.batch_failures += 1
            if invocation.status is InvocationStatus.KILLED:
                self.stats.killed_invocations += 1
        if self._on_invocation is not None:
            self._on_invocation(summary)

    def _delete(self, records: Iterable[dict[str, Any]]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(records)]
        for start in range(0, len(entries), SQS_MAX_RECEIVE):
            chunk = entries[start : start + SQS_MAX_RECEIVE]
            response = self._sqs.delete_message_batch(QueueUrl=self.settings.queue_url, Entries=chunk)
            for failure in response.get("Failed", []):
                with self._lock:
                    self.errors.append(f"delete failed: {failure.get('Code')}: {failure.get('Message')}")
