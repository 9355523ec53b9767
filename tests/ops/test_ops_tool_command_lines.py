"""One CLI style across the tools (local.chaos, bench; ops and local are tested beside their code): the same
names for the same things, mistakes caught before anything runs, one line on stderr, exit 2."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn
from unittest import mock

import pytest
from typer.testing import CliRunner

from bench.cli import _cli as bench_cli
from bench.cli import parse_args as bench_args
from bench.fleet.cli import app as fleet_app
from local.chaos import _cli as chaos_cli
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
    old = bench_args(["--events", "50", "--output", str(tmp_path / "b.json"), "--only", "drain", "--quick"])
    assert new == old
    assert (new.events, new.output, new.only) == (50, tmp_path / "b.json", ["drain"])


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

    class NotStarted(Exception):
        pass

    with mock.patch("local.runtime.subprocess.Popen", side_effect=NotStarted):
        with pytest.raises(OSError, match="symbolic links"):
            planted._ensure_started()  # type: ignore[attr-defined]
        with pytest.raises(NotStarted):
            regular._ensure_started()  # type: ignore[attr-defined]

    assert not (tmp_path / "elsewhere.log").exists()
    assert stat.S_IMODE((tmp_path / "logs" / "regular-1.log").stat().st_mode) == 0o600
