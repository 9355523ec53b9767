"""Amazon Connect: instances (with their Cases domain association), contacts, contact attributes and search.

Not thread-safe by itself: the Emulator holds its lock around every call.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from emulator import model
from emulator.model import CONNECT, ApiError
from emulator.paging import decode_token, encode_token, fingerprint, offset_page

# SearchContacts' TimeRange types and Sort field names, and the Contact attribute each reads.
TIMESTAMPS = {
    "INITIATION_TIMESTAMP": "initiation_time",
    "SCHEDULED_TIMESTAMP": "scheduled_time",
    "CONNECTED_TO_AGENT_TIMESTAMP": "connected_to_agent_time",
    "DISCONNECT_TIMESTAMP": "disconnect_time",
    "ENQUEUE_TIMESTAMP": "enqueue_time",
}
SUPPORTED_CRITERIA = frozenset(
    {"Channels", "InitiationMethods", "QueueIds", "AgentIds", "ContactTags", "SearchableContactAttributes"}
)
DEFAULT_SORT = {"FieldName": "INITIATION_TIMESTAMP", "Order": "DESCENDING"}
SEARCH_PAGE_SIZE = 25  # AWS does not document SearchContacts' default page size
DEFAULT_DURATION = dt.timedelta(minutes=5)


@dataclass
class Contact:
    instance_id: str
    contact_id: str
    initial_contact_id: str
    channel: str
    agent_arn: str | None
    initiation_time: dt.datetime
    disconnect_time: dt.datetime | None  # None while the contact is still going on
    previous_contact_id: str | None = None
    related_contact_id: str | None = None
    initiation_method: str = "INBOUND"
    queue_id: str | None = None
    enqueue_time: dt.datetime | None = None
    connected_to_agent_time: dt.datetime | None = None
    scheduled_time: dt.datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)
    seq: int = 0  # order of first storage: a SearchContacts search ignores contacts stored after it began


@dataclass
class Association:
    association_id: str
    arn: str
    integration_type: str
    integration_arn: str
    modified: dt.datetime


@dataclass
class Instance:
    instance_id: str
    arn: str
    alias: str | None
    created_time: dt.datetime
    associations: list[Association] = field(default_factory=list)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def instance_id_of(instance: str) -> str:
    """Connect accepts the instance id or its ARN wherever an InstanceId goes."""
    return instance.rsplit("instance/", 1)[-1] if instance.startswith("arn:") else instance


@cache
def _enum(shape_name: str) -> tuple[str, ...]:
    return tuple(model.service_model(CONNECT).shape_for(shape_name).metadata["enum"])


def _invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterException", message)


def _to_milliseconds(value: dt.datetime) -> dt.datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _time(value: Any, name: str) -> dt.datetime:
    """A request timestamp: botocore sends epoch seconds; ISO-8601 text is accepted too."""
    try:
        if isinstance(value, int | float):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        try:
            return dt.datetime.fromtimestamp(float(value), dt.UTC)
        except ValueError:
            parsed = dt.datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError, OSError, TypeError) as e:
        raise _invalid(f"{name} is not a valid timestamp") from e


class ConnectState:
    def __init__(self, region: str, account_id: str) -> None:
        self.region = region
        self.account_id = account_id
        self.require_known_contact = False
        self.searchable_attributes: tuple[str, ...] = ()
        self.max_range_s: float | None = None
        self.lookback_s: float | None = None
        self.max_results: int | None = None
        self.total_capped = False
        self.trailing_empty_page = False
        self.instances: dict[str, Instance] = {}
        self.contacts: dict[tuple[str, str], Contact] = {}
        self.attributes: dict[tuple[str, str], dict[str, str]] = {}
        self._seq = 0

    # --- ARNs ---
    def instance_arn(self, instance_id: str) -> str:
        return f"arn:aws:connect:{self.region}:{self.account_id}:instance/{instance_id}"

    def contact_arn(self, instance_id: str, contact_id: str) -> str:
        return f"{self.instance_arn(instance_id)}/contact/{contact_id}"

    # --- seeding ---
    def add_instance(self, instance_id: str, alias: str | None = None) -> Instance:
        instance_id = instance_id_of(instance_id)
        instance = self.instances.get(instance_id)
        if instance is None:
            instance = Instance(instance_id, self.instance_arn(instance_id), alias, _now())
            self.instances[instance_id] = instance
        elif alias is not None:
            instance.alias = alias
        return instance

    def associate(self, instance_id: str, integration_type: str, integration_arn: str) -> Association:
        instance = self.add_instance(instance_id)
        association_id = str(uuid.uuid4())
        association = Association(
            association_id,
            f"{instance.arn}/integration-association/{association_id}",
            integration_type,
            integration_arn,
            _now(),
        )
        instance.associations.append(association)
        return association

    def put_contact(
        self,
        instance_id: str,
        contact_id: str,
        attributes: Mapping[str, str] | None = None,
        initial_contact_id: str | None = None,
        channel: str = "VOICE",
        agent_arn: str | None = None,
        *,
        previous_contact_id: str | None = None,
        related_contact_id: str | None = None,
        initiation_method: str | None = None,
        initiation_time: dt.datetime | None = None,
        disconnect_time: dt.datetime | None = None,
        ongoing: bool = False,
        connected_to_agent_time: dt.datetime | None = None,
        enqueue_time: dt.datetime | None = None,
        scheduled_time: dt.datetime | None = None,
        queue_id: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Contact:
        """Store (or replace) a contact; missing timestamps make a 5-minute contact that ends now."""
        instance_id = instance_id_of(instance_id)
        initial = initial_contact_id or contact_id
        transferred = initial != contact_id
        method = initiation_method or ("TRANSFER" if transferred else "INBOUND")
        if channel not in _enum("Channel"):
            raise ValueError(f"contact {contact_id}: channel must be one of {', '.join(_enum('Channel'))}")
        if method not in _enum("ContactInitiationMethod"):
            raise ValueError(f"contact {contact_id}: initiation method {method} is not one Connect knows")
        tag_errors = model.validate(model.service_model(CONNECT).shape_for("ContactTagMap"), dict(tags or {}))
        if tags and tag_errors:
            raise ValueError(f"contact {contact_id}: tags: {tag_errors[0]}")
        now = _now()
        if initiation_time is None:
            initiation_time = (disconnect_time or now) - DEFAULT_DURATION
        if disconnect_time is None and not ongoing:
            disconnect_time = min(initiation_time + DEFAULT_DURATION, max(now, initiation_time))
        if ongoing:
            disconnect_time = None
        end = disconnect_time or max(now, initiation_time)
        if agent_arn and connected_to_agent_time is None:
            connected_to_agent_time = min(initiation_time + dt.timedelta(seconds=30), end)
        if queue_id and enqueue_time is None:
            enqueue_time = min(initiation_time + dt.timedelta(seconds=10), end)
        # Connect keeps milliseconds: what a search filters and sorts on is what it returns.
        initiation_time = _to_milliseconds(initiation_time)
        disconnect_time, connected_to_agent_time, enqueue_time, scheduled_time = (
            None if t is None else _to_milliseconds(t)
            for t in (disconnect_time, connected_to_agent_time, enqueue_time, scheduled_time)
        )
        previous = self.contacts.get((instance_id, contact_id))
        if previous is None:
            self._seq += 1
        contact = Contact(
            instance_id,
            contact_id,
            initial,
            channel,
            agent_arn,
            initiation_time,
            disconnect_time,
            previous_contact_id=previous_contact_id or (initial if transferred else None),
            related_contact_id=related_contact_id,
            initiation_method=method,
            queue_id=queue_id,
            enqueue_time=enqueue_time,
            connected_to_agent_time=connected_to_agent_time,
            scheduled_time=scheduled_time,
            tags=dict(tags or {}),
            seq=previous.seq if previous else self._seq,
        )
        self.contacts[(instance_id, contact_id)] = contact
        # Attributes belong to the contact chain, keyed by its initial contact.
        self.attributes.setdefault((instance_id, initial), {}).update(attributes or {})
        return contact

    # --- lookups used by Cases ---
    def contact_by_arn(self, arn: str) -> Contact | None:
        resource = arn.split(":", 5)[-1].split("/")
        if len(resource) != 4:
            return None
        return self.contacts.get((resource[1], resource[3]))

    def channel_of(self, arn: str) -> tuple[str, dt.datetime] | None:
        contact = self.contact_by_arn(arn)
        return (contact.channel, contact.initiation_time) if contact else None

    def check_contact_arn(self, arn: str) -> None:
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

    def _contact(self, instance: str, contact_id: str) -> Contact | None:
        return self.contacts.get((instance_id_of(instance), contact_id))

    def _instance(self, instance: str) -> str:
        """The instance id, if the instance was declared or holds a contact."""
        instance_id = instance_id_of(instance)
        if instance_id not in self.instances and not any(k[0] == instance_id for k in self.contacts):
            raise ApiError("ResourceNotFoundException", f"Instance {instance_id} not found")
        return instance_id

    def chain_attributes(self, contact: Contact) -> dict[str, str]:
        return dict(self.attributes.get((contact.instance_id, contact.initial_contact_id), {}))

    # --- Connect operations ---
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
        summary = self._summary(contact)
        summary.pop("Tags", None)
        return {
            "Contact": {
                **summary,
                "ConnectedToSystemTimestamp": contact.initiation_time,
                "LastUpdateTimestamp": contact.disconnect_time or contact.initiation_time,
                "RelatedContactId": contact.related_contact_id,
                "Tags": contact.tags or None,
                "Attributes": self.chain_attributes(contact),
            }
        }

    def _summary(self, contact: Contact) -> dict[str, Any]:
        """A ContactSearchSummary: what SearchContacts returns (no user-defined attributes)."""
        agent = None
        if contact.agent_arn:
            agent = {
                "Id": contact.agent_arn.rsplit("/", 1)[-1],
                "ConnectedToAgentTimestamp": contact.connected_to_agent_time,
            }
        queue = (
            {"Id": contact.queue_id, "EnqueueTimestamp": contact.enqueue_time} if contact.queue_id else None
        )
        return {
            "Arn": self.contact_arn(contact.instance_id, contact.contact_id),
            "Id": contact.contact_id,
            "InitialContactId": contact.initial_contact_id
            if contact.initial_contact_id != contact.contact_id
            else None,
            "PreviousContactId": contact.previous_contact_id,
            "InitiationMethod": contact.initiation_method,
            "Channel": contact.channel,
            "QueueInfo": queue,
            "AgentInfo": agent,
            "InitiationTimestamp": contact.initiation_time,
            "DisconnectTimestamp": contact.disconnect_time,
            "ScheduledTimestamp": contact.scheduled_time,
            "Tags": contact.tags or None,
        }

    def search_contacts(self, p: dict[str, Any]) -> dict[str, Any]:
        instance = self._instance(p["InstanceId"])
        time_range = p["TimeRange"]
        start = _time(time_range["StartTime"], "TimeRange.StartTime")
        end = _time(time_range["EndTime"], "TimeRange.EndTime")
        self._check_range(start, end)
        criteria = p.get("SearchCriteria") or {}
        unsupported = sorted(set(criteria) - SUPPORTED_CRITERIA)
        if unsupported:
            raise _invalid(f"SearchCriteria.{unsupported[0]} is not supported by the emulator")
        attribute_match = self._attribute_matcher(criteria.get("SearchableContactAttributes"))
        sort = p.get("Sort") or DEFAULT_SORT
        sort_key = self._sort_key(sort)
        query = fingerprint({k: p.get(k) for k in ("InstanceId", "TimeRange", "SearchCriteria", "Sort")})
        if p.get("NextToken"):
            state = decode_token(p["NextToken"], "InvalidParameterException")
            if state.get("q") != query:
                raise _invalid("The NextToken belongs to another search")
            snapshot, after, served = int(state["seq"]), tuple(state["after"]), int(state["n"])
        else:
            snapshot, after, served = self._seq, None, 0
        stamp = TIMESTAMPS[time_range["Type"]]
        matches = sorted(
            (sort_key(c), c)
            for c in self.contacts.values()
            if c.instance_id == instance
            and c.seq <= snapshot
            and (when := getattr(c, stamp)) is not None
            and start <= when <= end
            and _matches(c, criteria)
            and attribute_match(self.chain_attributes(c))
        )
        remaining = [pair for pair in matches if after is None or pair[0] > after]
        size = p.get("MaxResults") or SEARCH_PAGE_SIZE
        if self.max_results is not None:
            size = max(0, min(size, self.max_results - served))
        page = remaining[:size]
        more = len(remaining) > len(page) and (
            self.max_results is None or served + len(page) < self.max_results
        )
        token = None
        if page and (more or self.trailing_empty_page):
            token = encode_token(
                {"q": query, "seq": snapshot, "after": list(page[-1][0]), "n": served + len(page)}
            )
        return {
            "Contacts": [self._summary(c) for _, c in page],
            "NextToken": token,
            "TotalCount": min(len(matches), self.max_results)
            if self.total_capped and self.max_results is not None
            else len(matches),
        }

    def _check_range(self, start: dt.datetime, end: dt.datetime) -> None:
        if start > end:
            raise _invalid("TimeRange.StartTime must not be after TimeRange.EndTime")
        if self.max_range_s is not None and (end - start).total_seconds() > self.max_range_s:
            raise _invalid(f"TimeRange must not span more than {self.max_range_s / 86400:g} days")
        if self.lookback_s is not None and (_now() - start).total_seconds() > self.lookback_s:
            raise _invalid(f"TimeRange.StartTime must be within the last {self.lookback_s / 86400:g} days")

    def _attribute_matcher(self, spec: Mapping[str, Any] | None) -> Callable[[Mapping[str, str]], bool]:
        if not spec:
            return lambda attributes: True
        match_type = spec.get("MatchType") or "MATCH_ALL"
        if match_type not in ("MATCH_ALL", "MATCH_ANY"):
            raise _invalid("SearchableContactAttributes.MatchType must be MATCH_ALL or MATCH_ANY")
        criteria = spec["Criteria"]
        for criterion in criteria:
            if criterion["Key"] not in self.searchable_attributes:
                raise _invalid("A SearchableContactAttributes key is not configured as searchable")
            if not criterion["Values"]:
                raise _invalid("SearchableContactAttributes criteria need at least one value")

        def check(attributes: Mapping[str, str]) -> bool:
            hits = [attributes.get(c["Key"]) in c["Values"] for c in criteria]
            return all(hits) if match_type == "MATCH_ALL" else any(hits)

        return check

    @staticmethod
    def _sort_key(sort: Mapping[str, str]) -> Callable[[Contact], tuple[int, float, str]]:
        """A total order as JSON-friendly tuples: (missing last, signed value, contact id)."""
        name, sign = sort["FieldName"], (-1.0 if sort["Order"] == "DESCENDING" else 1.0)
        if name in TIMESTAMPS:
            attribute = TIMESTAMPS[name]

            def by_time(c: Contact) -> tuple[int, float, str]:
                value = getattr(c, attribute)
                return (
                    (1, 0.0, c.contact_id) if value is None else (0, sign * value.timestamp(), c.contact_id)
                )

            return by_time
        if name in ("CHANNEL", "INITIATION_METHOD"):
            ranks = {
                v: float(n)
                for n, v in enumerate(
                    sorted(_enum("Channel" if name == "CHANNEL" else "ContactInitiationMethod"))
                )
            }
            attribute = "channel" if name == "CHANNEL" else "initiation_method"
            return lambda c: (0, sign * ranks[getattr(c, attribute)], c.contact_id)
        raise _invalid(f"Sort.FieldName {name} is not supported by the emulator")

    def list_associated_contacts(self, p: dict[str, Any]) -> dict[str, Any]:
        instance = self._instance(p["InstanceId"])
        contact = self._contact(instance, p["ContactId"])
        if contact is None:
            raise ApiError("ResourceNotFoundException", f"Contact {p['ContactId']} not found")
        tree = self._tree(contact)
        summaries = [
            {
                "ContactId": c.contact_id,
                "ContactArn": self.contact_arn(c.instance_id, c.contact_id),
                "InitiationTimestamp": c.initiation_time,
                "DisconnectTimestamp": c.disconnect_time,
                "InitialContactId": c.initial_contact_id,
                "PreviousContactId": c.previous_contact_id,
                "RelatedContactId": c.related_contact_id,
                "InitiationMethod": c.initiation_method,
                "Channel": c.channel,
            }
            for c in sorted(tree, key=lambda c: (c.initiation_time, c.contact_id))
        ]
        page, token = offset_page(
            summaries, p.get("NextToken"), p.get("MaxResults") or 100, "InvalidParameterException"
        )
        return {"ContactSummaryList": page, "NextToken": token}

    def _tree(self, start: Contact) -> list[Contact]:
        """Every contact linked to `start` through initial, previous or related contact ids, either way."""
        same_instance = [c for c in self.contacts.values() if c.instance_id == start.instance_id]
        found = {start.contact_id: start}
        frontier = [start]
        while frontier:
            current = frontier.pop()
            links = {current.initial_contact_id, current.previous_contact_id, current.related_contact_id}
            for other in same_instance:
                if other.contact_id in found:
                    continue
                back = {other.initial_contact_id, other.previous_contact_id, other.related_contact_id}
                if other.contact_id in links or current.contact_id in back:
                    found[other.contact_id] = other
                    frontier.append(other)
        return list(found.values())

    def describe_instance(self, p: dict[str, Any]) -> dict[str, Any]:
        instance_id = self._instance(p["InstanceId"])
        instance = self.instances.get(instance_id) or self.add_instance(instance_id)
        return {
            "Instance": {
                "Id": instance.instance_id,
                "Arn": instance.arn,
                "IdentityManagementType": "CONNECT_MANAGED",
                "InstanceAlias": instance.alias,
                "CreatedTime": instance.created_time,
                "ServiceRole": f"arn:aws:iam::{self.account_id}:role/aws-service-role/connect.amazonaws.com/"
                f"AWSServiceRoleForAmazonConnect_{instance.instance_id.replace('-', '')[:20]}",
                "InstanceStatus": "ACTIVE",
                "InboundCallsEnabled": True,
                "OutboundCallsEnabled": True,
                "InstanceAccessUrl": f"https://{instance.alias}.my.connect.aws/" if instance.alias else None,
            }
        }

    def list_integration_associations(self, p: dict[str, Any]) -> dict[str, Any]:
        instance_id = self._instance(p["InstanceId"])
        instance = self.instances.get(instance_id) or self.add_instance(instance_id)
        summaries = [
            {
                "IntegrationAssociationId": a.association_id,
                "IntegrationAssociationArn": a.arn,
                "InstanceId": instance.instance_id,
                "IntegrationType": a.integration_type,
                "IntegrationArn": a.integration_arn,
                "LastModifiedTime": a.modified,
                "LastModifiedRegion": self.region,
            }
            for a in instance.associations
            if p.get("IntegrationType") in (None, a.integration_type)
            and p.get("IntegrationArn") in (None, a.integration_arn)
        ]
        page, token = offset_page(
            summaries, p.get("NextToken"), p.get("MaxResults") or 100, "InvalidRequestException"
        )
        return {"IntegrationAssociationSummaryList": page, "NextToken": token}


def _matches(contact: Contact, criteria: Mapping[str, Any]) -> bool:
    """SearchCriteria other than attributes; each list criterion is an alternative of values."""
    agent_id = contact.agent_arn.rsplit("/", 1)[-1] if contact.agent_arn else None
    for name, value in (
        ("Channels", contact.channel),
        ("InitiationMethods", contact.initiation_method),
        ("QueueIds", contact.queue_id),
        ("AgentIds", agent_id),
    ):
        if criteria.get(name) and value not in criteria[name]:
            return False
    tags = criteria.get("ContactTags")
    return not tags or _tags_match(contact.tags, tags)


def _tags_match(tags: Mapping[str, str], spec: Mapping[str, Any]) -> bool:
    """ControlPlaneTagFilter: TagCondition, AndConditions (all), OrConditions (any of all-lists); every
    member given must hold. A condition without TagValue asks only that the key be there."""

    def holds(condition: Mapping[str, str]) -> bool:
        key = condition.get("TagKey")
        if key is None:
            raise _invalid("A tag condition needs a TagKey")
        value = condition.get("TagValue")
        return key in tags if value is None else tags.get(key) == value

    checks = []
    if spec.get("TagCondition"):
        checks.append(holds(spec["TagCondition"]))
    if spec.get("AndConditions") is not None:
        checks.append(all(holds(c) for c in spec["AndConditions"]))
    if spec.get("OrConditions") is not None:
        checks.append(any(all(holds(c) for c in group) for group in spec["OrConditions"]))
    return all(checks)
