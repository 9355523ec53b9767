"""Seed files: domains, cases, related items, merges, instances and contacts (format in emulator/README.md)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from emulator.model import ApiError

if TYPE_CHECKING:
    from emulator.server import Emulator

# What loading a seed of the wrong shape or with wrong references raises (a key missing, a list where an object
# goes, an unknown case or domain, a time that is not one).
SEED_ERRORS = (ValueError, KeyError, TypeError, AttributeError, ApiError)

_RELATIVE = re.compile(r"([+-])(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Seed keys of a contact -> put_contact's keyword; timestamps are parsed with parse_time.
_CONTACT_KEYS = {
    "instanceId": "instance_id",
    "contactId": "contact_id",
    "attributes": "attributes",
    "initialContactId": "initial_contact_id",
    "previousContactId": "previous_contact_id",
    "relatedContactId": "related_contact_id",
    "channel": "channel",
    "initiationMethod": "initiation_method",
    "agentArn": "agent_arn",
    "queueId": "queue_id",
    "tags": "tags",
}
_CONTACT_TIMES = {
    "initiationTimestamp": "initiation_time",
    "disconnectTimestamp": "disconnect_time",
    "connectedToAgentTimestamp": "connected_to_agent_time",
    "enqueueTimestamp": "enqueue_time",
    "scheduledTimestamp": "scheduled_time",
}


def parse_time(value: str, now: dt.datetime) -> dt.datetime:
    """An absolute ISO-8601 time (naive means UTC), `now`, or a time relative to `now` such as `-30m`,
    `+2h`, `-1.5d` (units s, m, h, d)."""
    text = value.strip()
    if text == "now":
        return now
    relative = _RELATIVE.fullmatch(text)
    if relative:
        sign, amount, unit = relative.groups()
        seconds = float(amount) * _UNITS[unit]
        return now + dt.timedelta(seconds=seconds if sign == "+" else -seconds)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a time: use ISO-8601, 'now', or a relative time like -30m"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def contact_arguments(contact: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    """A seed contact as keyword arguments of Emulator.put_contact; unknown keys are an error."""
    unknown = sorted(set(contact) - _CONTACT_KEYS.keys() - _CONTACT_TIMES.keys())
    if unknown:
        raise ValueError(f"seed contact {contact.get('contactId')}: unknown key {unknown[0]!r}")
    arguments = {name: contact[key] for key, name in _CONTACT_KEYS.items() if key in contact}
    for key, name in _CONTACT_TIMES.items():
        if contact.get(key) is not None:
            arguments[name] = parse_time(contact[key], now)
    if "disconnectTimestamp" in contact and contact["disconnectTimestamp"] is None:
        arguments["ongoing"] = True
    return arguments


def load_seed(emulator: Emulator, seed: Mapping[str, Any]) -> None:
    """Load a seed into a running or stopped emulator; relative times count from now."""
    now = dt.datetime.now(dt.UTC)
    for domain in seed.get("domains", []):
        domain_id = emulator.create_domain(domain.get("name", "seeded"), domain.get("id"))
        for case in domain.get("cases", []):
            case_id = emulator.create_case(
                domain_id,
                case.get("title"),
                case.get("fields"),
                case.get("id"),
                reference_id=case.get("referenceId"),
                tags=case.get("tags"),
            )
            for item in case.get("relatedItems", []):
                emulator.add_related_item(
                    domain_id, case_id, item["type"], item["content"], item.get("performedBy")
                )
        for merge in domain.get("merges", []):
            emulator.merge_cases(
                domain_id,
                merge["primary"],
                merge["secondary"],
                duration_s=merge.get("durationSeconds"),
                related_items=merge.get("relatedItems", ("comment", "connectCase", "contact", "custom")),
            )
    for instance in seed.get("instances", []):
        emulator.add_instance(
            instance["id"], alias=instance.get("alias"), cases_domain=instance.get("casesDomain")
        )
    for contact in seed.get("contacts", []):
        emulator.put_contact(**contact_arguments(contact, now))


def seed_problem(error: BaseException) -> str:
    """What a SEED_ERRORS error says about the seed. Seed files are ours, not customer data: naming the problem
    helps."""
    if isinstance(error, KeyError):
        return f"a required key is missing: {error.args[0]!r}"
    if isinstance(error, TypeError | AttributeError):
        return f"a value has the wrong type (an object, a list or a string where the format has another): {error}"
    return f"{type(error).__name__}: {error}"
