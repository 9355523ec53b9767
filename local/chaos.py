"""`python -m local.chaos` (`make chaos`): prove nothing is lost or doubled under the faults production brings.

1. Publish N inputs (default 2,000) through the local pipeline: contact COMPLETED events (via EventBridge),
   related-item requests (bare and in envelopes), counted skips, and permanently bad inputs in known
   proportions (malformed JSON, unknown case, 15,001-character comments, unknown shapes).
2. Drain while the emulator throttles at the real quotas (scaled up, see --quota-scale), answers 5xx, answers
   slower than the client's read timeout and drops connections (before and after the commit), and the poller
   kills invocations mid-batch and delivers records twice.
3. Turn every fault off and replay both DLQs with the ops tool's Replayer, then drain again.
4. Reconcile from the evidence (related items in the emulator, DLQ contents, deliveries, logs) and write the
   JSON report. Exit 0 only if nothing is lost or doubled, every bad input sits in a DLQ with its reason, and
   every replayed message that can succeed is linked exactly once.

Time is compressed so a run takes minutes: quotas x10, the function's client timeouts, backoff, function
timeout and visibility timeout all shortened together (docs/chaos.md lists the values). The code under test
is the real handler, built by the real `build_app` with a shorter `Tuning`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from emulator import EmulatorConfig, Faults
from local.inputs import CONTACT_DETAIL_TYPE, REQUEST_DETAIL_TYPE, Input
from local.pipeline import LocalPipeline, PipelineOptions
from local.poller import ChaosHooks, DuplicateMode
from local.reconcile import Outcome, Reconciliation
from ops.clikit import OneLineErrorsCommand, parse_command_line, usage_error

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
# Operations that get the random faults.
FAULTED_OPERATIONS = (
    "CreateRelatedItem",
    "ListCasesForContact",
    "SearchRelatedItems",
    "GetContactAttributes",
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
    skip_share: float = 0.04
    # Emulator: real quotas times quota_scale; random faults on FAULTED_OPERATIONS.
    quota_scale: float = 10.0
    server_error: float = 0.04
    drop_connection: float = 0.03
    slow_response: float = 0.02
    after_commit_share: float = 0.5
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


def _request(case_id: str, body: str) -> dict[str, Any]:
    return {
        "caseId": case_id,
        "type": "Comment",
        "content": {"comment": {"body": body, "contentType": "Text/Plain"}},
    }


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
    load = Load(contacts=max(0, total - bad - skips - requests - late))
    cases = [{"id": f"chaos-case-{i:05d}", "title": f"Chaos case {i}"} for i in range(max(1, requests // 3))]
    contacts: list[dict[str, Any]] = []

    def add(name: str, body: str, expected: dict[str, Any], kind: str) -> None:
        load.inputs.append(Input.of(name, body))
        load.expected[name] = expected
        load.kinds[kind] += 1

    for i in range(requests):
        case_id = cases[i % len(cases)]["id"]
        document = _request(case_id, f"Chaos comment {i}: customer asked for a callback.")
        if i % 2:
            body = json.dumps(
                _envelope(document, REQUEST_DETAIL_TYPE, REQUEST_SOURCE, f"chaos-request-{i:06d}")
            )
        else:
            body = json.dumps(document)
        add(f"request-{i:05d}", body, {"outcome": "linked", "caseId": case_id, "type": "Comment"}, "request")

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
            add(
                f"late-case-{i:05d}",
                body,
                {"outcome": "linked", "caseId": case_id, "type": "Comment"},
                "late-case",
            )
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
    load.seed = {"domains": [{"id": DOMAIN_ID, "name": "chaos", "cases": cases}], "contacts": contacts}
    return load


# --- the run ---------------------------------------------------------------------------------------------------


def emulator_config(options: ChaosOptions) -> EmulatorConfig:
    faults = Faults(
        server_error=options.server_error,
        drop_connection=options.drop_connection,
        slow_response=options.slow_response,
    )
    return EmulatorConfig(
        quota_scale=options.quota_scale,
        faults=dict.fromkeys(FAULTED_OPERATIONS, faults),
        slow_response_s=options.slow_response_s,
        after_commit_share=options.after_commit_share,
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
            "POWERTOOLS_LOG_LEVEL": "INFO",
        },
        moto_endpoint=options.moto_endpoint,
        moto_process=options.moto_endpoint
        is None,  # a core of its own: moto, not the linker, was the bottleneck
        work_dir=work_dir,
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


def run(options: ChaosOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the chaos scenario; return the report (also written to options.report)."""
    load = build_load(options)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="case-linker-chaos-") as tmp:
        work_dir = Path(tmp)
        with LocalPipeline(pipeline_options(options, load, work_dir)) as pipeline:
            published = pipeline.publish(pipeline.inputs)
            log(f"published {len(published)} inputs ({dict(load.kinds)}); draining under faults ...")
            first = pipeline.drain(timeout_s=options.timeout(), progress=_progress(log, options.quiet))
            dlq_before = first.dlq_by_code
            faults = fault_counts(pipeline)
            poller_chaos = asdict(pipeline.poller.stats)
            log(f"phase 1 done in {time.monotonic() - started:.0f}s: {json.dumps(first.summary())}")

            # The operator fixes the cause (the missing cases and contacts appear) and turns faults off
            # (emulator and poller); quotas stay as they are.
            for case_id in load.late_cases:
                pipeline.emulator.create_case(DOMAIN_ID, title="Created late", case_id=case_id)
            for contact_id, case_id in load.late_contacts:
                pipeline.emulator.put_contact(INSTANCE_ID, contact_id, {"caseId": case_id})
            pipeline.emulator.configure(faults={})
            pipeline.poller.chaos = ChaosHooks()
            replays = replay_dlqs(pipeline, work_dir)
            log(f"replayed {sum(r.sent for r in replays)} DLQ messages; draining again ...")
            final = pipeline.drain(timeout_s=options.timeout(), progress=_progress(log, options.quiet))

        checks, evidence = judge(final, pipeline.expected, replays)
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
                k: summary[k] for k in ("linked", "skipped", "dead_lettered", "filtered", "rejected")
            },
            "skips_by_reason": dict(sorted(final.skips_by_reason.items())),
            "dlq_by_reason_before_replay": dlq_before,
            "dlq_by_reason": final.dlq_by_code,
            "replayed": {r.queue: {"read": r.read, "sent": r.sent, "failed": r.failed} for r in replays},
            "replayed_that_can_succeed": evidence["replayed_good_inputs"],
            "replayed_by_kind": dict(
                sorted(Counter(_kind(name) for r in replays for name in r.names).items())
            ),
            "faults_injected": {"emulator": faults, "poller": poller_chaos},
            "handler_metrics": final.handler_metrics,
            "poller_errors": final.poller_errors[:20],
            "evidence": evidence,
            "settings": _settings(options),
            "elapsed_s": round(time.monotonic() - started, 1),
        }
    options.report.parent.mkdir(parents=True, exist_ok=True)
    options.report.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
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


@_cli.command(cls=OneLineErrorsCommand)
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
    duplicate_mode: Annotated[
        DuplicateMode, typer.Option(help="How a duplicate arrives.")
    ] = DEFAULTS.duplicate_mode,
    max_receive_count: Annotated[int, typer.Option(min=1)] = DEFAULTS.max_receive_count,
    timeout: Annotated[
        float | None, typer.Option(min=1.0, help="Seconds per drain (default: from the number of inputs).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
) -> ChaosOptions:
    """The options of one chaos run; the faults apply to each of FAULTED_OPERATIONS."""
    events = contacts_old if contacts_old is not None else contacts
    if events < len(BAD_KINDS) * 2:
        usage_error(f"--contacts must be at least {len(BAD_KINDS) * 2} (one of each bad input, twice)")
    return ChaosOptions(
        events=events,
        seed=rng_seed_old if rng_seed_old is not None else rng_seed,
        report=report,
        quota_scale=quota_scale,
        server_error=server_error,
        drop_connection=drop_connection,
        slow_response=slow_response,
        kill_rate=kill_rate,
        duplicate_rate=duplicate_rate,
        duplicate_mode=duplicate_mode,
        max_receive_count=max_receive_count,
        drain_timeout_s=timeout,
        quiet=quiet,
    )


def parse_args(argv: Sequence[str] | None = None) -> ChaosOptions:
    """The command line as ChaosOptions; exits 2 with a one-line error on a mistake (0 after --help)."""
    return parse_command_line(_cli, argv, prog_name="python -m local.chaos", result=ChaosOptions)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    report = run(options)
    brief = {
        k: report[k] for k in ("ok", "checks", "events_in", "related_items_created", "duplicates", "lost")
    }
    brief |= {k: report[k] for k in ("skips_by_reason", "dlq_by_reason", "replayed", "elapsed_s")}
    print(json.dumps(brief, indent=2))
    print(f"report: {options.report}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
