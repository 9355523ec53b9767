"""`python -m local` (`make demo`): run case-linker end to end on moto and the emulator, then report.

Every option is checked before anything starts (no server, no queue, no message): a mistake is one line on
stderr starting `error: ` and exit code 2.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from emulator import Emulator, EmulatorConfig, Faults
from emulator.faults import faults_from_specs
from emulator.seed import SEED_ERRORS, seed_problem
from infra.config import KNOWN_CONTEXT_KEYS, CaseLinkerConfig, ConfigError
from local.inputs import EVENT_SUFFIXES, EXPECTED_FILE, SEED_FILE, event_files, expected_outcomes, shared_file
from local.outputs import publish_stack_outputs
from local.pipeline import DEFAULT_INSTANCE_ARN, EVENTS_DIR, LocalPipeline, PipelineOptions, merge_domains
from local.report import coverage_document, input_records, render, render_coverage, render_verdict
from ops.clikit import OneLineErrorsCommand, check_output, output_option, usage_error, write_report
from ops.output import OutputFormat, make_console, print_result
from ops.queues import DEFAULT_STACK_NAME

app = typer.Typer(add_completion=False, no_args_is_help=False, help=__doc__, pretty_exceptions_enable=False)

EXIT_CODES_HELP = (
    "Exit codes: 0 every outcome as expected, nothing lost, pending or duplicated, the sweep (when it runs) "
    "succeeded; 1 otherwise (the report's summary.ok is false); 2 usage (bad option or --output format, "
    "unreadable event files, seed or expectations, unusable --report or --logs); 130 interrupted."
)
OUTPUT_HELP = (
    "What to print: table (what happened to each input, the totals and the verdict), json (the report, as in "
    "--report) or text (one input a line, tab-separated: input, route, outcome, case or queue, detail, "
    "expected). With json or text, notes, progress and the verdict go to stderr."
)


class Route(StrEnum):
    AUTO = "auto"
    QUEUE = "queue"
    EVENTBRIDGE = "eventbridge"


def parse_faults(specs: list[str]) -> dict[str, Faults]:
    """`OP=KIND:RATE` specs (repeatable; one operation may get several kinds), parsed by the emulator's own parser."""
    try:
        return faults_from_specs(specs)
    except ValueError as e:
        usage_error(f"--fault: {e}")


def parse_context(pairs: list[str]) -> dict[str, str]:
    """`-c key=value`, as `cdk synth -c` takes them; unknown keys and bad values are refused up front."""
    context: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            usage_error(f"-c {pair!r}: expected key=value (e.g. maxConcurrency=4)")
        context[key.strip()] = value.strip()
    for key in context:
        if key not in KNOWN_CONTEXT_KEYS:
            close = difflib.get_close_matches(key, KNOWN_CONTEXT_KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            usage_error(f"-c: unknown key {key!r}{hint}; known keys: {', '.join(KNOWN_CONTEXT_KEYS)}")
    # The values as the stack would read them; the two required ones are supplied by the run when absent.
    try:
        CaseLinkerConfig.from_context(
            {"casesDomainId": "local-domain", "connectInstanceArn": DEFAULT_INSTANCE_ARN, **context}
        )
    except ConfigError as e:
        usage_error(f"-c: {'; '.join(e.problems)}")
    return context


def nearest_fixtures(paths: list[Path], seed: Path | None) -> tuple[Path | None, dict[str, Any] | None]:
    """The seed (unless --seed) and the expected outcomes nearest to the inputs: each file or folder finds
    seed.json and expected.json in its own folder or the nearest one above it; all must find the same ones."""
    try:
        seed = seed or shared_file(paths, SEED_FILE)
    except ValueError as e:
        usage_error(f"--events: {e}: give --seed FILE, or run them one at a time")
    try:
        expected_path = shared_file(paths, EXPECTED_FILE)
    except ValueError as e:
        usage_error(f"--events: {e}: run them one at a time")
    if seed is not None:
        check_seed(seed, _json_document(seed))
    if expected_path is None:
        return seed, None
    _json_document(expected_path)
    return seed, expected_outcomes(paths, expected_path)


def check_event_files(paths: list[Path]) -> None:
    """Refuse up front a folder without event files, and an event file that is not UTF-8 text: an SQS body is
    Unicode (the message quotes none of it)."""
    for path in paths:
        found = event_files(path)
        if not found:
            usage_error(f"{path}: no event files in this folder ({', '.join(sorted(EVENT_SUFFIXES))})")
        for _, file in found:
            try:
                file.read_text(encoding="utf-8")
            except OSError as e:
                usage_error(f"{file}: cannot be read ({type(e).__name__})")
            except UnicodeDecodeError as e:
                usage_error(f"{file}: not UTF-8 text (byte {e.start}), so not a message body SQS would take")


def check_seed(path: Path, document: dict[str, Any]) -> None:
    """Refuse up front a seed the emulator cannot load (a key missing, a value of the wrong type, an unknown case):
    loaded into an emulator that never serves, before moto and the emulator start."""
    try:
        Emulator().load_seed(merge_domains(document))
    except SEED_ERRORS as e:
        usage_error(f"{path}: not a seed the emulator can load: {seed_problem(e)}")


def _json_document(path: Path) -> dict[str, Any]:
    """Refuse up front a seed or expectations file that is not a JSON object (the message quotes none of it)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        usage_error(f"{path}: cannot be read ({type(e).__name__})")
    except json.JSONDecodeError as e:
        usage_error(f"{path}: not a JSON document (line {e.lineno}, column {e.colno})")
    if not isinstance(document, dict):
        usage_error(f"{path}: not a JSON document with keys (an object)")
    return document


def cli_commands(pipeline: LocalPipeline, stack_name: str) -> list[tuple[str, str]]:
    """Ready-to-paste commands against the running endpoints: the runbook's ops commands, then the AWS CLI's (each
    with --endpoint-url: AWS CLI v1 ignores AWS_ENDPOINT_URL)."""
    moto, emulator = pipeline.moto_endpoint, pipeline.emulator.endpoint_url
    resources, config = pipeline.resources, pipeline.config
    sample = EVENTS_DIR / "request-comment.json"
    first_case = next(iter(pipeline.emulator.related_items()), None)
    case_id = first_case.case_id if first_case else "<case id>"
    contact = next((r for r in pipeline.emulator.related_items() if r.type == "Contact"), None)
    contact_arn = (
        contact.content["contact"]["contactArn"] if contact else f"{config.connect_instance_arn}/contact/<id>"
    )
    domain = config.cases_domain_id
    stack = "" if stack_name == DEFAULT_STACK_NAME else f" --stack-name {stack_name}"
    return [
        (
            "point the ops tool and the AWS CLI here (dummy credentials: nothing reaches AWS)",
            "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 "
            f"AWS_ENDPOINT_URL={moto} AWS_ENDPOINT_URL_CONNECTCASES={emulator} AWS_ENDPOINT_URL_CONNECT={emulator}",
        ),
        (
            f"the runbook (docs/operations.md), as against a deployed stack {stack_name}",
            f"python -m ops{stack} dlq stats",
        ),
        ("", f"python -m ops{stack} dlq peek --max 20"),
        ("", f"python -m ops{stack} dlq replay --filter ERROR_CODE=ResourceNotFoundException --dry-run"),
        ("", f"python -m ops{stack} send events/request-comment.json --yes"),
        (
            "",
            f"python -m ops{stack} backfill --instance-arn {config.connect_instance_arn} "
            f"--since {_iso_minutes_ago(120)} --until {_iso_minutes_ago(0)} --dry-run",
        ),
        (
            "the stack's outputs",
            f"aws cloudformation describe-stacks --endpoint-url {moto} --stack-name {stack_name} --query 'Stacks[0].Outputs'",
        ),
        (
            "send a related-item request straight to the queue",
            f"aws sqs send-message --endpoint-url {moto} --queue-url {resources.main_queue_url} --message-body file://{sample}",
        ),
        (
            "queue depth",
            f"aws sqs get-queue-attributes --endpoint-url {moto} --queue-url {resources.main_queue_url} --attribute-names All",
        ),
        (
            "cases a contact is on",
            f"aws connectcases list-cases-for-contact --endpoint-url {emulator} --domain-id {domain} --contact-arn {contact_arn}",
        ),
        (
            "related items of a case",
            f"aws connectcases search-related-items --endpoint-url {emulator} --domain-id {domain} --case-id {case_id}",
        ),
        ("the rule", f"aws events describe-rule --endpoint-url {moto} --name {resources.contact_rule_name}"),
    ]


def _iso_minutes_ago(minutes: int) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _facts(pipeline: LocalPipeline, seconds: float) -> dict[str, Any]:
    timings = pipeline.timings
    return {
        "batch size": timings.batch_size,
        "window": f"{timings.batching_window_s:g}s",
        "max concurrency": timings.max_concurrency,
        "function timeout": f"{timings.function_timeout_s:g}s",
        "visibility timeout": f"{timings.visibility_timeout_s}s",
        "maxReceiveCount": timings.max_receive_count,
        # The fleet's shared Cases budget, and each environment's static share when the budget's table fails.
        "CASES_QUOTA_RPS": f"{pipeline.config.cases_requests_per_second:g}",
        "CASES_QUOTA_BURST": f"{pipeline.config.cases_burst:g}",
        "CASES_MAX_RPS": f"{pipeline.config.cases_max_rps:g}",
        "CASES_MAX_BURST": f"{pipeline.config.cases_max_burst:g}",
        "run": f"{seconds:.1f}s",
    }


@app.command(cls=OneLineErrorsCommand, epilog=EXIT_CODES_HELP)
def main(
    events: Annotated[
        list[Path] | None,
        typer.Option(
            "--events",
            "-e",
            exists=True,
            readable=True,
            help="Event file or folder (repeatable). Default: events/ unless --contacts.",
        ),
    ] = None,
    contacts: Annotated[
        int, typer.Option(min=0, help="Synthetic load: N contact COMPLETED events with seeded cases.")
    ] = 0,
    seed: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Emulator seed file (cases, contacts). Default: seed.json of the events folder, or beside the "
            "event files.",
        ),
    ] = None,
    context: Annotated[
        list[str] | None,
        typer.Option("--context", "-c", help="CDK context key=value, e.g. -c maxConcurrency=4."),
    ] = None,
    quota_scale: Annotated[
        float, typer.Option(min=0.001, help="Multiply the emulator's API rates (not bursts).")
    ] = 1.0,
    no_throttling: Annotated[
        bool, typer.Option("--no-throttling", help="The emulator enforces no quota.")
    ] = False,
    latency: Annotated[float, typer.Option(min=0.0, help="Seconds the emulator adds to every call.")] = 0.0,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="Inject faults: OP=KIND:RATE (repeatable), e.g. CreateRelatedItem=server_error:0.2."
        ),
    ] = None,
    rng_seed: Annotated[
        int | None, typer.Option(help="Seed of the emulator's fault draws and of --drop-events.")
    ] = None,
    drop_events: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Lose this share of contact events between Connect and the rule (best-effort delivery), and "
            "as large a share of chats' COMPLETED; the sweeper, run after the drain, finds those contacts.",
        ),
    ] = 0.0,
    route: Annotated[
        Route, typer.Option(help="auto (rule-matching envelopes via PutEvents), queue, or eventbridge.")
    ] = Route.AUTO,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Give up draining after this many seconds.")
    ] = 600.0,
    stay_up: Annotated[
        bool,
        typer.Option(
            "--stay-up", help="Keep everything running; print the endpoints and ready-to-paste commands."
        ),
    ] = False,
    moto_port: Annotated[int, typer.Option(min=0, max=65535, help="moto's port (0: any free one).")] = 0,
    emulator_port: Annotated[
        int, typer.Option(min=0, max=65535, help="The emulator's port (0: any free one).")
    ] = 0,
    report: Annotated[Path | None, typer.Option(help="Write the machine-readable report here.")] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", hidden=True, help="Old name of --report.")
    ] = None,
    logs: Annotated[Path | None, typer.Option(help="Keep the handler's log streams in this folder.")] = None,
    output: Annotated[
        OutputFormat, output_option(help=OUTPUT_HELP, results_file="--report")
    ] = OutputFormat.TABLE,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List every input in the table, even on long runs.")
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="Print nothing but what --output json or text asks for, and with --stay-up the endpoints (one line, "
            "stderr); the exit code and --report tell.",
        ),
    ] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colour (none anyway when not a terminal).")
    ] = False,
) -> None:
    """Run the sample events (or a synthetic load) through EventBridge, SQS and the real handler."""
    # Everything is checked here, before a server starts.
    parsed_context = parse_context(context or [])
    faults = parse_faults(fault or [])
    report_path = report or json_path
    paths = list(events or ([] if contacts else [EVENTS_DIR]))
    if quiet and verbose:
        usage_error("--quiet and --verbose contradict each other: give one of them")
    if report_path is not None:
        check_output(report_path, "--report" if report else "--json")
    if logs is not None:
        check_output(logs, "--logs", folder=True)
    check_event_files(paths)
    found_seed, expected = nearest_fixtures(paths, seed)
    # Notes and progress share stdout with the tables; beside json or text they go to stderr. Piped (CI logs),
    # lines are wide rather than rich's 80-column default.
    stream = sys.stdout if output is OutputFormat.TABLE else sys.stderr
    console = make_console(
        stderr=stream is sys.stderr, width=None if stream.isatty() else 150, quiet=quiet, no_color=no_color
    )
    if paths and found_seed is None:
        console.print(
            "note: no --seed and no seed.json beside the events: the emulator starts without cases or "
            "contacts, so events that name a case will be dead-lettered (ResourceNotFoundException)."
        )
    elif seed is None and found_seed is not None:
        console.print(f"seed: {found_seed} (beside the events; --seed FILE picks another)", markup=False)

    options = PipelineOptions(
        events=paths,
        contacts=contacts,
        seed=found_seed,
        expected=expected,
        context=parsed_context,
        emulator_config=EmulatorConfig(
            throttling=not no_throttling,
            quota_scale=quota_scale,
            latency_s=latency,
            faults=faults,
            seed=rng_seed,
        ),
        drop_events=drop_events,
        drop_seed=rng_seed or 0,
        moto_port=moto_port,
        moto_process=True,  # a core of its own, and fast SQS receives on deep queues (local/moto_server.py)
        emulator_port=emulator_port,
        work_dir=logs,
        name_prefix="case-linker",  # one pipeline per process here: readable queue names
    )
    stack_name = parsed_context.get("stackName") or DEFAULT_STACK_NAME
    started = time.monotonic()
    with LocalPipeline(options) as pipeline:
        publish_stack_outputs(pipeline, stack_name)
        published = pipeline.publish_all(route=route.value)
        lost = sum(p.route.value == "dropped" for p in published)
        console.print(
            f"Published {len(published) - lost} inputs "
            f"({sum(p.route.value == 'eventbridge' for p in published)} through EventBridge PutEvents"
            f"{f'; {lost} contact events lost on the way (--drop-events)' if lost else ''}); "
            f"moto at {pipeline.moto_endpoint}, emulator at {pipeline.emulator.endpoint_url}."
        )
        result = _drain(pipeline, console, len(published), timeout)
        events_alone, sweep = result, None
        if pipeline.config.sweeper_enabled:
            # As the schedule would, once the events are handled: the sweep finds what they missed.
            sweep = pipeline.sweep()
            result = _drain(pipeline, console, int((sweep.report or {}).get("SweepEnqueued") or 0), timeout)
        facts = _facts(pipeline, time.monotonic() - started)
        document = {
            **result.to_json(),
            "coverage": coverage_document(events_alone, result, sweep) if sweep is not None else None,
            "endpoints": pipeline.endpoints,
            "settings": facts,
        }
        if sweep is not None and not sweep.ok:
            document["summary"] = {**document["summary"], "ok": False}  # as the exit code says

        def tables() -> None:
            render(result, console, facts=facts, verbose=verbose)
            if sweep is not None:
                render_coverage(events_alone, result, sweep, console)

        print_result(output, document, input_records(result), tables)
        render_verdict(result, console, sweep)
        if report_path is not None:
            write_report(report_path, json.dumps(document, indent=2, default=str) + "\n")
            console.print(f"Report written to {report_path}", soft_wrap=True, markup=False)
        if stay_up and quiet:
            # What --stay-up is for, even with --quiet: where to point your tools (stderr; stdout stays --output's).
            moto, emulator = pipeline.endpoints["moto"], pipeline.endpoints["emulator"]
            sys.stderr.write(f"Staying up (Ctrl-C to stop): moto {moto}, emulator {emulator}\n")
            sys.stderr.flush()
            pipeline.wait()
        elif stay_up:
            console.rule("Staying up: Ctrl-C to stop")
            for label, command in cli_commands(pipeline, stack_name):
                if label:
                    console.print(f"[dim]# {label}[/]")
                console.print(command, soft_wrap=True, highlight=False, markup=False)
            sys.stdout.flush()
            pipeline.wait()
            console.print("Stopped.")
    if not result.ok or (sweep is not None and not sweep.ok):
        raise typer.Exit(code=1)


def _drain(pipeline: LocalPipeline, console: Console, total: int, timeout: float) -> Any:
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

        return pipeline.drain(timeout_s=timeout, progress=update)
