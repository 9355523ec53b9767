"""What a check says (ok, problem, could-not-check), and how a failed AWS call becomes could-not-check."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import ParamSpec

from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from ops.errors import error_code, is_access_denied, not_an_aws_error


class Status(StrEnum):
    OK = "ok"
    PROBLEM = "problem"
    COULD_NOT_CHECK = "could-not-check"


@dataclass(frozen=True)
class Check:
    """One check's verdict. `detail` says what was found; `fix` what to do (a problem) or what would let the
    check run (could-not-check)."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"check": self.name, "status": str(self.status), "detail": self.detail, "fix": self.fix}


def ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def problem(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.PROBLEM, detail, fix)


def could_not_check(name: str, detail: str, fix: str = "") -> Check:
    return Check(name, Status.COULD_NOT_CHECK, detail, fix)


def counted(count: float, noun: str) -> str:
    """`1 message`, `3 messages`."""
    return f"{count:.0f} {noun}{'' if count == 1 else 's'}"


#: Where the fixes point.
DEPLOY = 'make deploy CDK_ARGS="-c casesDomainId=... -c connectInstanceArn=..." (README, Deploy)'
REDEPLOY = f"deploy this checkout again with the same context: {DEPLOY}"

#: The IAM action behind each API call the doctor makes (docs/operations.md lists them as its permissions).
PERMISSIONS = {
    "GetCallerIdentity": "sts:GetCallerIdentity",
    "DescribeInstance": "connect:DescribeInstance",
    "ListIntegrationAssociations": "connect:ListIntegrationAssociations",
    "GetDomain": "cases:GetDomain",
    "DescribeStacks": "cloudformation:DescribeStacks",
    "GetFunctionConfiguration": "lambda:GetFunctionConfiguration",
    "ListEventSourceMappings": "lambda:ListEventSourceMappings",
    "DescribeRule": "events:DescribeRule",
    "ListTargetsByRule": "events:ListTargetsByRule",
    "GetQueueAttributes": "sqs:GetQueueAttributes",
    "GetMetricData": "cloudwatch:GetMetricData",
    "ListMetrics": "cloudwatch:ListMetrics",
    "GetTopicAttributes": "sns:GetTopicAttributes",
    "GetKeyPolicy": "kms:GetKeyPolicy",
}


class MissingOutput(Exception):
    """A check needs a stack output the stack does not have (the stack check reports it as a problem)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


P = ParamSpec("P")


def guarded(name: str) -> Callable[[Callable[P, Check]], Callable[P, Check]]:
    """Make the check `name` say could-not-check for an AWS error it does not handle itself (naming the IAM
    action to grant) or a stack output it needs and does not get."""

    def wrap(check: Callable[P, Check]) -> Callable[P, Check]:
        @functools.wraps(check)
        def run(*args: P.args, **kwargs: P.kwargs) -> Check:
            try:
                return check(*args, **kwargs)
            except (ClientError, BotoCoreError) as e:
                return call_failed(name, e)
            except MissingOutput as e:
                return could_not_check(name, f"skipped: the stack has no output {e.key}")

        return run

    return wrap


def call_failed(name: str, error: ClientError | BotoCoreError) -> Check:
    """could-not-check for a refused or failed call: the action to grant, or the error."""
    if isinstance(error, ClientError):
        action = PERMISSIONS.get(error.operation_name, error.operation_name)
        if is_access_denied(error):
            return could_not_check(
                name,
                f"{action} was refused ({error_code(error)})",
                f"grant {action} to these credentials (docs/operations.md, Permissions)",
            )
        foreign = not_an_aws_error(error)
        if foreign is not None:
            return could_not_check(name, foreign)
        message = " ".join(str(error.response.get("Error", {}).get("Message", "")).split())
        return could_not_check(name, f"{action} failed: {error_code(error)} {message}".strip())
    if isinstance(error, NoRegionError):
        return could_not_check(name, "no Region configured", "pass --region or set AWS_REGION")
    return could_not_check(name, f"AWS call failed: {' '.join(str(error).split())}")


def not_found(error: ClientError) -> bool:
    return error_code(error) == "ResourceNotFoundException"


def stack_missing(error: ClientError) -> bool:
    """DescribeStacks answers a named stack that does not exist with the generic ValidationError."""
    return error_code(error) == "ValidationError"


def stack_usable(status: str) -> bool:
    """A stack whose last operation finished well (CREATE_COMPLETE, UPDATE_COMPLETE, IMPORT_COMPLETE)."""
    return status.endswith("_COMPLETE") and "ROLLBACK" not in status and "DELETE" not in status
