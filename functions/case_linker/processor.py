"""One SQS record, start to finish: decide, find the case, link once, or dead-letter.

Returns an outcome name when the record may be deleted from the queue; raises when SQS should redeliver it.
On its last delivery (MAX_RECEIVE_COUNT) a record that failed and cannot be sent again is dead-lettered here,
with its last error, rather than left for SQS to move to the DLQ without a reason.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from case_linker.budget import BACKGROUND_WORK
from case_linker.errors import (
    CaseBusyError,
    CircuitOpenError,
    LinkerError,
    OutOfTimeError,
    PermanentError,
    SettlingError,
    ThrottledError,
    TransientError,
)
from case_linker.ledger import DEAD_LETTERED as CONTACT_DEAD_LETTERED
from case_linker.ledger import LINKED as CONTACT_LINKED
from case_linker.ledger import NO_CASE_ID as CONTACT_NO_CASE_ID
from case_linker.ledger import Busy, LeaseLost
from case_linker.linker import CREATED, LinkResult
from case_linker.mapping import (
    ORIGIN_BACKFILL,
    ORIGIN_SWEEPER,
    Ignore,
    Invalid,
    LinkContact,
    RelatedItem,
    case_id_from,
    classify,
    contact_item,
    contact_of,
    loggable_id,
)
from case_linker.pacing import BatchGuard
from case_linker.redelivery import REPLAYED_ATTRIBUTE, capacity_delay, last_delivery, requeue_due
from case_linker.settings import Settings
from case_linker.telemetry import (
    ALREADY_LINKED,
    DEAD_LETTERED,
    EVENT_IGNORED,
    HANDED_BACK,
    NO_CASE_ID,
    RELATED_ITEM_CREATED,
    REQUEUED,
    Counters,
)

# REPLAYED_ATTRIBUTE (redelivery.py), set by `python -m ops dlq replay`: only logged and used for priority (the
# ledger, not this mark, decides whether to look first).
ORIGIN_REPLAY = "replay"
BACKGROUND_ORIGINS = frozenset({ORIGIN_REPLAY, ORIGIN_SWEEPER, ORIGIN_BACKFILL})

# Outcomes of a record that is acknowledged (deleted from the queue).
LINKED = "linked"
ALREADY = "already_linked"
IGNORED = "ignored"
NO_CASE = "no_case_id"
DEAD_LETTERED_OUTCOME = "dead_lettered"
# Handed back for want of Cases capacity close to maxReceiveCount: acknowledged, and sent again as a new message.
REQUEUED_OUTCOME = "requeued"
# Hand-backs for want of Cases capacity (throttled after retries, the batch's breaker, no paced slot before the
# deadline): the record itself is fine, so it comes back soon, and never reaches the DLQ by maxReceiveCount.
CAPACITY_ERRORS = (ThrottledError, CircuitOpenError, OutOfTimeError)
# Hand-backs that wait for something bound to end (a case's merge, an earlier create settling, another
# delivery's lease): like capacity, sent again near maxReceiveCount rather than given up.
WAIT_ERRORS = (CaseBusyError, SettlingError, Busy, LeaseLost)
# ERROR_CODE of a record given up on its last delivery after an error of ours (a bug): only its type is kept.
UNEXPECTED_ERROR = "UnexpectedError"
# How long a record given up or re-sent is held invisible after its invocation ends, for Lambda to delete it.
GIVE_UP_HOLD_SECONDS = 60.0


class _NotHeld(Exception):
    """The delivery no longer holds its message (SQS moved it to the DLQ, or a later delivery deleted it)."""


class _Unexpected(Exception):
    """An unexpected error as it is handed back to the batch processor: its type alone. The processor logs the text
    of what it catches (at debug), and an unexpected error's text may quote the record."""

    def __init__(self, error: Exception) -> None:
        super().__init__(type(error).__name__)
        self.__suppress_context__ = True  # nor the original as the context of a traceback


class ContactsPort(Protocol):
    def contact_attributes(self, instance_id: str, initial_contact_id: str) -> dict[str, str]: ...


class CaseReferencePort(Protocol):
    def case_for_reference(self, domain_id: str, reference_id: str) -> str | None: ...


class LinkerPort(Protocol):
    def link(self, item: RelatedItem) -> LinkResult: ...


class ContactLedgerPort(Protocol):
    def record_contact(
        self,
        instance_id: str,
        contact_id: str,
        state: str,
        case_id: str | None = None,
        *,
        origin: str | None = None,
    ) -> None: ...

    def case_for_reference(self, domain_id: str, reference_id: str) -> str | None: ...

    def remember_reference(self, domain_id: str, reference_id: str, case_id: str) -> None: ...


class DeadLetterPort(Protocol):
    def send(self, record: dict[str, Any], code: str, message: str) -> None: ...


class RedeliveryPort(Protocol):
    def defer(self, record: SQSRecord, seconds: float) -> None: ...

    def claim(self, record: SQSRecord, seconds: float) -> bool: ...

    def can_requeue(self) -> bool: ...

    def requeue(self, record: SQSRecord, seconds: float) -> int: ...


class CaseResolver:
    """Finds a case's id from its reference id: the ledger remembers what SearchCases found.

    SearchCases may not show a case created moments ago (searches lag writes): a reference id no case has is
    handed back while its message is younger than `search_lag` seconds, and dead-lettered after.
    """

    def __init__(
        self,
        cases: CaseReferencePort,
        ledger: ContactLedgerPort,
        logger: Logger,
        *,
        search_lag: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cases = cases
        self._ledger = ledger
        self._logger = logger
        self._search_lag = search_lag
        self._clock = clock

    def resolve(self, item: RelatedItem, *, sent_at: float | None = None) -> RelatedItem:
        """`item` with its case id, looked up from its reference id when it came without one. `sent_at`: when
        the message asking for it was sent (epoch seconds), if known."""
        if item.case_id is not None or item.reference_id is None:
            return item
        case_id = self._ledger.case_for_reference(item.domain_id, item.reference_id)
        if case_id is None:
            case_id = self._cases.case_for_reference(item.domain_id, item.reference_id)
            if case_id is None:
                wait = 0.0 if sent_at is None else sent_at + self._search_lag - self._clock()
                if wait > 0:
                    raise TransientError(
                        "ReferenceNotFoundYet",
                        "referenceId: no case has this reference id yet (SearchCases may not show a new case "
                        "at once)",
                        retry_after=wait,
                    )
                raise PermanentError(
                    "ResourceNotFoundException", "referenceId: no case in the domain has this reference id"
                )
            self._ledger.remember_reference(item.domain_id, item.reference_id, case_id)
        self._logger.thread_safe_append_keys(case_id=loggable_id(case_id))
        return dataclasses.replace(item, case_id=case_id)


class RecordProcessor:
    """Processes one record; safe to call from several threads at once."""

    def __init__(
        self,
        *,
        settings: Settings,
        contacts: ContactsPort,
        resolver: CaseResolver,
        linker: LinkerPort,
        ledger: ContactLedgerPort,
        dead_letters: DeadLetterPort,
        redelivery: RedeliveryPort,
        guard: BatchGuard,
        counters: Counters,
        logger: Logger,
        capacity_delay_cap: float = 60.0,
    ) -> None:
        self._settings = settings
        self._contacts = contacts
        self._resolver = resolver
        self._linker = linker
        self._ledger = ledger
        self._dead_letters = dead_letters
        self._redelivery = redelivery
        self._guard = guard
        self._counters = counters
        self._logger = logger
        # A capacity hand-back's delay: a random half to all of a ceiling that doubles per receive, up to this.
        self._capacity_delay_cap = capacity_delay_cap

    def process(self, record: SQSRecord) -> str:
        """Handle one record; raise to hand it back to SQS."""
        self._logger.thread_safe_append_keys(message_id=record.message_id)
        try:
            outcome = self._process(record)
        except LinkerError as error:
            return self._failed(record, error, error.code, error.message)
        except Exception as error:  # noqa: BLE001 - logged below, without its text
            # Only the type and where it was raised: an unexpected error's text may quote the record.
            self._logger.error(
                "unexpected error", extra={"error_type": type(error).__name__, "stack": _stack(error)}
            )
            return self._failed(record, _Unexpected(error), UNEXPECTED_ERROR, type(error).__name__)
        else:
            self._logger.info("record done", extra={"outcome": outcome})
            return outcome
        finally:
            self._logger.thread_safe_clear_keys()

    def _failed(self, record: SQSRecord, error: Exception, code: str, message: str) -> str:
        """A record that failed: re-sent near maxReceiveCount when it only waits (capacity, a known wait), given
        up on its last delivery, or else handed back to SQS (raises `error`), sooner when we know when."""
        count = receive_count(record)
        delay = self._retry_delay(error, count)
        try:
            if isinstance(error, CAPACITY_ERRORS + WAIT_ERRORS) and requeue_due(
                count, self._settings.max_receive_count
            ):
                resent = self._resend(record, code, delay)
                if resent is not None:
                    return resent
            given_up = self._give_up(record, code, message, count)
            if given_up is not None:
                return given_up
        except _NotHeld:
            delay = None  # SQS would refuse a visibility change too: the message is no longer this delivery's
        if isinstance(error, TransientError):
            self._counters.incr(HANDED_BACK, ("reason", code))
        self._logger.warning(
            "record handed back for redelivery", extra={"error_code": code, "retry_after": delay}
        )
        if delay is not None:
            self._redelivery.defer(record, delay)
        raise error

    def _retry_delay(self, error: Exception, count: int) -> float | None:
        """How long a record on its `count`th receive should stay away before its next try; None: the queue's
        visibility timeout."""
        if not isinstance(error, TransientError):
            return None
        if error.retry_after is None and isinstance(error, CAPACITY_ERRORS):
            return capacity_delay(count, self._capacity_delay_cap)
        return error.retry_after

    def _resend(self, record: SQSRecord, code: str, delay: float | None) -> str | None:
        """Send the record again as a new message and return the outcome; None when it could not be. Raises
        _NotHeld when this delivery no longer holds the message."""
        if not self._redelivery.can_requeue():
            return None
        # A copy of a message this delivery no longer holds (its visibility ran out and SQS moved it, or another
        # delivery deleted it) would give the record two endings.
        if not self._redelivery.claim(record, self._hold()):
            raise _NotHeld
        try:
            requeues = self._redelivery.requeue(record, delay or 0.0)
        except TransientError as failed:
            self._logger.warning("could not re-send the record", extra={"error_code": failed.code})
            return None
        self._counters.incr(REQUEUED)
        self._logger.info(
            "record re-sent before maxReceiveCount",
            extra={"outcome": REQUEUED_OUTCOME, "error_code": code, "requeues": requeues},
        )
        return REQUEUED_OUTCOME

    def _give_up(self, record: SQSRecord, code: str, message: str, count: int) -> str | None:
        """On the record's last delivery (its `count`th receive), dead-letter it with `code` and return the
        outcome; None otherwise, or when the DLQ cannot take it (SQS then moves it after maxReceiveCount, without
        a reason). Raises _NotHeld when this delivery no longer holds the message.

        The ledger records no fate for its contact: the sweeper may still link it. A replay is safe either way:
        the ledger and the client token return the item an earlier attempt may have made.
        """
        limit = self._settings.max_receive_count
        if limit is None or not last_delivery(count, limit):
            return None
        # A delivery that outlived its visibility may find SQS redelivering or moving the message already.
        if not self._redelivery.claim(record, self._hold()):
            raise _NotHeld
        try:
            return self._dead_letter(
                record, code, f"gave up on the last delivery ({count} of maxReceiveCount {limit}): {message}"
            )
        except TransientError as failed:
            self._logger.warning("could not dead-letter the record", extra={"error_code": failed.code})
            return None

    def _hold(self) -> float:
        """How long a record this delivery ends itself stays invisible: until Lambda deletes it once the invocation
        returns. The claim sets the visibility from now, so a fixed hold shorter than the invocation's rest would
        let SQS deliver the record again before the delete: after its last delivery, SQS would move it to the DLQ
        as well."""
        return self._guard.remaining() + GIVE_UP_HOLD_SECONDS

    def _process(self, record: SQSRecord) -> str:
        decision = classify(record.body, self._settings)
        if isinstance(decision, Invalid | Ignore):
            self._guard.sort(None)
        if isinstance(decision, Invalid):
            return self._dead_letter(record, decision.code, decision.message)
        if isinstance(decision, Ignore):
            self._counters.incr(EVENT_IGNORED)
            self._logger.info("event ignored", extra={"reason": decision.reason})
            return IGNORED
        replayed = REPLAYED_ATTRIBUTE in (record.message_attributes or {})
        origin = ORIGIN_REPLAY if replayed else decision.origin
        self._logger.thread_safe_append_keys(origin=origin)
        # Replays, the sweeper's and backfill's messages take a lower share of the Cases budget (budget.py),
        # so they never starve live contacts. Each record runs in its own copy of the context.
        BACKGROUND_WORK.set(origin in BACKGROUND_ORIGINS)
        self._guard.sort(origin in BACKGROUND_ORIGINS)
        if isinstance(decision, LinkContact):
            return self._contact(record, decision, origin)
        self._logger.thread_safe_append_keys(event_id=decision.event_id)
        return self._link(record, decision.item, origin)

    def _contact(self, record: SQSRecord, link: LinkContact, origin: str) -> str:
        contact_id = link.detail.contactId
        self._logger.thread_safe_append_keys(event_id=link.event_id, contact_id=loggable_id(contact_id))
        found = self._contact_item(link)
        if found is None:
            self._ledger.record_contact(link.instance_id, contact_id, CONTACT_NO_CASE_ID, origin=origin)
            self._counters.incr(NO_CASE_ID)
            self._logger.info("contact has no case id; not linked", extra={"reason": "no_case_id"})
            return NO_CASE
        if isinstance(found, Invalid):
            # The contact's fate first: a ledger failure after the DLQ send would hand the record back, and its
            # next delivery would dead-letter it a second time.
            self._ledger.record_contact(link.instance_id, contact_id, CONTACT_DEAD_LETTERED, origin=origin)
            return self._dead_letter(record, found.code, found.message)
        return self._link(record, found, origin)

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
        if case_id is None and link.detail.chainCaseId is not None:
            self._logger.info(
                "case id from the contact chain",
                extra={"chain_case_id": loggable_id(link.detail.chainCaseId)},
            )
            case_id = link.detail.chainCaseId
        if case_id is None:
            return None
        return contact_item(link, case_id, self._settings)

    def _link(self, record: SQSRecord, item: RelatedItem, origin: str) -> str:
        self._logger.thread_safe_append_keys(case_id=loggable_id(item.case_id), related_item_type=item.type)
        self._guard.check_breaker()
        try:
            # Comments may name their case by reference id alone: BatchCreateRelatedItem takes it as it is.
            result = self._linker.link(
                item if item.uses_client_token else self._resolver.resolve(item, sent_at=sent_at(record))
            )
        except PermanentError as error:
            self._record_contact(item, CONTACT_DEAD_LETTERED, origin=origin)  # first: as in _contact
            return self._dead_letter(record, error.code, error.message)
        self._record_contact(item, CONTACT_LINKED, result.case_id or item.case_id, origin=origin)
        if result.outcome == CREATED:
            self._counters.incr(RELATED_ITEM_CREATED, ("type", item.type))
            self._logger.info(
                "related item created",
                extra={
                    "related_item_id": result.related_item_id,
                    "recovered": result.recovered,
                    "resolved_case_id": loggable_id(result.case_id) if item.case_id is None else None,
                },
            )
            return LINKED
        self._counters.incr(ALREADY_LINKED)
        self._logger.info("already linked", extra={"related_item_id": result.related_item_id})
        return ALREADY

    def _record_contact(
        self, item: RelatedItem, state: str, case_id: str | None = None, *, origin: str
    ) -> None:
        """What the reconciliation sweeper reads: the fate of every contact we were asked to link."""
        contact = contact_of(item.contact_arn) if item.contact_arn is not None else None
        if contact is not None:
            self._ledger.record_contact(*contact, state, case_id, origin=origin)

    def _dead_letter(self, record: SQSRecord, code: str, message: str) -> str:
        self._dead_letters.send(record.raw_event, code, message)
        self._counters.incr(DEAD_LETTERED, ("errorCode", code))
        self._logger.warning("dead-lettered", extra={"error_code": code, "error_message": message})
        return DEAD_LETTERED_OUTCOME


def _stack(error: BaseException) -> list[str]:
    """Where `error` was raised, frame by frame (`file:line function`): a traceback without its message."""
    return [
        f"{Path(frame.filename).name}:{frame.lineno} {frame.name}"
        for frame in traceback.extract_tb(error.__traceback__)
    ]


def sent_at(record: SQSRecord) -> float | None:
    """When the message was sent (SentTimestamp, epoch seconds); None when absent or unreadable."""
    try:
        return int(record.attributes.sent_timestamp) / 1000
    except (KeyError, TypeError, ValueError):
        return None


def receive_count(record: SQSRecord) -> int:
    """ApproximateReceiveCount, 1 when absent or unreadable."""
    try:
        return int(record.attributes.approximate_receive_count)
    except (KeyError, TypeError, ValueError):
        return 1
