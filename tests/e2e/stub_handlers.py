"""Stand-in handlers the worker-process runtime can import by name (tests only)."""

from __future__ import annotations

import time
from typing import Any


def slow_ok(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Takes a second per batch, then reports success: long enough to be killed mid-batch."""
    print(f"invocation {context.aws_request_id} records={len(event['Records'])}", flush=True)
    time.sleep(1.0)
    return {"batchItemFailures": []}
