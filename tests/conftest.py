"""Fixtures shared by every test layer.

Test taxonomy:
- tests/unit: pure code, no network.
- tests/emulator: the Connect/Cases emulator through real boto3 clients over loopback HTTP.
- tests/functional: the real handler against moto's server (SQS, DynamoDB) and the emulator, over HTTP.
- tests/infra: the synthesized CloudFormation template and its cdk-nag report.
- tests/ops: the operator tool against moto.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Never reach real AWS: dummy credentials, a fixed region, no instance metadata lookups.
# Set before any boto3 client is built, at import time of this conftest.
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "case-linker",
    "POWERTOOLS_METRICS_NAMESPACE": "CaseLinker",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "CDK_DISABLE_CLI_TELEMETRY": "true",
}.items():
    os.environ[_key] = _value
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = REPO_ROOT / "events"


def load_event(name: str) -> dict[str, Any]:
    """Load a sample event by its path under events/ (e.g. "request-comment.json", "bad/unknown-shape.json")."""
    loaded: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return loaded


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A real moto HTTP server on loopback for the whole session; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_endpoint(moto_server: str) -> str:
    """moto's endpoint with its state wiped, so each test starts from no queues and no tables."""
    import urllib.request

    # S310: the URL is our own loopback moto server, never a user-supplied scheme.
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()
    return moto_server
