"""When a record handed back should come again: its visibility on the main queue.

Lambda's event source leaves a failed record invisible for the queue's whole visibility timeout (six
function timeouts). A record that must wait a known time (an earlier create settling, a case being merged,
a lease held by another delivery) is made visible again after that time instead.
"""

from __future__ import annotations

import math
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError

# SQS's longest visibility timeout (12 hours).
MAX_VISIBILITY_SECONDS = 43_200


class Redelivery:
    """Changes a record's visibility on the main queue (a no-op when the queue URL is not configured)."""

    def __init__(self, sqs: Any, queue_url: str | None, logger: Logger) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._logger = logger

    def defer(self, record: SQSRecord, seconds: float) -> None:
        """Make `record` visible again in `seconds` (rounded up); best effort."""
        if self._queue_url is None:
            return
        timeout = min(MAX_VISIBILITY_SECONDS, max(0, math.ceil(seconds)))
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self._queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=timeout
            )
        except (ClientError, BotoCoreError) as error:
            # The record still comes back, after the queue's own visibility timeout.
            self._logger.warning(
                "could not change the record's visibility", extra={"error": type(error).__name__}
            )
