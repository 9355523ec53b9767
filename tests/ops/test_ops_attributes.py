"""Unit: the dead-letter attribute contract as replay applies it (docs/CONTRACTS.md). No network.

GIVEN a DLQ message's attributes (reason, originals as they are or packed), WHEN replay rewrites them,
THEN the reason is gone, the originals are back as separate attributes, and REPLAYED=dlq is always there.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ops.attributes import (
    ATTRIBUTE_NAME,
    MAX_MESSAGE_ATTRIBUTES,
    ORIGINAL_ATTRIBUTES,
    REPLAYED_ATTRIBUTE,
    UnreadableOriginals,
    pack,
    replay_attributes,
    unpack,
)
from ops.summary import summarise
from tests.ops.helpers import connect_event, error_attributes

MARK = {REPLAYED_ATTRIBUTE: {"DataType": "String", "StringValue": "dlq"}}


def producer_attributes(count: int) -> dict[str, dict[str, Any]]:
    return {f"attr{i:02d}": {"DataType": "String", "StringValue": f"value {i}"} for i in range(count)}


def packed(originals: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {ORIGINAL_ATTRIBUTES: {"DataType": "String", "StringValue": pack(originals)}}


def test_replay_drops_every_reason_attribute_keeps_the_rest_and_marks_the_message() -> None:
    attributes = {
        **error_attributes("X"),
        "traceparent": {"DataType": "String", "StringValue": "t", "StringListValues": []},
        **{
            name: {"DataType": "String", "StringValue": "v"}
            for name in ("RULE_ARN", "TARGET_ARN", "EXHAUSTED_RETRY_CONDITION", "RETRY_ATTEMPTS")
        },
    }
    assert replay_attributes(attributes) == {
        "traceparent": {"DataType": "String", "StringValue": "t"},
        **MARK,
    }


def test_a_message_with_ten_producer_attributes_is_still_marked_with_the_originals_packed() -> None:
    originals = producer_attributes(10)

    sent = replay_attributes(originals)

    assert sent.keys() == {ORIGINAL_ATTRIBUTES, REPLAYED_ATTRIBUTE}
    assert unpack(sent[ORIGINAL_ATTRIBUTES]["StringValue"]) == originals


def test_packed_originals_are_unpacked_when_they_fit_beside_replayed() -> None:
    originals = producer_attributes(7)
    attributes = {**error_attributes("ThrottlingException"), **packed(originals)}

    assert replay_attributes(attributes) == {**originals, **MARK}


def test_nine_originals_plus_replayed_make_ten_and_go_unpacked() -> None:
    originals = producer_attributes(MAX_MESSAGE_ATTRIBUTES - 1)
    assert replay_attributes({**error_attributes("X"), **packed(originals)}) == {**originals, **MARK}


def test_binary_originals_survive_packing_and_unpacking() -> None:
    originals = {"blob": {"DataType": "Binary", "BinaryValue": b"\x00\xffdata"}, **producer_attributes(10)}
    document = json.loads(pack(originals))
    assert document["blob"] == {
        "DataType": "Binary",
        "BinaryValue": base64.b64encode(b"\x00\xffdata").decode(),
    }

    sent = replay_attributes(originals)

    assert unpack(sent[ORIGINAL_ATTRIBUTES]["StringValue"])["blob"]["BinaryValue"] == b"\x00\xffdata"


def test_a_replayed_message_failing_again_is_marked_once() -> None:
    attributes = {**error_attributes("X"), **MARK, **producer_attributes(2)}
    assert replay_attributes(attributes) == {**producer_attributes(2), **MARK}


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "[1, 2]",
        '{"a": "b"}',
        '{"a": {"DataType": "String"}}',
        '{"a": {"DataType": "Binary", "BinaryValue": "***"}}',
        # a name SQS refuses, quoting it (a producer's own ORIGINAL_ATTRIBUTES, kept packed by the linker)
        '{"jane.doe@example.com": {"DataType": "String", "StringValue": "x"}}',
        # nested deeper than the parser goes: the linker keeps such a producer's own attribute as it came
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_unreadable_original_attributes_are_refused_without_echoing_them(value: str) -> None:
    with pytest.raises(UnreadableOriginals) as raised:
        replay_attributes({ORIGINAL_ATTRIBUTES: {"DataType": "String", "StringValue": value}})
    assert value not in str(raised.value)


def test_the_replay_marker_is_the_attribute_the_linker_reads() -> None:
    from case_linker import processor

    assert processor.REPLAYED_ATTRIBUTE == REPLAYED_ATTRIBUTE


def test_a_summary_counts_packed_originals_and_reads_the_reason() -> None:
    message = {
        "MessageId": "m-1",
        "Body": connect_event("c-1"),
        "MessageAttributes": {**error_attributes("ThrottlingException"), **packed(producer_attributes(12))},
        "Attributes": {"SentTimestamp": str(int(datetime.now(UTC).timestamp() * 1000))},
    }
    s = summarise(message)
    assert (s.error_code, s.original_attributes, s.originals_packed) == ("ThrottlingException", 12, True)
    assert s.source_message_id == "src-1"


def test_a_reason_without_error_message_is_summarised_with_its_code_only() -> None:
    message = {
        "MessageId": "m",
        "Body": "{}",
        "MessageAttributes": {"ERROR_CODE": {"DataType": "String", "StringValue": "ValidationException"}},
    }
    s = summarise(message)
    assert (s.error_code, s.error_message, s.original_attributes) == ("ValidationException", None, 0)


@pytest.mark.parametrize("producer_count", [0, 3, 7, 10])
def test_what_the_linker_dead_letters_replays_with_every_original_and_the_mark(producer_count: int) -> None:
    # GIVEN the linker's own dead-letter attributes for a record carrying N producer attributes
    from case_linker.dlq import plan_attributes

    record = {
        "messageId": "m-1",
        "body": "{}",
        "attributes": {"ApproximateReceiveCount": "3"},
        "messageAttributes": {
            f"attr{i:02d}": {"dataType": "String", "stringValue": f"value {i}"} for i in range(producer_count)
        },
    }
    dead_lettered = plan_attributes(record, "ThrottlingException", "throttled", 256 * 1024)

    # WHEN ops replays them
    sent = replay_attributes(dead_lettered)

    # THEN every original comes back (packed only if they and REPLAYED exceed 10) and the message is marked
    assert sent[REPLAYED_ATTRIBUTE] == MARK[REPLAYED_ATTRIBUTE]
    unpacked = unpack(sent[ORIGINAL_ATTRIBUTES]["StringValue"]) if ORIGINAL_ATTRIBUTES in sent else sent
    assert {k: v for k, v in unpacked.items() if k != REPLAYED_ATTRIBUTE} == producer_attributes(
        producer_count
    )
    assert len(sent) <= MAX_MESSAGE_ATTRIBUTES


def test_replay_takes_the_attribute_names_the_linker_sends() -> None:
    # The pattern is written twice: ops ships without the function's code (ATTRIBUTE_NAME beside dlq's).
    from case_linker import dlq

    assert ATTRIBUTE_NAME.pattern == dlq._ATTRIBUTE_NAME.pattern
