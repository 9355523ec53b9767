"""A stand-in for the `LambdaContext` object the Lambda runtime passes to a handler."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class ContextSpec:
    """What the runtime knows about one invocation; picklable, so it can cross into a worker process."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: float
    region: str = "us-east-1"
    account_id: str = "123456789012"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_stream_name: str = "local"

    def start(self) -> LambdaContext:
        """The context for an invocation starting now: its clock starts ticking here."""
        return LambdaContext(self, deadline=time.monotonic() + self.timeout_s)


class LambdaContext:
    """Duck-types `awslambdaric`'s LambdaContext: the attributes Powertools and handlers read."""

    def __init__(self, spec: ContextSpec, *, deadline: float) -> None:
        self.function_name = spec.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{spec.region}:{spec.account_id}:function:{spec.function_name}"
        )
        self.memory_limit_in_mb = spec.memory_limit_in_mb
        self.aws_request_id = spec.aws_request_id
        self.log_group_name = f"/aws/lambda/{spec.function_name}"
        self.log_stream_name = spec.log_stream_name
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the runtime would kill this invocation (never negative)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))
