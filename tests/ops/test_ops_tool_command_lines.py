"""One CLI style across the tools (local.chaos, bench, bench.fleet; ops and local are tested beside their code):
the same names for the same things, mistakes caught before anything runs, one line on stderr, exit 2, and
`--output json|text|table` for what they print (the results file is `--report`)."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from unittest import mock

import pytest
from typer.testing import CliRunner

from bench.cli import _cli as bench_cli
from bench.cli import main as bench_main
from bench.cli import parse_args as bench_args
from bench.fleet.cli import app as fleet_app
from local.chaos import _cli as chaos_cli
from local.chaos import main as chaos_main
from local.chaos import parse_args as chaos_args
from local.cli import app as local_app
from local.cli import write_report
from local.runtime import WorkerProcessRuntime
from tests.conftest import REPO_ROOT
from tests.ops.helpers import unusable_report_paths


@pytest.mark.parametrize(
    ("parse", "argv", "complaint"),
    [
        (chaos_args, ["--contacts", "3"], "--contacts must be at least"),
        (chaos_args, ["--kill-rate", "1.5"], "'--kill-rate'"),
        (chaos_args, ["--duplicate-mode", "twice"], "'--duplicate-mode'"),
        (chaos_args, ["--bogus"], "No such option: --bogus"),
        (chaos_args, ["--fault", "NoSuchOp=server_error:0.1"], "--fault"),
        (chaos_args, ["--fault", "SearchRelatedItems=melt:0.1"], "--fault"),
        (bench_args, ["--only", "everything"], "--only 'everything': one of drain"),
        (bench_args, ["--contacts", "0"], "'--contacts'"),
        (bench_args, ["--batch-size", "101"], "'--batch-size'"),
    ],
)
def test_a_mistake_is_one_line_on_stderr_and_exit_2(
    parse: object, argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        parse(argv)  # type: ignore[operator]
    err = capsys.readouterr().err
    assert raised.value.code == 2
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert complaint in err


def test_chaos_takes_the_shared_names_and_still_the_old_ones(tmp_path: Path) -> None:
    new = chaos_args(["--contacts", "40", "--rng-seed", "3", "--report", str(tmp_path / "r.json"), "-q"])
    old = chaos_args(["--events", "40", "--seed", "3", "--report", str(tmp_path / "r.json"), "--quiet"])
    assert new == old
    assert (new.events, new.seed, new.quiet) == (40, 3, True)


def test_bench_takes_the_shared_names_and_still_the_old_ones(tmp_path: Path) -> None:
    new = bench_args(["--contacts", "50", "--report", str(tmp_path / "b.json"), "--only", "drain", "--quick"])
    old = bench_args(["--events", "50", "--report", str(tmp_path / "b.json"), "--only", "drain", "--quick"])
    assert new == old
    assert (new.events, new.report, new.only, new.output) == (50, tmp_path / "b.json", ["drain"], "table")


def test_help_exits_0_without_running(capsys: pytest.CaptureFixture[str]) -> None:
    for parse in (chaos_args, bench_args):
        with pytest.raises(SystemExit) as raised:
            parse(["--help"])
        assert raised.value.code == 0
        assert "--report" in capsys.readouterr().out


def test_chaos_takes_fault_specs_in_the_emulator_s_syntax(tmp_path: Path) -> None:
    options = chaos_args(
        ["--fault", "SearchRelatedItems=server_error:0.2", "--fault", "SearchRelatedItems=drop:0.1"]
    )

    assert options.faults["SearchRelatedItems"].server_error == 0.2
    assert options.faults["SearchRelatedItems"].drop_connection == 0.1


def _fleet(argv: list[str]) -> Any:
    """`python -m bench.fleet` with the simulation replaced: a command line that gets past its checks fails."""

    def must_not_run(*_: object, **__: object) -> NoReturn:
        raise AssertionError("the simulation started")

    with mock.patch("bench.fleet.cli.run_all", must_not_run):
        return CliRunner().invoke(fleet_app, argv, prog_name="python -m bench.fleet")


def _fleet_args(argv: list[str]) -> None:
    result = _fleet(argv)
    sys.stderr.write(result.stderr)
    raise SystemExit(result.exit_code)


@pytest.mark.parametrize("parse", [chaos_args, bench_args, _fleet_args])
def test_a_report_path_that_cannot_be_written_is_refused_before_anything_runs(
    parse: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path, complaint in unusable_report_paths(tmp_path):
        with pytest.raises(SystemExit) as raised:
            parse(["--report", str(path)])
        err = capsys.readouterr().err
        assert raised.value.code == 2, (path, err)
        assert err.startswith(f"error: --report {path}: "), err
        assert err.count("\n") == 1, err
        assert complaint in err, err
    assert not (tmp_path / "elsewhere.json").exists()


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--seed", "0"], "'--seed'"),
        (["--seed", "x"], "'--seed'"),
        (["--bogus"], "No such option: --bogus"),
        (["--only", "nosuchgroup"], "--only 'nosuchgroup'"),
    ],
)
def test_a_fleet_mistake_is_one_line_on_stderr_and_exit_2(argv: list[str], complaint: str) -> None:
    result = _fleet(argv)

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert complaint in result.stderr
    assert "Traceback" not in result.output


def test_every_report_is_0600_even_over_an_older_file(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text("old")
    report.chmod(0o644)

    write_report(report, "{}\n")

    assert report.read_text() == "{}\n"
    assert stat.S_IMODE(report.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("module", "function"),
    [("local.chaos", "run"), ("bench.cli", "run")],
)
def test_ctrl_c_during_a_run_is_one_line_and_exit_130_never_a_traceback(
    module: str, function: str, tmp_path: Path
) -> None:
    script = (
        "import sys\nfrom unittest import mock\n"
        f"import {module} as cli\n"
        "def interrupted(*_, **__):\n    raise KeyboardInterrupt\n"
        f"with mock.patch.object(cli, {function!r}, interrupted):\n"
        f"    sys.exit(cli.main(['--report', {str(tmp_path / 'r.json')!r}]))\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("interrupted: "), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    ("app", "says"),
    [
        (local_app, "Run the sample events"),
        (chaos_cli, "prove nothing is lost or doubled"),
        (bench_cli, "run the benchmarks side by side"),
        (fleet_app, "fleet simulation"),
    ],
)
def test_help_says_what_the_command_does_and_its_exit_codes(app: Any, says: str) -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)

    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert says in text, text
    assert "Exit codes: 0 " in text, text
    assert "2 usage" in text, text
    assert "130 interrupted" in text, text


def test_a_log_stream_kept_with_logs_is_0600_and_never_written_through_a_symbolic_link(
    tmp_path: Path,
) -> None:
    runtime = WorkerProcessRuntime(
        handler="local.chaos.lambda_handler", environ={}, log_dir=tmp_path / "logs"
    )
    planted, regular = runtime.environment("planted"), runtime.environment("regular")
    (tmp_path / "logs" / "planted-1.log").symlink_to(tmp_path / "elsewhere.log")
    (tmp_path / "logs" / "regular-1.log").write_text("an earlier run's stream\n")  # as umask left it
    (tmp_path / "logs" / "regular-1.log").chmod(0o644)

    class NotStarted(Exception):
        pass

    with mock.patch("local.runtime.subprocess.Popen", side_effect=NotStarted):
        with pytest.raises(OSError, match="symbolic links"):
            planted._ensure_started()  # type: ignore[attr-defined]
        with pytest.raises(NotStarted):
            regular._ensure_started()  # type: ignore[attr-defined]

    assert not (tmp_path / "elsewhere.log").exists()
    assert stat.S_IMODE((tmp_path / "logs" / "regular-1.log").stat().st_mode) == 0o600


# --- --output json|text|table: the format of what is printed (the results file is --report) --------------------

BENCH_RESULTS: dict[str, Any] = {
    "context": {"date": "2026-12-01T00:00:00+00:00", "quick": True, "runtime_s": {}},
    "goals": [
        {"key": "drain.lost", "goal": "0", "measured": 0, "pass": True},
        {"key": "batch.share_of_rig_ceiling", "goal": ">= 0.8", "measured": 0.75, "pass": False},
        {"key": "coldstart.ratio_vs_boto3", "goal": "(reported)", "measured": 1.25, "pass": None},
    ],
}
FLEET_RESULTS: dict[str, Any] = {
    "context": {"wall_s": 3.0},
    "runs": [],
    "goals": [
        {"scenario": "cotenant 30%", "measure": "goodput", "goal": ">= 0.9", "measured": 0.95, "pass": True},
        {
            "scenario": "backlog 10k",
            "measure": "burst used",
            "goal": "<= 10",
            "measured": 12.0,
            "pass": False,
        },
    ],
}
CHAOS_REPORT: dict[str, Any] = {
    "ok": False,
    "checks": {"drained": True, "lost_is_zero": True, "duplicates_is_zero": False},
    "events_in": 40,
    "related_items_created": 30,
    "duplicates": 1,
    "lost": 0,
    "skips_by_reason": {"NoCaseId": 2},
    "dlq_by_reason": {"processing": {"InvalidJson": 1}},
    "replayed": {"processing": {"read": 1, "sent": 1, "failed": 0}},
    "elapsed_s": 12.5,
}
PROGRESS = "a progress line"


@dataclass
class Printed:
    code: int
    stdout: str
    stderr: str
    report: Path


def _main(main: Callable[[list[str]], int], argv: list[str], report: Path) -> Printed:
    """A tool's `main(argv)` as `python -m` runs it: its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([*argv, "--report", str(report)])
        except SystemExit as stopped:
            code = int(stopped.code or 0)
    return Printed(code, out.getvalue(), err.getvalue(), report)


def _bench_run(argv: list[str], tmp_path: Path) -> Printed:
    """`python -m bench` with the benchmarks replaced by made-up results (and one progress line)."""

    def measured(_args: object, console: Any, **_: object) -> dict[str, Any]:
        console.log(PROGRESS)
        return copy.deepcopy(BENCH_RESULTS)

    with mock.patch("bench.cli.run", measured):
        return _main(bench_main, argv, tmp_path / "results.json")


def _fleet_run(argv: list[str], tmp_path: Path) -> Printed:
    """`python -m bench.fleet` with the simulation replaced by made-up results (and one progress line)."""

    def simulated(*_: object, progress: Any, **__: object) -> dict[str, Any]:
        progress(PROGRESS)
        return copy.deepcopy(FLEET_RESULTS)

    report = tmp_path / "fleet.json"
    with mock.patch("bench.fleet.cli.run_all", simulated):
        result = CliRunner().invoke(
            fleet_app, [*argv, "--report", str(report)], prog_name="python -m bench.fleet"
        )
    return Printed(result.exit_code, result.stdout, result.stderr, report)


def _chaos_run(argv: list[str], tmp_path: Path) -> Printed:
    """`python -m local.chaos` with the run replaced by a made-up report (and one progress line)."""

    def judged(options: Any, log: Any) -> dict[str, Any]:
        log(PROGRESS)
        write_report(options.report, json.dumps(CHAOS_REPORT))
        return copy.deepcopy(CHAOS_REPORT)

    with mock.patch("local.chaos.run", judged):
        return _main(chaos_main, argv, tmp_path / "chaos.json")


TOOLS = [_bench_run, _fleet_run, _chaos_run]


@pytest.mark.parametrize("tool", TOOLS)
def test_output_json_prints_the_report_as_one_json_document_and_nothing_else_on_stdout(
    tool: Any, tmp_path: Path
) -> None:
    # WHEN a tool runs with --output json
    printed = tool(["--output", "json"], tmp_path)

    # THEN stdout is one JSON document, the report the results file holds; progress and notes went to stderr
    assert printed.code in (0, 1), printed.stderr
    assert json.loads(printed.stdout) == json.loads(printed.report.read_text())
    assert PROGRESS in printed.stderr
    assert str(printed.report) in printed.stderr


@pytest.mark.parametrize(
    ("tool", "first_fields"),
    [
        (_bench_run, [row["key"] for row in BENCH_RESULTS["goals"]]),
        (_fleet_run, [row["scenario"] for row in FLEET_RESULTS["goals"]]),
        (_chaos_run, list(CHAOS_REPORT["checks"])),
    ],
)
def test_output_text_prints_one_tab_separated_record_a_line(
    tool: Any, first_fields: list[str], tmp_path: Path
) -> None:
    # WHEN a tool runs with --output text
    printed = tool(["--output", "text"], tmp_path)

    # THEN stdout holds one goal (or check) a line, its fields separated by tabs, and nothing else
    assert printed.code in (0, 1), printed.stderr
    records = [line.split("\t") for line in printed.stdout.splitlines()]
    assert [fields[0] for fields in records] == first_fields
    assert len({len(fields) for fields in records}) == 1
    assert len(records[0]) > 1
    assert PROGRESS in printed.stderr


def test_output_text_says_whether_each_goal_passed_as_the_aws_cli_prints_values(tmp_path: Path) -> None:
    printed = _bench_run(["--output", "text"], tmp_path)

    assert printed.stdout.splitlines() == [
        "drain.lost\t0\t0\tTrue",
        "batch.share_of_rig_ceiling\t>= 0.8\t0.75\tFalse",
        "coldstart.ratio_vs_boto3\t(reported)\t1.25\tNone",
    ]


@pytest.mark.parametrize(
    ("tool", "shows"),
    [
        (_bench_run, ["measurement", "batch.share_of_rig_ceiling", "FAIL", "results: "]),
        (_fleet_run, ["fleet simulation: goals", "burst used", "FAIL", "results: "]),
        (_chaos_run, ["check", "duplicates_is_zero", "FAILED", "report: "]),
    ],
)
def test_output_table_is_the_default_and_the_human_output(
    tool: Any, shows: list[str], tmp_path: Path
) -> None:
    default, table = tool([], tmp_path), tool(["--output", "table"], tmp_path)

    assert default.stdout == table.stdout
    for text in shows:
        assert text in table.stdout, table.stdout
    assert PROGRESS in table.stdout + table.stderr


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("value", ["results.json", "yaml", "JSON"])
def test_an_output_that_is_not_a_format_is_one_line_naming_report_and_exit_2(
    tool: Any, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an old command line that named the results file with --output
    monkeypatch.chdir(tmp_path)
    # WHEN it runs
    printed = tool(["--output", value], tmp_path)

    # THEN it fails loudly before anything runs, and says where the results file goes now
    assert printed.code == 2, printed.stdout
    assert printed.stderr.startswith("error: "), printed.stderr
    assert printed.stderr.count("\n") == 1, printed.stderr
    assert "'--output'" in printed.stderr
    assert "json, text, table" in printed.stderr
    assert "--report" in printed.stderr
    assert PROGRESS not in printed.stdout + printed.stderr
    assert printed.stdout == ""
    assert not printed.report.exists()
    assert not (tmp_path / value).exists()


@pytest.mark.parametrize("app", [bench_cli, fleet_app, chaos_cli, local_app])
def test_help_lists_the_output_formats(app: Any) -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)

    assert result.exit_code == 0
    assert "--output" in result.output
    assert "[json|text|table]" in result.output
