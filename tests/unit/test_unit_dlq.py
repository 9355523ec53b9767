"""Dead-letter message attributes: ours, plus originals within SQS's limit of ten."""

from __future__ import annotations

import base64

from case_linker.dlq import dead_letter_attributes


def record(attributes: dict[str, dict[str, str]]) -> dict[str, object]:
    return {
        "messageId": "m-1",
        "body": "{}",
        "attributes": {"ApproximateReceiveCount": "3"},
        "messageAttributes": attributes,
    }


def test_given_a_failure_when_attributes_are_built_then_ours_are_string_attributes() -> None:
    attributes = dead_letter_attributes(record({}), "ValidationException", "content.comment.body: too long")

    assert attributes == {
        "ERROR_CODE": {"DataType": "String", "StringValue": "ValidationException"},
        "ERROR_MESSAGE": {"DataType": "String", "StringValue": "content.comment.body: too long"},
        "SOURCE_MESSAGE_ID": {"DataType": "String", "StringValue": "m-1"},
        "RECEIVE_COUNT": {"DataType": "String", "StringValue": "3"},
    }


def test_given_original_attributes_when_dead_lettered_then_they_are_kept_in_send_format() -> None:
    originals = {
        "traceparent": {"stringValue": "00-abc", "dataType": "String"},
        "blob": {"binaryValue": base64.b64encode(b"\x00\x01").decode(), "dataType": "Binary"},
        "n": {"stringValue": "7", "dataType": "Number"},
    }

    attributes = dead_letter_attributes(record(originals), "X", "y")

    assert attributes["traceparent"] == {"DataType": "String", "StringValue": "00-abc"}
    assert attributes["blob"] == {"DataType": "Binary", "BinaryValue": b"\x00\x01"}
    assert attributes["n"] == {"DataType": "Number", "StringValue": "7"}


def test_given_too_many_original_attributes_when_dead_lettered_then_ours_win_and_the_total_is_ten() -> None:
    originals = {f"attr{i:02d}": {"stringValue": str(i), "dataType": "String"} for i in range(12)}
    originals["ERROR_CODE"] = {"stringValue": "OldCode", "dataType": "String"}

    attributes = dead_letter_attributes(record(originals), "NewCode", "m")

    assert len(attributes) == 10
    assert attributes["ERROR_CODE"]["StringValue"] == "NewCode"
    assert sorted(k for k in attributes if k.startswith("attr")) == [f"attr{i:02d}" for i in range(6)]


def test_given_a_long_error_message_when_dead_lettered_then_it_is_truncated() -> None:
    assert len(dead_letter_attributes(record({}), "X", "m" * 5000)["ERROR_MESSAGE"]["StringValue"]) == 1000
