"""The reconciliation sweeper: finds finished contacts whose contact event never came, and enqueues them.

Entry point: `case_linker.sweeper.lambda_handler`, run on a schedule (any event; it uses the invocation time).
Amazon Connect delivers contact events best effort, and a chat whose agent leaves without clearing it never
gets COMPLETED. Each run:
1. asks SearchContacts for the instance's contacts that disconnected in the trailing window
   [now - lag - window, now - lag], oldest first, 100 a page, paced at CONNECT_SEARCH_RPS;
2. reads their records in the link ledger: linked and dead-lettered contacts are done; contacts seen without
   a case id are enqueued again while they are in the window (a case id may be set after the contact ended);
   contacts without a record were never seen: their event was lost;
3. for a contact that names no case in its tags but belongs to a chain (its initial or previous contact),
   looks for the one case the chain is on: in the ledger, in the tags of contacts this run found, and only
   then with one ListCasesForContact per chain. Several cases: ambiguous, never guessed;
4. puts one message per contact to enqueue on the main queue, shaped like Connect's COMPLETED event with
   `source` case-linker.sweeper (`detail.chainCaseId` for a chain's case). The linker handles it like the
   event and stays the only code that creates related items.
A page is enqueued whole before the next one is asked for, and a run stops before its deadline; windows of
successive runs overlap, so the next run covers whatever a failed or cut-short run left.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from case_linker.budget import BACKGROUND_WORK
from case_linker.cases import install_guards
from case_linker.contact_search import (
    SEARCH_PAGE_SIZE,
    SEARCH_RESULT_LIMIT,
    ContactSearch,
    FoundContact,
    SearchPage,
)
from case_linker.errors import LinkerError, OutOfTimeError, PermanentError, TransientError, error_code
from case_linker.handler import Clients, Tuning, build_clients, fleet_budget, make_lambda_handler
from case_linker.ledger import LINKED, NO_CASE_ID, ContactRecord, Ledger
from case_linker.mapping import (
    CONTACT_DETAIL_TYPE,
    ORIGIN_BACKFILL,
    ORIGIN_SWEEPER,
    SWEEPER_SOURCE,
    case_id_from,
    loggable_id,
)
from case_linker.models import is_case_id
from case_linker.pacing import BatchGuard, Pacer
from case_linker.settings import SweeperSettings
from case_linker.telemetry import RETRIED, THROTTLED, Counters

logger = Logger()
metrics = Metrics()

# Where the first message about a contact came from, as the linker records it (mapping.ORIGIN_BY_SOURCE):
# these two mean the contact events had not handled the contact.
NOT_FROM_EVENTS = frozenset({ORIGIN_SWEEPER, ORIGIN_BACKFILL})

# Metrics of a run (namespace and `service` dimension as the linker's; no ids in dimensions, ever).
CONTACTS_FOUND = "SweepContactsFound"  # finished contacts the search returned and the run looked at
ALREADY_HANDLED = "SweepAlreadyHandled"  # linked or dead-lettered: nothing to do
ENQUEUED = "SweepEnqueued"  # messages put on the main queue
NO_CASE_ID_AGAIN = "SweepNoCaseId"  # seen before without a case id; enqueued again while in the window
NEVER_SEEN = "SweepNeverSeen"  # no message about them ever reached the linker: their event was lost
CHAIN_CASE = "SweepChainCase"  # enqueued with the one case their contact chain is on
CHAIN_AMBIGUOUS = "SweepChainAmbiguous"  # their chain is on several cases: enqueued without a guess
# Chain look-ups asked of Cases (ListCasesForContact); one the deadline stopped is not counted, even when a
# throttled attempt of it had been sent.
CHAIN_LOOKUPS = "SweepChainLookups"
SEARCH_PAGES = "SweepSearchPages"  # SearchContacts calls
CUT_SHORT = "SweepCutShort"  # 1 when the deadline stopped the run before the end of its window
SEARCH_THROTTLED = "SweepThrottled"  # throttled calls (retried by botocore, paced)
SEARCH_RETRIED = "SweepRetried"
EVENT_COVERAGE = "EventCoverage"  # share (0..1) of the contacts found that the events had handled

# Kept free at the end of a run: the last page's ledger reads and SendMessageBatch calls.
SWEEP_TUNING = Tuning(safety_margin=10.0)
# ListCasesForContact's default quota is 2 requests/s for the whole account, shared with the linker (which
# asks it before every Contact it links): the sweeper takes at most half of it, and only for chains.
CHAIN_LOOKUP_RPS = 1.0
SQS_BATCH = 10
# Connect keeps times to the millisecond: the next instant a search can start from.
_INSTANT = dt.timedelta(milliseconds=1)
_SEND_ATTEMPTS = 3


# --- what a run found and did ---------------------------------------------------------------------------------


@dataclass
class SweepReport:
    """Counts of one run (published as EMF metrics) and how it ended."""

    window_start: dt.datetime
    window_end: dt.datetime
    found: int = 0
    already_handled: int = 0
    enqueued: int = 0
    no_case_id: int = 0
    never_seen: int = 0
    covered_by_events: int = 0
    chain_case: int = 0
    chain_ambiguous: int = 0
    chain_lookups: int = 0
    pages: int = 0
    complete: bool = False
    cut_short: bool = False
    error_code: str | None = None

    @property
    def event_coverage(self) -> float | None:
        """The share of the contacts found that contact events had handled; None when none was found."""
        return self.covered_by_events / self.found if self.found else None

    def metrics(self) -> dict[str, int]:
        return {
            CONTACTS_FOUND: self.found,
            ALREADY_HANDLED: self.already_handled,
            ENQUEUED: self.enqueued,
            NO_CASE_ID_AGAIN: self.no_case_id,
            NEVER_SEEN: self.never_seen,
            CHAIN_CASE: self.chain_case,
            CHAIN_AMBIGUOUS: self.chain_ambiguous,
            CHAIN_LOOKUPS: self.chain_lookups,
            SEARCH_PAGES: self.pages,
            CUT_SHORT: int(self.cut_short),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "windowStart": _iso(self.window_start),
            "windowEnd": _iso(self.window_end),
            **self.metrics(),
            EVENT_COVERAGE: self.event_coverage,
            "complete": self.complete,
            "errorCode": self.error_code,
        }


NEVER_SEEN_REASON = "never_seen"
NO_CASE_ID_REASON = "no_case_id"


@dataclass(frozen=True)
class Enqueue:
    """A contact to put on the main queue, why, and the case its chain leads to, if one."""

    contact: FoundContact
    reason: str
    chain_case_id: str | None = None


# --- the message ----------------------------------------------------------------------------------------------


def contact_message(
    contact: FoundContact,
    *,
    instance_arn: str,
    source: str,
    now: dt.datetime,
    chain_case_id: str | None = None,
) -> str:
    """An EventBridge-shaped envelope whose detail is the COMPLETED event Connect would have published."""
    _, _, _, region, account, _ = instance_arn.split(":", 5)
    contact_arn = f"{instance_arn}/contact/{contact.contact_id}"
    detail: dict[str, Any] = {
        "eventType": "COMPLETED",
        "contactId": contact.contact_id,
        "initialContactId": contact.initial_contact_id,
        "previousContactId": contact.previous_contact_id,
        "channel": contact.channel,
        "instanceArn": instance_arn,
        "initiationMethod": contact.initiation_method,
        "initiationTimestamp": _iso(contact.initiation_time),
        "disconnectTimestamp": _iso(contact.disconnect_time),
        "agentInfo": {"agentArn": f"{instance_arn}/agent/{contact.agent_id}"} if contact.agent_id else None,
        "queueInfo": {"queueArn": f"{instance_arn}/queue/{contact.queue_id}"} if contact.queue_id else None,
        "tags": dict(contact.tags),
        "chainCaseId": chain_case_id,
    }
    envelope = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": CONTACT_DETAIL_TYPE,
        "source": source,
        "account": account,
        "time": _iso(now),
        "region": region,
        "resources": [instance_arn, contact_arn],
        "detail": {key: value for key, value in detail.items() if value is not None},
    }
    return json.dumps(envelope, separators=(",", ":"))


def _iso(when: dt.datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the ports --------------------------------------------------------------------------------------------------


class SearchPort(Protocol):
    def page(
        self, instance_id: str, start: dt.datetime, end: dt.datetime, next_token: str | None = None
    ) -> SearchPage: ...

    def cases_of_contact(self, domain_id: str, contact_arn: str) -> frozenset[str]: ...


class LedgerPort(Protocol):
    def contacts(self, instance_id: str, contact_ids: list[str]) -> dict[str, ContactRecord]: ...


class QueuePort(Protocol):
    def send(self, bodies: list[str]) -> None: ...


class QueueWriter:
    """SendMessageBatch, 10 messages at a time; entries SQS refuses for its own reasons are sent again."""

    def __init__(self, sqs: Any, queue_url: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._sleep = sleep

    def send(self, bodies: list[str]) -> None:
        """Enqueue every body or raise (TransientError, PermanentError): never a silent partial send."""
        for start in range(0, len(bodies), SQS_BATCH):
            entries = [
                {"Id": str(i), "MessageBody": body}
                for i, body in enumerate(bodies[start : start + SQS_BATCH])
            ]
            for attempt in range(1, _SEND_ATTEMPTS + 1):
                try:
                    response = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
                except ClientError as error:
                    code = error_code(error) or "Unknown"
                    raise TransientError(code, f"SendMessageBatch failed: {code}") from error
                except BotoCoreError as error:
                    raise TransientError(type(error).__name__, "SendMessageBatch failed") from error
                failed = response.get("Failed") or []
                if not failed:
                    break
                if any(entry.get("SenderFault") for entry in failed):
                    code = str(next(e.get("Code") for e in failed if e.get("SenderFault")))
                    raise PermanentError(code, f"SendMessageBatch refused {len(failed)} messages: {code}")
                retry = {entry["Id"] for entry in failed}
                entries = [entry for entry in entries if entry["Id"] in retry]
                if attempt < _SEND_ATTEMPTS:
                    self._sleep(0.1 * 2**attempt)
            else:
                raise TransientError("SendMessageBatchFailed", f"SQS did not accept {len(entries)} messages")


# --- the sweep --------------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """What one run remembers between pages: tag case ids seen, chain look-ups made."""

    report: SweepReport
    tag_cases: dict[str, str] = field(default_factory=dict)
    chain_cases: dict[str, frozenset[str]] = field(default_factory=dict)
    lookups_off: bool = False
    lookup_error: LinkerError | None = None
    left_out: bool = False  # a search could not get past an instant: some of its contacts were not looked at


class Sweeper:
    """One run: search the window, decide per contact, enqueue. Not thread-safe (one run at a time)."""

    def __init__(
        self,
        *,
        settings: SweeperSettings,
        search: SearchPort,
        ledger: LedgerPort,
        queue: QueuePort,
        app_logger: Logger,
        result_limit: int = SEARCH_RESULT_LIMIT,
    ) -> None:
        self._settings = settings
        self._search = search
        self._ledger = ledger
        self._queue = queue
        self._logger = app_logger
        self._result_limit = result_limit

    def window(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """[now - lag - window, now - lag]: contacts that ended then have finished their after-contact work."""
        end = now - dt.timedelta(minutes=self._settings.lag_minutes)
        return end - dt.timedelta(minutes=self._settings.window_minutes), end

    def sweep(self, report: SweepReport, now: dt.datetime) -> None:
        """Search `report`'s window and enqueue what the linker has not handled; counts go into `report`.

        Returns when the window is done or the deadline is near (report.cut_short). Raises LinkerError when a
        call fails for good; what was enqueued before stays enqueued and the next run covers the rest.
        """
        run = _Run(report)
        try:
            for page in self._pages(report.window_start, report.window_end, run):
                enqueue, cut = self._decide(page.contacts, run)
                self._enqueue(enqueue, now, report)
                if cut:
                    report.cut_short = True
                    break
            else:
                report.complete = not run.left_out
        except OutOfTimeError:
            report.cut_short = True
        if report.cut_short:
            self._logger.info("deadline near: the rest of the window is left to the next run")
        if run.lookup_error is not None:
            raise run.lookup_error

    def _enqueue(self, enqueue: list[Enqueue], now: dt.datetime, report: SweepReport) -> None:
        """Send `enqueue` a batch at a time, counting and logging each batch once SQS has it: a failure part-way
        leaves the report true to what is on the queue."""
        instance_arn = self._settings.connect_instance_arn
        for start in range(0, len(enqueue), SQS_BATCH):
            batch = enqueue[start : start + SQS_BATCH]
            self._queue.send(
                [
                    contact_message(
                        item.contact,
                        instance_arn=instance_arn,
                        source=SWEEPER_SOURCE,
                        now=now,
                        chain_case_id=item.chain_case_id,
                    )
                    for item in batch
                ]
            )
            report.enqueued += len(batch)
            self._log_enqueued(batch)

    def _log_enqueued(self, batch: list[Enqueue]) -> None:
        for item in batch:
            log = self._logger.info if item.reason == NEVER_SEEN_REASON else self._logger.debug
            log(
                "contact enqueued",
                extra={
                    "contact_id": item.contact.contact_id,
                    "reason": item.reason,
                    "chain_case_id": loggable_id(item.chain_case_id),
                },
            )

    def _pages(self, start: dt.datetime, end: dt.datetime, run: _Run) -> Iterator[SearchPage]:
        """Every page of the range, oldest first.

        One search returns its first 10,000 results only: when its pages end short of its TotalCount, or
        after that many (TotalCount may count only those), a new search starts at the last disconnect time
        seen, leaving out the contacts of that instant already seen.
        """
        seen_at_last: set[str] = set()
        last: dt.datetime | None = None
        page = self._search_page(start, end, None, run)
        served = 0
        while True:
            contacts = [
                c for c in page.contacts if not (c.disconnect_time == last and c.contact_id in seen_at_last)
            ]
            for contact in page.contacts:
                if contact.disconnect_time != last:
                    last, seen_at_last = contact.disconnect_time, set()
                seen_at_last.add(contact.contact_id)
            served += len(page.contacts)
            yield dataclasses.replace(page, contacts=contacts)
            if page.next_token:
                page = self._search_page(start, end, page.next_token, run)
            elif not self._cut_off(served, page.total) or last is None:
                return
            elif last > start:
                start, served = last, 0
                page = self._search_page(start, end, None, run)
            else:
                # Every result of the search ended at its start: a search from there returns the same ones.
                # The rest of that instant cannot be listed; the run searches on after it and is not complete.
                run.left_out = True
                self._logger.warning(
                    "more contacts ended at one instant than a search returns: some were not looked at",
                    extra={"instant": _iso(start), "search_result_limit": self._result_limit},
                )
                start, served = last + _INSTANT, 0
                page = self._search_page(start, end, None, run)

    def _cut_off(self, served: int, total: int | None) -> bool:
        """Whether a search whose pages ended after `served` results left some out."""
        return served >= self._result_limit or (total is not None and served < total)

    def _search_page(self, start: dt.datetime, end: dt.datetime, token: str | None, run: _Run) -> SearchPage:
        page = self._search.page(self._settings.instance_id, start, end, token)
        run.report.pages += 1
        return page

    def _decide(self, contacts: list[FoundContact], run: _Run) -> tuple[list[Enqueue], bool]:
        """The contacts of a page to enqueue, in order; True when the deadline cut the page short."""
        settings = self._settings
        follow = settings.follow_contact_chain and settings.cases_domain_id is not None
        wanted = [c.contact_id for c in contacts]
        if follow:
            wanted += [ref for c in contacts for ref in c.chain]
        records = self._ledger.contacts(settings.instance_id, wanted)
        for contact in contacts:
            tag_case = case_id_from(contact.tags, settings.case_id_attribute)
            # A tag that is no case id is nobody's chain case (its own message is dead-lettered by the linker).
            if tag_case is not None and is_case_id(tag_case):
                run.tag_cases[contact.contact_id] = tag_case
        report = run.report
        enqueue: list[Enqueue] = []
        for contact in contacts:
            record = records.get(contact.contact_id)
            handled = record is not None and record.state != NO_CASE_ID
            chain_case = None
            if not handled and follow and contact.chain and contact.contact_id not in run.tag_cases:
                try:
                    chain_case = self._chain_case(contact, records, run)
                except OutOfTimeError:
                    return enqueue, True
            report.found += 1
            if record is not None and record.origin not in NOT_FROM_EVENTS:
                report.covered_by_events += 1
            if handled:
                report.already_handled += 1
            elif record is None:
                report.never_seen += 1
                enqueue.append(Enqueue(contact, NEVER_SEEN_REASON, chain_case))
            else:
                report.no_case_id += 1
                enqueue.append(Enqueue(contact, NO_CASE_ID_REASON, chain_case))
        return enqueue, False

    def _chain_case(
        self, contact: FoundContact, records: Mapping[str, ContactRecord], run: _Run
    ) -> str | None:
        """The one case `contact`'s chain is on, if exactly one; counts ambiguity and look-ups."""
        cases: set[str] = set()
        for ref in contact.chain:
            record = records.get(ref)
            if record is not None and record.state == LINKED:
                cases.update(record.case_ids)
            if ref in run.tag_cases:
                cases.add(run.tag_cases[ref])
        if not cases:
            cases.update(self._looked_up(contact.chain[0], run))
        if len(cases) > 1:
            run.report.chain_ambiguous += 1
            self._logger.info(
                "contact chain leads to several cases: not linked through it",
                extra={"contact_id": contact.contact_id, "cases": len(cases)},
            )
            return None
        if cases:
            run.report.chain_case += 1
            return next(iter(cases))
        return None

    def _looked_up(self, root: str, run: _Run) -> frozenset[str]:
        """The cases of a chain's contact, asked of Cases once per run and chain."""
        if root in run.chain_cases:
            return run.chain_cases[root]
        if run.lookups_off:
            return frozenset()
        domain_id = str(self._settings.cases_domain_id)
        asked = True
        try:
            found = self._search.cases_of_contact(
                domain_id, f"{self._settings.connect_instance_arn}/contact/{root}"
            )
        except OutOfTimeError:
            asked = False  # no slot before the deadline: the next run looks it up
            raise
        except TransientError as error:
            # Throttled past the retries, or Cases unavailable: the linker needs that quota more. These
            # contacts go without a chain case this time; later runs look again while they are in the window.
            run.lookups_off = True
            self._logger.warning("chain look-ups stopped for this run", extra={"error_code": error.code})
            return frozenset()
        except PermanentError as error:
            # AccessDenied or an unknown domain: a configuration to fix. The run finishes, then fails.
            run.lookups_off = True
            run.lookup_error = error
            self._logger.error("chain look-ups failed", extra={"error_code": error.code})
            return frozenset()
        finally:
            if asked:
                run.report.chain_lookups += 1
        run.chain_cases[root] = found
        return found


# --- composition ------------------------------------------------------------------------------------------------


class SweeperApp:
    """The wired sweeper: `handle(event, context)` runs one sweep and publishes its metrics."""

    def __init__(
        self,
        settings: SweeperSettings,
        clients: Clients,
        tuning: Tuning,
        app_logger: Logger,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        page_size: int = SEARCH_PAGE_SIZE,
        search_result_limit: int = SEARCH_RESULT_LIMIT,
    ) -> None:
        self.settings = settings
        self.tuning = tuning
        self.guard = BatchGuard(attempt_seconds=tuning.attempt_seconds)
        self.counters = Counters()
        # Own token buckets: SearchContacts' quota and the chain look-ups' share of ListCasesForContact's.
        install_guards(
            clients.connect,
            guard=self.guard,
            counters=self.counters,
            max_attempts=tuning.read_attempts,
            pacer=Pacer(settings.connect_search_rps, 1.0),
        )
        # With the account's Cases quota configured, chain look-ups draw on the linker's fleet budget as
        # background work, so the linker and the sweeper together stay within it; the local share is the
        # fallback while the budget's table fails.
        local_share = Pacer(CHAIN_LOOKUP_RPS, 1.0)
        self.budget = fleet_budget(
            settings.cases_quota_rps,
            settings.cases_quota_burst,
            clients,
            settings.idempotency_table_name,
            local_share,
            app_logger,
        )
        install_guards(
            clients.cases,
            guard=self.guard,
            counters=self.counters,
            max_attempts=tuning.read_attempts,
            pacer=self.budget or local_share,
        )
        self.sweeper = Sweeper(
            settings=settings,
            search=ContactSearch(
                connect=clients.connect, cases=clients.cases, counters=self.counters, page_size=page_size
            ),
            ledger=Ledger(clients.dynamodb, settings.idempotency_table_name),
            queue=QueueWriter(clients.sqs, settings.main_queue_url),
            app_logger=app_logger,
            result_limit=search_result_limit,
        )
        self._clock = clock
        self._logger = app_logger

    def handle(
        self, event: Mapping[str, Any], context: LambdaContext, sink: Metrics | None = None
    ) -> dict[str, Any]:
        """One sweep ending at the invocation time (the event's own time is not used); metrics either way."""
        now = self._clock()
        BACKGROUND_WORK.set(True)  # the sweeper's Cases calls never take live contacts' share of the budget
        report = SweepReport(*self.sweeper.window(now))
        self.counters.take()
        self.guard.start_batch(context.get_remaining_time_in_millis() / 1000, self.tuning.safety_margin)
        try:
            self.sweeper.sweep(report, now)
        except LinkerError as error:
            report.error_code = error.code
            self._logger.warning(
                "sweep failed; the next run searches this window again", extra={"error_code": error.code}
            )
            raise
        finally:
            self._logger.info("sweep done", extra={"sweep": report.as_dict()})
            self._publish(report, sink or metrics)
        return report.as_dict()

    def _publish(self, report: SweepReport, sink: Metrics) -> None:
        counts = self.counters.take()
        values = {
            **report.metrics(),
            SEARCH_THROTTLED: sum(v for (name, _, _), v in counts.items() if name == THROTTLED),
            SEARCH_RETRIED: sum(v for (name, _, _), v in counts.items() if name == RETRIED),
        }
        for name, value in values.items():
            sink.add_metric(name=name, unit=MetricUnit.Count, value=value)
        coverage = report.event_coverage
        if coverage is not None:
            sink.add_metric(name=EVENT_COVERAGE, unit=MetricUnit.NoUnit, value=coverage)
        sink.flush_metrics()


def build_sweeper(
    settings: SweeperSettings,
    clients: Clients | None = None,
    tuning: Tuning | None = None,
    app_logger: Logger | None = None,
    **options: Any,
) -> SweeperApp:
    """Wire the sweeper from settings; clients default to boto3's (AWS_ENDPOINT_URL_* honoured)."""
    tuning = tuning or SWEEP_TUNING
    return SweeperApp(settings, clients or build_clients(tuning), tuning, app_logger or logger, **options)


lambda_handler = make_lambda_handler(lambda: build_sweeper(SweeperSettings.from_env(os.environ)))
