"""GIVEN `python -m emulator`, THEN it validates its options before serving, prints its endpoint, and serves
the seed file; user mistakes are one `error:` line and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from emulator import Faults, Quota
from emulator.__main__ import Settings, main
from tests.emulator.helpers import INSTANCE_ID, NO_RETRY

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def standalone() -> Iterator[dict[str, str]]:
    """The CLI in a subprocess; yields the variables it told us to export."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator",
            "--port",
            "0",
            "--seed",
            "emulator/seed.example.json",
            "--rng-seed",
            "1",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        exports = dict(line.removeprefix("export ").strip().split("=", 1) for line in lines[1:])
        yield exports
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_standalone_emulator_serves_the_seed_file(standalone: dict[str, str]):
    assert standalone["AWS_ENDPOINT_URL_CONNECTCASES"] == standalone["AWS_ENDPOINT_URL_CONNECT"]
    cases = boto3.client(
        "connectcases",
        endpoint_url=standalone["AWS_ENDPOINT_URL_CONNECTCASES"],
        region_name="us-east-1",
        config=NO_RETRY,
    )
    connect = boto3.client(
        "connect",
        endpoint_url=standalone["AWS_ENDPOINT_URL_CONNECT"],
        region_name="us-east-1",
        config=NO_RETRY,
    )

    attributes = connect.get_contact_attributes(InstanceId=INSTANCE_ID, InitialContactId="contact-0001")[
        "Attributes"
    ]
    found = cases.list_cases_for_contact(
        domainId="11111111-2222-3333-4444-555555555555",
        contactArn=f"arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE_ID}/contact/already-linked-0001",
    )
    instance = connect.describe_instance(InstanceId=INSTANCE_ID)["Instance"]

    assert attributes == {"caseId": "case-0001"}
    assert [c["caseId"] for c in found["cases"]] == ["case-0002"]
    assert instance["InstanceAlias"] == "demo-instance"


def parsed(*argv: str) -> Settings:
    """What the command line turns into, without serving."""
    seen: list[Settings] = []

    def run(settings: Settings) -> int:
        seen.append(settings)
        return 0

    assert main(list(argv), run=run) == 0
    return seen[0]


def test_cli_flags_become_the_configuration():
    settings = parsed(
        "--no-throttling",
        "--quota",
        "CreateRelatedItem=5:20",
        "--quota",
        "GetCase=off",
        "--fault",
        "CreateRelatedItem=server_error:0.1",
        "--fault",
        "CreateRelatedItem=drop:0.2",
        "--fault",
        "BatchCreateRelatedItem=late_commit:0.3",
        "--latency",
        "0.05",
        "--rng-seed",
        "7",
        "--port",
        "4599",
        "--seed",
        "emulator/seed.example.json",
    )
    config = settings.config

    assert config.throttling is False
    assert config.quotas == {"CreateRelatedItem": Quota(rate=5.0, burst=20), "GetCase": None}
    assert config.faults == {
        "CreateRelatedItem": Faults(server_error=0.1, drop_connection=0.2),
        "BatchCreateRelatedItem": Faults(late_commit=0.3),
    }
    assert (config.latency_s, config.seed) == (0.05, 7)
    assert (settings.port, settings.seed) == (4599, Path("emulator/seed.example.json"))


def test_cli_exposes_the_timing_of_lagging_and_late_behaviour():
    config = parsed(
        "--late-commit-seconds",
        "4.5",
        "--no-late-commit-claims-token",
        "--token-in-flight",
        "conflict",
        "--token-ttl",
        "60",
        "--search-lag",
        "1.5",
        "--merge-duration",
        "0.5",
        "--searchable-attribute",
        "caseId",
        "--searchable-attribute",
        "crmTicket",
    ).config

    assert config.late_commit_s == 4.5
    assert config.late_commit_claims_token is False
    assert config.token_in_flight == "conflict"
    assert config.client_token_ttl_s == 60.0
    assert (config.search_lag_s, config.merge_duration_s) == (1.5, 0.5)
    assert config.searchable_contact_attributes == ("caseId", "crmTicket")


def test_cli_defaults_keep_tokens_forever_and_searches_fresh():
    config = parsed().config

    assert config.client_token_ttl_s is None
    assert config.search_lag_s == 0.0
    assert config.token_in_flight == "wait"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--quota=NoSuchOp=1:1"], "--quota"),
        (["--fault=CreateRelatedItem=explode:0.1"], "--fault"),
        (["--fault=CreateRelatedItem=item_failure:0.1"], "--fault"),
        (["--quota=GetCase=x"], "--quota"),
        (["--search-lag", "-1"], "--search-lag"),
        (["--token-in-flight", "sometimes"], "--token-in-flight"),
        (["--port", "abc"], "--port"),
        (["--no-such-flag"], "--no-such-flag"),
        (["--seed", "no/such/seed.json"], "--seed"),
    ],
)
def test_cli_rejects_mistakes_with_one_line_and_exit_code_2(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
):
    served: list[Settings] = []

    def record(settings: Settings) -> int:
        served.append(settings)
        return 0

    # The seed is read by the real serve(), before it listens; the others never get that far.
    code = main(argv) if named == "--seed" else main(argv, run=record)

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert named in err
    assert "Traceback" not in err
    assert served == []


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('{"contacts": [{"instanceId": "i", "contactId": "c", "chanel": "VOICE"}]}', "unknown key 'chanel'"),
        ('{"domains": "demo"}', "wrong type"),
        ('{"domains": [{"cases": [{"relatedItems": [{"content": {}}]}]}]}', "missing: 'type'"),
    ],
)
def test_a_broken_seed_file_is_reported_before_serving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, complaint: str
):
    seed = tmp_path / "seed.json"
    seed.write_text(text)

    code = main(["--seed", str(seed)])

    err = capsys.readouterr()
    assert code == 2
    assert complaint in err.err
    assert err.err.count("\n") == 1
    assert "listening" not in err.out
