"""`python -m bench`: run the benchmarks side by side, write bench/results.json, print goal vs measured."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from bench.coldstart import run_coldstart
from bench.drain import BASELINE_HANDLER, DrainSettings, ideal_goodput_over_quota, run_drain
from bench.fleet.cli import EXIT_CODES_HELP, run_fleet
from bench.inproc import InprocSettings, run_inproc
from bench.quota import UNPACED, run_quota
from bench.report import evaluate, render
from local.pipeline import HANDLER
from ops.clikit import (
    INTERRUPTED_EXIT_CODE,
    OneLineErrorsCommand,
    check_output,
    output_option,
    parse_command_line,
    usage_error,
    write_report,
)
from ops.output import OutputFormat, print_result

VARIANT_HANDLER = "bench.variants.lambda_handler"
BENCHMARKS = ("drain", "batch", "overhead", "coldstart", "fleet", "quota")
DEFAULT_REPORT = Path(__file__).resolve().parent / "results.json"


_cli = typer.Typer(add_completion=False, help=__doc__, pretty_exceptions_enable=False)

# What --output says about each format (bench.fleet's names its own columns).
OUTPUT_HELP = (
    "What to print: table (goal against measured, for people), json (the results, as in --report; progress "
    "goes to stderr) or text (one goal a line, tab-separated: measurement, goal, measured, pass)."
)


@_cli.command(cls=OneLineErrorsCommand, help=__doc__, epilog=EXIT_CODES_HELP)
def _command_line(
    quick: Annotated[bool, typer.Option("--quick", help="Smoke run: small N, few repeats (~2 min).")] = False,
    contacts: Annotated[
        int | None,
        typer.Option("--contacts", min=1, help="Backlog size for the drain (default 1000, quick 200)."),
    ] = None,
    contacts_old: Annotated[
        int | None, typer.Option("--events", hidden=True, help="Old name of --contacts.")
    ] = None,
    # 10, not 20: the drain measures pacing against the quota, so the rig must be able to exceed it. With the
    # ledger's writes on moto the pipeline tops out near 15 items/s, below a 20 req/s quota's goal.
    quota: Annotated[
        float, typer.Option(min=0.1, help="Scaled Cases quota for the drain, requests/s (AWS: 2).")
    ] = 10.0,
    burst: Annotated[int, typer.Option(min=1, help="Cases burst (AWS: 10).")] = 10,
    max_concurrency: Annotated[int, typer.Option(min=1, help="ESM maximum concurrency (stack: 2).")] = 2,
    batch_size: Annotated[
        int, typer.Option(min=1, max=100, help="ESM batch size in the drain (stack: 10).")
    ] = 10,
    drain_latency: Annotated[
        float | None,
        typer.Option(
            min=0.0, help="Emulator latency per call in the drain (default 0.05 s scaled like the quota)."
        ),
    ] = None,
    visibility_timeout: Annotated[
        int,
        typer.Option(
            min=1,
            help="Queue visibility timeout in the drain, s (the stack's 6x function timeout would make a "
            "handed-back record wait 6 minutes).",
        ),
    ] = 30,
    function_timeout: Annotated[
        float, typer.Option(min=1.0, help="Function timeout in the drain, s.")
    ] = 30.0,
    overhead_records: Annotated[
        int | None, typer.Option(min=1, help="Records per overhead round (300, quick 50).")
    ] = None,
    repeats: Annotated[
        int | None, typer.Option(min=1, help="Measured rounds per benchmark (5, quick 2).")
    ] = None,
    bucket_capacity: Annotated[
        float | None,
        typer.Option(
            help="Experiment: also drain with the linker's per-environment token bucket capacity set to this "
            "(bench/variants.py); reported beside the product's figures, not as them."
        ),
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option(help=f"Run only these (repeatable): {', '.join(BENCHMARKS)}.")
    ] = None,
    report: Annotated[Path, typer.Option(help="The results file.")] = DEFAULT_REPORT,
    output: Annotated[
        OutputFormat, output_option(help=OUTPUT_HELP, results_file="--report")
    ] = OutputFormat.TABLE,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when a goal is missed.")] = False,
) -> argparse.Namespace:
    """The benchmark options, checked, under the names `run` reads."""
    unknown = [name for name in only or () if name not in BENCHMARKS]
    if unknown:
        usage_error(f"--only {unknown[0]!r}: one of {', '.join(BENCHMARKS)}")
    check_output(report, "--report")
    return argparse.Namespace(
        quick=quick,
        events=contacts_old if contacts_old is not None else contacts,
        quota=quota,
        burst=burst,
        max_concurrency=max_concurrency,
        batch_size=batch_size,
        drain_latency=drain_latency,
        visibility_timeout=visibility_timeout,
        function_timeout=function_timeout,
        overhead_records=overhead_records,
        repeats=repeats,
        bucket_capacity=bucket_capacity,
        only=only or None,
        report=report,
        output=output,
        strict=strict,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; exits 2 with a one-line error on a mistake (0 after --help)."""
    return parse_command_line(_cli, argv, prog_name="python -m bench", result=argparse.Namespace)


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_at_start": load,
    }


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    selected = set(args.only or BENCHMARKS)
    events = args.events or (200 if args.quick else 1000)
    repeats = args.repeats or (2 if args.quick else 5)
    overhead_records = args.overhead_records or (50 if args.quick else 300)
    scale = args.quota / 2.0
    drain_latency = args.drain_latency if args.drain_latency is not None else 0.05 / scale
    results: dict[str, Any] = {
        "context": {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "quick": args.quick,
            "only": sorted(selected),
            "note": "absolute times on a shared 2-core machine are noise; compare the ratios",
        }
    }
    timings: dict[str, float] = {}

    if "coldstart" in selected:
        console.log("cold start: fresh interpreters, handler vs boto3")
        started = time.monotonic()
        results["coldstart"] = run_coldstart(repeats=max(3, repeats + 2))
        timings["coldstart"] = time.monotonic() - started

    if {"batch", "overhead"} & selected:
        console.log("batch latency and per-record overhead: one execution environment in a subprocess")
        started = time.monotonic()
        inproc = run_inproc(
            InprocSettings(
                batch_rounds=repeats,
                batch_latency_s=0.05,
                overhead_rounds=repeats,
                overhead_records=overhead_records,
                timeout_s=600.0,
            )
        )
        for name in ("batch", "overhead"):
            if name in selected:
                results[name] = {**inproc[name], "check": inproc["check"]}
        timings["batch+overhead"] = time.monotonic() - started

    if "drain" in selected:
        settings = DrainSettings(
            events=events,
            quota=args.quota,
            burst=args.burst,
            latency_s=drain_latency,
            max_concurrency=args.max_concurrency,
            batch_size=args.batch_size,
            function_timeout_s=args.function_timeout,
            visibility_timeout_s=args.visibility_timeout,
            timeout_s=events / args.quota * 4 + 10 * args.visibility_timeout,
        )
        runs = {}
        for consumer, handler in (("case-linker", HANDLER), ("baseline", BASELINE_HANDLER)):
            console.log(f"drain: {events} events, {consumer} ({handler})")
            started = time.monotonic()
            runs[consumer] = run_drain(settings, consumer=consumer, handler=handler)
            timings[f"drain.{consumer}"] = time.monotonic() - started
        if args.bucket_capacity is not None:
            consumer = f"case-linker, bucket capacity {args.bucket_capacity:g} (experiment)"
            console.log(f"drain: {events} events, {consumer}")
            started = time.monotonic()
            runs["experiment"] = run_drain(
                settings,
                consumer=consumer,
                handler=VARIANT_HANDLER,
                extra_environment={"BENCH_BUCKET_CAPACITY": str(args.bucket_capacity)},
            )
            timings["drain.experiment"] = time.monotonic() - started
        # The rig's own ceiling for this drain: the same run with the quota out of reach and no pacing, so no
        # figure blames the product for the machine (moto answers the ledger's DynamoDB calls one at a time).
        console.log(f"drain: {events} events, case-linker with no quota (the rig's ceiling)")
        started = time.monotonic()
        unpaced = replace(settings, quota=10_000.0, burst=10_000, latency_s=drain_latency)
        ceiling = run_drain(
            unpaced, consumer="case-linker (rig ceiling)", handler=HANDLER, extra_environment=UNPACED
        )
        timings["drain.rig_ceiling"] = time.monotonic() - started
        ceiling_rate = ceiling.items_created / ceiling.span_s if ceiling.span_s else 0.0
        linker, baseline = runs["case-linker"], runs["baseline"]
        results["drain"] = {
            "goodput_over_quota": linker.goodput_over_quota,
            "rig_ceiling_over_quota": ceiling_rate / args.quota,
            "throttled_share": linker.throttled_share,
            "handed_back": linker.handed_back,
            "lost": linker.lost,
            "duplicates": linker.duplicates,
            "baseline_goodput_over_quota": baseline.goodput_over_quota,
            "baseline_throttled_share": baseline.throttled_share,
            "baseline_handed_back": baseline.handed_back,
            "details": {
                "settings": {**asdict(settings), "quota_scale": settings.quota_scale},
                "cases_max_rps_per_environment": args.quota / args.max_concurrency,
                "paced_cycle_s": args.batch_size / (args.quota / args.max_concurrency),
                "ideal_goodput_over_quota": ideal_goodput_over_quota(events, args.quota, args.burst),
                "case_linker": linker.to_json(),
                "baseline": baseline.to_json(),
                "rig_ceiling": ceiling.to_json(),
                **({"experiment": runs["experiment"].to_json()} if "experiment" in runs else {}),
            },
        }
    if "quota" in selected:
        console.log("quota scenarios on the pipeline: small backlog, co-tenant 30% / 60%, light load")
        started = time.monotonic()
        results["quota"] = run_quota(args.quick, console.log)
        timings["quota"] = time.monotonic() - started

    if "fleet" in selected:
        console.log("fleet simulation (virtual clock): bench/fleet-results.json")
        started = time.monotonic()
        results["fleet"] = run_fleet(
            quick=args.quick, console=console, tables=args.output is OutputFormat.TABLE
        )
        timings["fleet"] = time.monotonic() - started

    results["context"]["runtime_s"] = timings
    results["goals"] = evaluate(results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Progress and notes share stdout with the table; beside json or text they go to stderr.
    console = Console(stderr=args.output is not OutputFormat.TABLE)
    started = time.monotonic()
    try:
        results = run(args, console)
    except KeyboardInterrupt:
        print(f"interrupted: no results written to {args.report}", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    results["context"]["runtime_s"]["total"] = time.monotonic() - started
    write_report(args.report, json.dumps(results, indent=2, default=str) + "\n")
    print_result(args.output, results, results["goals"], lambda: _tables(results, console))
    console.print(
        f"results: {args.report}  ({results['context']['runtime_s']['total']:.0f} s)", soft_wrap=True
    )
    missed = [row["key"] for row in results["goals"] if row["pass"] is False]
    return 1 if args.strict and missed else 0


def _tables(results: dict[str, Any], console: Console) -> None:
    context = results["context"]
    render(
        results["goals"],
        f"case-linker benchmarks ({'quick' if context['quick'] else 'full'}, {context['date']})",
        console,
    )
    if "drain" in results:
        _drain_summary(results["drain"]["details"], console)


def _drain_summary(details: dict[str, Any], console: Console) -> None:
    for name in ("case_linker", "baseline", "experiment"):
        run = details.get(name)
        if run is None:
            continue
        console.print(
            f"  drain {run['consumer']}: {run['items_created']} items in {run['span_s']:.1f} s "
            f"(wall {run['wall_s']:.1f} s), CreateRelatedItem {run['create_calls']} calls / "
            f"{run['create_throttled']} throttled, ListCasesForContact {run['list_calls']} / "
            f"{run['list_throttled']}, handed back {run['handed_back']}, redelivered {run['redelivered']}, "
            f"dead-lettered {run['dead_lettered']}, lost {run['lost']}, pending {run['pending']}, "
            f"duplicates {run['duplicates']}, drained {run['drained']}, median cycle {run['median_cycle_s']:.2f} s, "
            f"goodput/quota {run['goodput_over_quota']:.3f} "
            f"(second half of the items: {run['second_half_goodput_over_quota']:.3f})" + _budget_summary(run)
        )


def _budget_summary(run: dict[str, Any]) -> str:
    per_call = run.get("budget_requests_per_cases_call")
    if per_call is None:
        return ""
    metrics = run.get("handler_metrics", {})
    return (
        f", shared budget: {per_call:.2f} DynamoDB requests per Cases call, "
        f"{metrics.get('BudgetSlotsUnused', 0)} slots unused, {metrics.get('BudgetDegraded', 0)} fallbacks"
    )
