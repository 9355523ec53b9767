"""Pagination tokens. Cases' are plain offsets; Connect SearchContacts' remember where the last page ended."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, TypeVar

from emulator.model import ApiError

T = TypeVar("T")


def offset_page(
    items: list[T], token: str | None, size: int, error_code: str = "ValidationException"
) -> tuple[list[T], str | None]:
    """One page of `items` from the offset the token holds, and the token of the next page (None at the end)."""
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode())
        except ValueError as e:
            raise ApiError(error_code, "The nextToken is not valid") from e
    end = start + size
    next_token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return items[start:end], next_token


def fingerprint(request: dict[str, Any]) -> str:
    """A short digest of a request, so a token is only accepted by the query that issued it."""
    text = json.dumps(request, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_token(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def decode_token(token: str, error_code: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError as e:
        raise ApiError(error_code, "The NextToken is not valid") from e
    if not isinstance(state, dict):
        raise ApiError(error_code, "The NextToken is not valid")
    return state
