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
        self,
        message: str,
        exit_code: ExitCode,
        hint: str | None = None,
        *,
        code: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.hint = hint
        # What failed, as a code (an AWS error code, an exception type): safe to print anywhere.
        self.code = code
        # The endpoint nothing answered at (a connection error): the CLI names where it came from in the hint.
        self.endpoint_url = endpoint_url


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
_NOT_FOUND_HINT = "check --stack-name/--region or the queue URLs"
# What a "not found" means for the calls that name something other than the stack or its queues.
_NOT_FOUND_HINTS = {
    "SearchContacts": "check --instance-arn, and that --region is the instance's Region",
    "BatchGetItem": "check --table-name (or the stack's IdempotencyTableName output) and --region",
}
# HTTP statuses an endpoint answers a call it does not implement with; moto answers 500 with an HTML page.
_UNSUPPORTED_STATUSES = frozenset({404, 405, 501})


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


def not_an_aws_error(error: ClientError) -> str | None:
    """What the endpoint answered instead of an AWS error (an HTML page, a proxy's text), in one line that never
    quotes the page; None for an AWS error.

    botocore gives such an answer the HTTP status as its code and the page (or the status's reason) as its
    message: no AWS error code is a number.
    """
    details = error.response.get("Error", {})
    metadata = error.response.get("ResponseMetadata", {})
    headers = {str(k).lower(): str(v) for k, v in metadata.get("HTTPHeaders", {}).items()}
    code = str(details.get("Code", ""))
    html = "html" in headers.get("content-type", "").lower()
    if not (code.isdigit() or html):
        return None
    status = metadata.get("HTTPStatusCode") or (int(code) if code.isdigit() else None)
    operation = error.operation_name or "the call"
    answer = "an HTML page" if html else "no AWS error"
    if status in _UNSUPPORTED_STATUSES or (status == 500 and html):
        return f"{operation} is not supported by this endpoint (HTTP {status}, {answer} in the answer)"
    return f"{operation} failed: the endpoint answered HTTP {status} with {answer}"


def translate_client_error(error: ClientError, doing: str) -> OpsError:
    """Map an AWS error to our outcome by its code, never by its message text."""
    details = error.response.get("Error", {})
    codes = {str(details.get("Code", "")), str(details.get("QueryErrorCode", ""))}
    code = error_code(error)
    foreign = not_an_aws_error(error)
    if foreign is not None:
        return OpsError(f"{doing}: {foreign}", ExitCode.FAILED, code=code)
    message = " ".join(str(details.get("Message", "")).split())
    text = f"{doing}: {code}: {message}".rstrip(": ")
    if is_access_denied(error):
        return OpsError(
            text,
            ExitCode.ACCESS_DENIED,
            hint="check the credentials/profile and the IAM permissions listed in docs/operations.md",
            code=code,
        )
    if codes & _NOT_FOUND_CODES:
        hint = _NOT_FOUND_HINTS.get(error.operation_name, _NOT_FOUND_HINT)
        return OpsError(text, ExitCode.NOT_FOUND, hint=hint, code=code)
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
        url = str(error.kwargs.get("endpoint_url", "")) or None
        return OpsError(
            f"{doing}: {error}", ExitCode.FAILED, hint=endpoint_hint(None), code=code, endpoint_url=url
        )
    return OpsError(f"{doing}: {error}", ExitCode.FAILED, code=code)


def endpoint_hint(source: str | None) -> str:
    """What to check when nothing answered at an endpoint, naming where the endpoint came from: `--endpoint-url`,
    the variable (`AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL`), AWS itself ("aws"), or None when unknown."""
    if source == "aws":
        return "check the network (proxy, firewall, VPC endpoint) and --region"
    if source is None:
        return "is the endpoint URL right and the endpoint up?"
    return f"is {source} right and the endpoint up?"
