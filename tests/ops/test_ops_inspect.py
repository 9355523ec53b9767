"""Functional: `dlq stats` and `dlq peek` through the CLI against moto's HTTP server."""

from __future__ import annotations

from typing import Any

from ops.attributes import ORIGINAL_ATTRIBUTES, pack
from ops.errors import ExitCode
from ops.summary import REDRIVEN_LABEL
from tests.ops.conftest import Invoke, json_result
from tests.ops.helpers import (
    EMAIL,
    PHONE,
    SECRET_COMMENT,
    StackQueues,
    comment_request,
    connect_event,
    depth,
    drain,
    error_attributes,
    put,
)


def fill(sqs: Any, queues: StackQueues) -> None:
    put(sqs, queues.processing_dlq, connect_event("c-1"), error_attributes("ValidationException"))
    put(sqs, queues.processing_dlq, connect_event("c-2"), error_attributes("ValidationException"))
    put(
        sqs,
        queues.processing_dlq,
        comment_request("case-9"),
        error_attributes("ResourceNotFoundException", f"no case; {EMAIL}"),
    )
    put(sqs, queues.processing_dlq, connect_event("c-3"))  # redriven by SQS: no error attributes
    put(
        sqs,
        queues.rule_target_dlq,
        connect_event("c-4"),
        {"ERROR_CODE": {"DataType": "String", "StringValue": "SDK_CLIENT_ERROR"}},
    )


def test_stats_counts_by_error_code_per_dlq(run_cli: Invoke, sqs: Any, queues: StackQueues) -> None:
    fill(sqs, queues)
    result = run_cli([*queues.args(), "--output", "json", "dlq", "stats"])
    by_dlq = {r["dlq"]: r for r in json_result(result)["dlqs"]}
    assert by_dlq["processing"]["depth"] == 4
    assert by_dlq["processing"]["by_error_code"] == {
        "ValidationException": 2,
        REDRIVEN_LABEL: 1,
        "ResourceNotFoundException": 1,
    }
    assert by_dlq["rule-target"]["by_error_code"] == {"SDK_CLIENT_ERROR": 1}
    assert (by_dlq["processing"]["account"], by_dlq["processing"]["region"]) == ("123456789012", "us-east-1")
    # moto has no SQS metrics in CloudWatch: the age comes from the peeked messages, and says so
    assert "SentTimestamp" in by_dlq["processing"]["oldest_age_source"]
    assert by_dlq["processing"]["oldest_age_seconds"] is not None


def test_stats_as_a_table_labels_redriven_messages(run_cli: Invoke, sqs: Any, queues: StackQueues) -> None:
    fill(sqs, queues)
    result = run_cli([*queues.args(), "dlq", "stats"])
    assert result.exit_code == 0, result.output
    assert "ValidationException: 2" in result.stdout
    assert f"{REDRIVEN_LABEL}: 1" in result.stdout
    assert depth(sqs, queues.processing_dlq) == (4, 0)


def test_stats_on_empty_dlqs_reports_zero_and_succeeds(run_cli: Invoke, queues: StackQueues) -> None:
    result = run_cli([*queues.args(), "dlq", "stats", "--output", "json"])
    assert result.exit_code == 0
    assert [r["depth"] for r in json_result(result)["dlqs"]] == [0, 0]


def test_the_old_json_flag_still_gives_the_json_document(run_cli: Invoke, queues: StackQueues) -> None:
    result = run_cli([*queues.args(), "dlq", "stats", "--json"])
    assert [r["dlq"] for r in json_result(result)["dlqs"]] == ["processing", "rule-target"]


def test_peek_does_not_consume_messages(run_cli: Invoke, sqs: Any, queues: StackQueues) -> None:
    fill(sqs, queues)
    result = run_cli([*queues.args(), "dlq", "peek", "--max", "10"])
    assert result.exit_code == 0, result.output
    # THEN every message is still there and visible right away
    assert depth(sqs, queues.processing_dlq) == (4, 0)
    assert depth(sqs, queues.rule_target_dlq) == (1, 0)
    assert len(drain(sqs, queues.processing_dlq)) == 4


def test_peek_never_prints_comment_bodies_or_contact_details(
    run_cli: Invoke, sqs: Any, queues: StackQueues
) -> None:
    fill(sqs, queues)
    for output in ("table", "json", "text"):
        result = run_cli([*queues.args(), "dlq", "peek", "--output", output])
        assert result.exit_code == 0, result.output
        for secret in (SECRET_COMMENT, "refund", PHONE, EMAIL):
            assert secret not in result.output
        assert "case-9" in result.output
        assert "Comment" in result.output
        assert "c-1" in result.output


def test_peek_json_carries_ids_types_and_the_reason(run_cli: Invoke, sqs: Any, queues: StackQueues) -> None:
    fill(sqs, queues)
    result = run_cli([*queues.args(), "dlq", "peek", "--output", "json", "--dlq", "processing"])
    records = json_result(result)["messages"]
    assert len(records) == 4
    by_contact = {r["contact_id"]: r for r in records if r["contact_id"]}
    assert by_contact["c-1"]["event_type"] == "COMPLETED"
    assert by_contact["c-1"]["error_code"] == "ValidationException"
    assert by_contact["c-1"]["receive_count"] == 3
    assert by_contact["c-1"]["source_message_id"] == "src-1"
    assert by_contact["c-3"]["error_label"] == REDRIVEN_LABEL
    comment = next(r for r in records if r["case_id"] == "case-9")
    assert comment["item_type"] == "Comment"
    assert comment["error_message"] == "no case; <email>"


def test_peek_counts_originals_packed_in_original_attributes(
    run_cli: Invoke, sqs: Any, queues: StackQueues
) -> None:
    # GIVEN a message whose 12 producer attributes did not fit beside the reason: the linker packed them
    originals = {f"a{i}": {"DataType": "String", "StringValue": str(i)} for i in range(12)}
    put(
        sqs,
        queues.processing_dlq,
        connect_event("c-1"),
        {
            **error_attributes("ThrottlingException"),
            ORIGINAL_ATTRIBUTES: {"DataType": "String", "StringValue": pack(originals)},
        },
    )

    table = run_cli([*queues.args(), "dlq", "peek"])
    [record] = json_result(run_cli([*queues.args(), "dlq", "peek", "--output", "json"]))["messages"]

    assert (record["original_attributes"], record["originals_packed"]) == (12, True)
    assert record["error_code"] == "ThrottlingException"
    assert "12 packed" in table.stdout


def test_peek_on_an_empty_dlq_says_so_with_exit_5(run_cli: Invoke, queues: StackQueues) -> None:
    result = run_cli([*queues.args(), "dlq", "peek"])
    assert result.exit_code == ExitCode.NOTHING_TO_DO
    assert "nothing to peek" in result.stderr
