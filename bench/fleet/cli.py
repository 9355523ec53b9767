"""`python -m bench.fleet`: the fleet simulation (issue 15); writes bench/fleet-results.json.

Also run by `make bench` (`python -m bench`, or `--only fleet`), through `run_fleet`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from bench.fleet.report import render
from bench.fleet.scenarios import GROUPS, run_all
from ops.clikit import OneLineErrorsCommand, check_output, output_option, usage_error, write_report
from ops.output import OutputFormat, print_result

DEFAULT_REPORT = Path(__file__).resolve().parent.parent / "fleet-results.json"

app = typer.Typer(add_completion=False, help=__doc__, pretty_exceptions_enable=False)

EXIT_CODES_HELP = (
    "Exit codes: 0 done (a missed goal too, unless --strict); 1 a goal missed with --strict; 2 usage (bad "
    "option or --output format, unusable --report); 130 interrupted (no results written)."
)
OUTPUT_HELP = (
    "What to print: table (every consumer per scenario, then the goals), json (the results, as in --report; "
    "progress goes to stderr) or text (one goal a line, tab-separated: scenario, measure, goal, measured, pass)."
)


def simulate(
    *, quick: bool, groups: list[str] | None, report: Path, seed: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """Run the simulation and write its results to `report`."""
    results = run_all(quick, groups or GROUPS, progress=log, seed=seed)
    write_report(report, json.dumps(results, indent=2) + "\n")
    return results


def summary(results: dict[str, Any], report: Path) -> dict[str, Any]:
    """What bench/results.json keeps of a simulation."""
    failed = [f"{row['scenario']}: {row['measure']}" for row in results["goals"] if not row["pass"]]
    return {
        "results_file": str(report),
        "goals": len(results["goals"]),
        "goals_missed": len(failed),
        "missed": failed,
        "wall_s": results["context"]["wall_s"],
    }


def run_fleet(
    *,
    quick: bool,
    console: Console,
    tables: bool = True,
    groups: list[str] | None = None,
    report: Path = DEFAULT_REPORT,
    seed: int = 1,
) -> dict[str, Any]:
    """Run the simulation, write `report`, print the tables (unless not `tables`); a summary for
    bench/results.json."""
    results = simulate(quick=quick, groups=groups, report=report, seed=seed, log=console.log)
    if tables:
        render(results, console)
    return summary(results, report)


@app.command(cls=OneLineErrorsCommand, help=__doc__, epilog=EXIT_CODES_HELP)
def main(
    quick: Annotated[bool, typer.Option("--quick", help="one scenario per size class (~1 min)")] = False,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help=f"scenario groups to run (repeatable): {', '.join(GROUPS)}"),
    ] = None,
    report: Annotated[Path, typer.Option("--report", help="results file")] = DEFAULT_REPORT,
    output: Annotated[
        OutputFormat, output_option(help=OUTPUT_HELP, results_file="--report")
    ] = OutputFormat.TABLE,
    strict: Annotated[bool, typer.Option("--strict", help="exit 1 when a goal is missed")] = False,
    seed: Annotated[
        int, typer.Option("--seed", min=1, help="random draws of every scenario (the recorded run: 1)")
    ] = 1,
) -> None:
    """Run the simulation, write the results file and print the tables."""
    unknown = sorted(set(only or ()) - set(GROUPS))
    if unknown:
        usage_error(f"--only {unknown[0]!r}: unknown scenario group (known: {', '.join(GROUPS)})")
    check_output(report, "--report")
    # Progress and notes share stdout with the tables; beside json or text they go to stderr.
    console = Console(stderr=output is not OutputFormat.TABLE)
    results = simulate(quick=quick, groups=only, report=report, seed=seed, log=console.log)
    print_result(output, results, results["goals"], lambda: render(results, console))
    done = summary(results, report)
    console.print(
        f"results: {report}  ({done['wall_s']:.0f} s, {done['goals_missed']} goals missed)", soft_wrap=True
    )
    if strict and done["goals_missed"]:
        raise typer.Exit(1)
