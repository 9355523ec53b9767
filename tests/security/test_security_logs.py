"""No customer data in what the function writes: logs, EMF metrics, DLQ error attributes.

GIVEN comment bodies, phone numbers and email addresses planted in comments, contact attributes, contact
tags and in permanently bad inputs, WHEN the real handler drains them through the local pipeline (with debug
logging on, as during an incident), THEN none of them appears in any log stream (Powertools JSON logs, EMF
blobs, tracebacks), in any metric dimension, or in an ERROR_MESSAGE on the DLQ.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from local import Input, LocalPipeline, Outcome, PipelineOptions, Reconciliation

pytestmark = pytest.mark.slow

DOMAIN = "security-domain"
INSTANCE_ID = "4b3f5c2e-8d1a-4e6f-9a7b-2c1d0e9f8a7b"
INSTANCE_ARN = f"arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE_ID}"
CASE_A, CASE_B = "case-sec-a", "case-sec-b"
CONTACT_ATTR, CONTACT_TAG = "c0ffee00-0000-4000-8000-000000000001", "c0ffee00-0000-4000-8000-000000000002"

# Planted customer data. Each phone number also appears compacted, as some producers send it.
PHONES = ["+1 206 555 0100", "+1 206 555 0101", "+1 (206) 555-0102", "+1 206 555 0103"]
EMAILS = ["jane.doe@example.com", "j.smith+vip@example.org", "ops-pager@example.net", "bad.json@example.com"]
SECRETS = ["SENTINEL-COMMENT-93b1", "SENTINEL-ATTRIBUTE-77c4", "SENTINEL-TAG-55a0", "SENTINEL-BAD-0d2e"]


def needles() -> list[str]:
    found = [*EMAILS, *SECRETS]
    for phone in PHONES:
        digits = "".join(c for c in phone if c.isdigit())
        found += [phone, "+" + digits, digits[1:]]
    return found


def comment(case_id: str, body: str) -> str:
    return json.dumps(
        {
            "caseId": case_id,
            "type": "Comment",
            "content": {"comment": {"body": body, "contentType": "Text/Plain"}},
        }
    )


def contact(contact_id: str, **detail: Any) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": f"evt-{contact_id}",
            "detail-type": "Amazon Connect Contact Event",
            "source": "aws.connect",
            "detail": {
                "eventType": "COMPLETED",
                "contactId": contact_id,
                "instanceArn": INSTANCE_ARN,
                "channel": "VOICE",
                "customerEndpoint": {"address": PHONES[3], "type": "TELEPHONE_NUMBER"},
                **detail,
            },
        }
    )


INPUTS = [
    Input.of("comment", comment(CASE_A, f"Customer {PHONES[0]} wrote from {EMAILS[0]}: {SECRETS[0]}")),
    Input.of("contact by attribute", contact(CONTACT_ATTR)),
    Input.of(
        "contact by tag",
        contact(
            CONTACT_TAG,
            tags={"caseId": CASE_B, "customerPhone": PHONES[2], "email": EMAILS[2], "n": SECRETS[2]},
        ),
    ),
    Input.of("comment too long", comment(CASE_A, f"{PHONES[0]} {EMAILS[0]} {SECRETS[3]} " + "x" * 15_000)),
    Input.of("comment unknown case", comment("no-such-case", f"{PHONES[1]} {EMAILS[1]} {SECRETS[3]}")),
    Input.of("malformed", '{"caseId": "' + EMAILS[3] + '", "note": "' + PHONES[1] + " " + SECRETS[3]),
    Input.of("unknown shape", json.dumps({"customer": EMAILS[3], "phone": PHONES[0], "note": SECRETS[3]})),
    Input.of("case id is an email", comment(EMAILS[3], "hello")),
    Input.of("case id is a phone", comment(PHONES[1], "hello")),
    # The caseId pattern takes a tel: URI; an id with letters is no proof it is not a phone number.
    Input.of(
        "case id is a tel URI", comment("tel:+" + "".join(c for c in PHONES[1] if c.isdigit()), "hello")
    ),
]
EXPECTED = {
    "comment": "linked",
    "contact by attribute": "linked",
    "contact by tag": "linked",
    "comment too long": "dead_lettered",
    "comment unknown case": "dead_lettered",
    "malformed": "dead_lettered",
    "unknown shape": "dead_lettered",
    "case id is an email": "dead_lettered",
    "case id is a phone": "dead_lettered",
    "case id is a tel URI": "dead_lettered",
}


@dataclass
class Evidence:
    result: Reconciliation
    log_text: str
    emf: list[dict[str, Any]]
    error_messages: list[str]


@pytest.fixture(scope="module")
def evidence() -> Iterator[Evidence]:
    seed = {
        "domains": [
            {
                "id": DOMAIN,
                "name": "security",
                "cases": [{"id": CASE_A, "title": "a"}, {"id": CASE_B, "title": "b"}],
            }
        ],
        "contacts": [
            {
                "instanceId": INSTANCE_ID,
                "contactId": CONTACT_ATTR,
                "channel": "VOICE",
                "attributes": {
                    "caseId": CASE_A,
                    "customerPhone": PHONES[1],
                    "customerEmail": EMAILS[1],
                    "note": SECRETS[1],
                },
            },
        ],
    }
    options = PipelineOptions(
        inputs=INPUTS,
        seed=seed,
        expected=EXPECTED,
        context={"casesDomainId": DOMAIN, "connectInstanceArn": INSTANCE_ARN, "casesRequestsPerSecond": 100},
        throttling=False,
        function_timeout_s=20,
        visibility_timeout_s=30,
        batching_window_s=0.5,
        extra_environment={"POWERTOOLS_LOG_LEVEL": "DEBUG", "POWERTOOLS_LOGGER_LOG_EVENT": "false"},
    )
    with LocalPipeline(options) as pipeline:
        pipeline.publish(pipeline.inputs, route="queue")
        result = pipeline.drain(timeout_s=120)
        files = pipeline.runtime.log_files() if hasattr(pipeline.runtime, "log_files") else []
        text = "\n".join(path.read_text(encoding="utf-8", errors="replace") for path in files)
        emf = []
        for line in text.splitlines():
            if line.startswith("{"):
                document = json.loads(line)
                if "_aws" in document:
                    emf.append(document)
        messages = [m.attributes.get("ERROR_MESSAGE", "") for m in pipeline.dlq_messages()]
        yield Evidence(result, text, emf, messages)


def test_given_planted_customer_data_when_drained_then_every_input_ended_as_expected(
    evidence: Evidence,
) -> None:
    mismatches = [(r.name, r.mismatch) for r in evidence.result.inputs if r.mismatch]
    assert mismatches == []
    assert evidence.result.count(Outcome.LINKED) == 3


def test_given_a_run_when_logs_are_read_then_there_are_records_to_check(evidence: Evidence) -> None:
    assert "record done" in evidence.log_text
    assert "dead-lettered" in evidence.log_text
    assert evidence.emf


@pytest.mark.parametrize("needle", needles())
def test_given_planted_customer_data_when_drained_then_it_never_reaches_the_logs(
    evidence: Evidence, needle: str
) -> None:
    assert needle.lower() not in evidence.log_text.lower()


@pytest.mark.parametrize("needle", needles())
def test_given_planted_customer_data_when_dead_lettered_then_no_error_message_carries_it(
    evidence: Evidence, needle: str
) -> None:
    assert evidence.error_messages
    assert not [m for m in evidence.error_messages if needle.lower() in m.lower()]


def test_given_emf_metrics_when_read_then_no_dimension_carries_customer_data_or_ids(
    evidence: Evidence,
) -> None:
    forbidden = [*needles(), CASE_A, CASE_B, CONTACT_ATTR, CONTACT_TAG, "no-such-case"]
    for blob in evidence.emf:
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                for name in dimension_set:
                    value = str(blob.get(name, ""))
                    assert not [f for f in forbidden if f.lower() in value.lower()], (name, value)
