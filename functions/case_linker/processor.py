"""One SQS record, start to finish: decide, find the case, link once, or dead-letter.

Returns an outcome name when the record may be deleted from the queue; raises when SQS should redeliver it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from case_linker.errors import LinkerError, PermanentError, TransientError
from case_linker.linker import CREATED
from case_linker.mapping import (
    Ignore,
    Invalid,
    LinkContact,
    RelatedItem,
    case_id_from,
    classify,
    contact_item,
    idempotency_data,
)
from case_linker.pacing import BatchGuard
from case_linker.settings import Settings
from case_linker.telemetry import (
    ALREADY_LINKED,
    DEAD_LETTERED,
    EVENT_IGNORED,
    NO_CASE_ID,
    RELATED_ITEM_CREATED,
    Counters,
)

IDEMPOTENCY_KEY_CONFLICT = "IdempotencyKeyConflict"
# Set by `python -m ops dlq replay`: the message was delivered before even though its receive count is 1 again.
REPLAYED_ATTRIBUTE = "REPLAYED"

# Outcomes of a record that is acknowledged (deleted from the queue).
LINKED = "linked"
ALREADY = "already_linked"
IGNORED = "ignored"
NO_CASE = "no_case_id"
DEAD_LETTERED_OUTCOME = "dead_lettered"

# link_once(data=..., item=..., redelivered=...) -> LinkResult.as_dict(), made idempotent by the caller.
LinkOnce = Callable[..., dict[str, Any]]


class ContactsPort(Protocol):
    def contact_attributes(self, instance_id: str, initial_contact_id: str) -> dict[str, str]: ...


class DeadLetterPort(Protocol):
    def send(self, record: dict[str, Any], code: str, message: str) -> None: ...


class RecordProcessor:
    """Processes one record; safe to call from several threads at once."""

    def __init__(
        self,
        *,
        settings: Settings,
        contacts: ContactsPort,
        link_once: LinkOnce,
        dead_letters: DeadLetterPort,
        guard: BatchGuard,
        counters: Counters,
        logger: Logger,
    ) -> None:
        self._settings = settings
        self._contacts = contacts
        self._link_once = link_once
        self._dead_letters = dead_letters
        self._guard = guard
        self._counters = counters
        self._logger = logger

    def process(self, record: SQSRecord) -> str:
        """Handle one record; raise to hand it back to SQS."""
        self._logger.thread_safe_append_keys(message_id=record.message_id)
        try:
            outcome = self._process(record)
        except LinkerError as error:
            self._logger.warning("record handed back for redelivery", extra={"error_code": error.code})
            raise
        except Exception:
            self._logger.exception("unexpected error; record handed back for redelivery")
            raise
        else:
            self._logger.info("record done", extra={"outcome": outcome})
            return outcome
        finally:
            self._logger.thread_safe_clear_keys()

    def _process(self, record: SQSRecord) -> str:
        decision = classify(record.body, self._settings)
        if isinstance(decision, Invalid):
            return self._dead_letter(record, decision.code, decision.message)
        if isinstance(decision, Ignore):
            self._counters.incr(EVENT_IGNORED)
            self._logger.info("event ignored", extra={"reason": decision.reason})
            return IGNORED
        if isinstance(decision, LinkContact):
            self._logger.thread_safe_append_keys(
                event_id=decision.event_id, contact_id=decision.detail.contactId
            )
            found = self._contact_item(decision)
            if found is None:
                self._counters.incr(NO_CASE_ID)
                self._logger.info("contact has no case id; not linked", extra={"reason": "no_case_id"})
                return NO_CASE
            if isinstance(found, Invalid):
                return self._dead_letter(record, found.code, found.message)
            item = found
        else:
            self._logger.thread_safe_append_keys(event_id=decision.event_id)
            item = decision.item
        self._logger.thread_safe_append_keys(case_id=item.case_id, related_item_type=item.type)
        return self._link(record, item)

    def _contact_item(self, link: LinkContact) -> RelatedItem | Invalid | None:
        case_id = link.tag_case_id
        if case_id is None:
            # No point asking Connect for the case when Cases is off-limits for this batch.
            self._guard.check_breaker()
            try:
                attributes = self._contacts.contact_attributes(link.instance_id, link.attributes_contact_id)
            except PermanentError as error:
                return Invalid(error.code, error.message)
            case_id = case_id_from(attributes, self._settings.case_id_attribute)
        if case_id is None:
            return None
        return contact_item(link, case_id, self._settings)

    def _link(self, record: SQSRecord, item: RelatedItem) -> str:
        self._guard.check_breaker()
        try:
            result = self._link_once(
                data=idempotency_data(item), item=item, redelivered=delivered_before(record)
            )
        except PermanentError as error:
            return self._dead_letter(record, error.code, error.message)
        except IdempotencyValidationError:
            return self._dead_letter(
                record,
                IDEMPOTENCY_KEY_CONFLICT,
                "idempotencyKey was already used for a different related item",
            )
        except IdempotencyAlreadyInProgressError as error:
            raise TransientError("InProgress", "the same item is being linked by another delivery") from error
        if result.get("outcome") == CREATED and not result.get("replayed"):
            self._counters.incr(RELATED_ITEM_CREATED, ("type", item.type))
            self._logger.info(
                "related item created",
                extra={"related_item_id": result.get("relatedItemId"), "recovered": result.get("recovered")},
            )
            return LINKED
        self._counters.incr(ALREADY_LINKED)
        self._logger.info("already linked", extra={"replayed": bool(result.get("replayed"))})
        return ALREADY

    def _dead_letter(self, record: SQSRecord, code: str, message: str) -> str:
        self._dead_letters.send(record.raw_event, code, message)
        self._counters.incr(DEAD_LETTERED, ("errorCode", code))
        self._logger.warning("dead-lettered", extra={"error_code": code, "error_message": message})
        return DEAD_LETTERED_OUTCOME


def delivered_before(record: SQSRecord) -> bool:
    """True when an earlier delivery may have created the item: a redelivery, or a replay from a DLQ."""
    return receive_count(record) > 1 or REPLAYED_ATTRIBUTE in (record.message_attributes or {})


def receive_count(record: SQSRecord) -> int:
    """ApproximateReceiveCount, 1 when absent or unreadable."""
    try:
        return int(record.attributes.approximate_receive_count)
    except (KeyError, TypeError, ValueError):
        return 1
