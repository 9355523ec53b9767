"""Our own small set of outcomes for failures; adapters translate AWS errors into these.

Permanent errors go to the dead-letter queue and the record is acknowledged. Transient errors hand the
record back to SQS (batchItemFailures) for a later delivery.
"""

from __future__ import annotations

from botocore.exceptions import ClientError


class LinkerError(Exception):
    """Base class. `code` is what ERROR_CODE and the DeadLettered metric carry.

    `token_spent` marks a create the service answered for its case (BatchCreateRelatedItem's failedItems):
    nothing was created, and the client token now stands for that answer, so a retry needs a new token.
    """

    token_spent = False

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class PermanentError(LinkerError):
    """Retrying cannot help: dead-letter the message."""


class TransientError(LinkerError):
    """May succeed later: report the record as failed so SQS redelivers it.

    `retry_after`, when set, is how long the record should stay invisible before its next delivery.
    """

    def __init__(self, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class ThrottledError(TransientError):
    """Cases kept throttling after every retry we could afford."""


class AmbiguousError(TransientError):
    """A create may or may not have committed (connection dropped, timeout, 5xx)."""


class CaseBusyError(TransientError):
    """The case cannot take writes right now (ConflictException: it is the secondary of a running merge).

    Nothing was committed; the case accepts writes again when the merge ends.
    """


class SettlingError(TransientError):
    """An earlier create may still commit: look for it only after it has had time to land."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            "AwaitingEarlierAttempt",
            "an earlier create of this item may still commit; looking for it later",
            retry_after=retry_after,
        )


class OutOfTimeError(TransientError):
    """Not enough invocation time left to make (or wait for) another call."""

    def __init__(self, message: str = "not enough time left in this invocation") -> None:
        super().__init__("OutOfTime", message)


class CircuitOpenError(TransientError):
    """Cases throttled us past our retries earlier in this batch: no more Cases calls in it."""

    def __init__(self) -> None:
        super().__init__("CircuitOpen", "Cases is throttling; not calling it again in this batch")


def error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError (`ThrottlingException`, ...); "" for anything else."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "")
    return ""
