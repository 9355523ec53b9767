"""Synthetic finished contacts for tests and the local pipeline, in the seed format (emulator/README.md).

Contacts come in conversations: a first contact (voice or chat), sometimes a transfer leg (same chain: it
shares the first contact's attributes but not its tags), sometimes a later callback (a new chain whose
previous contact is the conversation's last). A share of conversations carries a case id on the first
contact, as a contact attribute or as a contact tag; the result says which contact carries which case id
itself, and which carries none but leads to one through its chain.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ContactMix:
    """Shares (0..1) of conversations with each property."""

    case_share: float = 0.5  # the first contact carries a case id
    tag_share: float = 0.3  # ... as a contact tag rather than a contact attribute
    chat_share: float = 0.3  # the conversation is a chat (the rest are voice calls)
    transfer_share: float = 0.2  # the first contact is transferred once (a second leg in the chain)
    callback_share: float = 0.1  # a callback contact follows the conversation
    ongoing_share: float = 0.0  # the last contact has not disconnected yet


@dataclass(frozen=True)
class GeneratedContacts:
    contacts: list[dict[str, Any]]  # seed entries, absolute ISO-8601 timestamps, in time order
    case_ids: dict[str, str | None]  # contact id -> the case id the contact carries itself, or None
    chain_case_ids: dict[str, str] = field(default_factory=dict)  # contact id -> case id through its chain

    @property
    def with_case_id(self) -> list[str]:
        return [contact_id for contact_id, case_id in self.case_ids.items() if case_id is not None]


def generate_contacts(
    instance_id: str,
    count: int,
    start: dt.datetime,
    end: dt.datetime,
    case_ids: list[str],
    *,
    mix: ContactMix | None = None,
    rng_seed: int = 0,
    attribute_key: str = "caseId",
    tag_key: str = "caseId",
    agent_arn_prefix: str = "arn:aws:connect:us-east-1:123456789012",
) -> GeneratedContacts:
    """`count` contacts that started and ended between `start` and `end`, reproducible from `rng_seed`."""
    if count < 0 or end <= start:
        raise ValueError("count must be >= 0 and end later than start")
    if mix is None:
        mix = ContactMix()
    if mix.case_share and not case_ids:
        raise ValueError("case_ids must not be empty when case_share > 0")
    rng = random.Random(rng_seed)
    span = (end - start).total_seconds()
    contacts: list[dict[str, Any]] = []
    carried: dict[str, str | None] = {}
    through_chain: dict[str, str] = {}

    def new_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def contact(**entry: Any) -> dict[str, Any]:
        agent = rng.randrange(1, 21)
        entry = {
            "instanceId": instance_id,
            "queueId": "basic-queue",
            "agentArn": f"{agent_arn_prefix}:instance/{instance_id}/agent/agent-{agent:04d}",
            **entry,
        }
        contacts.append(entry)
        return entry

    while len(contacts) < count:
        channel = "CHAT" if rng.random() < mix.chat_share else "VOICE"
        case_id = rng.choice(case_ids) if rng.random() < mix.case_share else None
        as_tag = case_id is not None and rng.random() < mix.tag_share
        legs = 2 if rng.random() < mix.transfer_share else 1
        callback = channel == "VOICE" and rng.random() < mix.callback_share
        durations = [rng.uniform(60, 600) for _ in range(legs + callback)]
        begin = start + dt.timedelta(seconds=rng.uniform(0, max(0.0, span - sum(durations) - 60)))
        first_id = new_id()
        attributes = {attribute_key: case_id} if case_id and not as_tag else {"language": "en"}
        previous = None
        at = begin
        for leg in range(legs):
            contact_id = first_id if leg == 0 else new_id()
            finish = min(at + dt.timedelta(seconds=durations[leg]), end)
            entry = contact(
                contactId=contact_id,
                channel=channel,
                initiationMethod=("API" if channel == "CHAT" else "INBOUND") if leg == 0 else "TRANSFER",
                initiationTimestamp=_iso(at),
                disconnectTimestamp=_iso(finish),
            )
            if leg == 0:
                entry["attributes"] = attributes
                if as_tag:
                    entry["tags"] = {tag_key: case_id}
            else:
                entry["initialContactId"] = first_id
                entry["previousContactId"] = previous
            # Attributes are shared by the chain; a tag belongs to its contact only.
            own = case_id if case_id and (not as_tag or leg == 0) else None
            carried[contact_id] = own
            if case_id and own is None:
                through_chain[contact_id] = case_id
            previous, at = contact_id, finish
        if callback:
            contact_id = new_id()
            when = min(at + dt.timedelta(seconds=rng.uniform(60, 600)), end)
            contact(
                contactId=contact_id,
                channel="VOICE",
                initiationMethod="CALLBACK",
                previousContactId=previous,
                initiationTimestamp=_iso(when),
                disconnectTimestamp=_iso(min(when + dt.timedelta(seconds=durations[-1]), end)),
            )
            carried[contact_id] = None
            if case_id:
                through_chain[contact_id] = case_id
        if rng.random() < mix.ongoing_share:
            contacts[-1]["disconnectTimestamp"] = None
    del contacts[count:]
    kept = {c["contactId"] for c in contacts}
    contacts.sort(key=lambda c: c["initiationTimestamp"])
    return GeneratedContacts(
        contacts,
        {k: v for k, v in carried.items() if k in kept},
        {k: v for k, v in through_chain.items() if k in kept},
    )


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds")
