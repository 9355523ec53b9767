"""`python -m local.chaos` (`make chaos`): prove nothing is lost or doubled under the faults production brings.

1. Publish N inputs (default 2,000) through the local pipeline: contact COMPLETED events (via EventBridge),
   related-item requests (bare and in envelopes), counted skips, and permanently bad inputs in known
   proportions (malformed JSON, unknown case, 15,001-character comments, unknown shapes).
2. Drain while the emulator throttles at the real quotas (scaled up, see --quota-scale), answers 5xx, answers
   slower than the client's read timeout, drops connections (before and after the commit), commits creates
   seconds after their connection dropped (longer than the linker's in-place wait), lets searches lag writes,
   and merges a case mid-run; and the poller kills invocations mid-batch and delivers records twice. The load
   holds the same request sent as several messages, distinct requests with identical content, and messages
   carrying ten attributes that end in the DLQ and are replayed. A share of the contact events (--drop-events,
   10%) is lost before the rule, and as large a share of chats never gets COMPLETED.
3. Turn every fault off and replay both DLQs with the ops tool's Replayer, then drain again; run the sweeper
   once (as its schedule would) and drain what it enqueued.
4. Reconcile from the evidence (related items in the emulator, DLQ contents, deliveries, logs) and write the
   JSON report. Exit 0 only if nothing is lost or doubled, every bad input sits in a DLQ with its reason,
   every replayed message that can succeed is linked exactly once, and so is every contact with a case id
   whose event was lost.

Time is compressed so a run takes minutes: quotas x10, the function's client timeouts, backoff, function
timeout and visibility timeout all shortened together (docs/chaos.md lists the values). The code under test
is the real handler, built by the real `build_app` with a shorter `Tuning`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from emulator import EmulatorConfig, Faults
from emulator.faults import ITEM_FAILURE_OPERATIONS, faults_from_specs
from local.inputs import CONTACT_DETAIL_TYPE, REQUEST_DETAIL_TYPE, Input
from local.pipeline import LocalPipeline, PipelineOptions
from local.poller import ChaosHooks, DuplicateMode, RecordOutcome
from local.reconcile import Outcome, Reconciliation, Route
from ops.clikit import (
    INTERRUPTED_EXIT_CODE,
    OneLineErrorsCommand,
    check_output,
    output_option,
    parse_command_line,
    usage_error,
    write_report,
)
from ops.output import Column, Output, OutputFormat

DEFAULT_REPORT = Path("chaos-report.json")
DOMAIN_ID = "chaos-domain"
INSTANCE_ID = "c4a05000-0000-4000-8000-00000000c4a0"
INSTANCE_ARN = f"arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE_ID}"
REQUEST_SOURCE = "com.example.crm"
HANDLER = "local.chaos.lambda_handler"

# Error codes the permanently bad inputs must carry in the processing DLQ.
BAD_KINDS: dict[str, str] = {
    "malformed": "InvalidJson",
    "unknown-case": "ResourceNotFoundException",
    "comment-15001": "ValidationException",
    "unknown-shape": "UnknownMessageShape",
}
# The case whose creates fail until the replay (ChaosOptions.failing_share).
FAILING_CASE = "chaos-failing-case"
# Operations that get the random faults; creates also commit late.
FAULTED_OPERATIONS = (
    "CreateRelatedItem",
    "BatchCreateRelatedItem",
    "ListCasesForContact",
    "SearchRelatedItems",
    "GetContactAttributes",
)
CREATE_OPERATIONS = ("CreateRelatedItem", "BatchCreateRelatedItem")
# Emulator events that show the exactly-once fault classes happened (emulator.EVENTS).
EXACTLY_ONCE_EVENTS = (
    "late_commit_landed",
    "late_commit_replayed",
    "item_failure",
    "search_lag_miss",
    "merge_conflict",
    "token_replay",
    "token_wait",
)


# --- the function under test, with compressed timings ----------------------------------------------------------

_built: list[Callable[[dict[str, Any], Any], dict[str, Any]]] = []


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """case_linker's real handler (make_lambda_handler + build_app) with the CHAOS_* timings from the env.

    Imported lazily: this module also runs in the parent process, where `case_linker` is not on the path.
    """
    if not _built:
        from case_linker.handler import Tuning, build_app, make_lambda_handler
        from case_linker.linker import Backoff
        from case_linker.settings import Settings

        def seconds(name: str, default: float) -> float:
            return float(os.environ.get(name, default))

        defaults = Tuning()
        tuning = Tuning(
            connect_timeout=seconds("CHAOS_CONNECT_TIMEOUT", defaults.connect_timeout),
            read_timeout=seconds("CHAOS_READ_TIMEOUT", defaults.read_timeout),
            safety_margin=seconds("CHAOS_SAFETY_MARGIN", defaults.safety_margin),
            backoff=Backoff(
                throttle_base=seconds("CHAOS_THROTTLE_BACKOFF", defaults.backoff.throttle_base),
                other_base=seconds("CHAOS_OTHER_BACKOFF", defaults.backoff.other_base),
                settle=seconds("CHAOS_SETTLE", defaults.backoff.settle),
                settle_in_place=seconds("CHAOS_SETTLE_IN_PLACE", defaults.backoff.settle_in_place),
            ),
        )
        _built.append(make_lambda_handler(lambda: build_app(Settings.from_env(os.environ), tuning=tuning)))
    return _built[0](event, context)


# --- options -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ChaosOptions:
    """One chaos run. Rates are per request (emulator) or per invocation/record (poller)."""

    events: int = 2000
    seed: int = 7
    # Shares of the inputs; contacts take the rest.
    request_share: float = 0.30
    bad_share: float = 0.08
    # Fail in phase 1 (case or contact not there yet), succeed once the operator has fixed that and replays.
    late_share: float = 0.02
    # Comments on a case whose creates answer 5xx for all of phase 1: given up on their last delivery with the
    # reason (InternalServerException, not SQS's reasonless redrive), linked once the case heals and they are
    # replayed.
    failing_share: float = 0.005
    skip_share: float = 0.04
    # Of the requests: distinct requests whose content equals another's (own idempotencyKey each), requests
    # sent again as another message (the same request twice), and Custom items (no client token: the
    # ledger's settle-then-look path). Half the late cases carry ten message attributes.
    twin_share: float = 0.1
    resend_share: float = 0.1
    custom_share: float = 0.3
    # Emulator faults of the exactly-once kind: creates committing late_commit_s after their connection
    # dropped, searches lagging writes, and one case merged into another mid-run.
    late_commit: float = 0.02
    late_commit_s: float = 2.0
    # Comment creates answered with a per-case failure (THROTTLED or INTERNAL_ERROR in failedItems): nothing
    # made, and the client token keeps that answer, so the retry must take the next one.
    item_failure: float = 0.02
    search_lag_s: float = 1.0
    merge_after_s: float = 1.0
    merge_duration_s: float = 3.0
    # Per-operation faults (`--fault OP=KIND:RATE`): replace the rates above for the operations they name.
    faults: dict[str, Faults] = field(default_factory=dict)
    # The first requests to an operation get these outcomes whatever the random draws (emulator scripts), so a
    # small run still meets every fault class, e.g. {"BatchCreateRelatedItem": ["drop_after_commit"]}.
    scripted: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Emulator: real quotas times quota_scale; random faults on FAULTED_OPERATIONS.
    quota_scale: float = 10.0
    server_error: float = 0.04
    drop_connection: float = 0.03
    slow_response: float = 0.02
    after_commit_share: float = 0.5
    # Contact events lost between Connect and the rule, and as large a share of chats' COMPLETED never sent;
    # the sweeper, run once the DLQs are replayed, must find every one of them.
    drop_events: float = 0.1
    # Poller.
    kill_rate: float = 0.05
    # Invocation ordinals that die whatever the rate, and how soon after starting (seconds) a kill lands.
    kill_invocations: frozenset[int] = frozenset()
    kill_after_s: tuple[float, float] | None = None
    duplicate_rate: float = 0.03
    duplicate_mode: DuplicateMode = DuplicateMode.REDELIVER
    # Compressed time (seconds); the function's clients time out after read_timeout_s, slow answers take longer.
    connect_timeout_s: float = 0.5
    read_timeout_s: float = 1.0
    slow_response_s: float = 2.0
    function_timeout_s: float = 15.0
    visibility_timeout_s: int = 18
    max_receive_count: int = 4
    batching_window_s: float = 0.5
    max_concurrency: int = 2
    drain_timeout_s: float | None = None
    report: Path = DEFAULT_REPORT
    moto_endpoint: str | None = None
    quiet: bool = False
    output: OutputFormat = OutputFormat.TABLE

    @property
    def settle_s(self) -> float:
        """The linker's settle time: longer than a late commit plus the search lag (docs/chaos.md)."""
        return self.late_commit_s + self.search_lag_s + 2.0

    def timeout(self) -> float:
        if self.drain_timeout_s is not None:
            return self.drain_timeout_s
        # Two Cases calls per contact at (2/s x quota_scale), plus redelivery cycles: generous, bounded.
        paced = self.events * 2 / (2.0 * self.quota_scale)
        return max(180.0, 3 * paced + 10 * self.visibility_timeout_s)


DEFAULTS = ChaosOptions()


# --- the load ------------------------------------------------------------------------------------------------


@dataclass
class Load:
    inputs: list[Input] = field(default_factory=list)
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: dict[str, Any] = field(default_factory=dict)
    contacts: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    late_cases: list[str] = field(default_factory=list)
    late_contacts: list[tuple[str, str]] = field(default_factory=list)  # contact id, its case
    # The case merged into another mid-run (its requests may end on the primary), and that primary.
    merge_secondary: str | None = None
    merge_primary: str | None = None


def _request(case_id: str, body: str, **extra: Any) -> dict[str, Any]:
    return {
        "caseId": case_id,
        "type": "Comment",
        "content": {"comment": {"body": body, "contentType": "Text/Plain"}},
        **extra,
    }


def _custom(case_id: str, value: str, **extra: Any) -> dict[str, Any]:
    return {
        "caseId": case_id,
        "type": "Custom",
        "content": {"custom": {"fields": [{"id": "order", "value": {"stringValue": value}}]}},
        **extra,
    }


TEN_ATTRIBUTES = {f"producer-{i}": f"value-{i}" for i in range(10)}


def _envelope(detail: dict[str, Any], detail_type: str, source: str, event_id: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def _contact_event(contact_id: str, event_type: str, index: int) -> dict[str, Any]:
    detail = {
        "eventType": event_type,
        "contactId": contact_id,
        "initialContactId": contact_id,
        "channel": "VOICE",
        "instanceArn": INSTANCE_ARN,
        "initiationMethod": "INBOUND",
    }
    event = _envelope(detail, CONTACT_DETAIL_TYPE, "aws.connect", f"chaos-contact-{index:06d}")
    event["resources"] = [INSTANCE_ARN, f"{INSTANCE_ARN}/contact/{contact_id}"]
    return event


def build_load(options: ChaosOptions) -> Load:
    """Requests, skips and bad inputs (contacts come from the pipeline's synthetic load), with expectations."""
    total = options.events
    bad = round(total * options.bad_share)
    skips = round(total * options.skip_share)
    requests = round(total * options.request_share)
    late = round(total * options.late_share)
    failing = round(total * options.failing_share)
    load = Load(contacts=max(0, total - bad - skips - requests - late - failing))
    cases = [{"id": f"chaos-case-{i:05d}", "title": f"Chaos case {i}"} for i in range(max(1, requests // 3))]
    contacts: list[dict[str, Any]] = []

    def add(name: str, body: str, expected: dict[str, Any], kind: str) -> None:
        load.inputs.append(Input.of(name, body))
        load.expected[name] = expected
        load.kinds[kind] += 1

    # The last case is merged into the first mid-run: its items may end on either.
    load.merge_secondary, load.merge_primary = cases[-1]["id"], cases[0]["id"]
    twins = round(requests * options.twin_share)
    resends = round(requests * options.resend_share)
    customs = round(requests * options.custom_share)
    # The resent requests count among the requests: N inputs in all.
    for i in range(requests - resends):
        case_id = cases[i % len(cases)]["id"]
        twin_of = i - i % 2
        every = max(1, round(1 / options.custom_share)) if customs else 0
        # Twins share their pair's type: the pair is one content asked for twice.
        custom = every > 0 and (twin_of if i < twins else i) % every == 0
        item_type = "Custom" if custom else "Comment"
        document = (
            _custom(case_id, f"order-{i}")
            if custom
            else _request(case_id, f"Chaos comment {i}: customer asked for a callback.")
        )
        kind = "request-custom" if custom else "request"
        if i < twins:
            # A distinct request whose content equals its pair's: both must land.
            document = (
                _custom(case_id, f"twin-order-{twin_of}", idempotencyKey=f"twin-{i}")
                if custom
                else _request(case_id, f"Same words {twin_of}", idempotencyKey=f"twin-{i}")
            )
            case_id = cases[twin_of % len(cases)]["id"]
            document["caseId"] = case_id
            kind = "twin"
        expected = {"outcome": "linked", "type": item_type}
        if case_id != load.merge_secondary:
            expected["caseId"] = case_id
        if i % 2 and kind != "twin":
            body = json.dumps(
                _envelope(document, REQUEST_DETAIL_TYPE, REQUEST_SOURCE, f"chaos-request-{i:06d}")
            )
        else:
            body = json.dumps(document)
        add(f"{kind}-{i:05d}", body, expected, kind)
        if twins <= i < twins + resends:
            # The same request again, as another message (a producer retry, `ops send` run twice).
            add(f"resend-{i:05d}", body, expected, "resend")

    for i in range(skips):
        contact_id = f"c4a05000-0000-4000-9000-{i:012d}"
        if i % 2:
            body = json.dumps(_contact_event(contact_id, "DISCONNECTED", i))
            add(
                f"skip-ignored-{i:05d}",
                body,
                {"outcome": "skipped", "reason": "EventIgnored"},
                "skip-ignored",
            )
        else:
            contacts.append(
                {
                    "instanceId": INSTANCE_ID,
                    "contactId": contact_id,
                    "channel": "VOICE",
                    "attributes": {"other": "x"},
                }
            )
            body = json.dumps(_contact_event(contact_id, "COMPLETED", i))
            add(f"skip-no-case-{i:05d}", body, {"outcome": "skipped", "reason": "NoCaseId"}, "skip-no-case")

    for i in range(late):
        if i % 2:
            case_id = f"chaos-late-case-{i:05d}"
            load.late_cases.append(case_id)
            body = json.dumps(_request(case_id, f"Written before the case existed {i}"))
            # Every other one carries ten producer attributes: no room for a REPLAYED mark beside them.
            attributes = TEN_ATTRIBUTES if i % 4 == 1 else None
            kind = "late-case-10-attributes" if attributes else "late-case"
            load.inputs.append(Input.of(f"{kind}-{i:05d}", body, attributes))
            load.expected[f"{kind}-{i:05d}"] = {"outcome": "linked", "caseId": case_id, "type": "Comment"}
            load.kinds[kind] += 1
        else:
            contact_id = f"c4a05000-0000-4000-a000-{i:012d}"
            case_id = cases[i % len(cases)]["id"]
            load.late_contacts.append((contact_id, case_id))
            body = json.dumps(_contact_event(contact_id, "COMPLETED", 100_000 + i))
            add(
                f"late-contact-{i:05d}",
                body,
                {"outcome": "linked", "caseId": case_id, "type": "Contact"},
                "late-contact",
            )

    for i in range(failing):
        body = json.dumps(_request(FAILING_CASE, f"Written while its case was failing {i}"))
        add(
            f"failing-case-{i:05d}",
            body,
            {"outcome": "linked", "caseId": FAILING_CASE, "type": "Comment"},
            "failing-case",
        )

    kinds = list(BAD_KINDS)
    for i in range(bad):
        kind = kinds[i % len(kinds)]
        if kind == "malformed":
            body = (
                '{"caseId": "chaos-case-00000", "type": "Comment", "content": {"comment": {"body": "cut '
                + str(i)
            )
        elif kind == "unknown-case":
            body = json.dumps(_request(f"chaos-missing-{i:05d}", f"Nobody home {i}"))
        elif kind == "comment-15001":
            body = json.dumps(_request(cases[i % len(cases)]["id"], f"{i:06d}" + "x" * (15001 - 6)))
        else:
            body = json.dumps({"note": f"not an event {i}", "kind": "unknown"})
        add(
            f"bad-{kind}-{i:05d}",
            body,
            {"outcome": "dead_lettered", "error_code": BAD_KINDS[kind], "queue": "processing"},
            f"bad-{kind}",
        )
    load.kinds["contact"] = load.contacts
    seeded = [*cases, {"id": FAILING_CASE, "title": "Chaos case failing in phase 1"}] if failing else cases
    load.seed = {"domains": [{"id": DOMAIN_ID, "name": "chaos", "cases": seeded}], "contacts": contacts}
    return load


# --- the run ---------------------------------------------------------------------------------------------------


def emulator_config(options: ChaosOptions) -> EmulatorConfig:
    faults = Faults(
        server_error=options.server_error,
        drop_connection=options.drop_connection,
        slow_response=options.slow_response,
    )
    late = dataclasses.replace(faults, late_commit=options.late_commit)
    by_operation = {op: late if op in CREATE_OPERATIONS else faults for op in FAULTED_OPERATIONS}
    for op in ITEM_FAILURE_OPERATIONS & set(by_operation):
        by_operation[op] = dataclasses.replace(by_operation[op], item_failure=options.item_failure)
    return EmulatorConfig(
        quota_scale=options.quota_scale,
        faults={**by_operation, **options.faults},
        slow_response_s=options.slow_response_s,
        after_commit_share=options.after_commit_share,
        late_commit_s=options.late_commit_s,
        search_lag_s=options.search_lag_s,
        merge_duration_s=options.merge_duration_s,
        seed=options.seed,
        require_known_contact=False,
    )


def pipeline_options(options: ChaosOptions, load: Load, work_dir: Path) -> PipelineOptions:
    return PipelineOptions(
        inputs=load.inputs,
        contacts=load.contacts,
        seed=load.seed,
        expected=load.expected,
        context={
            "casesDomainId": DOMAIN_ID,
            "connectInstanceArn": INSTANCE_ARN,
            "requestEventSource": REQUEST_SOURCE,
            "maxConcurrency": options.max_concurrency,
            # The account quota the emulator enforces; each environment paces at its share of it.
            "casesRequestsPerSecond": 2.0 * options.quota_scale,
        },
        emulator_config=emulator_config(options),
        function_timeout_s=options.function_timeout_s,
        visibility_timeout_s=options.visibility_timeout_s,
        batching_window_s=options.batching_window_s,
        max_receive_count=options.max_receive_count,
        chaos=ChaosHooks(
            kill_rate=options.kill_rate,
            kill_invocations=options.kill_invocations,
            kill_after_s=options.kill_after_s or (0.2, min(4.0, options.function_timeout_s / 2)),
            duplicate_rate=options.duplicate_rate,
            duplicate_mode=options.duplicate_mode,
            seed=options.seed,
        ),
        handler=HANDLER,
        extra_environment={
            "CHAOS_CONNECT_TIMEOUT": str(options.connect_timeout_s),
            "CHAOS_READ_TIMEOUT": str(options.read_timeout_s),
            "CHAOS_SAFETY_MARGIN": "1.0",
            "CHAOS_THROTTLE_BACKOFF": "0.2",
            "CHAOS_OTHER_BACKOFF": "0.02",
            "CHAOS_SETTLE": str(options.settle_s),
            "CHAOS_SETTLE_IN_PLACE": "0.5",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        },
        moto_endpoint=options.moto_endpoint,
        moto_process=options.moto_endpoint
        is None,  # a core of its own: moto, not the linker, was the bottleneck
        work_dir=work_dir,
        drop_events=options.drop_events,
        drop_seed=options.seed,
    )


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Names:
    """Which input a queue message came from: by EventBridge event id, else by body."""

    def __init__(self, pipeline: LocalPipeline) -> None:
        published = pipeline.published
        self.by_event_id = {p.event_id: p.input.name for p in published if p.event_id}
        self.by_body = {_sha(p.input.body): p.input.name for p in published}

    def name(self, body: str) -> str | None:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            document = None
        if isinstance(document, dict) and isinstance(document.get("id"), str):
            found = self.by_event_id.get(document["id"])
            if found is not None:
                return found
        return self.by_body.get(_sha(body))


@dataclass
class ReplayResult:
    queue: str
    read: int = 0
    sent: int = 0
    failed: int = 0
    names: list[str] = field(default_factory=list)
    unattributed: int = 0


def replay_dlqs(pipeline: LocalPipeline, backup_dir: Path) -> list[ReplayResult]:
    """Both DLQs back to the main queue with ops' Replayer (backup, send, delete), everything matching."""
    from ops.replay import BackupWriter, Replayer
    from ops.summary import parse_filters

    names = _Names(pipeline)
    results = []
    queues = (
        ("processing", pipeline.resources.processing_dlq_url),
        ("rule_target", pipeline.resources.rule_target_dlq_url),
    )
    for queue, url in queues:
        depth = _depth(pipeline, url)
        result = ReplayResult(queue)
        results.append(result)
        if depth == 0:
            continue
        # What is about to move, by input (Replayer reports counts only).
        for message in pipeline.dlq_messages():
            if message.queue != queue:
                continue
            name = names.name(message.body)
            if name is None:
                result.unattributed += 1
            else:
                result.names.append(name)
        backup = BackupWriter(backup_dir / f"replay-{queue}.jsonl")
        try:
            report = Replayer(
                pipeline.sqs,
                source_url=url,
                destination_url=pipeline.resources.main_queue_url,
                message_filter=parse_filters([]),
                max_messages=depth,
                backup=backup,
                expected=depth,
            ).run()
        finally:
            backup.close()
        result.read, result.sent, result.failed = report.read, report.sent, report.failed
    return results


def _depth(pipeline: LocalPipeline, url: str) -> int:
    attributes = pipeline.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def _merge(pipeline: LocalPipeline, load: Load) -> None:
    """Merge one case into another while the queue drains: its writes meet ConflictException meanwhile."""
    if load.merge_secondary and load.merge_primary and load.merge_secondary != load.merge_primary:
        pipeline.emulator.merge_cases(DOMAIN_ID, load.merge_primary, load.merge_secondary)


def exactly_once_faults(pipeline: LocalPipeline, load: Load) -> dict[str, int]:
    """How often each exactly-once fault class fired in the whole run."""
    events: Counter[str] = Counter()
    for counts in pipeline.emulator.fault_counts().values():
        for name in EXACTLY_ONCE_EVENTS:
            events[name] += int(counts.get(name, 0))
    ambiguous_creates = sum(
        1
        for call in pipeline.emulator.calls
        if call.operation in CREATE_OPERATIONS
        and call.outcome in ("drop_after_commit", "slow_after_commit", "late_commit")
    )
    return {
        **{name: events[name] for name in EXACTLY_ONCE_EVENTS},
        "ambiguous_creates": ambiguous_creates,
        "merges": len(pipeline.emulator.merges()),
        "same_request_as_several_messages": load.kinds["resend"],
        "distinct_requests_with_identical_content": load.kinds["twin"],
        "messages_with_ten_attributes": load.kinds["late-case-10-attributes"],
        "killed_invocations": pipeline.poller.stats.killed_invocations,
        "duplicate_deliveries": pipeline.poller.stats.duplicates_injected,
    }


def fault_counts(pipeline: LocalPipeline) -> dict[str, dict[str, int]]:
    """What the emulator did, per operation and outcome (ok, ThrottlingException, drop_after_commit, ...)."""
    counts: dict[str, Counter[str]] = {}
    for call in pipeline.emulator.calls:
        label = call.outcome if call.outcome not in ("error", None) else (call.error_code or "error")
        counts.setdefault(call.operation, Counter())[str(label)] += 1
    return {op: dict(sorted(c.items())) for op, c in sorted(counts.items())}


def judge(
    result: Reconciliation, load_expected: dict[str, Any], replays: Sequence[ReplayResult]
) -> tuple[dict[str, bool], dict[str, Any]]:
    """The exit criteria, and the evidence behind each failed one."""
    by_name = {r.name: r for r in result.inputs}
    bad = {name for name, e in load_expected.items() if e.get("outcome") == "dead_lettered"}
    bad_wrong = [
        {"input": name, "outcome": by_name[name].outcome.value, "error_code": by_name[name].error_code}
        for name in sorted(bad)
        if by_name[name].outcome is not Outcome.DEAD_LETTERED
        or by_name[name].error_code != load_expected[name]["error_code"]
    ]
    should_link = {r.name for r in result.inputs if (r.expected or {}).get("outcome") == "linked"}
    replayed = [name for replay in replays for name in replay.names]
    replayed_good = sorted({name for name in replayed if name in should_link})
    replay_not_once = [
        {"input": name, "outcome": by_name[name].outcome.value, "items": by_name[name].items}
        for name in replayed_good
        if by_name[name].outcome is not Outcome.LINKED or by_name[name].items != 1
    ]
    not_once = [
        {"input": r.name, "outcome": r.outcome.value, "items": r.items, "error_code": r.error_code}
        for r in result.inputs
        if r.name in should_link and (r.outcome is not Outcome.LINKED or r.items != 1)
    ]
    checks = {
        "drained": result.drained,
        "lost_is_zero": result.lost == 0 and result.pending == 0,
        "duplicates_is_zero": result.duplicates == 0,
        "bad_inputs_in_dlq_with_reason": not bad_wrong,
        "replayed_linked_exactly_once": not replay_not_once,
        "every_good_input_linked_exactly_once": not not_once,
        "expectations_met": not result.mismatches,
        "replay_moved_everything": all(r.failed == 0 and r.unattributed == 0 for r in replays),
    }
    evidence = {
        "bad_inputs_not_dead_lettered_as_expected": bad_wrong[:50],
        "replayed_not_linked_exactly_once": replay_not_once[:50],
        "good_inputs_not_linked_exactly_once": not_once[:50],
        "mismatches": [{"input": r.name, "mismatch": r.mismatch} for r in result.mismatches][:50],
        "lost": [r.name for r in result.inputs if r.outcome in (Outcome.LOST, Outcome.PENDING)][:50],
        "duplicate_items": result.duplicate_items[:50],
        "replayed_good_inputs": len(replayed_good),
    }
    return checks, evidence


# How a last delivery ends when the linker cannot answer it: SQS's redrive is then the only ending left.
_UNANSWERED = frozenset({RecordOutcome.KILLED.value, RecordOutcome.BATCH_FAILED.value})


def failing_case_endings(first: Reconciliation) -> tuple[Counter[str], list[dict[str, Any]]]:
    """How phase 1 ended the failing case's inputs: counted endings, and the inputs that ended wrongly.

    Right: in the processing DLQ with the linker's reason (the 5xx). Also right: SQS's redrive, when the linker
    never had the last word (its last delivery was killed or failed as a whole batch, or the poller made the
    message visible again while it ran, so a second receive went over maxReceiveCount and the linker's claim
    rightly refused to dead-letter it a second time).
    """
    endings: Counter[str] = Counter()
    wrong: list[dict[str, Any]] = []
    for r in first.inputs:
        if _kind(r.name) != "failing-case":
            continue
        if r.outcome is Outcome.DEAD_LETTERED and r.error_code == "InternalServerException":
            endings["given_up_with_reason"] += 1
        elif (
            r.outcome is Outcome.DEAD_LETTERED
            and r.error_code == "maxReceiveCount"
            and (r.last_delivery in _UNANSWERED or r.last_delivery_duplicated)
        ):
            endings["redriven_after_the_last_delivery_was_lost"] += 1
        else:
            wrong.append(
                {
                    "input": r.name,
                    "outcome": r.outcome.value,
                    "error_code": r.error_code,
                    "last_delivery": r.last_delivery,
                    "last_delivery_duplicated": r.last_delivery_duplicated,
                }
            )
    return endings, wrong


def run(options: ChaosOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the chaos scenario; return the report (also written to options.report)."""
    load = build_load(options)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="case-linker-chaos-") as tmp:
        work_dir = Path(tmp)
        with LocalPipeline(pipeline_options(options, load, work_dir)) as pipeline:
            for operation, outcomes in options.scripted.items():
                pipeline.emulator.script(operation, list(outcomes))
            pipeline.emulator.configure(failing_cases=frozenset({FAILING_CASE}))
            published = pipeline.publish(pipeline.inputs)
            log(f"published {len(published)} inputs ({dict(load.kinds)}); draining under faults ...")
            merge = threading.Timer(options.merge_after_s, _merge, (pipeline, load))
            merge.start()
            try:
                first = pipeline.drain(timeout_s=options.timeout(), progress=_progress(log, options.quiet))
            finally:
                merge.cancel()
            dlq_before = first.dlq_by_code
            faults = fault_counts(pipeline)
            poller_chaos = asdict(pipeline.poller.stats)
            log(f"phase 1 done in {time.monotonic() - started:.0f}s: {json.dumps(first.summary())}")

            # The operator fixes the cause (the missing cases and contacts appear) and turns faults off
            # (emulator and poller); quotas stay as they are.
            for case_id in load.late_cases:
                pipeline.emulator.create_case(DOMAIN_ID, title="Created late", case_id=case_id)
            # A late contact ended before the sweeper's lag, like the others: its event may be the one lost.
            ended = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=pipeline.config.sweep_lag_minutes + 2)
            for contact_id, case_id in load.late_contacts:
                pipeline.emulator.put_contact(
                    INSTANCE_ID,
                    contact_id,
                    {"caseId": case_id},
                    initiation_time=ended - dt.timedelta(minutes=5),
                    disconnect_time=ended,
                )
            pipeline.emulator.configure(faults={}, failing_cases=frozenset())
            pipeline.poller.chaos = ChaosHooks()
            replays = replay_dlqs(pipeline, work_dir)
            log(f"replayed {sum(r.sent for r in replays)} DLQ messages; draining again ...")
            replayed = pipeline.drain(timeout_s=options.timeout(), progress=_progress(log, options.quiet))
            # The sweeper's scheduled run finds the contacts whose event was lost on the way.
            sweep = pipeline.sweep()
            log(f"sweep: {json.dumps(sweep.report) if sweep.report else sweep.error}; draining again ...")
            pipeline.drain(timeout_s=options.timeout(), progress=_progress(log, options.quiet))
            # Creates committing late land before the evidence is read (a duplicate would show then).
            pipeline.emulator.wait_for_late_commits(options.late_commit_s * 3)
            final = pipeline.drain(timeout_s=options.timeout(), progress=_progress(log, options.quiet))
            exactly_once = exactly_once_faults(pipeline, load)

        checks, evidence = judge(final, pipeline.expected, replays)
        checks["sweeper_ran"] = sweep.ok
        failing_endings, not_given_up = failing_case_endings(first)
        checks["failing_case_given_up_with_reason"] = not not_given_up
        evidence["failing_case_not_given_up_with_reason"] = not_given_up[:50]
        summary = final.summary()
        report = {
            "ok": all(checks.values()),
            "checks": checks,
            "events_in": len(published),
            "inputs_by_kind": dict(sorted(load.kinds.items())),
            "related_items_created": final.items_created,
            "duplicates": final.duplicates,
            "lost": final.lost + final.pending,
            "outcomes": {
                k: summary[k]
                for k in ("linked", "skipped", "dead_lettered", "filtered", "rejected", "dropped")
            },
            "contact_events_dropped": sum(p.route is Route.DROPPED for p in published),
            "coverage": {"events_alone": replayed.coverage(), "after_sweep": final.coverage()},
            "sweep": {"status": sweep.status, "error": sweep.error, "report": sweep.report},
            "skips_by_reason": dict(sorted(final.skips_by_reason.items())),
            "dlq_by_reason_before_replay": dlq_before,
            "failing_case_endings": dict(sorted(failing_endings.items())),
            "dlq_by_reason": final.dlq_by_code,
            "replayed": {r.queue: {"read": r.read, "sent": r.sent, "failed": r.failed} for r in replays},
            "replayed_that_can_succeed": evidence["replayed_good_inputs"],
            "replayed_by_kind": dict(
                sorted(Counter(_kind(name) for r in replays for name in r.names).items())
            ),
            "faults_injected": {"emulator": faults, "poller": poller_chaos, "exactly_once": exactly_once},
            "handler_metrics": final.handler_metrics,
            "poller_errors": final.poller_errors[:20],
            "evidence": evidence,
            "settings": _settings(options),
            "elapsed_s": round(time.monotonic() - started, 1),
        }
    write_report(options.report, json.dumps(report, indent=2, sort_keys=False) + "\n")
    return report


def _kind(name: str) -> str:
    if name.startswith("synthetic-"):
        return "contact"
    return name.rsplit("-", 1)[0]


def _settings(options: ChaosOptions) -> dict[str, Any]:
    values = asdict(options)
    values["report"] = str(options.report)
    values["duplicate_mode"] = options.duplicate_mode.value
    values["kill_invocations"] = sorted(options.kill_invocations)
    values["quotas"] = (
        f"AWS defaults x{options.quota_scale:g} (CreateRelatedItem, ListCasesForContact, SearchRelatedItems "
        f"{2 * options.quota_scale:g}/s burst 10; GetContactAttributes {10 * options.quota_scale:g}/s burst 20)"
    )
    values["faulted_operations"] = list(FAULTED_OPERATIONS)
    values.pop("moto_endpoint", None)
    values.pop("quiet", None)
    values.pop("output", None)
    return values


def _progress(log: Callable[[str], None], quiet: bool) -> Callable[[int], None] | None:
    if quiet:
        return None
    last = [0.0]

    def show(depth: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 10:
            last[0] = now
            log(f"  ... {depth} messages on the main queue")

    return show


# --- command line ----------------------------------------------------------------------------------------------


_cli = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0], pretty_exceptions_enable=False)

EXIT_CODES_HELP = (
    "Exit codes: 0 every check in the report holds; 1 a check failed (the report's ok is false); 2 usage "
    "(bad option or --output format, unusable --report); 130 interrupted (no report written)."
)
OUTPUT_HELP = (
    "What to print: table (each check and whether it holds, then the verdict and the counts), json (the report, as in "
    "--report; progress goes to stderr) or text (one check a line, tab-separated: check, holds)."
)
CHECK_COLUMNS = (
    Column("check", "check", whole=True),
    Column("holds", "holds", render=lambda row: "yes" if row["holds"] else "NO"),
)
# The counts under the checks' table: label, report key.
_FOOTER = (
    ("skips by reason", "skips_by_reason"),
    ("DLQ by reason", "dlq_by_reason"),
    ("replayed", "replayed"),
)


@_cli.command(cls=OneLineErrorsCommand, help=__doc__.split("\n\n")[0], epilog=EXIT_CODES_HELP)
def _command_line(
    contacts: Annotated[
        int,
        typer.Option(
            "--contacts",
            help=f"Inputs to publish: contact events, requests, skips and bad inputs (at least {len(BAD_KINDS) * 2}).",
        ),
    ] = DEFAULTS.events,
    contacts_old: Annotated[
        int | None, typer.Option("--events", hidden=True, help="Old name of --contacts.")
    ] = None,
    rng_seed: Annotated[int, typer.Option("--rng-seed", help="Seed of every random choice.")] = DEFAULTS.seed,
    rng_seed_old: Annotated[
        int | None, typer.Option("--seed", hidden=True, help="Old name of --rng-seed.")
    ] = None,
    report: Annotated[Path, typer.Option(help="The JSON report.")] = DEFAULTS.report,
    quota_scale: Annotated[
        float, typer.Option(min=0.001, help="Multiply the AWS quotas.")
    ] = DEFAULTS.quota_scale,
    server_error: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="server_error rate on each faulted operation.")
    ] = DEFAULTS.server_error,
    drop_connection: Annotated[
        float, typer.Option("--drop-connection", "--drop", min=0.0, max=1.0, help="drop_connection rate.")
    ] = DEFAULTS.drop_connection,
    late_commit: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="late_commit rate on the creates (commit after the connection dropped)."
        ),
    ] = DEFAULTS.late_commit,
    item_failure: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Per-case failures of comment creates (failedItems: THROTTLED, INTERNAL_ERROR).",
        ),
    ] = DEFAULTS.item_failure,
    slow_response: Annotated[
        float,
        typer.Option(
            "--slow-response", "--slow", min=0.0, max=1.0, help="slow_response rate (after the timeout)."
        ),
    ] = DEFAULTS.slow_response,
    kill_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Invocations killed.")
    ] = DEFAULTS.kill_rate,
    duplicate_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Records delivered twice.")
    ] = DEFAULTS.duplicate_rate,
    drop_events: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Contact events lost before the rule (and chats' COMPLETED never sent); the sweeper finds them.",
        ),
    ] = DEFAULTS.drop_events,
    duplicate_mode: Annotated[
        DuplicateMode, typer.Option(help="How a duplicate arrives.")
    ] = DEFAULTS.duplicate_mode,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            help="OP=KIND:RATE, repeatable: that operation's faults instead of the rates above "
            "(e.g. SearchRelatedItems=server_error:0.2).",
        ),
    ] = None,
    max_receive_count: Annotated[int, typer.Option(min=1)] = DEFAULTS.max_receive_count,
    timeout: Annotated[
        float | None, typer.Option(min=1.0, help="Seconds per drain (default: from the number of inputs).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
    output: Annotated[
        OutputFormat, output_option(help=OUTPUT_HELP, results_file="--report")
    ] = OutputFormat.TABLE,
) -> ChaosOptions:
    """The options of one chaos run; the faults apply to each of FAULTED_OPERATIONS."""
    events = contacts_old if contacts_old is not None else contacts
    if events < len(BAD_KINDS) * 2:
        usage_error(f"--contacts must be at least {len(BAD_KINDS) * 2} (one of each bad input, twice)")
    try:
        faults = faults_from_specs(fault or [])
    except ValueError as error:
        usage_error(f"--fault: {error}")
    check_output(report, "--report")
    return ChaosOptions(
        events=events,
        seed=rng_seed_old if rng_seed_old is not None else rng_seed,
        report=report,
        quota_scale=quota_scale,
        server_error=server_error,
        drop_connection=drop_connection,
        slow_response=slow_response,
        late_commit=late_commit,
        item_failure=item_failure,
        kill_rate=kill_rate,
        duplicate_rate=duplicate_rate,
        duplicate_mode=duplicate_mode,
        drop_events=drop_events,
        max_receive_count=max_receive_count,
        drain_timeout_s=timeout,
        quiet=quiet,
        output=output,
        faults=faults,
    )


def parse_args(argv: Sequence[str] | None = None) -> ChaosOptions:
    """The command line as ChaosOptions; exits 2 with a one-line error on a mistake (0 after --help)."""
    return parse_command_line(_cli, argv, prog_name="python -m local.chaos", result=ChaosOptions)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    # Progress and notes share stdout with the table; beside json or text they go to stderr.
    to_stderr = options.output is not OutputFormat.TABLE

    def note(line: str) -> None:
        print(line, file=sys.stderr if to_stderr else sys.stdout)

    try:
        report = run(options, log=note)
    except KeyboardInterrupt:
        print(f"interrupted: no report written to {options.report}", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    checks = [{"check": name, "holds": holds} for name, holds in report["checks"].items()]
    failed = sum(not row["holds"] for row in checks)
    Output(format=options.output).emit(
        report,
        records=checks,
        columns=CHECK_COLUMNS,
        footer=[
            "OK: every check holds"
            if report["ok"]
            else f"FAILED: {failed} of {len(checks)} checks do not hold",
            f"{report['events_in']} inputs, {report['related_items_created']} related items created, "
            f"{report['duplicates']} duplicates, {report['lost']} lost ({report['elapsed_s']:.0f} s)",
            *(f"{label}: {json.dumps(report[key])}" for label, key in _FOOTER),
        ],
    )
    note(f"report: {options.report}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
