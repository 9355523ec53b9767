"""GIVEN `python -m emulator` with a seed file, THEN it prints its endpoint and serves the seeded data."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from emulator import Faults, Quota
from emulator.__main__ import config_from, parse_args
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

    assert attributes == {"caseId": "case-0001"}
    assert [c["caseId"] for c in found["cases"]] == ["case-0002"]


def test_cli_flags_become_the_configuration():
    args = parse_args(
        [
            "--no-throttling",
            "--quota",
            "CreateRelatedItem=5:20",
            "--quota",
            "GetCase=off",
            "--fault",
            "CreateRelatedItem=server_error:0.1",
            "--fault",
            "CreateRelatedItem=drop:0.2",
            "--latency",
            "0.05",
            "--rng-seed",
            "7",
        ]
    )
    config = config_from(args)

    assert config.throttling is False
    assert config.quotas == {"CreateRelatedItem": Quota(rate=5.0, burst=20), "GetCase": None}
    assert config.faults == {"CreateRelatedItem": Faults(server_error=0.1, drop_connection=0.2)}
    assert (config.latency_s, config.seed) == (0.05, 7)


@pytest.mark.parametrize(
    "flag", ["--quota=NoSuchOp=1:1", "--fault=CreateRelatedItem=explode:0.1", "--quota=GetCase=x"]
)
def test_cli_rejects_bad_flags(flag: str):
    with pytest.raises(SystemExit):
        parse_args([flag])
