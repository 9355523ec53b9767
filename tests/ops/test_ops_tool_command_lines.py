"""One CLI style across the tools (local.chaos, bench; ops and local are tested beside their code): the same
names for the same things, mistakes caught before anything runs, one line on stderr, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import parse_args as bench_args
from local.chaos import parse_args as chaos_args


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
