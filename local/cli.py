"""`python -m local` (`make demo`): run case-linker end to end on moto and the emulator, then report."""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from emulator import Faults
from local.pipeline import EVENTS_DIR, LocalPipeline, PipelineOptions
from local.report import render

app = typer.Typer(add_completion=False, no_args_is_help=False, help=__doc__)

_FAULT_KINDS = tuple(f.name for f in dataclasses.fields(Faults))


def parse_faults(specs: list[str]) -> dict[str, Faults]:
    """`OP=KIND:RATE` (e.g. `CreateRelatedItem=server_error:0.1`), repeatable; one op may get several kinds."""
    faults: dict[str, dict[str, float]] = {}
    for spec in specs:
        operation, _, rest = spec.partition("=")
        kind, _, rate = rest.partition(":")
        if not operation or kind not in _FAULT_KINDS:
            raise typer.BadParameter(
                f"{spec!r}: expected OP=KIND:RATE with KIND one of {', '.join(_FAULT_KINDS)}"
            )
        try:
            value = float(rate)
        except ValueError:
            raise typer.BadParameter(f"{spec!r}: RATE must be a number between 0 and 1") from None
        if not 0 <= value <= 1:
            raise typer.BadParameter(f"{spec!r}: RATE must be between 0 and 1")
        faults.setdefault(operation, {})[kind] = value
    return {operation: Faults(**kinds) for operation, kinds in faults.items()}


def parse_context(pairs: list[str]) -> dict[str, str]:
    """`-c key=value`, as `cdk synth -c` takes them."""
    context: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r}: expected key=value (e.g. maxConcurrency=4)")
        context[key.strip()] = value.strip()
    return context


def cli_commands(pipeline: LocalPipeline) -> list[tuple[str, str]]:
    """Ready-to-paste AWS CLI commands against the running endpoints."""
    moto, emulator = pipeline.moto_endpoint, pipeline.emulator.endpoint_url
    resources, config = pipeline.resources, pipeline.config
    sample = next((EVENTS_DIR / n for n in ("request-comment.json",) if (EVENTS_DIR / n).is_file()), None)
    body = (
        f"file://{sample}" if sample else shlex.quote(json.dumps({"caseId": "<case id>", "type": "Comment"}))
    )
    first_case = next(iter(pipeline.emulator.related_items()), None)
    case_id = first_case.case_id if first_case else "<case id>"
    contact = next((r for r in pipeline.emulator.related_items() if r.type == "Contact"), None)
    contact_arn = (
        contact.content["contact"]["contactArn"] if contact else f"{config.connect_instance_arn}/contact/<id>"
    )
    domain = config.cases_domain_id
    return [
        (
            "credentials (dummies: nothing here reaches AWS)",
            "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1",
        ),
        (
            "send a related-item request straight to the queue",
            f"aws --endpoint-url {moto} sqs send-message --queue-url {resources.main_queue_url} --message-body {body}",
        ),
        (
            "watch the processing DLQ",
            f"aws --endpoint-url {moto} sqs receive-message --queue-url {resources.processing_dlq_url} --message-attribute-names All --visibility-timeout 0",
        ),
        (
            "queue depth",
            f"aws --endpoint-url {moto} sqs get-queue-attributes --queue-url {resources.main_queue_url} --attribute-names All",
        ),
        (
            "cases a contact is on",
            f"aws --endpoint-url {emulator} connectcases list-cases-for-contact --domain-id {domain} --contact-arn {contact_arn}",
        ),
        (
            "related items of a case",
            f"aws --endpoint-url {emulator} connectcases search-related-items --domain-id {domain} --case-id {case_id}",
        ),
        ("the rule", f"aws --endpoint-url {moto} events describe-rule --name {resources.contact_rule_name}"),
    ]


def _facts(pipeline: LocalPipeline, seconds: float) -> dict[str, Any]:
    timings = pipeline.timings
    return {
        "batch size": timings.batch_size,
        "window": f"{timings.batching_window_s:g}s",
        "max concurrency": timings.max_concurrency,
        "function timeout": f"{timings.function_timeout_s:g}s",
        "visibility timeout": f"{timings.visibility_timeout_s}s",
        "maxReceiveCount": timings.max_receive_count,
        "CASES_MAX_RPS": f"{pipeline.config.cases_max_rps:g}",
        "CASES_MAX_BURST": f"{pipeline.config.cases_max_burst:g}",
        "run": f"{seconds:.1f}s",
    }


@app.command()
def main(
    events: Annotated[
        list[Path] | None,
        typer.Option(
            "--events", "-e", help="Event file or folder (repeatable). Default: events/ unless --contacts."
        ),
    ] = None,
    contacts: Annotated[
        int, typer.Option(help="Synthetic load: N contact COMPLETED events with seeded cases.")
    ] = 0,
    context: Annotated[
        list[str] | None,
        typer.Option("--context", "-c", help="CDK context key=value, e.g. -c maxConcurrency=4."),
    ] = None,
    quota_scale: Annotated[float, typer.Option(help="Multiply the emulator's API rates (not bursts).")] = 1.0,
    no_throttling: Annotated[
        bool, typer.Option("--no-throttling", help="The emulator enforces no quota.")
    ] = False,
    latency: Annotated[float, typer.Option(help="Seconds the emulator adds to every call.")] = 0.0,
    fault: Annotated[
        list[str] | None,
        typer.Option(help=f"Inject OP=KIND:RATE (repeatable), KIND one of {', '.join(_FAULT_KINDS)}."),
    ] = None,
    route: Annotated[
        str, typer.Option(help="auto (rule-matching envelopes via PutEvents), queue, or eventbridge.")
    ] = "auto",
    timeout: Annotated[float, typer.Option(help="Give up draining after this many seconds.")] = 600.0,
    stay_up: Annotated[
        bool, typer.Option("--stay-up", help="Keep everything running; print endpoints and AWS CLI commands.")
    ] = False,
    moto_port: Annotated[int, typer.Option(help="moto's port (0: any free one).")] = 0,
    emulator_port: Annotated[int, typer.Option(help="The emulator's port (0: any free one).")] = 0,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the machine-readable report here.")
    ] = None,
    logs: Annotated[Path | None, typer.Option(help="Keep the handler's log streams in this folder.")] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List every input, even on long runs.")
    ] = False,
) -> None:
    """Run the sample events (or a synthetic load) through EventBridge, SQS and the real handler."""
    # Piped output (CI logs) gets a wide table rather than rich's 80-column default.
    console = Console(width=None if sys.stdout.isatty() else 150)
    paths = list(events or ([] if contacts else [EVENTS_DIR]))
    options = PipelineOptions(
        events=paths,
        contacts=contacts,
        context=parse_context(context or []),
        throttling=not no_throttling,
        quota_scale=quota_scale,
        latency_s=latency,
        faults=parse_faults(fault or []),
        moto_port=moto_port,
        moto_process=True,  # a core of its own, and fast SQS receives on deep queues (local/moto_server.py)
        emulator_port=emulator_port,
        work_dir=logs,
        name_prefix="case-linker",  # one pipeline per process here: readable queue names
    )
    started = time.monotonic()
    with LocalPipeline(options) as pipeline:
        published = pipeline.publish_all(route=route)
        console.print(
            f"Published {len(published)} inputs "
            f"({sum(p.route.value == 'eventbridge' for p in published)} through EventBridge PutEvents); "
            f"moto at {pipeline.moto_endpoint}, emulator at {pipeline.emulator.endpoint_url}."
        )
        total = len(published)
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=total < 30 and not console.is_terminal,
        ) as progress:
            task = progress.add_task("draining the queue", total=total)

            def update(depth: int) -> None:
                stats = pipeline.poller.stats
                progress.update(
                    task,
                    completed=max(0, total - depth),
                    description=f"draining: {stats.invocations} invocations, {len(pipeline.created_items())} items",
                )

            result = pipeline.drain(timeout_s=timeout, progress=update)
        render(result, console, facts=_facts(pipeline, time.monotonic() - started), verbose=verbose)
        if json_path is not None:
            document = {
                **result.to_json(),
                "endpoints": pipeline.endpoints,
                "settings": _facts(pipeline, time.monotonic() - started),
            }
            json_path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
            console.print(f"Report written to {json_path}")
        if stay_up:
            console.rule("Staying up: Ctrl-C to stop")
            for label, command in cli_commands(pipeline):
                console.print(f"[dim]# {label}[/]")
                console.print(command, soft_wrap=True, highlight=False)
            pipeline.wait()
            console.print("Stopped.")
    if not result.ok:
        raise typer.Exit(code=1)
