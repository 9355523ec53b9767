"""Message bodies and DLQ attributes for the tests. Customer data here must never reach the tool's output."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECRET_COMMENT = "Customer Jane Roe called from +1 206 555 0142, mail jane.roe@example.com, about her refund"
PHONE = "+1 206 555 0142"
EMAIL = "jane.roe@example.com"


def connect_event(contact_id: str, event_type: str = "COMPLETED") -> str:
    return json.dumps(
        {
            "version": "0",
            "id": f"evt-{contact_id}",
            "source": "aws.connect",
            "detail-type": "Amazon Connect Contact Event",
            "resources": [f"arn:aws:connect:us-east-1:123456789012:instance/inst-1/contact/{contact_id}"],
            "detail": {
                "eventType": event_type,
                "contactId": contact_id,
                "initialContactId": contact_id,
                "channel": "VOICE",
                "instanceArn": "arn:aws:connect:us-east-1:123456789012:instance/inst-1",
                "customerEndpoint": {"address": PHONE, "type": "TELEPHONE_NUMBER"},
            },
        }
    )


def comment_request(case_id: str) -> str:
    return json.dumps(
        {
            "source": "my.crm",
            "detail-type": "Case Related Item Request",
            "detail": {
                "caseId": case_id,
                "type": "Comment",
                "content": {"comment": {"body": SECRET_COMMENT, "contentType": "Text/Plain"}},
            },
        }
    )


def bare_contact_request(case_id: str, contact_id: str) -> str:
    arn = f"arn:aws:connect:us-east-1:123456789012:instance/inst-1/contact/{contact_id}"
    return json.dumps({"caseId": case_id, "type": "Contact", "content": {"contact": {"contactArn": arn}}})


def error_attributes(code: str, message: str = "failed", receive_count: int = 3) -> dict[str, Any]:
    return {
        "ERROR_CODE": {"DataType": "String", "StringValue": code},
        "ERROR_MESSAGE": {"DataType": "String", "StringValue": message},
        "SOURCE_MESSAGE_ID": {"DataType": "String", "StringValue": "src-1"},
        "RECEIVE_COUNT": {"DataType": "String", "StringValue": str(receive_count)},
    }


def put(sqs: Any, url: str, body: str, attributes: dict[str, Any] | None = None) -> str:
    kwargs: dict[str, Any] = {"QueueUrl": url, "MessageBody": body}
    if attributes:
        kwargs["MessageAttributes"] = attributes
    return str(sqs.send_message(**kwargs)["MessageId"])


def depth(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight)."""
    a = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Receive (and delete) everything visible: proves what is visible, with attributes."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


@dataclass(frozen=True)
class StackQueues:
    main: str
    processing_dlq: str
    rule_target_dlq: str

    def args(self) -> list[str]:
        """Explicit-URL options for the CLI."""
        return [
            "--queue-url",
            self.main,
            "--dlq-url",
            self.processing_dlq,
            "--rule-target-dlq-url",
            self.rule_target_dlq,
        ]


class FaultAt:
    """A real client whose `operation`'s n-th call fails with `fault`: before the call is made, or (`after`) once
    SQS has done it, as a Ctrl-C landing while the answer is on its way. `before` runs first (break a queue)."""

    def __init__(
        self,
        inner: Any,
        operation: str,
        nth: int,
        fault: BaseException | None = None,
        *,
        after: bool = False,
        before: Callable[[], None] | None = None,
    ) -> None:
        self.inner = inner
        self.operation = operation
        self.nth = nth
        self.fault = fault
        self.after = after
        self.before = before
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.inner, name)
        if name != self.operation:
            return real

        def call(**kwargs: Any) -> Any:
            self.calls += 1
            hit = self.calls == self.nth
            if hit and self.before is not None:
                self.before()
            if hit and self.fault is not None and not self.after:
                raise self.fault
            result = real(**kwargs)
            if hit and self.fault is not None and self.after:
                raise self.fault
            return result

        return call


def unusable_report_paths(folder: Path) -> list[tuple[Path, str]]:
    """--report paths a command must refuse before it runs, each with what its error says: a path under a file, a
    directory, a symbolic link (to `folder/elsewhere.json`, which must never be written)."""
    a_file = folder / "a-file"
    a_file.write_text("")
    link = folder / "link.json"
    link.symlink_to(folder / "elsewhere.json")
    return [(a_file / "r.json", "is not a folder"), (folder, "is a directory"), (link, "is a symbolic link")]
