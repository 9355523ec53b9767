"""The emulated accounts' data (domains, cases, related items, contacts) and the operations on it.

Not thread-safe by itself: the Emulator holds its lock around every call.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulator.model import ApiError

FieldInput = str | float | bool | None


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
    fields: dict[str, dict[str, Any]]  # field id -> FieldValueUnion
    tags: dict[str, str]
    related_items: list[RelatedItem] = field(default_factory=list)


@dataclass
class Domain:
    domain_id: str
    domain_arn: str
    name: str
    created_time: dt.datetime
    template_id: str
    cases: dict[str, Case] = field(default_factory=dict)
    client_tokens: dict[str, str] = field(default_factory=dict)


@dataclass
class Contact:
    instance_id: str
    contact_id: str
    initial_contact_id: str
    channel: str
    agent_arn: str | None
    initiation_time: dt.datetime
    disconnect_time: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def field_value(value: FieldInput) -> dict[str, Any]:
    """A Python value as a Cases FieldValueUnion."""
    if value is None:
        return {"emptyValue": {}}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int | float):
        return {"doubleValue": float(value)}
    return {"stringValue": value}


def instance_id_of(instance: str) -> str:
    """Connect accepts the instance id or its ARN wherever an InstanceId goes."""
    return instance.rsplit("instance/", 1)[-1] if instance.startswith("arn:") else instance


def _page(items: list[Any], params: dict[str, Any], default_size: int) -> tuple[list[Any], str | None]:
    token = params.get("nextToken")
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode())
        except ValueError as e:
            raise ApiError("ValidationException", "The nextToken is not valid") from e
    size = params.get("maxResults") or default_size
    end = start + size
    next_token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return items[start:end], next_token


class Store:
    def __init__(self, region: str, account_id: str) -> None:
        self.region = region
        self.account_id = account_id
        self.max_related_items = 200
        self.require_known_contact = False
        self.domains: dict[str, Domain] = {}
        self.contacts: dict[tuple[str, str], Contact] = {}
        self.attributes: dict[tuple[str, str], dict[str, str]] = {}

    # --- ARNs ---
    def domain_arn(self, domain_id: str) -> str:
        return f"arn:aws:cases:{self.region}:{self.account_id}:domain/{domain_id}"

    def instance_arn(self, instance_id: str) -> str:
        return f"arn:aws:connect:{self.region}:{self.account_id}:instance/{instance_id}"

    def contact_arn(self, instance_id: str, contact_id: str) -> str:
        return f"{self.instance_arn(instance_id)}/contact/{contact_id}"

    # --- seeding and lookups ---
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
        fields: dict[str, dict[str, Any]],
        template_id: str | None = None,
        case_id: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Case:
        domain = self.domain(domain_id)
        case_id = case_id or str(uuid.uuid4())
        if case_id in domain.cases:
            raise ApiError("ConflictException", f"Case {case_id} already exists")
        fields = {"status": {"stringValue": "open"}, **fields}
        case = Case(
            case_id,
            f"{domain.domain_arn}/case/{case_id}",
            template_id or domain.template_id,
            fields,
            tags or {},
        )
        domain.cases[case_id] = case
        return case

    def add_related_item(
        self,
        domain_id: str,
        case_id: str,
        item_type: str,
        content: dict[str, Any],
        performed_by: dict[str, Any] | None,
    ) -> RelatedItem:
        case = self.case(domain_id, case_id)
        if len(case.related_items) >= self.max_related_items:
            raise ApiError(
                "ServiceQuotaExceededException",
                f"The case {case_id} already has the maximum of {self.max_related_items} related items",
            )
        member = next(iter(content))
        expected = item_type[0].lower() + item_type[1:]
        if member != expected:
            raise ApiError(
                "ValidationException", f"The content must be '{expected}' for related item type {item_type}"
            )
        if item_type == "Contact":
            self._check_contact_arn(content["contact"]["contactArn"])
        if item_type == "ConnectCase":
            self.case(domain_id, content["connectCase"]["caseId"])
        item_id = str(uuid.uuid4())
        item = RelatedItem(
            domain_id=domain_id,
            case_id=case_id,
            related_item_id=item_id,
            related_item_arn=f"{case.case_arn}/related-item/{item_id}",
            type=item_type,
            content=copy.deepcopy(content),
            performed_by=copy.deepcopy(performed_by),
            association_time=_now(),
        )
        case.related_items.append(item)
        return item

    def _check_contact_arn(self, arn: str) -> None:
        parts = arn.split(":", 5)
        resource = parts[5].split("/") if len(parts) == 6 else []
        if (
            len(parts) != 6
            or parts[2] != "connect"
            or len(resource) != 4
            or resource[0] != "instance"
            or resource[2] != "contact"
        ):
            raise ApiError("ValidationException", f"Invalid contactArn: {arn}")
        if self.require_known_contact and (resource[1], resource[3]) not in self.contacts:
            raise ApiError(
                "ResourceNotFoundException",
                f"Contact {arn} not found",
                resourceId=arn,
                resourceType="Contact",
            )

    def put_contact(
        self,
        instance_id: str,
        contact_id: str,
        attributes: dict[str, str] | None,
        initial_contact_id: str | None,
        channel: str,
        agent_arn: str | None,
    ) -> Contact:
        instance_id = instance_id_of(instance_id)
        initial = initial_contact_id or contact_id
        now = _now()
        contact = Contact(
            instance_id, contact_id, initial, channel, agent_arn, now - dt.timedelta(minutes=5), now
        )
        self.contacts[(instance_id, contact_id)] = contact
        # Attributes belong to the contact chain, keyed by its initial contact.
        self.attributes.setdefault((instance_id, initial), {}).update(attributes or {})
        return contact

    def domain(self, domain_id: str) -> Domain:
        if domain_id not in self.domains:
            raise ApiError(
                "ResourceNotFoundException",
                f"Domain {domain_id} not found",
                resourceId=domain_id,
                resourceType="Domain",
            )
        return self.domains[domain_id]

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
        page, token = _page(summaries, p, 10)
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
        case = self.add_case(domain.domain_id, fields, p["templateId"], tags=p.get("tags"))
        if token:
            domain.client_tokens[token] = case.case_id
        return {"caseId": case.case_id, "caseArn": case.case_arn}

    def get_case(self, p: dict[str, Any]) -> dict[str, Any]:
        case = self.case(p["domainId"], p["caseId"])
        wanted = [f["id"] for f in p["fields"]]
        fields = [{"id": fid, "value": case.fields[fid]} for fid in wanted if fid in case.fields]
        return {"fields": fields, "templateId": case.template_id, "tags": case.tags}

    def create_related_item(self, p: dict[str, Any]) -> dict[str, Any]:
        item = self.add_related_item(
            p["domainId"], p["caseId"], p["type"], p["content"], p.get("performedBy")
        )
        return {"relatedItemId": item.related_item_id, "relatedItemArn": item.related_item_arn}

    def list_cases_for_contact(self, p: dict[str, Any]) -> dict[str, Any]:
        domain = self.domain(p["domainId"])
        summaries = [
            {"caseId": case.case_id, "templateId": case.template_id}
            for case in domain.cases.values()
            if any(
                i.type == "Contact" and i.content["contact"]["contactArn"] == p["contactArn"]
                for i in case.related_items
            )
        ]
        page, token = _page(summaries, p, 10)
        return {"cases": page, "nextToken": token}

    def search_related_items(self, p: dict[str, Any]) -> dict[str, Any]:
        case = self.case(p["domainId"], p["caseId"])
        filters = p.get("filters") or []
        found = [i for i in case.related_items if not filters or any(self._matches(i, f) for f in filters)]
        page, token = _page(found, p, 25)
        return {"relatedItems": [self._search_item(i) for i in page], "nextToken": token}

    def _search_item(self, item: RelatedItem) -> dict[str, Any]:
        content = copy.deepcopy(item.content)
        if "contact" in content:
            arn = content["contact"]["contactArn"]
            contact = self._contact_by_arn(arn)
            content["contact"] = {
                "contactArn": arn,
                "channel": contact.channel if contact else "VOICE",
                "connectedToSystemTime": contact.initiation_time if contact else item.association_time,
            }
        elif "sla" in content:
            sla = content["sla"]["slaInputConfiguration"]
            target = item.association_time + dt.timedelta(minutes=sla["targetSlaMinutes"])
            config = {k: v for k, v in sla.items() if k != "targetSlaMinutes"}
            content["sla"] = {"slaConfiguration": {**config, "status": "Active", "targetTime": target}}
        return {
            "relatedItemId": item.related_item_id,
            "type": item.type,
            "associationTime": item.association_time,
            "content": content,
            "tags": {},
            "performedBy": item.performed_by,
        }

    def _matches(self, item: RelatedItem, flt: dict[str, Any]) -> bool:
        """Filters in the list are alternatives; fields inside one filter must all match."""
        kind, spec = next(iter(flt.items()))
        if item.type[0].lower() + item.type[1:] != kind:
            return False
        content = item.content[kind]
        if kind == "contact":
            contact = self._contact_by_arn(content["contactArn"])
            channel = contact.channel if contact else "VOICE"
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

    def _contact_by_arn(self, arn: str) -> Contact | None:
        resource = arn.split(":", 5)[-1].split("/")
        if len(resource) != 4:
            return None
        return self.contacts.get((resource[1], resource[3]))

    # --- Connect operations ---
    def _contact(self, instance: str, contact_id: str) -> Contact | None:
        return self.contacts.get((instance_id_of(instance), contact_id))

    def get_contact_attributes(self, p: dict[str, Any]) -> dict[str, Any]:
        instance = instance_id_of(p["InstanceId"])
        contact = self._contact(instance, p["InitialContactId"])
        initial = contact.initial_contact_id if contact else p["InitialContactId"]
        attributes = self.attributes.get((instance, initial))
        if attributes is None:
            raise ApiError("ResourceNotFoundException", f"Contact {p['InitialContactId']} not found")
        return {"Attributes": dict(attributes)}

    def describe_contact(self, p: dict[str, Any]) -> dict[str, Any]:
        contact = self._contact(p["InstanceId"], p["ContactId"])
        if contact is None:
            raise ApiError("ResourceNotFoundException", f"Contact {p['ContactId']} not found")
        agent = None
        if contact.agent_arn:
            agent = {
                "Id": contact.agent_arn.rsplit("/", 1)[-1],
                "ConnectedToAgentTimestamp": contact.initiation_time,
            }
        return {
            "Contact": {
                "Arn": self.contact_arn(contact.instance_id, contact.contact_id),
                "Id": contact.contact_id,
                "InitialContactId": contact.initial_contact_id
                if contact.initial_contact_id != contact.contact_id
                else None,
                "Channel": contact.channel,
                "InitiationMethod": "INBOUND",
                "AgentInfo": agent,
                "InitiationTimestamp": contact.initiation_time,
                "ConnectedToSystemTimestamp": contact.initiation_time,
                "DisconnectTimestamp": contact.disconnect_time,
                "LastUpdateTimestamp": contact.disconnect_time,
                "Attributes": dict(
                    self.attributes.get((contact.instance_id, contact.initial_contact_id), {})
                ),
            }
        }

    def handler(self, operation: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        return {
            "CreateDomain": self.create_domain,
            "GetDomain": self.get_domain,
            "ListDomains": self.list_domains,
            "CreateCase": self.create_case,
            "GetCase": self.get_case,
            "CreateRelatedItem": self.create_related_item,
            "ListCasesForContact": self.list_cases_for_contact,
            "SearchRelatedItems": self.search_related_items,
            "GetContactAttributes": self.get_contact_attributes,
            "DescribeContact": self.describe_contact,
        }[operation]
