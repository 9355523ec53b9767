"""The sweeper's test rig: finished contacts in the emulator, the main queue in moto, the real linker."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from typing import Any

import boto3
from aws_lambda_powertools import Metrics
from case_linker.handler import App, Tuning
from case_linker.ledger import LINKED, Ledger
from case_linker.settings import SweeperSettings
from case_linker.sweeper import SweeperApp, build_sweeper

from emulator import Emulator
from tests.functional.conftest import DOMAIN_ID, Aws, failed_ids, lambda_context, sqs_event, sqs_record

INSTANCE_ID = "5eeb0000-0000-4000-8000-00000000abcd"
INSTANCE_ARN = f"arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE_ID}"
# Cases of events/seed.json's domain.
CASE_A = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
CASE_B = "a3bb189e-8bf9-3888-9912-ace4e6543002"
CASE_C = "b4b3c1d2-9e8f-4a7b-8c6d-5e4f3a2b1c0d"
# Short timeouts so failure paths end quickly; the logic is the one Lambda runs.
FAST_SWEEP = Tuning(connect_timeout=0.5, read_timeout=2.0, read_attempts=4, safety_margin=0.5)


def contact_arn(contact_id: str) -> str:
    return f"{INSTANCE_ARN}/contact/{contact_id}"


def new_id() -> str:
    return str(uuid.uuid4())


def finished(
    emu: Emulator,
    contact_id: str,
    *,
    minutes_ago: float = 30,
    case_id: str | None = None,
    tag_case_id: str | None = None,
    **details: Any,
) -> str:
    """A contact that disconnected `minutes_ago` (inside the default window: 15..75 minutes ago)."""
    end = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    emu.put_contact(
        INSTANCE_ID,
        contact_id,
        {"caseId": case_id} if case_id else {"language": "en"},
        initiation_time=end - dt.timedelta(minutes=5),
        disconnect_time=end,
        tags={"caseId": tag_case_id} if tag_case_id else None,
        **details,
    )
    return contact_id


def connect_event(contact_id: str, **detail: Any) -> str:
    """A COMPLETED contact event as Connect publishes it (the ones that did arrive)."""
    return json.dumps(
        {
            "version": "0",
            "id": new_id(),
            "detail-type": "Amazon Connect Contact Event",
            "source": "aws.connect",
            "account": "123456789012",
            "region": "us-east-1",
            "resources": [INSTANCE_ARN, contact_arn(contact_id)],
            "detail": {
                "eventType": "COMPLETED",
                "contactId": contact_id,
                "initialContactId": contact_id,
                "channel": "VOICE",
                "instanceArn": INSTANCE_ARN,
                **detail,
            },
        }
    )


def emf(output: str) -> dict[str, Any]:
    """The metric values of the EMF documents Powertools printed, and their dimensions."""
    values: dict[str, Any] = {}
    for line in output.splitlines():
        if '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            values["dimensions"] = directive["Dimensions"]
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                values[metric["Name"]] = value[0] if isinstance(value, list) and len(value) == 1 else value
    return values


@dataclasses.dataclass
class Rig:
    """The main queue, the real linker, and a way to run the real sweeper."""

    aws: Aws
    emu: Emulator
    queue_url: str
    linker: App
    settings: SweeperSettings

    def sweeper(self, **overrides: Any) -> SweeperApp:
        options = {
            k: overrides.pop(k) for k in ("clock", "page_size", "search_result_limit") if k in overrides
        }
        tuning = overrides.pop("tuning", FAST_SWEEP)
        return build_sweeper(dataclasses.replace(self.settings, **overrides), tuning=tuning, **options)

    def sweep(self, app: SweeperApp | None = None, *, remaining_ms: int = 60_000) -> dict[str, Any]:
        sink = Metrics(namespace="CaseLinker", service="case-linker")
        return (app or self.sweeper()).handle({}, lambda_context(remaining_ms), sink)

    def events_arrive(self, *bodies: str) -> None:
        """The linker handles contact events that Connect did deliver."""
        result = self.linker.run_batch(sqs_event(*(sqs_record(b) for b in bodies)), lambda_context())
        assert not failed_ids(result.response)

    def enqueued(self) -> list[dict[str, Any]]:
        """Take every message off the main queue (parsed), without handling them."""
        messages: list[dict[str, Any]] = []
        while batch := self.aws.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=60
        ).get("Messages", []):
            messages.extend(json.loads(message["Body"]) for message in batch)
            self.aws.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
        return messages

    def link(self, messages: list[dict[str, Any]]) -> None:
        """The linker handles what the sweeper enqueued."""
        for start in range(0, len(messages), 10):
            self.events_arrive(*(json.dumps(m) for m in messages[start : start + 10]))

    def handled(self, messages: list[dict[str, Any]], case_id: str = CASE_A) -> None:
        """The linker's ledger records these contacts as linked (what linking them would leave, faster)."""
        ledger = Ledger(boto3.client("dynamodb"), self.settings.idempotency_table_name)
        for contact_id in contact_ids(messages):
            ledger.record_contact(INSTANCE_ID, contact_id, LINKED, case_id, origin="sweeper")

    def cases_of(self, contact_id: str) -> list[str]:
        arn = contact_arn(contact_id)
        return sorted(
            item.case_id
            for item in self.emu.related_items(domain_id=DOMAIN_ID)
            if item.type == "Contact" and item.content["contact"]["contactArn"] == arn
        )


def make_rig(aws: Aws, emu: Emulator, linker: App) -> Rig:
    """A main queue in moto, and sweeper settings pointing at it, the emulator and the ledger."""
    queue_url = aws.sqs.create_queue(QueueName="case-linker-main")["QueueUrl"]
    settings = SweeperSettings(
        connect_instance_arn=INSTANCE_ARN,
        main_queue_url=queue_url,
        idempotency_table_name=aws.table_name,
        cases_domain_id=DOMAIN_ID,
        connect_search_rps=50.0,
    )
    return Rig(aws=aws, emu=emu, queue_url=queue_url, linker=linker, settings=settings)


def contact_ids(messages: list[dict[str, Any]]) -> list[str]:
    return [m["detail"]["contactId"] for m in messages]
