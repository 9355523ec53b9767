"""Another caller on the same Cases quota: agents in the Agent Workspace, flows, other integrations.

The account's quota is per API, not per domain, so the co-tenant works in a domain of its own (its calls are
told apart from case-linker's by `domainId` in the emulator's call log) and spends the same buckets: it calls
CreateRelatedItem and ListCasesForContact, each at a steady rate. Its CreateRelatedItem names a case that does
not exist: the emulator takes the quota's token before it looks for the case (as a quota is checked before
the request), so the call spends the bucket like any other and leaves no item that the reconciliation of
case-linker's run would have to explain. It does not retry: a refused call (429) is counted as refused.
Loopback only: it talks to the local emulator.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from emulator import Emulator
from local.aws import LOCAL_CREDENTIALS

DOMAIN_NAME = "co-tenant"
OPERATIONS = ("CreateRelatedItem", "ListCasesForContact")


@dataclass
class CoTenantCall:
    operation: str
    at: float  # time.monotonic(), as the emulator's call log
    refused: bool


@dataclass
class CoTenant:
    """A steady co-tenant: `rate` requests/s on each of OPERATIONS, from one thread per operation."""

    emulator: Emulator
    rate: float
    region: str = "us-east-1"
    calls: list[CoTenantCall] = field(default_factory=list)
    domain_id: str = ""

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> CoTenant:
        if self.rate <= 0:
            return self
        self.domain_id = self.emulator.create_domain(DOMAIN_NAME)
        for operation in OPERATIONS:
            thread = threading.Thread(target=self._run, args=(operation,), name=f"co-tenant-{operation}")
            thread.daemon = True
            self._threads.append(thread)
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()

    def __enter__(self) -> CoTenant:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def refused_share(self, start: float = 0.0, end: float = float("inf")) -> float:
        """Refused calls / calls made in [start, end] (monotonic seconds)."""
        with self._lock:
            window = [c for c in self.calls if start <= c.at <= end]
        return sum(c.refused for c in window) / len(window) if window else 0.0

    def _client(self) -> Any:
        return boto3.session.Session(**LOCAL_CREDENTIALS, region_name=self.region).client(
            "connectcases",
            endpoint_url=self.emulator.endpoint_url,
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=10),
        )

    def _run(self, operation: str) -> None:
        client = self._client()
        interval = 1.0 / self.rate
        started = time.monotonic()
        sent = 0
        while not self._stop.is_set():
            # A fixed schedule: a slow answer does not lower the rate.
            delay = started + sent * interval - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            sent += 1
            at = time.monotonic()
            try:
                if operation == "CreateRelatedItem":
                    client.create_related_item(
                        domainId=self.domain_id,
                        caseId="no-such-case",
                        type="Comment",
                        content={"comment": {"body": "co-tenant load", "contentType": "Text/Plain"}},
                    )
                else:
                    client.list_cases_for_contact(
                        domainId=self.domain_id,
                        contactArn=f"arn:aws:connect:{self.region}:123456789012:instance/co-tenant/contact/{sent}",
                    )
                refused = False
            except ClientError as error:  # 404 for the missing case: the quota let it through
                refused = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 429
            except BotoCoreError:
                refused = False  # not a quota refusal; the rig's own trouble
            with self._lock:
                self.calls.append(CoTenantCall(operation, at, refused))
