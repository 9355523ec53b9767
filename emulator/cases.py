"""Amazon Connect Cases: domains, cases, related items, reference ids, merges, and the search index.

The search index is what ListCasesForContact, SearchRelatedItems, SearchAllRelatedItems and SearchCases read.
Every write records when it committed (monotonic seconds); a search reads the index as of `now - search_lag_s`,
so a lagging read can miss a fresh write (or still see an item where a merge moved it from). Seeded data is
visible from the start. Not thread-safe by itself: the Emulator holds its lock around every call.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import math
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.case_search import REFERENCE_ID_FIELD, FieldValue, case_matches, scalar, sorted_by_field
from emulator.model import ApiError
from emulator.paging import offset_page

FieldInput = str | float | bool | None
STATUS_FIELD = "status"
# System fields of a Cases domain (Connect admin guide). Only the four below can be merged (StartMergeCases).
SYSTEM_FIELDS = frozenset(
    {
        "title",
        STATUS_FIELD,
        "summary",
        "reference_number",
        REFERENCE_ID_FIELD,
        "case_reason",
        "customer_id",
        "assigned_queue",
        "assigned_user",
        "created_datetime",
        "last_updated_datetime",
        "last_closed_datetime",
        "next_sla_breach_datetime",
    }
)
MERGEABLE_SYSTEM_FIELDS = frozenset({"assigned_queue", "assigned_user", "summary", "case_reason"})
READ_ONLY_FIELDS = frozenset({REFERENCE_ID_FIELD})
MERGEABLE_ITEM_TYPES = frozenset({"comment", "connectCase", "contact", "custom"})
REFERENCE_ID_PATTERN = re.compile(r"[A-Za-z0-9\-._/:#=+-]{1,50}")
SEEDED = -math.inf  # the commit time of seeded data: visible to every search


@dataclass
class RelatedItem:
    domain_id: str
    case_id: str
    related_item_id: str
    related_item_arn: str
    type: str
    content: dict[str, Any]  # the input content union, e.g. {"contact": {"contactArn": ...}}
    performed_by: dict[str, Any] | None
    association_time: dt.datetime


@dataclass
class Case:
    case_id: str
    case_arn: str
    template_id: str
    fields: dict[str, FieldValue]  # field id -> FieldValueUnion, the reference id included
    tags: dict[str, str]
    related_items: list[RelatedItem] = field(default_factory=list)
    reference_id: str | None = None
    merged_into: str | None = None  # set when this case was the secondary of a finished merge
    # (committed at, fields) for SearchCases: what the index holds, oldest first.
    snapshots: list[tuple[float, dict[str, FieldValue]]] = field(default_factory=list)


@dataclass
class Merge:
    """One StartMergeCases: the secondary's items move to the primary when it ends."""

    domain_id: str
    primary_id: str
    secondary_id: str
    item_types: frozenset[str]  # RelatedItemsConfiguration members set to true
    field_ids: tuple[str, ...]  # fieldsConfiguration: values taken from the secondary
    performed_by: dict[str, Any] | None
    started: dt.datetime
    ends_at: float  # monotonic
    ends: dt.datetime  # wall clock, for the association time of the links it makes
    completed: bool = False


@dataclass
class Domain:
    domain_id: str
    domain_arn: str
    name: str
    created_time: dt.datetime
    template_id: str
    cases: dict[str, Case] = field(default_factory=dict)
    client_tokens: dict[str, str] = field(default_factory=dict)  # CreateCase's
    references: dict[str, str] = field(default_factory=dict)  # lower-cased reference id -> case id
    merges: list[Merge] = field(default_factory=list)
    # Every item ever stored (moved and removed ones too), and where the index places it over time:
    # (committed at, case id or None when removed), oldest first.
    items: dict[str, RelatedItem] = field(default_factory=dict)
    placements: dict[str, list[tuple[float, str | None]]] = field(default_factory=dict)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def field_value(value: FieldInput) -> FieldValue:
    """A Python value as a Cases FieldValueUnion."""
    if value is None:
        return {"emptyValue": {}}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int | float):
        return {"doubleValue": float(value)}
    return {"stringValue": value}


def _member(item_type: str) -> str:
    """The content union member of a related item type: Contact -> contact, ConnectCase -> connectCase."""
    return item_type[0].lower() + item_type[1:]


class CasesState:
    def __init__(
        self,
        region: str,
        account_id: str,
        events: Counter[tuple[str, str]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.events = events
        self.clock = clock
        self.max_related_items = 200
        self.search_lag_s = 0.0
        self.search_shows_performed_by = True
        self.merge_duration_s = 2.0
        self.domains: dict[str, Domain] = {}
        # Set by the Store: what Connect knows of a contact ARN (channel, connected time), and the check a
        # Contact related item's ARN must pass.
        self.contact_channel: Callable[[str], tuple[str, dt.datetime] | None] = lambda arn: None
        self.check_contact: Callable[[str], None] = lambda arn: None

    # --- ARNs and lookups ---
    def domain_arn(self, domain_id: str) -> str:
        return f"arn:aws:cases:{self.region}:{self.account_id}:domain/{domain_id}"

    def domain(self, domain_id: str) -> Domain:
        if domain_id not in self.domains:
            raise ApiError(
                "ResourceNotFoundException",
                f"Domain {domain_id} not found",
                resourceId=domain_id,
                resourceType="Domain",
            )
        return self.domains[domain_id]

    def find_domain(self, id_or_name: str) -> Domain | None:
        """A domain by id, else by name (seed files may name either)."""
        found = self.domains.get(id_or_name)
        return found or next((d for d in self.domains.values() if d.name == id_or_name), None)

    def case(self, domain_id: str, case_id: str) -> Case:
        domain = self.domain(domain_id)
        if case_id not in domain.cases:
            raise ApiError(
                "ResourceNotFoundException",
                f"Case {case_id} not found",
                resourceId=case_id,
                resourceType="Case",
            )
        return domain.cases[case_id]

    def by_reference(self, domain: Domain, reference_id: str) -> Case | None:
        case_id = domain.references.get(reference_id.lower())
        return domain.cases[case_id] if case_id else None

    def related_items(self, domain_id: str | None, case_id: str | None) -> list[RelatedItem]:
        items = [
            copy.deepcopy(item)
            for domain in self.domains.values()
            if domain_id is None or domain.domain_id == domain_id
            for case in domain.cases.values()
            if case_id is None or case.case_id == case_id
            for item in case.related_items
        ]
        return sorted(items, key=lambda i: i.association_time)

    # --- writes (seeding and API share them; `at` is the commit time the index records) ---
    def add_domain(self, name: str, domain_id: str | None = None) -> Domain:
        domain_id = domain_id or str(uuid.uuid4())
        if domain_id in self.domains:
            raise ApiError("ConflictException", f"Domain {domain_id} already exists")
        domain = Domain(domain_id, self.domain_arn(domain_id), name, _now(), str(uuid.uuid4()))
        self.domains[domain_id] = domain
        return domain

    def add_case(
        self,
        domain_id: str,
        fields: dict[str, FieldValue],
        template_id: str | None = None,
        case_id: str | None = None,
        tags: dict[str, str] | None = None,
        reference_id: str | None = None,
        at: float = SEEDED,
    ) -> Case:
        domain = self.domain(domain_id)
        case_id = case_id or str(uuid.uuid4())
        if case_id in domain.cases:
            raise ApiError("ConflictException", f"Case {case_id} already exists")
        if reference_id is None:
            reference_id = self._new_reference_id(domain)
        elif not REFERENCE_ID_PATTERN.fullmatch(reference_id):
            raise ApiError(
                "ValidationException",
                f"Reference ID {reference_id!r} must be 1..50 characters of A-Z a-z 0-9 - . _ / : # = +",
            )
        elif reference_id.lower() in domain.references:
            raise ApiError("ConflictException", f"Reference ID {reference_id} is already used in this domain")
        fields = {
            STATUS_FIELD: {"stringValue": "open"},
            **fields,
            REFERENCE_ID_FIELD: {"stringValue": reference_id},
        }
        case = Case(
            case_id,
            f"{domain.domain_arn}/case/{case_id}",
            template_id or domain.template_id,
            fields,
            tags or {},
            reference_id=reference_id,
        )
        domain.cases[case_id] = case
        domain.references[reference_id.lower()] = case_id
        self._snapshot(case, at)
        return case

    def _new_reference_id(self, domain: Domain) -> str:
        # AWS does not document the format; 8 upper-case hex digits fit the pattern and read like one.
        while True:
            candidate = uuid.uuid4().hex[:8].upper()
            if candidate.lower() not in domain.references:
                return candidate

    def _snapshot(self, case: Case, at: float) -> None:
        case.snapshots.append((at, copy.deepcopy(case.fields)))

    def add_related_item(
        self,
        domain_id: str,
        case_id: str,
        item_type: str,
        content: dict[str, Any],
        performed_by: dict[str, Any] | None,
        at: float = SEEDED,
    ) -> RelatedItem:
        case = self.case(domain_id, case_id)
        self._check_room(case)
        expected = _member(item_type)
        if next(iter(content)) != expected:
            raise ApiError(
                "ValidationException", f"The content must be '{expected}' for related item type {item_type}"
            )
        if item_type == "Contact":
            self.check_contact(content["contact"]["contactArn"])
        if item_type == "ConnectCase":
            self.case(domain_id, content["connectCase"]["caseId"])
        return self._store_item(self.domains[domain_id], case, item_type, content, performed_by, at)

    def _check_room(self, case: Case) -> None:
        if len(case.related_items) >= self.max_related_items:
            raise ApiError(
                "ServiceQuotaExceededException",
                f"The case {case.case_id} already has the maximum of {self.max_related_items} related items",
            )

    def _store_item(
        self,
        domain: Domain,
        case: Case,
        item_type: str,
        content: dict[str, Any],
        performed_by: dict[str, Any] | None,
        at: float,
        associated: dt.datetime | None = None,
    ) -> RelatedItem:
        item_id = str(uuid.uuid4())
        item = RelatedItem(
            domain_id=domain.domain_id,
            case_id=case.case_id,
            related_item_id=item_id,
            related_item_arn=f"{case.case_arn}/related-item/{item_id}",
            type=item_type,
            content=copy.deepcopy(content),
            performed_by=copy.deepcopy(performed_by),
            association_time=associated or _now(),
        )
        case.related_items.append(item)
        domain.items[item_id] = item
        domain.placements[item_id] = [(at, case.case_id)]
        return item

    def _running_merge(self, domain: Domain, case_id: str) -> Merge | None:
        now = self.clock()
        return next(
            (
                m
                for m in domain.merges
                if not m.completed and m.ends_at > now and case_id in (m.primary_id, m.secondary_id)
            ),
            None,
        )

    def _check_not_merging(self, domain: Domain, case: Case, operation: str) -> None:
        merge = self._running_merge(domain, case.case_id)
        if merge is not None and merge.secondary_id == case.case_id:
            self.events[(operation, "merge_conflict")] += 1
            raise ApiError(
                "ConflictException",
                f"Case {case.case_id} is the secondary case of a merge that is running; retry after it ends",
            )

    # --- merges ---
    def start_merge(
        self,
        domain_id: str,
        primary_id: str,
        secondary_id: str,
        item_types: Iterable[str],
        field_ids: Iterable[str] = (),
        performed_by: dict[str, Any] | None = None,
        duration_s: float | None = None,
    ) -> Merge:
        """Validate and start a merge as StartMergeCases documents it; it completes after `duration_s`."""
        domain = self.domain(domain_id)
        primary = self.case(domain_id, primary_id)
        secondary = self.case(domain_id, secondary_id)
        if primary_id == secondary_id:
            raise ApiError("ValidationException", "The primary case and the secondary case are the same case")
        for case in (primary, secondary):
            if self._running_merge(domain, case.case_id) is not None:
                raise ApiError("ConflictException", f"Case {case.case_id} is already part of a running merge")
            if case.merged_into is not None:
                raise ApiError(
                    "ConflictException", f"Case {case.case_id} was merged into another case as its secondary"
                )
        for case in (primary, secondary):
            if scalar(case.fields.get(STATUS_FIELD)) == "closed":
                raise ApiError("ValidationException", f"Case {case.case_id} is closed")
        fields = tuple(field_ids)
        for field_id in fields:
            if field_id in SYSTEM_FIELDS and field_id not in MERGEABLE_SYSTEM_FIELDS:
                raise ApiError("ValidationException", f"Field {field_id} cannot be merged")
            if field_id not in secondary.fields:
                raise ApiError("ValidationException", f"The secondary case has no field {field_id}")
        types = frozenset(item_types) & MERGEABLE_ITEM_TYPES
        moved = sum(_member(i.type) in types for i in secondary.related_items)
        after = [
            (primary, len(primary.related_items) + moved + 1),
            (secondary, len(secondary.related_items) - moved + 1),
        ]
        for case, count in after:
            if count > self.max_related_items:
                raise ApiError(
                    "ServiceQuotaExceededException",
                    f"After the merge case {case.case_id} would exceed {self.max_related_items} related items",
                )
        duration = self.merge_duration_s if duration_s is None else duration_s
        started = _now()
        merge = Merge(
            domain_id,
            primary_id,
            secondary_id,
            types,
            fields,
            performed_by,
            started,
            self.clock() + duration,
            started + dt.timedelta(seconds=duration),
        )
        domain.merges.append(merge)
        if duration <= 0:
            self.settle()
        return merge

    def settle(self) -> None:
        """Finish the merges whose time has come (lazily: each call settles first)."""
        now = self.clock()
        for domain in self.domains.values():
            for merge in domain.merges:
                if not merge.completed and merge.ends_at <= now:
                    self._complete(domain, merge)

    def _complete(self, domain: Domain, merge: Merge) -> None:
        at = merge.ends_at
        primary, secondary = domain.cases[merge.primary_id], domain.cases[merge.secondary_id]
        contacts = {i.content["contact"]["contactArn"] for i in primary.related_items if i.type == "Contact"}
        linked = {
            i.content["connectCase"]["caseId"] for i in primary.related_items if i.type == "ConnectCase"
        }
        for item in list(secondary.related_items):
            kind = _member(item.type)
            if kind not in merge.item_types:
                continue  # File, Sla, and unselected types stay on the closed secondary
            secondary.related_items.remove(item)
            duplicate = (kind == "contact" and item.content["contact"]["contactArn"] in contacts) or (
                kind == "connectCase" and item.content["connectCase"]["caseId"] in linked
            )
            if duplicate:  # the primary keeps its own item for the same contact or case
                domain.placements[item.related_item_id].append((at, None))
                continue
            item.case_id = primary.case_id
            item.related_item_arn = f"{primary.case_arn}/related-item/{item.related_item_id}"
            primary.related_items.append(item)
            domain.placements[item.related_item_id].append((at, primary.case_id))
        for case, other in ((primary, secondary), (secondary, primary)):
            content = {"connectCase": {"caseId": other.case_id}}
            self._store_item(domain, case, "ConnectCase", content, merge.performed_by, at, merge.ends)
        self._merge_fields(primary, secondary, merge.field_ids)
        secondary.fields[STATUS_FIELD] = {"stringValue": "closed"}
        secondary.merged_into = primary.case_id
        merge.completed = True
        self._snapshot(primary, at)
        self._snapshot(secondary, at)

    @staticmethod
    def _merge_fields(primary: Case, secondary: Case, selected: tuple[str, ...]) -> None:
        for field_id, value in secondary.fields.items():
            if field_id in SYSTEM_FIELDS and field_id not in MERGEABLE_SYSTEM_FIELDS:
                continue
            if field_id in selected or scalar(primary.fields.get(field_id)) is None:
                primary.fields[field_id] = copy.deepcopy(value)

    def merges(self, domain_id: str | None) -> list[Merge]:
        return [
            dataclasses.replace(m)
            for d in self.domains.values()
            if domain_id is None or d.domain_id == domain_id
            for m in d.merges
        ]

    # --- the search index ---
    def _indexed_items(
        self, domain: Domain, as_of: float, case_id: str | None = None
    ) -> list[tuple[str, RelatedItem]]:
        """(case id, item) for the items the index shows on `case_id` (or any case) as of `as_of`."""
        if as_of == math.inf:  # the index has caught up: it shows what the cases hold now
            cases = [domain.cases[case_id]] if case_id else domain.cases.values()
            return [(case.case_id, item) for case in cases for item in case.related_items]
        found = []
        for item_id, item in domain.items.items():
            where = None
            for at, placed in domain.placements[item_id]:
                if at <= as_of:
                    where = placed
            if where is not None and case_id in (None, where):
                found.append((where, item))
        return found

    def _indexed_fields(self, case: Case, as_of: float) -> dict[str, FieldValue] | None:
        fields = None
        for at, snapshot in case.snapshots:
            if at <= as_of:
                fields = snapshot
        return fields

    def _lagged(
        self, operation: str, search: Callable[[float], list[Any]], key: Callable[[Any], Any]
    ) -> list[Any]:
        """Run a search as of now minus the lag; count it when a fresh index would have answered otherwise."""
        if self.search_lag_s <= 0:
            return search(math.inf)
        found = search(self.clock() - self.search_lag_s)
        if [key(x) for x in found] != [key(x) for x in search(math.inf)]:
            self.events[(operation, "search_lag_miss")] += 1
        return found

    # --- Cases operations ---
    def create_domain(self, p: dict[str, Any]) -> dict[str, Any]:
        if any(d.name == p["name"] for d in self.domains.values()):
            raise ApiError("ConflictException", f"A domain named {p['name']} already exists")
        domain = self.add_domain(p["name"])
        return {"domainId": domain.domain_id, "domainArn": domain.domain_arn, "domainStatus": "Active"}

    def get_domain(self, p: dict[str, Any]) -> dict[str, Any]:
        d = self.domain(p["domainId"])
        return {
            "domainId": d.domain_id,
            "domainArn": d.domain_arn,
            "name": d.name,
            "createdTime": d.created_time,
            "domainStatus": "Active",
            "tags": {},
        }

    def list_domains(self, p: dict[str, Any]) -> dict[str, Any]:
        summaries = [
            {"domainId": d.domain_id, "domainArn": d.domain_arn, "name": d.name}
            for d in self.domains.values()
        ]
        page, token = offset_page(summaries, p.get("nextToken"), p.get("maxResults") or 10)
        return {"domains": page, "nextToken": token}

    def create_case(self, p: dict[str, Any]) -> dict[str, Any]:
        domain = self.domain(p["domainId"])
        token = p.get("clientToken")
        if token and token in domain.client_tokens:
            existing = domain.cases[domain.client_tokens[token]]
            return {"caseId": existing.case_id, "caseArn": existing.case_arn}
        if p["templateId"] != domain.template_id:
            raise ApiError(
                "ResourceNotFoundException",
                f"Template {p['templateId']} not found",
                resourceId=p["templateId"],
                resourceType="Template",
            )
        fields = {f["id"]: f["value"] for f in p["fields"]}
        read_only = sorted(READ_ONLY_FIELDS & fields.keys())
        if read_only:
            raise ApiError(
                "ValidationException", f"Field {read_only[0]} is set by the service, not by CreateCase"
            )
        case = self.add_case(domain.domain_id, fields, p["templateId"], tags=p.get("tags"), at=self.clock())
        if token:
            domain.client_tokens[token] = case.case_id
        return {"caseId": case.case_id, "caseArn": case.case_arn}

    def get_case(self, p: dict[str, Any]) -> dict[str, Any]:
        case = self.case(p["domainId"], p["caseId"])
        wanted = [f["id"] for f in p["fields"]]
        fields = [{"id": fid, "value": case.fields[fid]} for fid in wanted if fid in case.fields]
        return {"fields": fields, "templateId": case.template_id, "tags": case.tags}

    def create_related_item(self, p: dict[str, Any]) -> dict[str, Any]:
        domain = self.domain(p["domainId"])
        case = self.case(p["domainId"], p["caseId"])
        self._check_not_merging(domain, case, "CreateRelatedItem")
        item = self.add_related_item(
            p["domainId"], p["caseId"], p["type"], p["content"], p.get("performedBy"), at=self.clock()
        )
        return {"relatedItemId": item.related_item_id, "relatedItemArn": item.related_item_arn}

    def batch_create_related_item(
        self, p: dict[str, Any], item_failures: Mapping[int, str] | None = None
    ) -> dict[str, Any]:
        """One comment on 1..100 cases. Whole-request failures (documented): unknown domain, a reference id
        that matches no case, the same case twice, content other than a comment. Anything else fails per case
        in `failedItems`; `item_failures` maps a case's index to an injected per-case error code."""
        domain = self.domain(p["domainId"])
        if set(p["content"]) != {"comment"}:
            raise ApiError("ValidationException", "BatchCreateRelatedItem supports only comment content")
        resolved: list[tuple[dict[str, str], Case | None]] = []
        seen: set[str] = set()
        for entry in p["cases"]:
            identifier = entry["caseIdentifier"]
            if "referenceId" in identifier:
                case = self.by_reference(domain, identifier["referenceId"])
                if case is None:
                    raise ApiError(
                        "ResourceNotFoundException",
                        f"No case has reference ID {identifier['referenceId']}",
                        resourceId=identifier["referenceId"],
                        resourceType="Case",
                    )
                key = case.case_id
            else:
                key = identifier["caseId"]
                case = domain.cases.get(key)
            if key in seen:
                raise ApiError("ValidationException", f"Case {key} appears more than once in the request")
            seen.add(key)
            resolved.append((identifier, case))
        successful, failed = [], []
        at = self.clock()
        for index, (given, case) in enumerate(resolved):
            if case is None:
                failed.append(_failure(given, "CASE_NOT_FOUND", f"Case {given['caseId']} not found"))
                continue
            identifier = {"caseId": case.case_id, "referenceId": case.reference_id}
            problem = self._batch_problem(domain, case, (item_failures or {}).get(index))
            if problem is not None:
                failed.append(_failure(identifier, *problem))
                continue
            item = self._store_item(domain, case, "Comment", p["content"], p.get("performedBy"), at)
            successful.append(
                {
                    "caseIdentifier": identifier,
                    "relatedItemId": item.related_item_id,
                    "relatedItemArn": item.related_item_arn,
                }
            )
        return {"successfulItems": successful, "failedItems": failed}

    def _batch_problem(self, domain: Domain, case: Case, injected: str | None) -> tuple[str, str] | None:
        try:
            self._check_not_merging(domain, case, "BatchCreateRelatedItem")
            self._check_room(case)
        except ApiError as e:
            code = {
                "ConflictException": "CONFLICT",
                "ServiceQuotaExceededException": "SERVICE_QUOTA_EXCEEDED",
            }
            return code[e.code], e.message
        if injected is not None:
            self.events[("BatchCreateRelatedItem", "item_failure")] += 1
            return injected, f"Injected {injected}"
        return None

    def list_cases_for_contact(self, p: dict[str, Any]) -> dict[str, Any]:
        domain = self.domain(p["domainId"])
        order = {case_id: n for n, case_id in enumerate(domain.cases)}

        def search(as_of: float) -> list[str]:
            found = {
                case_id
                for case_id, item in self._indexed_items(domain, as_of)
                if item.type == "Contact" and item.content["contact"]["contactArn"] == p["contactArn"]
            }
            return sorted(found, key=order.__getitem__)

        found = self._lagged("ListCasesForContact", search, key=lambda case_id: case_id)
        summaries = [{"caseId": c, "templateId": domain.cases[c].template_id} for c in found]
        page, token = offset_page(summaries, p.get("nextToken"), p.get("maxResults") or 10)
        return {"cases": page, "nextToken": token}

    def search_related_items(self, p: dict[str, Any]) -> dict[str, Any]:
        domain = self.domain(p["domainId"])
        case = self.case(p["domainId"], p["caseId"])
        filters = p.get("filters") or []

        def search(as_of: float) -> list[RelatedItem]:
            found = [
                item
                for _, item in self._indexed_items(domain, as_of, case.case_id)
                if not filters or any(self._matches(item, f) for f in filters)
            ]
            return sorted(found, key=lambda i: i.association_time)

        found = self._lagged("SearchRelatedItems", search, key=lambda i: i.related_item_id)
        page, token = offset_page(found, p.get("nextToken"), p.get("maxResults") or 25)
        return {"relatedItems": [self._search_item(i) for i in page], "nextToken": token}

    def search_all_related_items(self, p: dict[str, Any]) -> dict[str, Any]:
        domain = self.domain(p["domainId"])
        filters = p.get("filters") or []

        def search(as_of: float) -> list[tuple[str, RelatedItem]]:
            found = [
                (case_id, item)
                for case_id, item in self._indexed_items(domain, as_of)
                if not filters or any(self._matches(item, f) for f in filters)
            ]
            return sorted(found, key=lambda pair: pair[1].association_time)

        found = self._lagged(
            "SearchAllRelatedItems", search, key=lambda pair: (pair[0], pair[1].related_item_id)
        )
        for sort in reversed(p.get("sorts") or []):
            by_case = sort.get("sortProperty") == "CaseId"
            found.sort(
                key=lambda pair: pair[0] if by_case else pair[1].association_time,
                reverse=sort.get("sortOrder") == "Desc",
            )
        page, token = offset_page(found, p.get("nextToken"), p.get("maxResults") or 25)
        return {
            "relatedItems": [{**self._search_item(item), "caseId": case_id} for case_id, item in page],
            "nextToken": token,
        }

    def _search_item(self, item: RelatedItem) -> dict[str, Any]:
        content = copy.deepcopy(item.content)
        if "contact" in content:
            arn = content["contact"]["contactArn"]
            known = self.contact_channel(arn)
            channel, connected = known if known else ("VOICE", item.association_time)
            content["contact"] = {"contactArn": arn, "channel": channel, "connectedToSystemTime": connected}
        elif "sla" in content:
            sla = content["sla"]["slaInputConfiguration"]
            target = item.association_time + dt.timedelta(minutes=sla["targetSlaMinutes"])
            config = {k: v for k, v in sla.items() if k != "targetSlaMinutes"}
            content["sla"] = {"slaConfiguration": {**config, "status": "Active", "targetTime": target}}
        found = {
            "relatedItemId": item.related_item_id,
            "type": item.type,
            "associationTime": item.association_time,
            "content": content,
            "tags": {},
        }
        if self.search_shows_performed_by:
            found["performedBy"] = item.performed_by
        return found

    def _matches(self, item: RelatedItem, flt: dict[str, Any]) -> bool:
        """Filters in the list are alternatives; fields inside one filter must all match."""
        kind, spec = next(iter(flt.items()))
        if _member(item.type) != kind:
            return False
        content = item.content[kind]
        if kind == "contact":
            known = self.contact_channel(content["contactArn"])
            channel = known[0] if known else "VOICE"
            return spec.get("contactArn") in (None, content["contactArn"]) and (
                not spec.get("channel") or channel in spec["channel"]
            )
        if kind == "file":
            return spec.get("fileArn") in (None, content["fileArn"])
        if kind == "connectCase":
            return spec.get("caseId") in (None, content["caseId"])
        if kind == "sla":
            name = content["slaInputConfiguration"]["name"]
            return spec.get("name") in (None, name) and spec.get("status") in (None, "Active")
        return True  # comment; custom field filters are not evaluated

    def search_cases(self, p: dict[str, Any]) -> dict[str, Any]:
        domain = self.domain(p["domainId"])
        term = (p.get("searchTerm") or "").lower()
        flt = p.get("filter")

        def search(as_of: float) -> list[tuple[Case, dict[str, FieldValue]]]:
            found = []
            for case in domain.cases.values():
                fields = self._indexed_fields(case, as_of)
                if fields is None:
                    continue
                if flt is not None and not case_matches(fields, case.tags, flt):
                    continue
                if term and not any(
                    term in str(v["stringValue"]).lower() for v in fields.values() if "stringValue" in v
                ):
                    continue
                found.append((case, fields))
            return found

        found = self._lagged("SearchCases", search, key=lambda pair: (pair[0].case_id, repr(pair[1])))
        for sort in reversed(p.get("sorts") or []):
            found = sorted_by_field(found, sort["fieldId"], descending=sort["sortOrder"] == "Desc")
        wanted = [f["id"] for f in p.get("fields") or []]
        page, token = offset_page(found, p.get("nextToken"), p.get("maxResults") or 25)
        return {
            "cases": [
                {
                    "caseId": case.case_id,
                    "templateId": case.template_id,
                    "fields": [{"id": f, "value": fields[f]} for f in wanted if f in fields],
                    "tags": case.tags,
                }
                for case, fields in page
            ],
            "nextToken": token,
            "totalCount": len(found),
        }

    def start_merge_cases(self, p: dict[str, Any]) -> dict[str, Any]:
        configured = p.get("fieldsConfiguration") or []
        if len(configured) > 1:
            raise ApiError("ValidationException", "fieldsConfiguration takes at most one entry")
        secondary_id = p["secondaryCaseIds"][0]
        if configured and configured[0]["sourceCaseId"] != secondary_id:
            raise ApiError(
                "ValidationException", "fieldsConfiguration's sourceCaseId must be the secondary case"
            )
        field_ids = [f["id"] for f in configured[0]["fieldIds"]] if configured else []
        if len(set(field_ids)) != len(field_ids):
            raise ApiError("ValidationException", "fieldsConfiguration lists a field more than once")
        types = [name for name, on in (p.get("relatedItemsConfiguration") or {}).items() if on]
        self.start_merge(p["domainId"], p["caseId"], secondary_id, types, field_ids, p.get("performedBy"))
        return {}

    def get_merge_cases_status(self, p: dict[str, Any]) -> dict[str, Any]:
        domain = self.domain(p["domainId"])
        case = self.case(p["domainId"], p["caseId"])
        running = self._running_merge(domain, case.case_id)
        if running is not None:
            return {
                "status": "IN_PROGRESS",
                "primaryCaseId": running.primary_id,
                "secondaryCaseIds": [running.secondary_id],
            }
        if case.merged_into is not None:
            return {
                "status": "COMPLETED",
                "primaryCaseId": case.merged_into,
                "secondaryCaseIds": [case.case_id],
            }
        raise ApiError(
            "ResourceNotFoundException",
            f"Case {case.case_id} is not part of a merge",
            resourceId=case.case_id,
            resourceType="Case",
        )


def _failure(identifier: Mapping[str, str | None], code: str, message: str) -> dict[str, Any]:
    return {
        "caseIdentifier": {k: v for k, v in identifier.items() if v is not None},
        "errorCode": code,
        "errorMessage": message,
    }
