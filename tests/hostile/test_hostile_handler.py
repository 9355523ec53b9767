"""The real handler on batches of hostile bodies, through the local pipeline (moto SQS + DynamoDB, the emulator).

GIVEN hostile bodies on the queue, WHEN the real handler drains it, THEN each one ends linked, skipped with a
reason, or in the DLQ with an ERROR_CODE and ERROR_MESSAGE; no invocation crashes; nothing is lost or doubled.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from local import Input, LocalPipeline, Outcome, PipelineOptions, Reconciliation
from local.runtime import InvocationStatus
from tests.hostile.strategies import INJECTIONS

pytestmark = pytest.mark.slow

DOMAIN = "hostile-domain"
INSTANCE_ID = "4b3f5c2e-8d1a-4e6f-9a7b-2c1d0e9f8a7b"
INSTANCE_ARN = f"arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE_ID}"
CASE = "case-ok-1"


def comment(case_id: Any, body: Any, **extra: Any) -> dict[str, Any]:
    return {
        "caseId": case_id,
        "type": "Comment",
        "content": {"comment": {"body": body, "contentType": "Text/Plain"}},
        **extra,
    }


def custom(value: Any) -> str:
    return (
        '{"caseId": "case-ok-1", "type": "Custom", "content": {"custom": {"fields": '
        f'[{{"id": "f1", "value": {{"doubleValue": {value}}}}}]}}}}}}'
    )


def contact(contact_id: str, **detail: Any) -> dict[str, Any]:
    base = {
        "eventType": "COMPLETED",
        "contactId": contact_id,
        "instanceArn": INSTANCE_ARN,
        "channel": "VOICE",
    }
    return {
        "version": "0",
        "id": f"evt-{contact_id}",
        "detail-type": "Amazon Connect Contact Event",
        "source": "aws.connect",
        "detail": {**base, **detail},
    }


@dataclass(frozen=True)
class Case:
    name: str
    body: str
    # linked | skipped | dead_lettered | any (any of the three, the point being "not lost, not crashed")
    outcome: str
    code: str | None = None


def cases() -> list[Case]:
    found: list[Case] = [
        Case("malformed", '{"caseId": "case-ok-1", "type": "Comm', "dead_lettered", "InvalidJson"),
        Case("empty body", "", "dead_lettered", "InvalidJson"),
        Case("json null", "null", "dead_lettered", "UnknownMessageShape"),
        Case("json array", "[1, 2, 3]", "dead_lettered", "UnknownMessageShape"),
        Case("deep nesting", "[" * 20_000 + "]" * 20_000, "dead_lettered", "InvalidJson"),
        Case(
            "huge comment", json.dumps(comment(CASE, "x" * 200_000)), "dead_lettered", "ValidationException"
        ),
        Case(
            "comment 15001", json.dumps(comment(CASE, "y" * 15_001)), "dead_lettered", "ValidationException"
        ),
        Case("comment 15000", json.dumps(comment(CASE, "z" * 15_000)), "linked"),
        Case(
            "lone surrogate", json.dumps(comment(CASE, "\ud800 hi")), "dead_lettered", "ValidationException"
        ),
        Case("controls", json.dumps(comment(CASE, "\x00\x07\x1b[31m red \u202e")), "linked"),
        Case("emoji", json.dumps(comment(CASE, "\U0001f600" * 100), ensure_ascii=False), "linked"),
        Case(
            "wrong types",
            json.dumps({"caseId": 1, "type": ["Comment"], "content": "x"}),
            "dead_lettered",
            "ValidationException",
        ),
        Case(
            "union two members",
            json.dumps(
                {
                    **comment(CASE, "a"),
                    "content": {
                        "comment": {"body": "a", "contentType": "Text/Plain"},
                        "file": {"fileArn": "arn:f"},
                    },
                }
            ),
            "dead_lettered",
            "ValidationException",
        ),
        Case(
            "unknown case",
            json.dumps(comment("no-such-case", "hello")),
            "dead_lettered",
            "ResourceNotFoundException",
        ),
        Case(
            "path traversal case id",
            json.dumps(comment("../../domains", "hello")),
            "dead_lettered",
            "ResourceNotFoundException",
        ),
        Case(
            "url-encoded case id",
            json.dumps(comment("..%2F..%2Fdomains", "hello")),
            "dead_lettered",
            "ValidationException",
        ),
        Case(
            "another domain",
            json.dumps(comment(CASE, "hello", domainId="other-domain")),
            "dead_lettered",
            "ValidationException",
        ),
        Case("custom NaN", custom("NaN"), "dead_lettered"),
        Case("custom Infinity", custom("Infinity"), "dead_lettered"),
        Case("custom 1e400", custom("1" + "0" * 400), "dead_lettered"),
        Case("custom ok", custom("1.5"), "linked"),
        Case(
            "contact tag case id traversal",
            json.dumps(contact("c-2", tags={"caseId": "../../x"})),
            "dead_lettered",
            "ResourceNotFoundException",
        ),
        Case(
            "contact tag case id injection",
            json.dumps(contact("c-3", tags={"caseId": "1' OR '1'='1"})),
            "dead_lettered",
            "ValidationException",
        ),
        Case(
            "contact unknown to connect",
            json.dumps(contact("c-unknown")),
            "dead_lettered",
            "ResourceNotFoundException",
        ),
        Case("contact no case id", json.dumps(contact("c-none")), "skipped"),
        Case("contact ok", json.dumps(contact("c-ok")), "linked"),
        Case("contact lowercase type", json.dumps(contact("c-ok2", eventType=" completed ")), "linked"),
        Case(
            "contact wrong types",
            json.dumps(contact("c-x", contactId=["a"], tags="x", agentInfo=7)),
            "dead_lettered",
            "ValidationException",
        ),
        Case(
            "contact bad instance arn",
            json.dumps(contact("c-y", instanceArn="arn:aws:s3:::bucket")),
            "dead_lettered",
            "ValidationException",
        ),
        Case(
            "envelope unknown detail-type",
            json.dumps({"detail-type": "<script>", "detail": {}}),
            "dead_lettered",
            "UnknownMessageShape",
        ),
    ]
    for index, text in enumerate(INJECTIONS):
        found.append(Case(f"injection case id {index}", json.dumps(comment(text, "hello")), "any"))
        found.append(
            Case(f"injection comment {index}", json.dumps(comment(CASE, f"{text} #{index}")), "linked")
        )
    return found


CASES = cases()


def seed() -> dict[str, Any]:
    contacts = [
        {"instanceId": INSTANCE_ID, "contactId": cid, "channel": "VOICE", "attributes": attributes}
        for cid, attributes in (
            ("c-ok", {"caseId": CASE}),
            ("c-ok2", {"caseId": "case-ok-2"}),
            ("c-none", {"other": "x"}),
            ("c-x", {"caseId": CASE}),
        )
    ]
    cases_ = [{"id": CASE, "title": "one"}, {"id": "case-ok-2", "title": "two"}]
    return {"domains": [{"id": DOMAIN, "name": "hostile", "cases": cases_}], "contacts": contacts}


@dataclass
class Run:
    result: Reconciliation
    statuses: list[InvocationStatus]


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    options = PipelineOptions(
        inputs=[Input.of(c.name, c.body) for c in CASES],
        seed=seed(),
        expected={},
        context={"casesDomainId": DOMAIN, "connectInstanceArn": INSTANCE_ARN, "casesRequestsPerSecond": 100},
        throttling=False,
        function_timeout_s=20,
        visibility_timeout_s=8,
        batching_window_s=0.2,
        max_receive_count=3,
    )
    with LocalPipeline(options) as pipeline:
        pipeline.publish(pipeline.inputs, route="queue")
        result = pipeline.drain(timeout_s=150)
        yield Run(result, [i.status for i in pipeline.poller.invocations])


def test_given_hostile_bodies_when_drained_then_nothing_is_lost_or_doubled(run: Run) -> None:
    summary = run.result.summary()
    assert summary["drained"]
    assert summary["lost"] == 0
    assert summary["pending"] == 0
    assert summary["duplicates"] == 0


def test_given_hostile_bodies_when_drained_then_no_invocation_crashes(run: Run) -> None:
    assert run.statuses
    assert all(status is InvocationStatus.OK for status in run.statuses), run.statuses


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_given_a_hostile_body_when_drained_then_it_ends_linked_skipped_or_dead_lettered_with_a_reason(
    run: Run, case: Case
) -> None:
    result = next(r for r in run.result.inputs if r.name == case.name)

    assert result.outcome in (Outcome.LINKED, Outcome.SKIPPED, Outcome.DEAD_LETTERED), result
    if result.outcome is Outcome.DEAD_LETTERED:
        # A reason from the linker, not SQS giving up after maxReceiveCount (which carries none).
        assert result.error_code not in (None, "", "maxReceiveCount"), result
        assert result.error_message, result
    if case.outcome != "any":
        assert result.outcome.value == case.outcome, result
    if case.code is not None:
        assert result.error_code == case.code, result
    if result.outcome is Outcome.LINKED:
        assert result.items == 1, result
