"""Helpers for the emulator tests: boto3 clients without retries and raw HTTP for what botocore won't send."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from emulator import Emulator

INSTANCE_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
# One attempt only: these tests assert the exact error each request gets.
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)
STANDARD = Config(retries={"mode": "standard", "max_attempts": 10}, read_timeout=5)
SIGNED = "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/cases/aws4_request, SignedHeaders=host, Signature=0"


def client(service: str, emu: Emulator, config: Config = NO_RETRY) -> Any:
    return boto3.client(service, endpoint_url=emu.endpoint_url, region_name="us-east-1", config=config)


@dataclass(frozen=True)
class World:
    domain_id: str
    case_id: str
    contact_id: str
    contact_arn: str


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


def raw(
    emu: Emulator, method: str, path: str, body: Any = None, authorization: str | None = SIGNED
) -> RawResponse:
    """Speak HTTP directly, for requests botocore would refuse to send."""
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(emu.endpoint_url + path, data=data, method=method)  # noqa: S310 - loopback
    request.add_header("Content-Type", "application/json")
    if authorization:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback emulator
            return RawResponse(
                response.status, dict(response.headers.items()), json.loads(response.read() or b"{}")
            )
    except urllib.error.HTTPError as e:
        return RawResponse(e.code, dict(e.headers.items()), json.loads(e.read() or b"{}"))


def comment(body: str = "Linked by case-linker") -> dict[str, Any]:
    return {"comment": {"body": body, "contentType": "Text/Plain"}}


def by_id(*case_ids: str) -> list[dict[str, Any]]:
    return [{"caseIdentifier": {"caseId": c}} for c in case_ids]


def by_reference(*reference_ids: str) -> list[dict[str, Any]]:
    return [{"caseIdentifier": {"referenceId": r}} for r in reference_ids]
