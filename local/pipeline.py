"""The local pipeline: moto (SQS, EventBridge, DynamoDB) + the Cases/Connect emulator + the real handler.

    with LocalPipeline(PipelineOptions(events=[Path("events")])) as pipeline:
        pipeline.publish_all()
        result = pipeline.drain(timeout_s=120)
        print(result.summary())

Resources come from `infra.config.CaseLinkerConfig`, the definition the CDK stack deploys, so the local
rule, queues, redrive, batching and timeouts cannot drift from the cloud ones.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from emulator import Emulator, EmulatorConfig, Faults, Quota
from infra.config import CaseLinkerConfig
from local.aws import LOCAL_CREDENTIALS, local_client
from local.context import ContextSpec
from local.inputs import (
    EXPECTED_FILE,
    SEED_FILE,
    Input,
    expected_outcomes,
    first_instance_arn,
    first_request_source,
    lenient_get,
    load_inputs,
    shared_file,
    synthetic_contacts,
)
from local.logs import HandlerOutput, parse_handler_output
from local.poller import ChaosHooks, EsmSettings, SqsPoller
from local.reconcile import (
    CreatedItem,
    DlqMessage,
    Published,
    Reconciliation,
    Route,
    item_key,
    reconcile,
)
from local.resources import LocalResources, Timings, create_resources
from local.runtime import Runtime, WorkerProcessRuntime

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = REPO_ROOT / "events"
FUNCTIONS_DIR = REPO_ROOT / "functions"
HANDLER = "case_linker.handler.lambda_handler"
SWEEPER_HANDLER = "case_linker.sweeper.lambda_handler"
DEFAULT_INSTANCE_ARN = "arn:aws:connect:us-east-1:123456789012:instance/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
DEFAULT_DOMAIN_NAME = "case-linker-local"


@dataclass(kw_only=True)
class PipelineOptions:
    """Everything that shapes a local run. The defaults are `make demo`: the sample events, as deployed."""

    # What to publish. `events` are files or folders of SQS bodies; `inputs` are extra ones built in code.
    events: Sequence[Path] = ()
    inputs: Sequence[Input] = ()
    contacts: int = 0  # synthetic contact COMPLETED events, each with a seeded case
    contacts_per_case: int = 1
    # Emulator seed (a dict or a JSON file) and expected outcomes (file name -> outcome); None = the
    # seed.json / expected.json nearest to the events (in their folder or above it), the same for all of them.
    seed: Mapping[str, Any] | Path | None = None
    expected: Mapping[str, Any] | Path | None = None
    # CDK context, as `-c key=value` would give it (casesDomainId, maxConcurrency, batchSize, ...).
    # casesDomainId and connectInstanceArn default to the seeded domain and the events' instance.
    context: Mapping[str, Any] = field(default_factory=dict)
    # The emulator. `emulator_config` wins over the four shortcuts below when given.
    emulator_config: EmulatorConfig | None = None
    throttling: bool = True
    quota_scale: float = 1.0
    latency_s: float = 0.0
    faults: Mapping[str, Faults] = field(default_factory=dict)
    # Timings as deployed unless overridden (short ones make chaos and tests fast).
    function_timeout_s: float | None = None
    visibility_timeout_s: int | None = None
    batching_window_s: float | None = None
    max_receive_count: int | None = None
    chaos: ChaosHooks | None = None
    # Contact events are delivered best effort: this share of them is lost between Connect and the rule, and
    # as large a share of the chats never gets COMPLETED (their agent left without clearing them). The
    # sweeper (LocalPipeline.sweep) is what finds those contacts. Drawn from `drop_seed`.
    drop_events: float = 0.0
    drop_seed: int = 0
    # The function: a Lambda handler string run in one worker process per execution environment, or any
    # `Runtime` (e.g. InProcessRuntime with a stand-in).
    handler: str = HANDLER
    runtime: Runtime | None = None
    extra_environment: Mapping[str, str] = field(default_factory=dict)
    # Infrastructure: reuse a running moto server (tests), else start one on a free loopback port.
    moto_endpoint: str | None = None
    # Run moto in its own process: the pipeline's process (emulator, poller) then has a core to itself, which
    # long runs under load (benchmarks, chaos) need; a thread in this process starts faster for short runs.
    moto_process: bool = False
    emulator_port: int = 0
    moto_port: int = 0
    region: str = "us-east-1"
    # Resource names start with this; None: `case-linker-<random>`, because moto's state is per process and
    # two pipelines in one process (tests, benchmarks) must not share queues.
    name_prefix: str | None = None
    work_dir: Path | None = None  # handler logs; a temporary folder when None
    keep_work_dir: bool = False


def _read_json(value: Mapping[str, Any] | Path | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Path):
        loaded: dict[str, Any] = json.loads(value.read_text(encoding="utf-8"))
        return loaded
    return dict(value)


class LocalPipeline:
    """Start with `with LocalPipeline(options) as p:`; then `publish`, `drain`, `reconcile`."""

    def __init__(self, options: PipelineOptions | None = None) -> None:
        self.options = options or PipelineOptions()
        self._stack = contextlib.ExitStack()
        self._moto_server: Any = None
        self._published: list[Published] = []
        self._publish_lock = threading.Lock()
        self._baseline: Counter[tuple[str, str, str, str]] = Counter()
        self._baseline_ids: set[str] = set()
        self._drops = random.Random(self.options.drop_seed)
        self.drained = False
        self.moto_endpoint = ""
        self.emulator: Emulator
        self.config: CaseLinkerConfig
        self.timings: Timings
        self.resources: LocalResources
        self.poller: SqsPoller
        self.runtime: Runtime
        self.work_dir: Path
        self.inputs: list[Input] = []
        self.expected: dict[str, Any] = {}
        self._expected_context: dict[str, Any] = {}
        self.sqs: Any = None
        self.events: Any = None
        self.dynamodb: Any = None

    # --- lifecycle ------------------------------------------------------------------------------------------

    def __enter__(self) -> LocalPipeline:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        options = self.options
        self._start_moto()
        self.emulator = self._stack.enter_context(
            Emulator(self._emulator_config(), host="127.0.0.1", port=options.emulator_port)
        )
        self.sqs = local_client("sqs", self.moto_endpoint, options.region)
        self.events = local_client("events", self.moto_endpoint, options.region)
        self.dynamodb = local_client("dynamodb", self.moto_endpoint, options.region)

        self.inputs = self._load_inputs()
        seed = self._seed()
        domain_id = self._domain_id(seed)
        instance_arn = str(
            options.context.get("connectInstanceArn")
            or self._expected_context.get("connectInstanceArn")
            or first_instance_arn(self.inputs)
            or DEFAULT_INSTANCE_ARN
        )
        account = self._account_quota()
        search = self.emulator.config.quota_for("SearchContacts")
        context: dict[str, Any] = {
            "casesDomainId": domain_id,
            "connectInstanceArn": instance_arn,
            # The stack sets these to the account quota and burst; here they are the emulator's.
            "casesRequestsPerSecond": account.rate,
            "casesBurst": float(account.burst),
            "connectSearchRequestsPerSecond": search.rate if search is not None else 0.5,
        }
        if (source := first_request_source(self.inputs)) is not None:
            context["requestEventSource"] = source  # so the optional request rule is exercised too
        context.update(options.context)
        self.config = CaseLinkerConfig.from_context(context)
        if options.contacts:
            load = synthetic_contacts(
                options.contacts,
                instance_arn=self.config.connect_instance_arn,
                domain_id=self.config.cases_domain_id,
                case_id_attribute=self.config.case_id_attribute,
                contacts_per_case=options.contacts_per_case,
            )
            seed.setdefault("domains", []).extend(load.seed["domains"])
            seed.setdefault("contacts", []).extend(load.seed["contacts"])
            self.inputs.extend(load.inputs)
            self.expected.update(load.expected)
        if domain_id not in {d.get("id") for d in seed.get("domains", [])}:
            self.emulator.create_domain(DEFAULT_DOMAIN_NAME, domain_id)
        _ended_before_the_lag(seed.get("contacts", []), self.config.sweep_lag_minutes)
        self.emulator.load_seed(merge_domains(seed))
        self._snapshot_baseline()

        self.timings = Timings.from_config(
            self.config,
            function_timeout_s=options.function_timeout_s,
            visibility_timeout_s=options.visibility_timeout_s,
            batching_window_s=options.batching_window_s,
            max_receive_count=options.max_receive_count,
        )
        self.resources = create_resources(
            sqs=self.sqs,
            events=self.events,
            dynamodb=self.dynamodb,
            config=self.config,
            timings=self.timings,
            prefix=options.name_prefix or f"case-linker-{secrets.token_hex(3)}",
        )
        if options.work_dir is not None:
            self.work_dir = options.work_dir
            self.work_dir.mkdir(parents=True, exist_ok=True)
        else:
            self.work_dir = Path(tempfile.mkdtemp(prefix="case-linker-local-"))
            if not options.keep_work_dir:
                self._stack.callback(shutil.rmtree, self.work_dir, True)
        self.runtime = options.runtime or WorkerProcessRuntime(
            handler=options.handler,
            environ=self.lambda_environment(),
            log_dir=self.work_dir / "logs",
            python_paths=[str(FUNCTIONS_DIR), str(REPO_ROOT)],
        )
        self.poller = SqsPoller(self.esm_settings(), self.runtime, self.sqs, chaos=options.chaos)
        self._stack.callback(self.poller.stop)

    def close(self) -> None:
        self._stack.close()

    def _start_moto(self) -> None:
        if self.options.moto_endpoint:
            self.moto_endpoint = self.options.moto_endpoint.rstrip("/")
            return
        if self.options.moto_process:
            self.moto_endpoint = self._stack.enter_context(moto_subprocess(self.options.moto_port))
            return
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.options.moto_port, verbose=False)
        server.start()
        self._stack.callback(server.stop)
        host, port = server.get_host_and_port()
        self.moto_endpoint = f"http://{host}:{port}"
        # moto keeps its state per process, not per server: whatever an earlier user of moto in this process
        # left (another test's rules on the default event bus, whose targets would take our events) goes first.
        reset = urllib.request.Request(f"{self.moto_endpoint}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(reset, timeout=10) as response:  # noqa: S310 - our own loopback server
            response.read()

    def _emulator_config(self) -> EmulatorConfig:
        options = self.options
        if options.emulator_config is not None:
            return options.emulator_config
        return EmulatorConfig(
            region=options.region,
            throttling=options.throttling,
            quota_scale=options.quota_scale,
            latency_s=options.latency_s,
            faults=dict(options.faults),
        )

    def _account_quota(self) -> Quota:
        """The CreateRelatedItem rate and burst the emulator enforces: the stack's casesRequestsPerSecond and
        casesBurst. AWS's defaults when throttling is off."""
        return self.emulator.config.quota_for("CreateRelatedItem") or Quota(rate=2.0, burst=10)

    def _load_inputs(self) -> list[Input]:
        options = self.options
        paths = list(options.events)
        inputs = load_inputs(paths) + list(options.inputs)
        expected = _read_json(options.expected)
        if expected is None and (expected_path := shared_file(paths, EXPECTED_FILE)) is not None:
            expected = expected_outcomes(paths, expected_path)
        expected = expected or {}
        # events/expected.json: {"casesDomainId", "connectInstanceArn", "events": {file: outcome}}; a flat
        # {file: outcome} mapping works too.
        if isinstance(expected.get("events"), dict):
            self._expected_context = {k: v for k, v in expected.items() if k != "events"}
            expected = expected["events"]
        self.expected = dict(expected)
        return inputs

    def _seed(self) -> dict[str, Any]:
        options = self.options
        seed = _read_json(options.seed)
        if seed is None:
            seed = _read_json(shared_file(options.events, SEED_FILE))
        return seed or {}

    def _domain_id(self, seed: Mapping[str, Any]) -> str:
        configured = self.options.context.get("casesDomainId") or self._expected_context.get("casesDomainId")
        if configured:
            return str(configured)
        domains = seed.get("domains") or []
        if domains and domains[0].get("id"):
            return str(domains[0]["id"])
        return "local-domain"

    def _snapshot_baseline(self) -> None:
        for item in self.emulator.related_items():
            self._baseline_ids.add(item.related_item_id)
            self._baseline[item_key(item.domain_id, item.case_id, item.type, item.content)] += 1

    # --- what the pieces need ----------------------------------------------------------------------------

    def lambda_environment(self) -> dict[str, str]:
        """The function's environment: the stack's variables, plus local endpoints and dummy credentials."""
        environment = self.config.lambda_environment(
            dead_letter_queue_url=self.resources.processing_dlq_url,
            idempotency_table_name=self.resources.idempotency_table_name,
            main_queue_url=self.resources.main_queue_url,
        )
        # The queue's redrive count when a run overrides it: the function re-sends or gives up on that count.
        environment["MAX_RECEIVE_COUNT"] = str(self.timings.max_receive_count)
        environment.update(self._local_environment("case-linker-local"))
        environment.update(self.options.extra_environment)
        return environment

    def sweeper_environment(self) -> dict[str, str]:
        """The sweeper's environment: the stack's variables for it, plus local endpoints and dummy credentials."""
        environment = self.config.sweeper_environment(
            main_queue_url=self.resources.main_queue_url,
            idempotency_table_name=self.resources.idempotency_table_name,
        )
        environment.update(self._local_environment("case-linker-sweeper-local"))
        # A run that sets the linker's Cases budget (a scaled quota, local pacing) sets the sweeper's too: they
        # draw on the same budget items, as in the stack, where both come from one setting.
        overrides = self.options.extra_environment
        for name in self.config.budget_environment().keys() & environment.keys() & overrides.keys():
            environment[name] = overrides[name]
        return environment

    def _local_environment(self, function_name: str) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": LOCAL_CREDENTIALS["aws_session_token"],
            "AWS_REGION": self.options.region,
            "AWS_DEFAULT_REGION": self.options.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL_SQS": self.moto_endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": self.moto_endpoint,
            "AWS_ENDPOINT_URL_CONNECTCASES": self.emulator.endpoint_url,
            "AWS_ENDPOINT_URL_CONNECT": self.emulator.endpoint_url,
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.timings.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_FUNCTION_NAME": function_name,
        }

    def esm_settings(self) -> EsmSettings:
        return EsmSettings(
            queue_url=self.resources.main_queue_url,
            queue_arn=self.resources.main_queue_arn,
            batch_size=self.timings.batch_size,
            batching_window_s=self.timings.batching_window_s,
            max_concurrency=self.timings.max_concurrency,
            function_timeout_s=self.timings.function_timeout_s,
            memory_mb=self.timings.memory_mb,
            region=self.options.region,
        )

    @property
    def endpoints(self) -> dict[str, str]:
        return {"moto": self.moto_endpoint, "emulator": self.emulator.endpoint_url}

    @property
    def published(self) -> list[Published]:
        with self._publish_lock:
            return list(self._published)

    # --- publishing -------------------------------------------------------------------------------------

    def publish_all(self, *, route: str = "auto") -> list[Published]:
        """Publish the inputs loaded from the options (files, synthetic load)."""
        return self.publish(self.inputs, route=route)

    def publish(self, inputs: Iterable[Input], *, route: str = "auto") -> list[Published]:
        """Publish each input the way it would arrive; returns what was published, in order.

        `route="auto"`: an EventBridge envelope that one of the stack's rules matches goes through PutEvents;
        anything else (bare requests, malformed text, envelopes no rule matches such as DISCONNECTED or
        AWS's PascalCase samples) goes straight onto the queue, as a producer or a tester would send it, so
        the linker's own handling of it is exercised. `route="queue"` sends everything to the queue;
        `route="eventbridge"` puts every envelope through EventBridge, and those no rule matches are then
        reported as filtered, as on AWS.
        """
        if route not in ("auto", "queue", "eventbridge"):
            raise ValueError(f"route must be auto, queue or eventbridge, not {route!r}")
        patterns = self._patterns()
        batch: list[tuple[Input, bool]] = []
        results: list[Published] = []
        for item in inputs:
            lost = self._lost(item)
            if lost is not None:
                results.append(self._drop(item, lost))
                continue
            envelope = None if route == "queue" else item.envelope
            matched = envelope is not None and any(p.matches_event(_normalised(envelope)) for p in patterns)
            if envelope is not None and (matched or route == "eventbridge"):
                batch.append((item, matched))
                if len(batch) == 10:
                    results.extend(self._put_events(batch))
                    batch = []
            else:
                if batch:
                    results.extend(self._put_events(batch))
                    batch = []
                results.append(self._send(item))
        if batch:
            results.extend(self._put_events(batch))
        return results

    def _lost(self, item: Input) -> str | None:
        """Why this contact event never reaches the rule (PipelineOptions.drop_events), if it does not."""
        rate = self.options.drop_events
        if rate <= 0 or not item.is_contact_event:
            return None
        if self._drops.random() < rate:
            return "lost between Connect and the rule (best-effort delivery)"
        channel = lenient_get(item.detail or {}, "channel")
        if (
            isinstance(channel, str)
            and channel.upper() == "CHAT"
            and item.contact_event_type == "COMPLETED"
            and self._drops.random() < rate
        ):
            return "never sent: the chat's agent left without clearing the contact"
        return None

    def _drop(self, item: Input, reason: str) -> Published:
        with self._publish_lock:
            record = Published(ref=self._next_ref(), input=item, route=Route.DROPPED, dropped=reason)
            self._published.append(record)
        return record

    def _patterns(self) -> list[Any]:
        from moto.events.models import EventPattern

        return [EventPattern.load(json.dumps(p)) for p in self.resources.event_patterns.values()]

    def _next_ref(self) -> int:
        return len(self._published)

    def _put_events(self, batch: Sequence[tuple[Input, bool]]) -> list[Published]:
        response = self.events.put_events(Entries=[item.put_events_entry() for item, _ in batch])
        published = []
        with self._publish_lock:
            for (item, matched), entry in zip(batch, response["Entries"], strict=True):
                error = (
                    f"{entry['ErrorCode']}: {entry.get('ErrorMessage', '')}" if "ErrorCode" in entry else None
                )
                record = Published(
                    ref=self._next_ref(),
                    input=item,
                    route=Route.EVENTBRIDGE,
                    event_id=entry.get("EventId"),
                    matched_rule=matched,
                    error=error,
                )
                self._published.append(record)
                published.append(record)
        return published

    def _send(self, item: Input) -> Published:
        attributes = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in (item.attributes or {}).items()
        }
        message_id = self.sqs.send_message(
            QueueUrl=self.resources.main_queue_url, MessageBody=item.body, MessageAttributes=attributes
        )["MessageId"]
        with self._publish_lock:
            record = Published(ref=self._next_ref(), input=item, route=Route.QUEUE, message_id=message_id)
            self._published.append(record)
        return record

    # --- running and judging ----------------------------------------------------------------------------

    def drain(
        self,
        *,
        timeout_s: float = 300.0,
        quiet_period_s: float = 1.0,
        progress: Callable[[int], None] | None = None,
    ) -> Reconciliation:
        """Run the poller until the queue has stayed empty for `quiet_period_s`, then reconcile."""
        self.drained = self.poller.drain(
            timeout_s=timeout_s, quiet_period_s=quiet_period_s, progress=progress
        )
        return self.reconcile()

    def sweep(self) -> SweepRun:
        """Run the sweeper once, as its schedule would: the real handler in an execution environment of its own.

        Its messages land on the main queue; `drain` then lets the linker handle them.
        """
        runtime = WorkerProcessRuntime(
            handler=SWEEPER_HANDLER,
            environ=self.sweeper_environment(),
            log_dir=self.work_dir / "sweeper-logs",
            python_paths=[str(FUNCTIONS_DIR), str(REPO_ROOT)],
        )
        environment = runtime.environment("sweeper")
        spec = ContextSpec(
            function_name="case-linker-sweeper-local",
            memory_limit_in_mb=self.timings.memory_mb,
            timeout_s=float(self.config.sweeper_timeout_seconds),
            region=self.options.region,
        )
        scheduled = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": self.options.region,
            "resources": [],
            "detail": {},
        }
        try:
            invocation = environment.invoke(scheduled, spec)
        finally:
            environment.close()
        report = invocation.response if isinstance(invocation.response, dict) else None
        return SweepRun(
            status=invocation.status.value,
            report=report,
            error=f"{invocation.error_type}: {invocation.error_message}" if invocation.error_type else None,
        )

    def handler_output(self) -> HandlerOutput:
        files = self.runtime.log_files() if isinstance(self.runtime, WorkerProcessRuntime) else []
        return parse_handler_output(files)

    def created_items(self) -> list[CreatedItem]:
        return [
            CreatedItem(i.domain_id, i.case_id, i.related_item_id, i.type, i.content)
            for i in self.emulator.related_items()
            if i.related_item_id not in self._baseline_ids
        ]

    def dlq_messages(self) -> list[DlqMessage]:
        """Both DLQs' messages, read without consuming them (their visibility is restored)."""
        messages = self._peek(self.resources.processing_dlq_url, "processing")
        return messages + self._peek(self.resources.rule_target_dlq_url, "rule_target")

    def _peek(self, queue_url: str, queue: str) -> list[DlqMessage]:
        found: dict[str, DlqMessage] = {}
        handles: list[str] = []
        while True:
            response = self.sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=60,
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            for message in messages:
                handles.append(message["ReceiptHandle"])
                attributes = {
                    name: value.get("StringValue", "")
                    for name, value in message.get("MessageAttributes", {}).items()
                }
                found[message["MessageId"]] = DlqMessage(
                    queue, message["MessageId"], message["Body"], attributes
                )
        for handle in handles:
            self.sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
        return list(found.values())

    def reconcile(self) -> Reconciliation:
        """Judge every published input from the evidence (items, DLQs, deliveries, logs)."""
        return reconcile(
            published=self.published,
            created=self.created_items(),
            baseline_keys=self._baseline,
            dlq_messages=self.dlq_messages(),
            deliveries=list(self.poller.deliveries),
            handler_output=self.handler_output(),
            poller_stats=self.poller.stats,
            drained=self.drained,
            default_domain_id=self.config.cases_domain_id,
            link_event_types=self.config.contact_event_types,
            expected=self.expected or None,
            poller_errors=self.poller.errors,
            merged_cases={m.secondary_id: m.primary_id for m in self.emulator.merges()},
        )

    def wait(self, stop: threading.Event | None = None) -> None:
        """Keep the poller running (for manual use) until `stop` is set, Ctrl-C (SIGINT) or SIGTERM.

        The handlers are installed explicitly: a process started in the background by a shell inherits SIGINT
        ignored, and Python then never raises KeyboardInterrupt, so Ctrl-C sent to it alone would do nothing.
        """
        self.poller.start()
        event = stop or threading.Event()
        previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, lambda *_: event.set())
        try:
            while not event.wait(0.5):
                pass
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


@dataclass(frozen=True)
class SweepRun:
    """One run of the sweeper: how the invocation ended and what it reported (its SweepReport as JSON)."""

    status: str
    report: dict[str, Any] | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.report is not None


def _ended_before_the_lag(contacts: list[dict[str, Any]], lag_minutes: int) -> None:
    """Seed contacts without timestamps end a few minutes before the sweeper's lag, so a sweep run after the
    drain finds them in its window, as it would find contacts that finished their after-contact work."""
    timestamps = ("initiationTimestamp", "disconnectTimestamp")
    for index, contact in enumerate(contacts):
        if not any(key in contact for key in timestamps):
            ended = lag_minutes + 2 + index % 30
            contact["disconnectTimestamp"] = f"-{ended}m"
            contact["initiationTimestamp"] = f"-{ended + 5}m"


def _normalised(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope with EventBridge's key spellings, for pattern matching (samples may use PascalCase)."""
    from local.inputs import lenient_get

    return {
        "source": lenient_get(dict(envelope), "source"),
        "detail-type": lenient_get(dict(envelope), "detail-type"),
        "detail": lenient_get(dict(envelope), "detail"),
        "resources": lenient_get(dict(envelope), "resources") or [],
    }


def merge_domains(seed: Mapping[str, Any]) -> dict[str, Any]:
    """One entry per domain id, so a synthetic load can add cases to the seeded domain."""
    merged: dict[str, dict[str, Any]] = {}
    for domain in seed.get("domains", []):
        key = domain.get("id") or domain.get("name") or str(len(merged))
        if key in merged:
            merged[key]["cases"] = list(merged[key].get("cases", [])) + list(domain.get("cases", []))
        else:
            merged[key] = dict(domain)
    return {**seed, "domains": list(merged.values())}


def ensure_import_paths() -> None:
    """Make `case_linker` importable here as in Lambda (functions/ is the asset root)."""
    for path in (str(FUNCTIONS_DIR), str(REPO_ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)


@contextlib.contextmanager
def moto_subprocess(port: int = 0, *, start_timeout_s: float = 30.0) -> Iterator[str]:
    """moto's server in a child process on loopback; yields its endpoint and stops it on exit.

    The child binds the port itself (0: one the system picks) and prints its endpoint once listening. A port
    probed here and handed over could be taken by another process in between, and the readiness check would
    then succeed against that process's server.
    """
    command = [sys.executable, "-m", "local.moto_server", "--announce", "127.0.0.1", str(port)]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        announced: list[str] = []
        reader = threading.Thread(
            target=lambda: announced.append(process.stdout.readline() if process.stdout else ""), daemon=True
        )
        reader.start()
        reader.join(start_timeout_s)
        endpoint = announced[0].strip() if announced else ""
        if not endpoint.startswith("http://"):
            raise RuntimeError(
                f"moto's server did not start on port {port or 'any'} within {start_timeout_s:g} s"
            )
        with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=5) as response:  # noqa: S310
            response.read()
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
