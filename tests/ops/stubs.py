"""SQS answers for botocore's Stubber: the commands moto cannot serve (message move tasks)."""

from __future__ import annotations

import json
from typing import Any

from botocore.stub import Stubber

DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/case-linker-processing-dlq"
MAIN_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/case-linker-main"
RULE_DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/case-linker-rule-target-dlq"
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:case-linker-processing-dlq"
MAIN_ARN = "arn:aws:sqs:us-east-1:123456789012:case-linker-main"
URLS = ["--queue-url", MAIN_URL, "--dlq-url", DLQ_URL, "--rule-target-dlq-url", RULE_DLQ_URL]


def expect_depths(stubber: Stubber, visible: int = 7) -> None:
    """The DLQ's depth, and the main queue's, whose RedrivePolicy names the DLQ."""
    redrive = {"RedrivePolicy": json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": "5"})}
    for url, arn, count, extra in ((DLQ_URL, DLQ_ARN, visible, {}), (MAIN_URL, MAIN_ARN, 0, redrive)):
        stubber.add_response(
            "get_queue_attributes",
            {
                "Attributes": {
                    "QueueArn": arn,
                    "ApproximateNumberOfMessages": str(count),
                    "ApproximateNumberOfMessagesNotVisible": "0",
                    **extra,
                }
            },
            {"QueueUrl": url, "AttributeNames": ["All"]},
        )


def expect_tasks(stubber: Stubber, *tasks: dict[str, Any]) -> None:
    stubber.add_response(
        "list_message_move_tasks", {"Results": list(tasks)}, {"SourceArn": DLQ_ARN, "MaxResults": 10}
    )
