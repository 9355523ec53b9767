"""`python -m local`: options are checked before anything starts; one line per mistake, exit 2, no traceback.
And `--stay-up` meets the ops tool: the runbook's commands work verbatim against the local stack."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from local.cli import app as local_app
from local.pipeline import LocalPipeline, PipelineOptions
from ops.cli import app as ops_app
from tests.conftest import EVENTS_DIR, REPO_ROOT
from tests.ops.helpers import unusable_report_paths


def run_local(*args: str) -> Any:
    return CliRunner().invoke(local_app, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--route", "bogus"], "'--route'"),
        (["--events", "no/such/file.json"], "does not exist"),
        (
            ["-c", "maxConcurency=4"],
            "unknown key 'maxConcurency' (did you mean maxConcurrency?); known keys: casesDomainId",
        ),
        (["-c", "batchSize=lots"], "batchSize must be a whole number"),
        (["-c", "novalue"], "expected key=value"),
        (["--fault", "NoSuchOp=server_error:0.1"], "unknown operation 'NoSuchOp'"),
        (["--fault", "CreateRelatedItem=server_error:2"], "RATE must be a number between 0 and 1"),
        (["--contacts", "-5"], "'--contacts'"),
        (["--moto-port", "70000"], "'--moto-port'"),
        (["--seed", "no-such-seed.json"], "does not exist"),
        (["--quiet", "--verbose"], "--quiet and --verbose"),
        (["-q", "-v"], "--quiet and --verbose"),
        (["--output", "report.json"], "not one of json, text, table; the results file is --report"),
    ],
)
def test_a_bad_option_is_one_line_and_exit_2_before_anything_starts(args: list[str], complaint: str) -> None:
    result = run_local(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert complaint in result.stderr
    assert "Traceback" not in result.output
    assert "Published" not in result.output  # no pipeline was started


@pytest.mark.parametrize("broken", ["seed.json", "expected.json"])
def test_a_seed_or_expectations_that_are_not_json_are_one_line_and_exit_2(
    tmp_path: Path, broken: str
) -> None:
    (tmp_path / "comment.json").write_text((EVENTS_DIR / "request-comment.json").read_text())
    (tmp_path / "seed.json").write_text((EVENTS_DIR / "seed.json").read_text())
    (tmp_path / broken).write_text('{"domains": [')  # cut short

    result = run_local("-e", str(tmp_path / "comment.json"))

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {tmp_path / broken}: not a JSON document")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("seed", "complaint"),
    [
        ({"domains": "demo"}, "wrong type"),
        ({"domains": [{"id": "d", "cases": [{"id": "c", "relatedItems": [{"content": {}}]}]}]}, "'type'"),
        ({"contacts": [{"instanceId": "i", "contactId": "c", "colour": "red"}]}, "unknown key 'colour'"),
        (
            {"contacts": [{"instanceId": "i", "contactId": "c", "initiationTimestamp": "yesterday"}]},
            "not a time",
        ),
    ],
    ids=["domains not a list", "item without type", "contact unknown key", "contact bad time"],
)
def test_a_seed_the_emulator_cannot_load_is_one_line_and_exit_2_before_anything_starts(
    tmp_path: Path, seed: dict[str, Any], complaint: str
) -> None:
    # GIVEN a seed that is JSON, but not of the emulator's format
    (tmp_path / "comment.json").write_text((EVENTS_DIR / "request-comment.json").read_text())
    (tmp_path / "seed.json").write_text(json.dumps(seed))

    result = run_local("-e", str(tmp_path / "comment.json"))

    # THEN one line names the file and the problem, and nothing was started
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {tmp_path / 'seed.json'}: not a seed the emulator can load")
    assert complaint in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert "Published" not in result.output


def test_a_folder_without_event_files_is_one_line_and_exit_2_before_anything_starts(tmp_path: Path) -> None:
    # GIVEN a folder that holds only a seed (say, the wrong folder)
    (tmp_path / "seed.json").write_text((EVENTS_DIR / "seed.json").read_text())

    result = run_local("-e", str(tmp_path))

    # THEN it is a mistake, not a run that checked nothing and said OK
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {tmp_path}: no event files in this folder")
    assert result.stderr.count("\n") == 1
    assert "Published" not in result.output


def test_a_single_event_file_runs_with_the_seed_and_expectations_beside_it(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = run_local(
        "-e", str(EVENTS_DIR / "request-comment.json"), "--quota-scale", "10", "--report", str(report)
    )
    assert result.exit_code == 0, result.output
    assert f"seed: {EVENTS_DIR / 'seed.json'}" in result.stdout
    assert "OK: every input has its expected outcome" in result.stdout
    assert report.is_file()


def test_output_json_prints_the_report_alone_on_stdout_and_the_rest_on_stderr(tmp_path: Path) -> None:
    # WHEN one sample runs with --output json and a report file
    report = tmp_path / "report.json"
    result = run_local(
        "-e", str(EVENTS_DIR / "request-comment.json"), "--quota-scale", "10", "--output", "json",
        "--report", str(report),
    )  # fmt: skip

    # THEN stdout is one JSON document, the report; notes and the verdict are on stderr
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(report.read_text())
    assert "Published 1 inputs" in result.stderr
    assert "OK: every input has its expected outcome" in result.stderr


def test_output_text_prints_one_tab_separated_line_per_input() -> None:
    result = run_local(
        "-e", str(EVENTS_DIR / "request-comment.json"), "--quota-scale", "10", "--output", "text"
    )

    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    name, route, outcome, case_id, detail, expected = line.split("\t")
    assert name.endswith("request-comment.json")
    assert (route, outcome, detail, expected) == ("queue", "linked", "Comment", "ok")
    assert case_id == json.loads((EVENTS_DIR / "request-comment.json").read_text())["caseId"]
    assert "Published 1 inputs" in result.stderr


def test_an_event_file_without_any_seed_says_why_its_case_is_missing(tmp_path: Path) -> None:
    lone = tmp_path / "comment.json"
    lone.write_text((EVENTS_DIR / "request-comment.json").read_text())
    report = tmp_path / "report.json"
    result = run_local("-e", str(lone), "--quota-scale", "10", "--report", str(report))
    assert "no --seed and no seed.json beside the events" in result.stdout
    assert "ResourceNotFoundException" in result.stdout
    # Nothing seeded: the sweeper cannot search the instance, and the verdict says so rather than OK.
    assert result.exit_code == 1, result.output
    assert "OK:" not in result.stdout
    assert "FAILED: the sweeper failed" in result.stdout
    assert "1 of 1 inputs not checked" in result.stdout
    # and so does the report
    assert json.loads(report.read_text())["summary"]["ok"] is False


def test_inputs_without_an_expected_outcome_are_not_called_as_expected(tmp_path: Path) -> None:
    lone = tmp_path / "comment.json"
    lone.write_text((EVENTS_DIR / "request-comment.json").read_text())
    result = run_local(
        "-e",
        str(lone),
        "--seed",
        str(EVENTS_DIR / "seed.json"),
        "-c",
        "sweeperEnabled=false",
        "--quota-scale",
        "10",
    )
    assert result.exit_code == 0, result.output
    assert "every input has its expected outcome" not in result.stdout
    assert "OK: nothing lost, nothing duplicated; 1 of 1 inputs not checked" in result.stdout


def test_a_folder_without_its_own_seed_finds_those_of_the_folder_above(tmp_path: Path) -> None:
    # GIVEN events/bad, which holds neither seed.json nor expected.json (events/ does)
    report = tmp_path / "report.json"
    result = run_local("-e", str(EVENTS_DIR / "bad"), "--quota-scale", "10", "--report", str(report))
    # THEN it runs as `make demo` runs those inputs: seeded, every outcome checked, the sweeper fine
    assert result.exit_code == 0, result.output
    assert f"seed: {EVENTS_DIR / 'seed.json'}" in result.stdout
    assert "OK: every input has its expected outcome" in result.stdout
    document = json.loads(report.read_text())
    assert document["coverage"]["sweep"]["status"] == "ok"
    assert {r["name"]: r["expected"]["outcome"] for r in document["inputs"]} == {
        "malformed-body.txt": "dead_lettered",
        "request-comment-too-long.json": "dead_lettered",
        "request-comment-unknown-case.json": "dead_lettered",
        "unknown-shape.json": "dead_lettered",
    }


def test_a_folder_and_a_file_each_find_the_seed_and_expectations_above_them(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    comment = EVENTS_DIR / "request-comment.json"
    result = run_local(
        "-e", str(EVENTS_DIR / "bad"), "-e", str(comment), "--quota-scale", "10", "--report", str(report)
    )
    assert result.exit_code == 0, result.output
    assert "OK: every input has its expected outcome" in result.stdout
    outcomes = {r["name"]: (r["outcome"], r["mismatch"]) for r in json.loads(report.read_text())["inputs"]}
    assert outcomes[str(comment)] == ("linked", None)
    assert len(outcomes) == 5


def test_inputs_whose_nearest_seeds_differ_are_refused_up_front(tmp_path: Path) -> None:
    (tmp_path / "seed.json").write_text('{"domains": []}')
    (tmp_path / "comment.json").write_text((EVENTS_DIR / "request-comment.json").read_text())
    result = run_local("-e", str(tmp_path), "-e", str(EVENTS_DIR / "request-comment.json"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --events: the inputs' nearest seed.json are not the same file")
    assert result.stderr.count("\n") == 1
    assert "Published" not in result.output


def test_the_pipeline_from_python_finds_the_seed_and_expectations_above_a_folder() -> None:
    with LocalPipeline(PipelineOptions(events=[EVENTS_DIR / "bad"])) as pipeline:
        expected = json.loads((EVENTS_DIR / "expected.json").read_text())
        assert pipeline.config.cases_domain_id == expected["casesDomainId"]
        assert pipeline.expected == {
            name.removeprefix("bad/"): outcome
            for name, outcome in expected["events"].items()
            if name.startswith("bad/")
        }


@pytest.mark.parametrize("option", ["--report", "--json"])
def test_a_report_path_that_cannot_be_written_is_refused_before_anything_starts(
    tmp_path: Path, option: str
) -> None:
    for path, complaint in unusable_report_paths(tmp_path):
        result = run_local(option, str(path))
        assert result.exit_code == 2, (path, result.output)
        assert result.stderr.startswith("error: "), path
        assert result.stderr.count("\n") == 1, result.stderr
        assert complaint in result.stderr, result.stderr
        assert "Published" not in result.output
    assert not (tmp_path / "elsewhere.json").exists()


def test_a_logs_folder_that_cannot_be_made_is_refused_before_anything_starts(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for path, complaint in ((a_file, "is not a folder"), (a_file / "logs", "is not a folder")):
        result = run_local("--logs", str(path))
        assert result.exit_code == 2, (path, result.output)
        assert result.stderr.startswith("error: ")
        assert result.stderr.count("\n") == 1, result.stderr
        assert complaint in result.stderr, result.stderr


def test_the_report_goes_into_folders_made_for_it(tmp_path: Path) -> None:
    report = tmp_path / "new" / "folder" / "report.json"
    result = run_local(
        "-e", str(EVENTS_DIR / "request-comment.json"), "--quota-scale", "10", "--report", str(report)
    )
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["summary"]["ok"] is True


def test_stay_up_prints_commands_that_work_verbatim_against_the_local_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN `make demo ARGS="--stay-up"` running (a real subprocess: moto, the emulator, the handler's workers)
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "--stay-up", "--quota-scale", "10", "--no-color"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        # Started as a shell's background job is: SIGINT ignored. Ctrl-C (SIGINT) must still stop it.
        preexec_fn=_ignore_sigint,
    )
    try:
        lines = read_until(process, "Staying up", timeout_s=240)
        commands = read_commands(process)

        # THEN the printed export line and the runbook's ops commands work verbatim
        [export] = [c for c in commands if c.startswith("export ")]
        for assignment in shlex.split(export)[1:]:
            name, _, value = assignment.partition("=")
            monkeypatch.setenv(name, value)
        ops_commands = [c for c in commands if c.startswith("python -m ops")]
        assert ops_commands, lines
        runner = CliRunner()
        for command in ops_commands:
            result = runner.invoke(ops_app, shlex.split(command)[3:], catch_exceptions=False)
            assert result.exit_code == 0, (command, result.output)
        assert "ResourceNotFoundException" in runner.invoke(ops_app, ["dlq", "stats"]).stdout
    finally:
        stop(process)
    assert process.returncode == 0


def test_quiet_stay_up_still_says_where_the_endpoints_are(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN --stay-up with --quiet (staying up is only useful if you know where to point your tools)
    waited: list[LocalPipeline] = []
    monkeypatch.setattr(LocalPipeline, "wait", lambda self: waited.append(self))

    result = run_local("-q", "--stay-up", "-e", str(EVENTS_DIR / "request-comment.json"))

    # THEN one line on stderr names both endpoints, and stdout stays empty (nothing asked for there)
    assert result.exit_code == 0, result.output
    assert waited
    [line] = result.stderr.splitlines()
    assert line.startswith("Staying up (Ctrl-C to stop): moto http://127.0.0.1:")
    assert ", emulator http://127.0.0.1:" in line
    assert result.stdout == ""


def read_until(process: subprocess.Popen[str], marker: str, *, timeout_s: float) -> list[str]:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"the pipeline exited: {''.join(lines)}")
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} within {timeout_s} s: {''.join(lines)}")


def read_commands(process: subprocess.Popen[str]) -> list[str]:
    """The command lines printed after the marker, up to the last one (the rule)."""
    assert process.stdout is not None
    commands = []
    while True:
        line = process.stdout.readline().strip()
        if line and not line.startswith("#"):
            commands.append(line)
        if line.startswith("aws events describe-rule"):
            return commands


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.mark.slow
def test_the_readme_python_example_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("### From Python") :]
    [code] = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[:1]
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - our own README's example (it asserts too)
    out = capsys.readouterr().out
    assert "'lost': 0" in out
    assert "'duplicates': 0" in out


def test_the_table_shows_an_input_whose_name_holds_square_brackets_as_it_is(tmp_path: Path) -> None:
    # GIVEN an event file whose name rich would read as markup
    (tmp_path / "seed.json").write_text((EVENTS_DIR / "seed.json").read_text())
    (tmp_path / "comment [draft].json").write_text((EVENTS_DIR / "request-comment.json").read_text())

    # WHEN it runs with the table output
    result = run_local("-e", str(tmp_path), "-c", "sweeperEnabled=false", "--quota-scale", "10", "--no-color")

    # THEN the table names the file as it is called
    assert result.exit_code == 0, result.output
    assert "comment [draft].json" in result.stdout


def test_an_event_file_that_is_not_text_is_one_line_and_exit_2_before_anything_starts(tmp_path: Path) -> None:
    # GIVEN a folder of events, one of them not UTF-8 (an SQS body is Unicode text)
    (tmp_path / "seed.json").write_text((EVENTS_DIR / "seed.json").read_text())
    (tmp_path / "comment.json").write_text((EVENTS_DIR / "request-comment.json").read_text())
    (tmp_path / "latin-1.txt").write_bytes("commentaire reçu".encode("latin-1"))

    result = run_local("-e", str(tmp_path))

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {tmp_path / 'latin-1.txt'}: not UTF-8 text")
    assert result.stderr.count("\n") == 1
    assert "reçu" not in result.stderr  # the message quotes none of it
    assert "Published" not in result.output


def test_every_aws_cli_command_printed_names_its_endpoint() -> None:
    # AWS CLI v1 ignores AWS_ENDPOINT_URL: a printed command without --endpoint-url would go to real AWS.
    from types import SimpleNamespace

    from local.cli import cli_commands

    emulator = SimpleNamespace(endpoint_url="http://127.0.0.1:2", related_items=lambda: [])
    pipeline = SimpleNamespace(
        moto_endpoint="http://127.0.0.1:1",
        emulator=emulator,
        resources=SimpleNamespace(main_queue_url="http://127.0.0.1:1/q", contact_rule_name="rule"),
        config=SimpleNamespace(
            connect_instance_arn="arn:aws:connect:us-east-1:1:instance/i", cases_domain_id="d"
        ),
    )

    aws = [command for _, command in cli_commands(pipeline, "case-linker") if command.startswith("aws ")]  # type: ignore[arg-type]

    assert aws
    for command in aws:
        expected = emulator.endpoint_url if " connectcases " in command else pipeline.moto_endpoint
        assert f"--endpoint-url {expected} " in command, command
