"""Dead-letter message attributes: the reason, every original attribute, within SQS's limits."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from case_linker.dlq import (
    attributes_left_out,
    attributes_size,
    original_attributes,
    pack,
    plan_attributes,
    unpack,
)

LIMIT = 262_144


def record(attributes: dict[str, dict[str, str]], body: str = "{}") -> dict[str, Any]:
    return {
        "messageId": "m-1",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "3"},
        "messageAttributes": attributes,
    }


def kept(attributes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The originals a reader gets back: packed ones unpacked, the reason left out."""
    result = {
        k: v
        for k, v in attributes.items()
        if k not in {"ERROR_CODE", "ERROR_MESSAGE", "SOURCE_MESSAGE_ID", "RECEIVE_COUNT"}
    }
    if "ORIGINAL_ATTRIBUTES" in result:
        result.update(unpack(result.pop("ORIGINAL_ATTRIBUTES")["StringValue"]))
    return result


def test_given_a_failure_when_attributes_are_planned_then_the_reason_is_four_string_attributes() -> None:
    attributes = plan_attributes(record({}), "ValidationException", "content.comment.body: too long", LIMIT)

    assert attributes == {
        "ERROR_CODE": {"DataType": "String", "StringValue": "ValidationException"},
        "ERROR_MESSAGE": {"DataType": "String", "StringValue": "content.comment.body: too long"},
        "SOURCE_MESSAGE_ID": {"DataType": "String", "StringValue": "m-1"},
        "RECEIVE_COUNT": {"DataType": "String", "StringValue": "3"},
    }


def test_given_a_few_originals_when_dead_lettered_then_they_keep_their_names_in_send_format() -> None:
    originals = {
        "traceparent": {"stringValue": "00-abc", "dataType": "String"},
        "blob": {"binaryValue": base64.b64encode(b"\x00\x01").decode(), "dataType": "Binary"},
        "n": {"stringValue": "7", "dataType": "Number"},
    }

    attributes = plan_attributes(record(originals), "X", "y", LIMIT)

    assert attributes["traceparent"] == {"DataType": "String", "StringValue": "00-abc"}
    assert attributes["blob"] == {"DataType": "Binary", "BinaryValue": b"\x00\x01"}
    assert attributes["n"] == {"DataType": "Number", "StringValue": "7"}


@pytest.mark.parametrize("count", [7, 10])
def test_given_more_originals_than_fit_beside_the_reason_when_dead_lettered_then_all_are_packed(
    count: int,
) -> None:
    originals = {f"attr{i:02d}": {"stringValue": str(i), "dataType": "String"} for i in range(count)}
    originals["blob"] = {"binaryValue": base64.b64encode(b"\xff").decode(), "dataType": "Binary.gz"}

    attributes = plan_attributes(record(originals), "NewCode", "m", LIMIT)

    assert len(attributes) == 5
    assert attributes["ERROR_CODE"]["StringValue"] == "NewCode"
    assert kept(attributes) == original_attributes(record(originals))
    assert kept(attributes)["blob"] == {"DataType": "Binary.gz", "BinaryValue": b"\xff"}


def test_given_a_message_dead_lettered_before_when_dead_lettered_again_then_the_old_reason_is_replaced() -> (
    None
):
    originals = {
        "ERROR_CODE": {"stringValue": "OldCode", "dataType": "String"},
        "ORIGINAL_ATTRIBUTES": {
            "stringValue": pack({"a": {"DataType": "String", "StringValue": "1"}}),
            "dataType": "String",
        },
    }

    attributes = plan_attributes(record(originals), "NewCode", "m", LIMIT)

    assert attributes["ERROR_CODE"]["StringValue"] == "NewCode"
    assert kept(attributes) == {"a": {"DataType": "String", "StringValue": "1"}}


def test_given_a_long_error_message_when_dead_lettered_then_it_is_truncated() -> None:
    assert len(plan_attributes(record({}), "X", "m" * 5000, LIMIT)["ERROR_MESSAGE"]["StringValue"]) == 1000


@pytest.mark.parametrize("spare", [400, 120, 60])
def test_given_a_body_near_the_limit_when_dead_lettered_then_the_reason_shrinks_and_the_error_code_stays(
    spare: int,
) -> None:
    originals = {"producer": {"stringValue": "crm", "dataType": "String"}}
    originals_size = attributes_size(original_attributes(record(originals)))
    body = "x" * (LIMIT - originals_size - spare)

    attributes = plan_attributes(record(originals, body), "ResourceNotFoundException", "m" * 900, LIMIT)

    assert len(body) + attributes_size(attributes) <= LIMIT
    assert attributes["ERROR_CODE"]["StringValue"] == "ResourceNotFoundException"
    assert kept(attributes) == {"producer": {"DataType": "String", "StringValue": "crm"}}


def test_given_no_room_even_for_the_code_beside_the_originals_then_the_code_wins() -> None:
    originals = {"producer": {"stringValue": "crm", "dataType": "String"}}
    body = "x" * (LIMIT - attributes_size(original_attributes(record(originals))))

    attributes = plan_attributes(record(originals, body), "ResourceNotFoundException", "m", LIMIT)

    assert attributes == {"ERROR_CODE": {"DataType": "String", "StringValue": "ResourceNotFoundException"}}
    assert attributes_left_out(record(originals, body), attributes) == 1


def test_pack_and_unpack_round_trip_and_unreadable_packs_are_kept_whole() -> None:
    attributes: dict[str, dict[str, Any]] = {
        "s": {"DataType": "String", "StringValue": "é"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x00"},
    }
    assert unpack(pack(attributes)) == attributes
    assert json.loads(pack(attributes))["b"] == {"DataType": "Binary", "BinaryValue": "AA=="}
    assert unpack("not json") == {"ORIGINAL_ATTRIBUTES": {"DataType": "String", "StringValue": "not json"}}


@pytest.mark.parametrize(
    "packed",
    [
        '{"b": {"DataType": "Binary", "BinaryValue": "abc"}}',  # not base64 (padding)
        '{"b": {"DataType": "Binary", "BinaryValue": "A"}}',
    ],
)
def test_given_a_producers_packed_attributes_with_a_broken_binary_then_they_are_kept_whole_not_raised(
    packed: str,
) -> None:
    # A producer may send its own ORIGINAL_ATTRIBUTES: the record must still be dead-lettered (or re-sent) with it
    message = record({"ORIGINAL_ATTRIBUTES": {"dataType": "String", "stringValue": packed}})

    assert unpack(packed) == {"ORIGINAL_ATTRIBUTES": {"DataType": "String", "StringValue": packed}}
    assert original_attributes(message) == unpack(packed)
    attributes = plan_attributes(message, "BadRequest", "invalid", max_bytes=LIMIT)
    assert kept(attributes) == {"ORIGINAL_ATTRIBUTES": {"DataType": "String", "StringValue": packed}}
