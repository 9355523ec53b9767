"""Client tokens, as the Cases API documents them for BatchCreateRelatedItem: a retry with the same token and
the same parameters returns the original response; the same token with other parameters is a conflict.

AWS documents no retention, so the registry keeps a committed token for `ttl_s` (None: forever). A token whose
request has not committed yet is in flight; what a second request with it gets is the Emulator's choice
(EmulatorConfig.token_in_flight). Not thread-safe by itself: the Emulator holds its lock around every call.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TokenKey = tuple[str, str]  # (operation, client token): tokens are per account and operation


@dataclass
class TokenRecord:
    fingerprint: str
    response: dict[str, Any] | None = None  # None while the request is in flight
    committed_at: float | None = None  # monotonic


def request_fingerprint(params: dict[str, Any]) -> str:
    """The parameters that must match for a retry to count as the same request (all but the token)."""
    return json.dumps({k: v for k, v in params.items() if k != "clientToken"}, sort_keys=True, default=str)


class TokenRegistry:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.ttl_s: float | None = None
        self._records: dict[TokenKey, TokenRecord] = {}

    def get(self, key: TokenKey) -> TokenRecord | None:
        """The live record of a token; a committed one older than the TTL is forgotten."""
        record = self._records.get(key)
        if (
            record is not None
            and record.committed_at is not None
            and self.ttl_s is not None
            and self.clock() - record.committed_at > self.ttl_s
        ):
            del self._records[key]
            return None
        return record

    def claim(self, key: TokenKey, params: dict[str, Any]) -> None:
        self._records[key] = TokenRecord(request_fingerprint(params))

    def commit(self, key: TokenKey, response: dict[str, Any]) -> None:
        record = self._records[key]
        record.response = copy.deepcopy(response)
        record.committed_at = self.clock()

    def release(self, key: TokenKey) -> None:
        self._records.pop(key, None)

    def clear(self) -> None:
        self._records.clear()
