"""`python -m bench.fleet`: the fleet simulation (issue 15); writes bench/fleet-results.json.

Also run by `make bench` (`python -m bench`, or `--only fleet`), through `run_fleet`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from bench.fleet.report import render
from bench.fleet.scenarios import GROUPS, run_all
from ops.clikit import OneLineErrorsCommand, check_output, usage_error, write_report

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "fleet-results.json"

app = typer.Typer(add_completion=False, help=__doc__, pretty_exceptions_enable=False)

EXIT_CODES_HELP = (
    "Exit codes: 0 done (a missed goal too, unless --strict); 1 a goal missed with --strict; 2 usage (bad "
    "option, unusable --report); 130 interrupted (no results written)."
)


def write(results: dict[str, Any], output: Path) -> None:
    write_report(output, json.dumps(results, indent=2) + "\n")


def run_fleet(
    *,
    quick: bool,
    console: Console,
    groups: list[str] | None = None,
    report: Path = DEFAULT_OUTPUT,
    seed: int = 1,
) -> dict[str, Any]:
    """Run the simulation, write `report`, print the tables; a summary for bench/results.json."""
    results = run_all(quick, groups or GROUPS, progress=lambda text: console.log(text), seed=seed)
    write(results, report)
    render(results, console)
    failed = [f"{row['scenario']}: {row['measure']}" for row in results["goals"] if not row["pass"]]
    return {
        "results_file": str(report),
        "goals": len(results["goals"]),
        "goals_missed": len(failed),
        "missed": failed,
        "wall_s": results["context"]["wall_s"],
    }


@app.command(cls=OneLineErrorsCommand, help=__doc__, epilog=EXIT_CODES_HELP)
def main(
    quick: Annotated[bool, typer.Option("--quick", help="one scenario per size class (~1 min)")] = False,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help=f"scenario groups to run (repeatable): {', '.join(GROUPS)}"),
    ] = None,
    report: Annotated[Path, typer.Option("--report", help="results file")] = DEFAULT_OUTPUT,
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
    console = Console()
    summary = run_fleet(quick=quick, console=console, groups=only, report=report, seed=seed)
    console.print(f"results: {report}  ({summary['wall_s']:.0f} s, {summary['goals_missed']} goals missed)")
    if strict and summary["goals_missed"]:
        raise typer.Exit(1)
