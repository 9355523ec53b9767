"""Our exit codes, and the one place AWS errors become them."""

from __future__ import annotations

from enum import IntEnum

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)


class ExitCode(IntEnum):
    """Process exit codes; documented in the package docstring and `--help`."""

    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    ACCESS_DENIED = 4
    NOTHING_TO_DO = 5
    BUSY = 6
    INTERRUPTED = 130


class OpsError(Exception):
    """An error the CLI reports as one clear line and an exit code."""

    def __init__(
        self, message: str, exit_code: ExitCode, hint: str | None = None, *, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.hint = hint
        # What failed, as a code (an AWS error code, an exception type): safe to print anywhere.
        self.code = code


_ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "UnauthorizedOperation",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "KMS.AccessDeniedException",
    }
)
_NOT_FOUND_CODES = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "ResourceNotFoundException"}
)


def error_code(error: ClientError) -> str:
    """The AWS error code of a ClientError (the query-compatible code when SQS sends one)."""
    details = error.response.get("Error", {})
    return str(details.get("QueryErrorCode") or details.get("Code") or "Unknown")


def failure_code(error: BaseException) -> str:
    """What stopped a run, as a code only (never an error's message, which may quote data)."""
    if isinstance(error, OpsError):
        return error.code or "error"
    if isinstance(error, ClientError):
        return error_code(error)
    return type(error).__name__


def is_access_denied(error: ClientError) -> bool:
    """The call was refused for missing permissions or bad credentials (by code)."""
    details = error.response.get("Error", {})
    return bool({str(details.get("Code", "")), str(details.get("QueryErrorCode", ""))} & _ACCESS_DENIED_CODES)


def translate_client_error(error: ClientError, doing: str) -> OpsError:
    """Map an AWS error to our outcome by its code, never by its message text."""
    details = error.response.get("Error", {})
    codes = {str(details.get("Code", "")), str(details.get("QueryErrorCode", ""))}
    code = error_code(error)
    text = f"{doing}: {code}: {details.get('Message', '')}".rstrip(": ")
    if is_access_denied(error):
        return OpsError(
            text,
            ExitCode.ACCESS_DENIED,
            hint="check the credentials/profile and the IAM permissions listed in docs/operations.md",
            code=code,
        )
    if codes & _NOT_FOUND_CODES:
        return OpsError(
            text, ExitCode.NOT_FOUND, hint="check --stack-name/--region or the queue URLs", code=code
        )
    return OpsError(text, ExitCode.FAILED, code=code)


def translate_botocore_error(error: BotoCoreError, doing: str) -> OpsError:
    """Map a client-side botocore error (no AWS response) to our outcome."""
    code = type(error).__name__
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return OpsError(
            f"{doing}: {error}",
            ExitCode.ACCESS_DENIED,
            hint="configure credentials or pass --profile",
            code=code,
        )
    if isinstance(error, NoRegionError):
        return OpsError(
            f"{doing}: {error}", ExitCode.USAGE, hint="pass --region or set AWS_REGION", code=code
        )
    if isinstance(error, ProfileNotFound):
        return OpsError(str(error), ExitCode.USAGE, hint="check --profile", code=code)
    if isinstance(error, EndpointConnectionError):
        return OpsError(
            f"{doing}: {error}",
            ExitCode.FAILED,
            hint="is AWS_ENDPOINT_URL right and the endpoint up?",
            code=code,
        )
    return OpsError(f"{doing}: {error}", ExitCode.FAILED, code=code)
