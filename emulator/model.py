"""Routing, request binding, validation and response encoding, all read from botocore's service models."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import unquote

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

CASES = "connectcases"
CONNECT = "connect"
# The credential scope of a SigV4 Authorization header names the signing service, not the model name.
SIGNING_NAMES = {"cases": CASES, "connect": CONNECT}
IMPLEMENTED: dict[str, tuple[str, ...]] = {
    CASES: (
        "CreateRelatedItem",
        "BatchCreateRelatedItem",
        "ListCasesForContact",
        "SearchRelatedItems",
        "SearchAllRelatedItems",
        "SearchCases",
        "GetCase",
        "CreateCase",
        "StartMergeCases",
        "GetMergeCasesStatus",
        "CreateDomain",
        "GetDomain",
        "ListDomains",
    ),
    CONNECT: (
        "GetContactAttributes",
        "DescribeContact",
        "SearchContacts",
        "ListAssociatedContacts",
        "DescribeInstance",
        "ListIntegrationAssociations",
    ),
}
ALL_OPERATIONS = frozenset(op for ops in IMPLEMENTED.values() for op in ops)
# Operations whose `clientToken` makes a retry return the original response (the model documents it).
TOKEN_OPERATIONS = frozenset({"BatchCreateRelatedItem"})
# Reads that see a write only EmulatorConfig.search_lag_s after it committed.
LAGGED_READS = frozenset(
    {"ListCasesForContact", "SearchRelatedItems", "SearchAllRelatedItems", "SearchCases"}
)

# Status codes for error codes a model does not declare (scripted outcomes, framework-level errors).
FALLBACK_STATUS = {
    "ThrottlingException": 429,
    "TooManyRequestsException": 429,
    "InternalServerException": 500,
    "InternalServiceException": 500,
    "ServiceUnavailableException": 503,
    "AccessDeniedException": 403,
    "UnknownOperationException": 404,
    "ResourceNotFoundException": 404,
    "ConflictException": 409,
    "ServiceQuotaExceededException": 402,
}


class ApiError(Exception):
    """An AWS error response: code (x-amzn-ErrorType), message and any extra body members."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.extra = extra


@cache
def service_model(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


def validation_code(service: str, operation: str) -> str:
    """The error code this operation's model uses for a bad request."""
    if service == CASES:
        return "ValidationException"
    declared = {shape.name for shape in service_model(service).operation_model(operation).error_shapes}
    for code in ("InvalidParameterException", "InvalidRequestException"):
        if code in declared:
            return code
    return "InvalidRequestException"


def server_error_code(service: str) -> str:
    return "InternalServerException" if service == CASES else "InternalServiceException"


def error_status(service: str, code: str) -> int:
    try:
        shape = service_model(service).shape_for(code)
    except Exception:  # noqa: BLE001 - botocore raises its own NoShapeFoundError; any miss means "not modelled"
        return FALLBACK_STATUS.get(code, 400)
    status: int = shape.metadata.get("error", {}).get("httpStatusCode", FALLBACK_STATUS.get(code, 400))
    return status


def error_body(service: str, code: str, message: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    """Connect's error shapes name the member `Message`, Cases' `message`; boto3 reads either."""
    key = "Message" if service == CONNECT else "message"
    return {key: message, **extra}


@dataclass(frozen=True)
class Route:
    service: str
    operation: OperationModel
    method: str
    pattern: re.Pattern[str]
    labels: tuple[str, ...]  # URI label names, in group order
    literal_length: int  # more literal characters = more specific


def _compile(uri: str) -> tuple[re.Pattern[str], tuple[str, ...], int]:
    path = uri.split("?", 1)[0]
    regex, labels, literal, pos = "", [], 0, 0
    for match in re.finditer(r"\{([^}]+)\}", path):
        text = path[pos : match.start()]
        regex += re.escape(text)
        literal += len(text)
        name = match.group(1)
        if name.endswith("+"):
            labels.append(name[:-1])
            regex += "(.*)"
        else:
            labels.append(name)
            # Empty labels still route so that validation, not routing, reports them (min length 1).
            regex += "([^/]*)"
        pos = match.end()
    regex += re.escape(path[pos:])
    literal += len(path) - pos
    return re.compile(regex), tuple(labels), literal


@cache
def routes() -> tuple[Route, ...]:
    table = []
    for service, operations in IMPLEMENTED.items():
        model = service_model(service)
        for name in operations:
            op = model.operation_model(name)
            pattern, labels, literal = _compile(op.http["requestUri"])
            table.append(Route(service, op, op.http["method"], pattern, labels, literal))
    return tuple(sorted(table, key=lambda r: -r.literal_length))


def match_route(method: str, path: str, service_hint: str | None) -> tuple[Route, dict[str, str]] | None:
    """The route for a raw (still percent-encoded) path, preferring the signing service's operations."""
    candidates = sorted(routes(), key=lambda r: r.service != service_hint)
    for route in candidates:
        if route.method != method:
            continue
        found = route.pattern.fullmatch(path)
        if found:
            return route, {
                name: unquote(value) for name, value in zip(route.labels, found.groups(), strict=True)
            }
    return None


class BindError(Exception):
    """The request cannot be mapped onto the input shape (malformed JSON, non-numeric label)."""


def _scalar(shape: Shape, raw: str) -> Any:
    if shape.type_name in ("integer", "long"):
        try:
            return int(raw)
        except ValueError as e:
            raise BindError(f"'{raw}' is not an integer") from e
    if shape.type_name == "boolean":
        return raw.lower() == "true"
    if shape.type_name in ("double", "float"):
        try:
            return float(raw)
        except ValueError as e:
            raise BindError(f"'{raw}' is not a number") from e
    return raw


def bind_input(
    op: OperationModel,
    labels: Mapping[str, str],
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    """The operation's input as botocore would have built it (member names), from URI, query, headers, body."""
    shape = op.input_shape
    if shape is None:
        return {}
    document: Any = {}
    if body.strip():
        try:
            document = json.loads(body)
        except ValueError as e:
            raise BindError(f"Request body is not valid JSON: {e}") from e
        if not isinstance(document, dict):
            raise BindError("Request body must be a JSON object")
    params: dict[str, Any] = {}
    lower_headers = {k.lower(): v for k, v in headers.items()}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri":
            if wire in labels:
                params[name] = _scalar(member, labels[wire])
        elif location == "querystring":
            if member.type_name == "map":
                params[name] = {k: v[0] for k, v in query.items()}
            elif wire in query:
                values = query[wire]
                params[name] = (
                    [_scalar(member.member, v) for v in values]
                    if member.type_name == "list"
                    else _scalar(member, values[0])
                )
        elif location == "header":
            if wire.lower() in lower_headers:
                params[name] = _scalar(member, lower_headers[wire.lower()])
        elif location is None and wire in document and document[wire] is not None:
            params[name] = document[wire]
    return params


@cache
def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None  # a Java-only construct: skip rather than reject valid input


def _show(shape: Shape, value: Any) -> str:
    if shape.metadata.get("sensitive"):
        return "at"  # AWS leaves sensitive values out of its messages
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return f"'{text}' at"


def validate(shape: Shape, value: Any, path: str = "") -> list[str]:
    """Every constraint violation of `value` against `shape`, worded as AWS's Coral validator words them."""
    errors: list[str] = []
    _validate(shape, value, path, errors)
    return errors


def _fail(errors: list[str], shape: Shape, value: Any, path: str, constraint: str) -> None:
    errors.append(f"Value {_show(shape, value)} '{path}' failed to satisfy constraint: {constraint}")


def _check_size(errors: list[str], shape: Shape, value: Any, path: str, size: int, unit: str) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        _fail(errors, shape, value, path, f"Member must have {unit} greater than or equal to {low}")
    if high is not None and size > high:
        _fail(errors, shape, value, path, f"Member must have {unit} less than or equal to {high}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _validate(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            _fail(errors, shape, value, path, "Member must be a structure")
            return
        members = shape.members
        if shape.metadata.get("union"):
            present = [k for k, v in value.items() if v is not None]
            if len(present) != 1:
                errors.append(
                    f"Value at '{path}' failed to satisfy constraint: Exactly one member must be set, "
                    f"found {len(present)}" + (f" ({', '.join(sorted(present))})" if present else "")
                )
            unknown = [k for k in present if k not in members]
            if unknown:
                errors.append(
                    f"Value at '{path}' failed to satisfy constraint: Unknown union member {unknown[0]}"
                )
        for name in shape.metadata.get("required", []):
            if value.get(name) is None:
                errors.append(
                    f"Value null at '{_join(path, name)}' failed to satisfy constraint: Member must not be null"
                )
        for name, member in members.items():
            if value.get(name) is not None:
                _validate(member, value[name], _join(path, name), errors)
    elif kind == "list":
        if not isinstance(value, list):
            _fail(errors, shape, value, path, "Member must be a list")
            return
        _check_size(errors, shape, value, path, len(value), "length")
        for index, item in enumerate(value, start=1):
            if item is None:
                errors.append(
                    f"Value null at '{path}.{index}.member' failed to satisfy constraint: Member must not be null"
                )
            else:
                _validate(shape.member, item, f"{path}.{index}.member", errors)
    elif kind == "map":
        if not isinstance(value, dict):
            _fail(errors, shape, value, path, "Member must be a map")
            return
        _check_size(errors, shape, value, path, len(value), "length")
        for key, item in value.items():
            _validate(shape.key, key, f"{path}.key", errors)
            if item is None:
                errors.append(
                    f"Value null at '{path}.{key}' failed to satisfy constraint: Member must not be null"
                )
            else:
                _validate(shape.value, item, f"{path}.{key}", errors)
    elif kind == "string":
        if not isinstance(value, str):
            _fail(errors, shape, value, path, "Member must be a string")
            return
        _check_size(errors, shape, value, path, len(value), "length")
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            _fail(errors, shape, value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        pattern = shape.metadata.get("pattern")
        compiled = _regex(pattern) if pattern else None
        if compiled is not None and not compiled.fullmatch(value):
            _fail(errors, shape, value, path, f"Member must satisfy regular expression pattern: {pattern}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(errors, shape, value, path, "Member must be an integer")
            return
        _check_value(errors, shape, value, path)
    elif kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float) or not _fits_double(value):
            _fail(errors, shape, value, path, "Member must be a number")
            return
        _check_value(errors, shape, value, path)
    elif kind == "boolean":
        if not isinstance(value, bool):
            _fail(errors, shape, value, path, "Member must be a boolean")
    elif kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            _fail(errors, shape, value, path, "Member must be a timestamp")
    elif kind == "blob" and not isinstance(value, str):
        _fail(errors, shape, value, path, "Member must be base64 text")


def _check_value(errors: list[str], shape: Shape, value: float, path: str) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        _fail(errors, shape, value, path, f"Member must have value greater than or equal to {low}")
    if high is not None and value > high:
        _fail(errors, shape, value, path, f"Member must have value less than or equal to {high}")


def _timestamp(value: dt.datetime, fmt: str) -> Any:
    if fmt == "iso8601":
        return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return round(value.timestamp(), 3)


def encode_output(shape: Shape | None, value: Any, timestamp_format: str = "unixTimestamp") -> Any:
    """Python values (datetimes included) as the rest-json body encodes them; None members are left out."""
    if shape is None:
        return {}
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            if member.serialization.get("location") or value.get(name) is None:
                continue
            fmt = member.serialization.get("timestampFormat", "unixTimestamp")
            out[member.serialization.get("name", name)] = encode_output(member, value[name], fmt)
        return out
    if kind == "list":
        return [encode_output(shape.member, item) for item in value]
    if kind == "map":
        return {k: encode_output(shape.value, v) for k, v in value.items()}
    if kind == "timestamp" and isinstance(value, dt.datetime):
        return _timestamp(value, shape.serialization.get("timestampFormat", timestamp_format))
    return value


def _fits_double(value: int | float) -> bool:
    """Finite, and (for an int) small enough to be a double: 10**400 is neither."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
