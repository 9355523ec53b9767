"""The AWS CLI's habits: global options anywhere, --endpoint-url, --output json|text|table, --query, --no-color,
--version, one-line errors, tables that never split an id."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import boto3
import pytest
import typer
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError

from ops import __version__
from ops.aws import Clients
from ops.doctor.verdict import call_failed
from ops.errors import ExitCode, translate_client_error
from tests.conftest import REPO_ROOT
from tests.ops.conftest import Invoke, json_result
from tests.ops.helpers import StackQueues, connect_event, error_attributes, put

ANSI = re.compile(r"\x1b\[")
LONG_ID = "c-" + "abcdef" * 10 + "0123"  # 66 characters: wider than a folded cell (few digits: shown whole)


def fill(sqs: Any, queues: StackQueues) -> None:
    put(sqs, queues.processing_dlq, connect_event(LONG_ID), error_attributes("ValidationException"))
    put(sqs, queues.processing_dlq, connect_event("c-2"), error_attributes("ThrottlingException"))


@pytest.mark.parametrize(
    "order",
    [
        ["--region", "us-east-1", "dlq", "stats"],
        ["dlq", "--region", "us-east-1", "stats"],
        ["dlq", "stats", "--region", "us-east-1"],
        ["dlq", "stats", "--region=us-east-1", "--output=json"],
    ],
)
def test_global_options_are_accepted_before_or_after_the_command(
    run_cli: Invoke, queues: StackQueues, order: list[str]
) -> None:
    result = run_cli([*order, *queues.args()])
    assert result.exit_code == 0, result.output


def test_endpoint_url_points_every_client_at_the_endpoint(
    run_cli: Invoke, moto_endpoint: str, queues: StackQueues, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert (
        run_cli([*queues.args(), "dlq", "stats"]).exit_code != 0
    )  # real AWS would be asked: dummy keys fail
    result = run_cli([*queues.args(), "dlq", "stats", "--endpoint-url", moto_endpoint])
    assert result.exit_code == 0, result.output


def test_text_output_is_one_tab_separated_record_a_line(
    run_cli: Invoke, sqs: Any, queues: StackQueues
) -> None:
    fill(sqs, queues)
    result = run_cli([*queues.args(), "dlq", "peek", "--dlq", "processing", "--output", "text"])
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    fields = [line.split("\t") for line in lines]
    assert {len(f) for f in fields} == {
        len(
            json_result(run_cli([*queues.args(), "dlq", "peek", "--dlq", "processing", "--output", "json"]))[
                "messages"
            ][0]
        )
    }
    assert any(LONG_ID in f for f in fields)


def test_query_selects_from_the_json_result_as_in_the_aws_cli(
    run_cli: Invoke, sqs: Any, queues: StackQueues
) -> None:
    fill(sqs, queues)
    as_json = run_cli(
        [
            *queues.args(),
            "dlq",
            "stats",
            "--output",
            "json",
            "--query",
            "dlqs[?dlq=='processing'].depth | [0]",
        ]
    )
    as_text = run_cli(
        [*queues.args(), "dlq", "peek", "--output", "text", "--query", "messages[].[contact_id, error_code]"]
    )
    assert as_json.stdout.strip() == "2"
    assert sorted(as_text.stdout.splitlines()) == sorted(
        [f"{LONG_ID}\tValidationException", "c-2\tThrottlingException"]
    )


def test_a_bad_query_is_a_one_line_usage_error(run_cli: Invoke, queues: StackQueues) -> None:
    result = run_cli([*queues.args(), "dlq", "stats", "--query", "dlqs[?"])
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1


def test_a_piped_table_keeps_ids_whole(
    run_cli: Invoke, sqs: Any, queues: StackQueues, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(sqs, queues)
    monkeypatch.setenv("COLUMNS", "60")  # even when the environment claims a narrow terminal
    result = run_cli([*queues.args(), "dlq", "peek"])
    assert result.exit_code == 0, result.output
    assert LONG_ID in result.stdout
    assert "ValidationException" in result.stdout


def test_no_colour_when_piped_and_none_with_no_color(
    run_cli: Invoke, sqs: Any, queues: StackQueues, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(sqs, queues)
    assert not ANSI.search(run_cli([*queues.args(), "dlq", "peek"]).output)
    monkeypatch.setenv("FORCE_COLOR", "1")  # as if on a terminal
    assert ANSI.search(run_cli([*queues.args(), "dlq", "peek"]).output)
    assert not ANSI.search(run_cli([*queues.args(), "dlq", "peek", "--no-color"]).output)


def test_version_is_the_installed_distributions(run_cli: Invoke) -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    result = run_cli(["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"case-linker {__version__}"
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "ops.__version__"}


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["dlq", "stats", "--bogus"], "No such option: --bogus"),
        (["dlq", "peek", "--max", "0"], "'--max'"),
        (["dlq", "nope"], "No such command 'nope'"),
        (["--output", "yaml", "dlq", "stats"], "'--output'"),
        (["dlq", "replay", "--filter", "body=refund", "--yes"], "bad --filter"),
    ],
)
def test_user_mistakes_are_one_line_on_stderr_with_exit_2(
    run_cli: Invoke, queues: StackQueues, args: list[str], complaint: str
) -> None:
    result = run_cli([*queues.args(), *args])
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert complaint in result.stderr
    assert "Traceback" not in result.output


def test_an_unknown_profile_is_a_usage_error_naming_it(run_cli: Invoke, queues: StackQueues) -> None:
    result = run_cli([*queues.args(), "dlq", "stats", "--profile", "no-such-profile"])
    assert result.exit_code == ExitCode.USAGE
    assert "no-such-profile" in result.stderr
    assert "check --profile" in result.stderr


def every_command() -> list[list[str]]:
    """The command path of every command and group of the tool, the root included."""
    from ops.cli import app

    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(root, [])
    return paths


@pytest.mark.parametrize("path", every_command(), ids=lambda p: " ".join(p) or "(root)")
def test_every_help_lists_the_exit_codes(run_cli: Invoke, path: list[str]) -> None:
    result = run_cli([*path, "--help"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "Exit codes: 0 done;" in text
    assert "130 interrupted or declined at the prompt" in text


@pytest.mark.parametrize(
    ("option", "environment", "expected"),
    [
        (None, {"AWS_REGION": "eu-west-1"}, "eu-west-1"),
        (None, {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}, "eu-west-1"),
        (None, {"AWS_DEFAULT_REGION": "us-east-1"}, "us-east-1"),
        ("ap-south-1", {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}, "ap-south-1"),
    ],
)
def test_the_region_comes_from_the_option_then_aws_region_then_aws_default_region_as_in_the_aws_cli(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    option: str | None,
    environment: dict[str, str],
    expected: str,
) -> None:
    # The AWS CLI v2 and the CDK CLI read AWS_REGION before AWS_DEFAULT_REGION; boto3 alone reads only the latter,
    # so a doctor run would check another Region than the deploy it precedes.
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    assert Clients(region=option).region == expected


# --- errors that name what went wrong, and what the user actually used ---------------------------------------


def test_an_operation_the_endpoint_lacks_is_one_line_without_its_html_page(
    run_cli: Invoke, sqs: Any, queues: StackQueues
) -> None:
    # moto has no ListMessageMoveTasks: it answers HTTP 500 with an HTML page, not an AWS error
    put(sqs, queues.processing_dlq, connect_event("c-1"), error_attributes("X"))
    result = run_cli([*queues.args(), "dlq", "native-redrive", "--dry-run"])
    assert result.exit_code == ExitCode.FAILED
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.stderr.endswith(f"{line}\n")
    assert "ListMessageMoveTasks is not supported by this endpoint (HTTP 500" in line
    for page in ("<", "doctype", "html>", "Internal Server Error"):
        assert page not in result.stderr


@pytest.mark.parametrize(
    ("status", "content_type", "body", "expected"),
    [
        (
            500,
            "text/html",
            "<!doctype html><title>500</title><p>Internal Server Error</p>",
            "is not supported",
        ),
        (404, "text/plain", "404 page not found", "is not supported"),
        (502, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>", "HTTP 502"),
    ],
)
def test_any_answer_that_is_no_aws_error_becomes_one_line_naming_the_operation(
    status: int, content_type: str, body: str, expected: str
) -> None:
    client = boto3.client(
        "sqs",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 1}),
    )

    def fake_send(request: Any, **_: Any) -> AWSResponse:
        """The endpoint's answer: `body`, no AWS error in it."""
        response = AWSResponse(request.url, status, {"content-type": content_type}, None)
        response._content = body.encode()
        return response

    client.meta.events.register("before-send.sqs.*", fake_send)
    with pytest.raises(ClientError) as raised:
        client.get_queue_attributes(QueueUrl="http://127.0.0.1:9/1/q", AttributeNames=["All"])
    error = raised.value

    translated = translate_client_error(error, "reading queue q")
    assert translated.exit_code == ExitCode.FAILED
    assert translated.message.startswith("reading queue q: GetQueueAttributes ")
    assert expected in translated.message
    assert f"HTTP {status}" in translated.message
    assert "\n" not in translated.message
    for page in ("<", "Bad Gateway", "page not found", "Internal Server Error"):
        assert page not in translated.message
    check = call_failed("main-queue", error)
    assert f"HTTP {status}" in check.detail
    assert "<" not in check.detail


def test_an_endpoint_url_option_nothing_answers_at_is_named_as_the_option(
    run_cli: Invoke, queues: StackQueues, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli([*queues.args(), "dlq", "stats", "--endpoint-url", "http://127.0.0.1:1"])
    assert result.exit_code == ExitCode.FAILED
    assert result.stderr.count("\n") == 1
    assert "--endpoint-url" in result.stderr
    assert "http://127.0.0.1:1" in result.stderr
    assert "AWS_ENDPOINT_URL" not in result.stderr


def test_an_endpoint_variable_nothing_answers_at_is_named_as_the_variable(
    run_cli: Invoke, queues: StackQueues, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:1")
    result = run_cli([*queues.args(), "dlq", "stats"])
    assert result.exit_code == ExitCode.FAILED
    assert "AWS_ENDPOINT_URL_SQS" in result.stderr
    assert "--endpoint-url" not in result.stderr
