"""AWS error responses become our own errors by code and status, never by message text."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from case_linker.cases import translate
from case_linker.errors import AmbiguousError, PermanentError, ThrottledError, TransientError


def client_error(code: str, status: int, message: str = "whatever") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


@pytest.mark.parametrize(
    ("code", "status", "ambiguous", "kind"),
    [
        ("ThrottlingException", 429, False, ThrottledError),
        ("ThrottlingException", 429, True, ThrottledError),
        ("SomethingNew", 429, True, ThrottledError),
        ("ResourceNotFoundException", 404, True, PermanentError),
        ("AccessDeniedException", 403, False, PermanentError),
        ("ServiceQuotaExceededException", 402, True, PermanentError),
        ("ValidationException", 400, True, PermanentError),
        ("InvalidParameterException", 400, False, PermanentError),
        ("InternalServerException", 500, True, AmbiguousError),
        ("InternalServerException", 500, False, TransientError),
        ("ConflictException", 409, True, TransientError),
        ("ExpiredTokenException", 403, True, TransientError),
    ],
)
def test_error_codes_translate_to_our_outcomes(code: str, status: int, ambiguous: bool, kind: type) -> None:
    error = translate(client_error(code, status), "CreateRelatedItem", ambiguous=ambiguous)

    assert type(error) is kind
    assert error.code == code


def test_the_translated_message_carries_no_text_from_the_service() -> None:
    error = translate(
        client_error("ValidationException", 400, "Value 'jane@example.com' is bad"), "CreateRelatedItem"
    )
    assert "example.com" not in error.message
