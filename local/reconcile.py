"""Reconciliation: every published input ends as related item(s), a counted skip, a DLQ message, or is lost.

Works from the evidence, not from the handler's word: the related items the emulator holds (minus those
seeded before the run), the messages sitting in both DLQs, and what the poller saw happen to each message.
The handler's logs only supply the *reason* for a skip.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from local.inputs import Input, lenient_get, squash
from local.logs import HandlerOutput, LogLine
from local.poller import Delivery, PollerStats, RecordOutcome, body_sha256

# Sources of the messages the sweeper and `ops backfill` put on the queue for contacts whose event was lost.
SWEEPER_SOURCES = frozenset({"case-linker.sweeper", "case-linker.backfill"})


class Route(StrEnum):
    EVENTBRIDGE = "eventbridge"
    QUEUE = "queue"
    DROPPED = "dropped"  # a contact event lost between Connect and the rule (--drop-events), never published


class Outcome(StrEnum):
    LINKED = "linked"  # at least one related item made for it during the run
    SKIPPED = "skipped"  # acknowledged without an item and not dead-lettered (reason from the logs)
    DEAD_LETTERED = "dead_lettered"  # in the processing DLQ or the rule-target DLQ
    FILTERED = "filtered"  # EventBridge's rule did not match it: never reached the queue (as on AWS)
    REJECTED = "rejected"  # PutEvents refused the entry
    PENDING = "pending"  # still on the main queue when the drain stopped
    DROPPED = "dropped"  # its contact event was lost on the way (--drop-events) and nothing made up for it
    LOST = "lost"  # none of the above: the one outcome that must never happen


@dataclass(frozen=True)
class Published:
    """One input as it was published; `ref` is its position in the run."""

    ref: int
    input: Input
    route: Route
    event_id: str | None = None
    message_id: str | None = None
    matched_rule: bool = True
    error: str | None = None
    dropped: str | None = None  # why a contact event never reached the rule (Route.DROPPED)


@dataclass(frozen=True)
class DlqMessage:
    queue: str  # "processing" | "rule_target"
    message_id: str
    body: str
    attributes: dict[str, str]

    @property
    def error_code(self) -> str:
        """ERROR_CODE, or `maxReceiveCount` for a message SQS redrove (those carry no error attributes)."""
        return self.attributes.get("ERROR_CODE") or "maxReceiveCount"

    @property
    def error_message(self) -> str:
        return self.attributes.get("ERROR_MESSAGE") or (
            "received maxReceiveCount times without success; moved by SQS redrive"
            if "ERROR_CODE" not in self.attributes
            else ""
        )


@dataclass(frozen=True)
class CreatedItem:
    domain_id: str
    case_id: str
    related_item_id: str
    type: str
    content: dict[str, Any]


@dataclass
class InputResult:
    ref: int
    name: str
    route: str
    outcome: Outcome
    case_ids: list[str] = field(default_factory=list)
    contact_arns: list[str] = field(default_factory=list)
    item_type: str | None = None
    items: int = 0
    dlq_queue: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    reason: str | None = None
    deliveries: int = 0
    max_receive_count: int = 0
    # How the delivery with the highest receive count ended (RecordOutcome), and whether the poller's chaos
    # delivered that message again while it ran: SQS's redrive is the only possible ending after a last
    # delivery that was killed, or whose message another receive took.
    last_delivery: str | None = None
    last_delivery_duplicated: bool = False
    expected: Any = None
    mismatch: str | None = None
    contact_event: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        return data


@dataclass
class Reconciliation:
    inputs: list[InputResult]
    items_created: int
    duplicates: int
    duplicate_items: list[dict[str, Any]]
    unattributed_items: int
    dlq_by_code: dict[str, dict[str, int]]
    skips_by_reason: dict[str, int]
    drained: bool
    poller: PollerStats
    handler_metrics: dict[str, int]
    poller_errors: list[str] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.inputs if r.outcome is outcome)

    @property
    def lost(self) -> int:
        return self.count(Outcome.LOST)

    @property
    def pending(self) -> int:
        return self.count(Outcome.PENDING)

    @property
    def mismatches(self) -> list[InputResult]:
        return [r for r in self.inputs if r.mismatch is not None]

    @property
    def ok(self) -> bool:
        """Nothing lost or left behind, no duplicates, every expectation met."""
        return (
            self.drained
            and self.lost == 0
            and self.pending == 0
            and self.duplicates == 0
            and not self.mismatches
        )

    def coverage(self) -> dict[str, Any]:
        """Of the contact events expected to link (contacts that carry a case id): how many are linked."""
        wanted = [
            r for r in self.inputs if r.contact_event and expected_outcome(r.expected)[0] is Outcome.LINKED
        ]
        linked = sum(1 for r in wanted if r.outcome is Outcome.LINKED)
        return {"contacts": len(wanted), "linked": linked, "share": linked / len(wanted) if wanted else None}

    def summary(self) -> dict[str, Any]:
        return {
            "inputs": len(self.inputs),
            "linked": self.count(Outcome.LINKED),
            "skipped": self.count(Outcome.SKIPPED),
            "dead_lettered": self.count(Outcome.DEAD_LETTERED),
            "filtered": self.count(Outcome.FILTERED),
            "rejected": self.count(Outcome.REJECTED),
            "dropped": self.count(Outcome.DROPPED),
            "pending": self.pending,
            "lost": self.lost,
            "items_created": self.items_created,
            "duplicates": self.duplicates,
            "unattributed_items": self.unattributed_items,
            "mismatches": len(self.mismatches),
            "drained": self.drained,
            "ok": self.ok,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "skips_by_reason": self.skips_by_reason,
            "dlq_by_code": self.dlq_by_code,
            "duplicate_items": self.duplicate_items,
            "poller": asdict(self.poller),
            "poller_errors": self.poller_errors,
            "handler_metrics": self.handler_metrics,
            "inputs": [r.to_json() for r in self.inputs],
        }


# --- what an input asks for, what an item is --------------------------------------------------------------------


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _content_key(item_type: str, content: Any) -> str:
    # Comments compare by body: contentType is a constant the linker may add.
    if isinstance(content, dict) and isinstance(content.get("comment"), dict):
        return _canonical({"comment": content["comment"].get("body")})
    return _canonical(content)


def item_key(domain_id: str, case_id: str, item_type: str, content: Any) -> tuple[str, str, str, str]:
    """What makes two related items the same item: two with one key on one case are a duplicate."""
    return (domain_id, case_id, item_type.lower(), _content_key(item_type, content))


def input_keys(
    item: Input,
    default_domain_id: str,
    link_event_types: frozenset[str],
    merged_cases: Mapping[str, str] | None = None,
) -> list[tuple[str, ...]]:
    """Keys of the items this input would make: a contact ARN (any case), or a request's exact item.

    A contact event whose type does not link (DISCONNECTED by default) claims no item, even when another
    event of the same contact made one. An item asked for on a case later merged into another
    (`merged_cases`: secondary -> primary) may be found on either.
    """
    keys: list[tuple[str, ...]] = []
    if (arn := item.contact_arn) is not None and item.contact_event_type in link_event_types:
        keys.append(("contact", arn))
    request = item.request
    if request is not None:
        case_id, item_type, content = request.get("caseId"), request.get("type"), request.get("content")
        domain_id = request.get("domainId") or default_domain_id
        if isinstance(case_id, str) and isinstance(item_type, str):
            keys.append(("item", *item_key(str(domain_id), case_id, item_type, content)))
            primary = (merged_cases or {}).get(case_id)
            if primary is not None:
                keys.append(("item", *item_key(str(domain_id), primary, item_type, content)))
    return keys


def input_identity(item: Input, default_domain_id: str) -> tuple[str, ...] | None:
    """What makes two inputs the same request (as the linker's ledger sees it): a producer's idempotencyKey,
    else the item itself. Two inputs with one identity must make one item between them; two identities with
    the same content (two payments with the same note) must make one item each."""
    request = item.request
    if request is None:
        return None
    key = request.get("idempotencyKey")
    if isinstance(key, str):
        return ("idempotencyKey", key)
    case_id, item_type, content = request.get("caseId"), request.get("type"), request.get("content")
    if isinstance(case_id, str) and isinstance(item_type, str):
        domain_id = request.get("domainId") or default_domain_id
        return ("item", *item_key(str(domain_id), case_id, item_type, content))
    return None


def created_item_keys(item: CreatedItem) -> list[tuple[str, ...]]:
    keys: list[tuple[str, ...]] = [("item", *item_key(item.domain_id, item.case_id, item.type, item.content))]
    contact = item.content.get("contact") if isinstance(item.content, dict) else None
    if isinstance(contact, dict) and isinstance(contact.get("contactArn"), str):
        keys.append(("contact", contact["contactArn"]))
    return keys


# --- locating messages ------------------------------------------------------------------------------------------


class _Locator:
    """Finds which published input a message (delivered, dead-lettered, replayed) came from."""

    def __init__(self, published: Sequence[Published]) -> None:
        self._by_event_id = {p.event_id: p.ref for p in published if p.event_id}
        self._by_message_id = {p.message_id: p.ref for p in published if p.message_id}
        self._by_body: dict[str, list[int]] = {}
        for p in published:
            self._by_body.setdefault(body_sha256(p.input.body), []).append(p.ref)
        # The sweeper's message about a contact whose event was lost stands in for that event: its COMPLETED event,
        # not another event of the same contact that the linker ignores.
        self._dropped_by_contact = {
            p.input.contact_arn: p.ref
            for p in published
            if p.route is Route.DROPPED and p.input.contact_arn and p.input.contact_event_type == "COMPLETED"
        }

    def locate(
        self, body: str, message_id: str | None, attributes: Mapping[str, str] | None = None
    ) -> int | None:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            document = None
        if isinstance(document, dict):
            event_id = lenient_get(document, "id")
            if isinstance(event_id, str) and event_id in self._by_event_id:
                return self._by_event_id[event_id]
            if lenient_get(document, "source") in SWEEPER_SOURCES:
                arn = Input.of("", body).contact_arn
                if arn in self._dropped_by_contact:
                    return self._dropped_by_contact[arn]
        for candidate in (message_id, (attributes or {}).get("SOURCE_MESSAGE_ID")):
            if candidate and candidate in self._by_message_id:
                return self._by_message_id[candidate]
        refs = self._by_body.get(body_sha256(body))
        return refs[0] if refs else None


# --- skip reasons -----------------------------------------------------------------------------------------------

_SKIP_WORDS = ("ignor", "already", "no case", "no_case", "not in", "skip", "unlinked", "duplicate", "idempot")


def skip_reason(lines: Sequence[LogLine]) -> str | None:
    """Why an acknowledged record made no item, from its log lines.

    The linker ends each record with an `outcome` (e.g. `already_linked`, `ignored`, `no_case_id`) and may
    explain it in a `reason` field (e.g. which event type was ignored): combine the two.
    """
    outcome = next(
        (
            str(line.fields["outcome"])
            for line in reversed(lines)
            if isinstance(line.fields.get("outcome"), str)
        ),
        None,
    )
    detail = next(
        (
            str(line.fields["reason"])
            for line in reversed(lines)
            if isinstance(line.fields.get("reason"), str)
        ),
        None,
    )
    if outcome and detail and detail != outcome:
        return f"{outcome}: {detail}"
    if outcome or detail:
        return outcome or detail
    for line in reversed(lines):
        if any(word in line.message.lower() for word in _SKIP_WORDS):
            return line.message
    return lines[-1].message if lines else None


# --- expectations -----------------------------------------------------------------------------------------------

_OUTCOME_ALIASES = {
    "linked": Outcome.LINKED,
    "link": Outcome.LINKED,
    "created": Outcome.LINKED,
    "skipped": Outcome.SKIPPED,
    "skip": Outcome.SKIPPED,
    "ignored": Outcome.SKIPPED,
    "already_linked": Outcome.SKIPPED,
    "no_case_id": Outcome.SKIPPED,
    "unlinked": Outcome.SKIPPED,
    "dead_lettered": Outcome.DEAD_LETTERED,
    "deadlettered": Outcome.DEAD_LETTERED,
    "dlq": Outcome.DEAD_LETTERED,
    "dead_letter": Outcome.DEAD_LETTERED,
    "filtered": Outcome.FILTERED,
}


# Expectations name skips by the linker's metric; its logs name them by outcome.
_REASON_ALIASES = {
    "eventignored": ("ignored", "eventignored"),
    "nocaseid": ("nocaseid",),
    "alreadylinked": ("alreadylinked",),
}


def _norm(value: str) -> str:
    return value.strip().lower().replace("-", "_").replace(" ", "_")


def expected_outcome(expected: Any) -> tuple[Outcome | None, dict[str, Any]]:
    """An expectation as (outcome, details): a bare string, or an object with `outcome` and details."""
    if isinstance(expected, str):
        return _OUTCOME_ALIASES.get(_norm(expected)), {}
    if isinstance(expected, Mapping):
        raw = expected.get("outcome") or expected.get("result") or expected.get("status")
        outcome = _OUTCOME_ALIASES.get(_norm(raw)) if isinstance(raw, str) else None
        return outcome, dict(expected)
    return None, {}


def check_expectation(result: InputResult, expected: Any) -> str | None:
    """None when `result` meets `expected`, else what differs."""
    outcome, details = expected_outcome(expected)
    if outcome is None:
        return f"cannot read the expectation {expected!r}"
    actual = result.outcome
    # An event the rule filters never reaches the linker, exactly as on AWS; a skip is what it would have been.
    # So is a lost event that would have been skipped; a lost one that should link must be made up for.
    if outcome is Outcome.SKIPPED and actual in (Outcome.FILTERED, Outcome.DROPPED):
        actual = Outcome.SKIPPED
    if actual is not outcome:
        return f"expected {outcome.value}, got {result.outcome.value}"
    case_id = details.get("caseId") or details.get("case_id") or details.get("case")
    if case_id is not None and outcome is Outcome.LINKED and result.case_ids != [case_id]:
        return f"expected case {case_id}, got {', '.join(result.case_ids) or 'none'}"
    item_type = details.get("type") or details.get("itemType")
    if (
        item_type is not None
        and outcome is Outcome.LINKED
        and (result.item_type or "").lower() != str(item_type).lower()
    ):
        return f"expected a {item_type} item, got {result.item_type}"
    code = details.get("errorCode") or details.get("error_code") or details.get("ERROR_CODE")
    if code is not None and outcome is Outcome.DEAD_LETTERED and result.error_code != code:
        return f"expected ERROR_CODE {code}, got {result.error_code}"
    queue = details.get("queue") or details.get("dlq")
    if isinstance(queue, str) and outcome is Outcome.DEAD_LETTERED and _norm(queue) != result.dlq_queue:
        return f"expected the {queue} DLQ, got {result.dlq_queue}"
    reason = details.get("reason")
    if isinstance(reason, str) and outcome is Outcome.SKIPPED and result.outcome is Outcome.SKIPPED:
        accepted = _REASON_ALIASES.get(squash(reason), (squash(reason),))
        if not any(token in squash(result.reason or "") for token in accepted):
            return f"expected skip reason {reason!r}, got {result.reason!r}"
    arn = details.get("contactArn")
    if isinstance(arn, str) and outcome is Outcome.LINKED and arn not in result.contact_arns:
        return f"expected contact {arn} on the case, got {', '.join(result.contact_arns) or 'none'}"
    return None


# --- the reconciliation ----------------------------------------------------------------------------------------


def reconcile(
    *,
    published: Sequence[Published],
    created: Iterable[CreatedItem],
    baseline_keys: Mapping[tuple[str, str, str, str], int],
    dlq_messages: Iterable[DlqMessage],
    deliveries: Iterable[Delivery],
    handler_output: HandlerOutput,
    poller_stats: PollerStats,
    drained: bool,
    default_domain_id: str,
    link_event_types: Iterable[str] = ("COMPLETED",),
    expected: Mapping[str, Any] | None = None,
    poller_errors: Sequence[str] = (),
    merged_cases: Mapping[str, str] | None = None,
) -> Reconciliation:
    locator = _Locator(published)
    link_types = frozenset(t.upper() for t in link_event_types)
    created = list(created)

    # Items by the keys they satisfy, and duplicates: one item key present more than once on a case, beyond
    # the number of distinct requests (identities) that asked for that very content.
    items_by_key: dict[tuple[str, ...], list[CreatedItem]] = {}
    new_counts: Counter[tuple[str, str, str, str]] = Counter()
    for item in created:
        for key in created_item_keys(item):
            items_by_key.setdefault(key, []).append(item)
        new_counts[item_key(item.domain_id, item.case_id, item.type, item.content)] += 1
    identities_by_content: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for entry in published:
        identity = input_identity(entry.input, default_domain_id)
        for key in input_keys(entry.input, default_domain_id, link_types, merged_cases):
            if identity is not None and key[0] == "item":
                identities_by_content.setdefault(key[1:], set()).add(identity)
    duplicate_items = []
    duplicates = 0
    for key, count in new_counts.items():
        wanted = max(1, len(identities_by_content.get(key, ())))
        extra = count - (0 if baseline_keys.get(key, 0) else wanted)
        if extra > 0:
            duplicates += extra
            duplicate_items.append({"domainId": key[0], "caseId": key[1], "type": key[2], "extra": extra})

    # Messages by the input they came from.
    dlq_by_ref: dict[int, list[DlqMessage]] = {}
    dlq_by_code: dict[str, Counter[str]] = {}
    for message in dlq_messages:
        dlq_by_code.setdefault(message.queue, Counter())[message.error_code] += 1
        ref = locator.locate(message.body, message.message_id, message.attributes)
        if ref is not None:
            dlq_by_ref.setdefault(ref, []).append(message)
    deliveries_by_ref: dict[int, list[Delivery]] = {}
    for delivery in deliveries:
        ref = locator.locate(delivery.body, delivery.message_id)
        if ref is not None:
            deliveries_by_ref.setdefault(ref, []).append(delivery)

    attributed: set[str] = set()
    results: list[InputResult] = []
    for entry in published:
        keys = input_keys(entry.input, default_domain_id, link_types, merged_cases)
        items: dict[str, CreatedItem] = {}
        for key in keys:
            for item in items_by_key.get(key, []):
                items[item.related_item_id] = item
        attributed.update(items)
        seen = deliveries_by_ref.get(entry.ref, [])
        dead = dlq_by_ref.get(entry.ref, [])
        result = InputResult(
            ref=entry.ref,
            name=entry.input.name,
            route=entry.route.value,
            outcome=Outcome.LOST,
            contact_event=entry.input.is_contact_event,
            deliveries=len(seen),
            max_receive_count=max((d.receive_count for d in seen), default=0),
        )
        if seen:
            final = max(seen, key=lambda d: (d.receive_count, d.at))
            result.last_delivery, result.last_delivery_duplicated = final.outcome.value, final.duplicated
        if dead:
            last = dead[-1]
            result.dlq_queue, result.error_code, result.error_message = (
                last.queue,
                last.error_code,
                last.error_message,
            )
        if items:
            result.outcome = Outcome.LINKED
            result.case_ids = sorted({i.case_id for i in items.values()})
            result.item_type = sorted({i.type for i in items.values()})[0]
            result.contact_arns = sorted(
                {
                    i.content["contact"]["contactArn"]
                    for i in items.values()
                    if isinstance(i.content.get("contact"), dict) and "contactArn" in i.content["contact"]
                }
            )
            result.items = len(items)
            sharing = max(
                (len(identities_by_content.get(k[1:], ())) for k in keys if k[0] == "item"), default=1
            )
            if sharing > 1:
                # Several distinct requests with identical content: each owns one of the items, if there are
                # as many items as requests; extra items are duplicates, and missing ones a loss.
                result.items = len(items) - sharing + 1 if len(items) >= sharing else 0
        elif dead:
            result.outcome = Outcome.DEAD_LETTERED
        elif entry.error is not None:
            result.outcome, result.reason = Outcome.REJECTED, entry.error
        elif any(d.outcome is RecordOutcome.DELETED for d in seen):
            result.outcome = Outcome.SKIPPED
            message_ids = [d.message_id for d in seen]
            lines: list[LogLine] = []
            for message_id in dict.fromkeys(message_ids):
                lines.extend(handler_output.for_message(message_id, entry.event_id))
            result.reason = skip_reason(lines) or "acknowledged without an item (no log line found)"
        elif entry.route is Route.EVENTBRIDGE and not entry.matched_rule and not seen:
            result.outcome = Outcome.FILTERED
            result.reason = "no rule's event pattern matches it"
        elif entry.route is Route.DROPPED and not seen:
            result.outcome, result.reason = Outcome.DROPPED, entry.dropped
        elif not drained:
            result.outcome = Outcome.PENDING
        if expected is not None and entry.input.name in expected:
            result.expected = expected[entry.input.name]
            result.mismatch = check_expectation(result, result.expected)
        results.append(result)

    skips = Counter(r.reason or "unknown" for r in results if r.outcome is Outcome.SKIPPED)
    return Reconciliation(
        inputs=results,
        items_created=len(created),
        duplicates=duplicates,
        duplicate_items=duplicate_items,
        unattributed_items=sum(1 for i in created if i.related_item_id not in attributed),
        dlq_by_code={queue: dict(counts) for queue, counts in dlq_by_code.items()},
        skips_by_reason=dict(skips),
        drained=drained,
        poller=poller_stats,
        handler_metrics=dict(handler_output.metrics),
        poller_errors=list(poller_errors),
    )
