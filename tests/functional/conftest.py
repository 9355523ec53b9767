"""The real handler against moto (SQS, DynamoDB) and the Cases/Connect emulator, all over loopback HTTP."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from case_linker.handler import App, Tuning, build_app
from case_linker.linker import Backoff
from case_linker.settings import Settings

from emulator import Emulator, EmulatorConfig

if TYPE_CHECKING:
    from tests.functional.sweeper_rig import Rig

EVENTS = Path(__file__).resolve().parents[2] / "events"
EXPECTED = json.loads((EVENTS / "expected.json").read_text())
DOMAIN_ID = EXPECTED["casesDomainId"]
INSTANCE_ARN = EXPECTED["connectInstanceArn"]
INSTANCE_ID = INSTANCE_ARN.rsplit("/", 1)[-1]

# Short timeouts and backoffs so failure paths finish quickly (the read timeout leaves room for a
# busy 2-core machine); the logic is the same as in Lambda.
FAST = Tuning(
    max_workers=10,
    connect_timeout=0.5,
    read_timeout=2.0,
    read_attempts=4,
    create_attempts=4,
    safety_margin=0.5,
    backoff=Backoff(throttle_base=0.02, other_base=0.01, settle=0.05),
    capacity_delay_cap=2.0,
)


@dataclass
class _Context:
    """The parts of a LambdaContext the function and Powertools read; remaining time runs down."""

    remaining_ms: int = 60_000
    function_name: str = "case-linker"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:case-linker"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/case-linker"
    log_stream_name: str = "stream"
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.remaining_ms - int((time.monotonic() - self._started) * 1000))


def lambda_context(remaining_ms: int = 60_000) -> LambdaContext:
    """A fake LambdaContext with `remaining_ms` left from now."""
    return cast(LambdaContext, _Context(remaining_ms=remaining_ms))


def sqs_record(
    body: str,
    *,
    receive_count: int = 1,
    message_id: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One record as Lambda's SQS event source delivers it."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEB" + uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1748959531000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1748959531001",
        },
        "messageAttributes": attributes or {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:case-linker-main",
        "awsRegion": "us-east-1",
    }


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def event_body(name: str) -> str:
    """A sample event's bytes, as the queue would carry them."""
    return (EVENTS / name).read_text()


def comment_request(case_id: str, body: str = "Customer asked for a callback.", **extra: Any) -> str:
    return json.dumps(
        {
            "caseId": case_id,
            "type": "Comment",
            "content": {"comment": {"body": body, "contentType": "Text/Plain"}},
            **extra,
        }
    )


def count(counts: dict[Any, int], name: str, dimension: tuple[str, str] | None = None) -> int:
    """A metric's count in a batch's counts: all of its dimensions, or the one given."""
    if dimension is None:
        return sum(v for (n, _, _), v in counts.items() if n == name)
    return counts.get((name, *dimension), 0)


def failed_ids(response: dict[str, Any]) -> set[str]:
    return {failure["itemIdentifier"] for failure in response["batchItemFailures"]}


@dataclass
class Aws:
    """moto's SQS and DynamoDB with the dead-letter queue and idempotency table created."""

    sqs: Any
    dlq_url: str
    table_name: str

    def dead_letters(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not batch:
                return messages
            messages.extend(batch)


@pytest.fixture(scope="session")
def _emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(), port=0) as server:
        yield server


@pytest.fixture
def emu(_emulator: Emulator) -> Emulator:
    """The emulator seeded from events/seed.json, unthrottled, no faults, no latency."""
    defaults = EmulatorConfig(throttling=False)
    _emulator.configure(**{f.name: getattr(defaults, f.name) for f in dataclasses.fields(defaults)})
    _emulator.reset()
    _emulator.seed_from_file(EVENTS / "seed.json")
    return _emulator


@pytest.fixture
def aws(moto_endpoint: str, emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Aws:
    """Point every boto3 client at moto or the emulator, and create the queue and table."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CONNECTCASES", emu.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CONNECT", emu.endpoint_url)
    sqs = boto3.client("sqs")
    dlq_url = sqs.create_queue(QueueName="case-linker-dlq")["QueueUrl"]
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName="case-linker-idempotency",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return Aws(sqs=sqs, dlq_url=dlq_url, table_name="case-linker-idempotency")


@pytest.fixture
def settings(aws: Aws) -> Settings:
    return Settings(
        cases_domain_id=DOMAIN_ID,
        dead_letter_queue_url=aws.dlq_url,
        idempotency_table_name=aws.table_name,
        cases_max_rps=100.0,
    )


@pytest.fixture
def make_app(settings: Settings) -> Callable[..., App]:
    """Build the real App (real boto3 clients) with settings overrides and a tuning."""

    def make(tuning: Tuning = FAST, **overrides: Any) -> App:
        return build_app(dataclasses.replace(settings, **overrides), tuning=tuning)

    return make


@pytest.fixture
def rig(aws: Aws, emu: Emulator, make_app: Callable[..., App]) -> Rig:
    """The sweeper's rig (tests/functional/sweeper_rig.py): main queue, sweeper settings, the real linker."""
    from tests.functional.sweeper_rig import make_rig

    return make_rig(aws, emu, make_app())


REPO = Path(__file__).resolve().parents[2]
# boto3/botocore from requirements-runtime-oldest.txt, installed apart by `make install`.
OLD_RUNTIME = REPO / ".venv" / "runtime-oldest"


def run_on_oldest_runtime(script: str, env: dict[str, str], stdin: str = "") -> dict[str, Any]:
    """Run `script` in a fresh interpreter whose boto3/botocore are the oldest runtime's; its last line of
    output, as JSON."""
    assert OLD_RUNTIME.is_dir(), "run `make install` (it installs requirements-runtime-oldest.txt)"
    completed = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script],
        input=stdin,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            **env,
            "PYTHONPATH": os.pathsep.join([str(OLD_RUNTIME), str(REPO / "functions"), str(REPO)]),
        },
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return report
