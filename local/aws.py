"""boto3 clients for the local endpoints only: dummy credentials, an explicit endpoint, never real AWS."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

LOCAL_CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "aws_session_token": "testing",
}


def local_client(service: str, endpoint_url: str, region: str = "us-east-1", **config: Any) -> Any:
    """A client bound to a loopback endpoint; credentials are dummies so a mistake cannot reach an account."""
    session = boto3.session.Session(region_name=region, **LOCAL_CREDENTIALS)
    return session.client(
        service,
        endpoint_url=endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": 3}, **config),
    )
