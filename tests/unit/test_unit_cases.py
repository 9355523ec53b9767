"""AWS error responses become our own errors by code and status, never by message text."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from case_linker.cases import batch_outcome, translate
from case_linker.errors import (
    AmbiguousError,
    CaseBusyError,
    LinkerError,
    PermanentError,
    ThrottledError,
    TransientError,
    error_code,
)


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
        ("ConflictException", 409, True, CaseBusyError),
        ("ExpiredTokenException", 403, True, TransientError),
    ],
)
def test_error_codes_translate_to_our_outcomes(code: str, status: int, ambiguous: bool, kind: type) -> None:
    error = translate(client_error(code, status), "CreateRelatedItem", ambiguous=ambiguous)

    assert type(error) is kind
    assert error.code == code


def test_an_errors_code_is_the_services_code_or_empty_for_anything_else() -> None:
    assert (
        error_code(client_error("ConditionalCheckFailedException", 400)) == "ConditionalCheckFailedException"
    )
    assert error_code(ClientError({"ResponseMetadata": {"HTTPStatusCode": 500}}, "Op")) == ""
    assert error_code(ConnectionError("reset by peer")) == ""


def test_the_translated_message_carries_no_text_from_the_service() -> None:
    error = translate(
        client_error("ValidationException", 400, "Value 'jane@example.com' is bad"), "CreateRelatedItem"
    )
    assert "example.com" not in error.message


@pytest.mark.parametrize(
    ("error_code", "kind", "code"),
    [
        ("CASE_NOT_FOUND", PermanentError, "ResourceNotFoundException"),
        ("VALIDATION_ERROR", PermanentError, "ValidationException"),
        ("ACCESS_DENIED", PermanentError, "AccessDeniedException"),
        ("SERVICE_QUOTA_EXCEEDED", PermanentError, "ServiceQuotaExceededException"),
        ("CONFLICT", CaseBusyError, "ConflictException"),
        ("THROTTLED", ThrottledError, "ThrottlingException"),
        ("INTERNAL_ERROR", TransientError, "InternalServerException"),
        ("SOMETHING_NEW", TransientError, "SOMETHING_NEW"),
    ],
)
def test_a_batch_per_case_failure_becomes_our_error_without_the_service_message(
    error_code: str, kind: type, code: str
) -> None:
    response = {
        "successfulItems": [],
        "failedItems": [
            {"caseIdentifier": {"caseId": "c"}, "errorCode": error_code, "errorMessage": "body: secret"}
        ],
    }

    with pytest.raises(LinkerError) as raised:
        batch_outcome(response)

    assert type(raised.value) is kind
    assert raised.value.code == code
    assert "secret" not in str(raised.value)
    assert not isinstance(raised.value, AmbiguousError)  # a failed entry was not created


def test_a_batch_success_gives_the_item_and_the_case_it_went_on() -> None:
    response = {
        "successfulItems": [
            {
                "caseIdentifier": {"caseId": "c-1", "referenceId": "R-1"},
                "relatedItemId": "r",
                "relatedItemArn": "a",
            }
        ],
        "failedItems": [],
    }
    made = batch_outcome(response)
    assert (made.related_item_id, made.case_id) == ("r", "c-1")
