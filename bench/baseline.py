"""THE COMPARISON, NOT PRODUCT CODE: a plain SQS consumer that links contacts to cases.

What a first version of case-linker would look like, written only so the benchmark has something to beat:
Powertools `BatchProcessor(EventType.SQS)` + `process_partial_response`, the batch's records one after another,
boto3 clients with botocore's default configuration (standard retry mode, 3 attempts, no pacing), no check
whether the contact is already on the case, no idempotency. Entry point `bench.baseline.lambda_handler`; it reads
CASES_DOMAIN_ID, CASE_ID_ATTRIBUTE and PERFORMED_BY as the linker does. Never deploy it.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

# Init phase, as a plain consumer would write it: default clients (AWS_ENDPOINT_URL_* point them at the
# local endpoints).
_connect = boto3.client("connect")
_cases = boto3.client("connectcases")
_processor = BatchProcessor(event_type=EventType.SQS)


def _link(record: SQSRecord) -> None:
    detail = json.loads(record.body)["detail"]
    instance_arn = detail["instanceArn"]
    contact_id = detail["contactId"]
    attributes = _connect.get_contact_attributes(
        InstanceId=instance_arn.rsplit("/", 1)[-1],
        InitialContactId=detail.get("initialContactId") or contact_id,
    ).get("Attributes", {})
    case_id = attributes.get(os.environ.get("CASE_ID_ATTRIBUTE", "caseId"))
    if not case_id:
        return
    _cases.create_related_item(
        domainId=os.environ["CASES_DOMAIN_ID"],
        caseId=case_id,
        type="Contact",
        content={"contact": {"contactArn": f"{instance_arn}/contact/{contact_id}"}},
        performedBy={"customEntity": os.environ.get("PERFORMED_BY", "case-linker")},
    )


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Records one after another; a record that raises is reported in batchItemFailures."""
    return dict(
        process_partial_response(event=event, record_handler=_link, processor=_processor, context=context)
    )
