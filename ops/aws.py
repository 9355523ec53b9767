"""Building boto3 clients once per run, from `--region`, `--profile`, `--endpoint-url` and the usual AWS environment.

Without `--endpoint-url`, `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_SQS` etc.) are honoured by boto3 itself, so the
same code runs against a deployed stack, the local pipeline or moto.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

# Standard retries cover throttling and 5xx; an operator waiting at 3 a.m. prefers a clear error to minutes of backoff.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30)


def _same_endpoint(url: str, configured: str) -> bool:
    """`url` (a request's, with its path) is on the endpoint `configured` (scheme, host and port)."""
    called, given = urlsplit(url), urlsplit(configured.strip())
    return bool(given.netloc) and (called.scheme, called.netloc) == (given.scheme, given.netloc)


class Clients:
    """Lazily built, cached AWS clients. `injected` replaces clients by service name (tests pass stubbed ones)."""

    def __init__(
        self,
        *,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        injected: Mapping[str, Any] | None = None,
    ) -> None:
        self._region = region
        self._profile = profile
        self._endpoint_url = endpoint_url
        self._cache: dict[str, Any] = dict(injected or {})
        self._session: boto3.Session | None = None

    def get(self, service: str) -> Any:
        """The client for `service` ("sqs", "cloudformation", "cloudwatch", "events", "sts", ...)."""
        if service not in self._cache:
            self._cache[service] = self.session.client(
                service, config=_CONFIG, endpoint_url=self._endpoint_url
            )
        return self._cache[service]

    @property
    def session(self) -> boto3.Session:
        if self._session is None:
            # As the AWS CLI v2 and the CDK CLI: --region, then AWS_REGION, then AWS_DEFAULT_REGION and the
            # profile (boto3 alone does not read AWS_REGION).
            region = self._region or os.environ.get("AWS_REGION", "").strip() or None
            self._session = boto3.Session(profile_name=self._profile, region_name=region)
        return self._session

    def endpoint_source(self, url: str) -> str | None:
        """Where the endpoint `url` came from, as the user would name it: `--endpoint-url`, the variable
        (`AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL`), "aws" for AWS's own endpoints, None when unknown (the
        profile's `endpoint_url`, say)."""
        if self._endpoint_url and _same_endpoint(url, self._endpoint_url):
            return "--endpoint-url"
        # The service's own variable wins over AWS_ENDPOINT_URL in boto3, so it is looked at first.
        variables = sorted(
            (name for name in os.environ if name.startswith("AWS_ENDPOINT_URL")), key=len, reverse=True
        )
        for name in variables:
            if _same_endpoint(url, os.environ[name]):
                return name
        host = urlsplit(url).hostname or ""
        return "aws" if host.endswith((".amazonaws.com", ".amazonaws.com.cn")) else None

    @property
    def region(self) -> str | None:
        """The Region the clients call (`--region`, the profile, `AWS_REGION`...), None when none is set."""
        region: str | None = self.session.region_name
        return region

    @property
    def sqs(self) -> Any:
        return self.get("sqs")

    @property
    def cloudformation(self) -> Any:
        return self.get("cloudformation")

    @property
    def cloudwatch(self) -> Any:
        return self.get("cloudwatch")

    @property
    def events(self) -> Any:
        return self.get("events")

    @property
    def sts(self) -> Any:
        return self.get("sts")

    @property
    def connect(self) -> Any:
        return self.get("connect")

    @property
    def connectcases(self) -> Any:
        return self.get("connectcases")

    @property
    def lambda_(self) -> Any:
        return self.get("lambda")

    @property
    def sns(self) -> Any:
        return self.get("sns")

    @property
    def kms(self) -> Any:
        return self.get("kms")
