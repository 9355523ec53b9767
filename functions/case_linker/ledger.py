"""The link ledger: durable memory of every item we were asked to create, in the idempotency table.

Hand-written because Powertools idempotency deletes its record when the function raises, so it cannot
remember a create that may have committed before the record was handed back; this ledger keeps that.

One DynamoDB item per item identity (`case-linker#item#v1#<identity key>`), holding:
- a lease (`leaseOwner`, `leaseUntil`, epoch seconds): one delivery at a time works on an identity; a lease
  ends with its invocation, so a killed invocation's lease simply expires;
- `pendingAt`: written just before a create is sent and cleared once its outcome is known, so a create that
  was in flight when an invocation died is never forgotten;
- `firstDoubtAt` / `lastDoubtAt`: the first and latest create that may have committed (a dropped connection,
  a timeout, a 5xx, or a pendingAt left behind);
- `tokenGeneration`: which client token the next create uses (a new one after the service answered the last
  one with "not created");
- `sentAs`: how the latest create went out (the performer, the reference id's spelling): while one may have
  committed, every later create goes out the same way;
- `relatedItemId`, `createdAt` once the item exists; `payloadHash` to catch an idempotencyKey reused for
  another item.
Plus one item per contact (what the reconciliation sweeper reads), claims on every new item but a contact and
on items a look-up found,
and case reference ids already resolved. Everything expires (`expiration`) 15 days after its last write:
longer than the dead-letter queue keeps a message, so a replay is always recognised.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from case_linker.errors import TransientError, error_code
from case_linker.identity import Identity

ITEM_PREFIX = "case-linker#item#v1#"
CONTACT_PREFIX = "case-linker#contact#v1#"
CLAIM_PREFIX = "case-linker#claim#v1#"
REFERENCE_PREFIX = "case-linker#reference#v1#"
# Longer than the dead-letter queue's 14-day retention.
TTL_SECONDS = 15 * 24 * 60 * 60

# Contact states (the sweeper skips every one but NO_CASE_ID, which it looks at again while in its window).
LINKED = "linked"
NO_CASE_ID = "no_case_id"
DEAD_LETTERED = "dead_lettered"
CONTACT_STATES = (LINKED, NO_CASE_ID, DEAD_LETTERED)

_BATCH_GET_MAX = 100


class AlreadyCreated(Exception):
    """The item exists: an earlier delivery created it (or found it)."""

    def __init__(self, related_item_id: str | None) -> None:
        super().__init__("already created")
        self.related_item_id = related_item_id


class PayloadConflict(Exception):
    """The identity's key was used before for another item (an idempotencyKey reused)."""


class Busy(TransientError):
    """Another delivery holds the lease on this identity right now."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            "InProgress", "the same item is being linked by another delivery", retry_after=retry_after
        )


class LeaseLost(TransientError):
    """Another delivery took this identity's lease over while ours was working on it."""

    def __init__(self, action: str) -> None:
        super().__init__("LeaseLost", f"ledger {action}: another delivery took over")


class LedgerUnavailable(TransientError):
    """DynamoDB could not be read or written: nothing is sent to Cases without the ledger."""

    def __init__(self, action: str, error: Exception) -> None:
        code = error_code(error)
        super().__init__("LedgerUnavailable", f"ledger {action} failed: {code or type(error).__name__}")


@dataclass(frozen=True)
class ContactRecord:
    state: str
    case_ids: frozenset[str]
    updated_at: float
    # Where the first message about the contact came from (`event`, `sweeper`, ...): what tells a contact the
    # events handled from one only the sweeper found. None on records written before it was kept.
    origin: str | None = None


class Ledger:
    """Reads and writes the ledger's DynamoDB items. Thread-safe (boto3 clients are)."""

    def __init__(self, dynamodb: Any, table_name: str, clock: Callable[[], float] = time.time) -> None:
        self._db = dynamodb
        self._table = table_name
        self._clock = clock

    def begin(self, identity: Identity, *, lease_until: float) -> Claim:
        """Take the identity's lease and return what earlier deliveries left.

        Raises AlreadyCreated, PayloadConflict, Busy (another live delivery has it) or LedgerUnavailable.
        """
        now = self._clock()
        owner = uuid.uuid4().hex
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=_key(ITEM_PREFIX + identity.key),
                UpdateExpression=(
                    "SET leaseOwner = :owner, leaseUntil = :until, payloadHash = if_not_exists(payloadHash, :p), "
                    "expiration = :ttl, updatedAt = :now"
                ),
                ConditionExpression=(
                    "attribute_not_exists(id) OR (attribute_not_exists(createdAt) AND payloadHash IN (:p, :lp) "
                    "AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now))"
                ),
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":until": _n(lease_until),
                    ":p": {"S": identity.payload},
                    ":lp": {"S": identity.legacy_payload or identity.payload},
                    ":ttl": _n(math.ceil(now + TTL_SECONDS)),
                    ":now": _n(now),
                },
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise LedgerUnavailable("begin", error) from error
            raise _refusal(error.response.get("Item") or {}, identity, now) from None
        except BotoCoreError as error:
            raise LedgerUnavailable("begin", error) from error
        return Claim(self, identity, owner, response.get("Attributes") or {})

    def claim_item(self, related_item_id: str, identity: Identity) -> bool:
        """Reserve a related item (new, or a look-up's find) for `identity`; False if another holds it."""
        now = self._clock()
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    **_key(CLAIM_PREFIX + related_item_id),
                    "identity": {"S": identity.key},
                    "expiration": _n(math.ceil(now + TTL_SECONDS)),
                },
                ConditionExpression="attribute_not_exists(id) OR #i = :k",
                ExpressionAttributeNames={"#i": "identity"},
                ExpressionAttributeValues={":k": {"S": identity.key}},
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise LedgerUnavailable("claim", error) from error
        except BotoCoreError as error:
            raise LedgerUnavailable("claim", error) from error
        return True

    def record_contact(
        self,
        instance_id: str,
        contact_id: str,
        state: str,
        case_id: str | None = None,
        *,
        origin: str | None = None,
    ) -> None:
        """Remember what became of a contact, and where the first message about it came from.

        A linked contact never falls back to another state.
        """
        if state not in CONTACT_STATES:
            raise ValueError(f"unknown contact state {state}")
        now = self._clock()
        values: dict[str, Any] = {
            ":s": {"S": state},
            ":now": _n(now),
            ":ttl": _n(math.ceil(now + TTL_SECONDS)),
        }
        update = "SET #s = :s, updatedAt = :now, expiration = :ttl"
        if origin is not None:
            update += ", firstOrigin = if_not_exists(firstOrigin, :origin)"
            values[":origin"] = {"S": origin}
        condition = None
        if state == LINKED and case_id is not None:
            update += " ADD caseIds :case"
            values[":case"] = {"SS": [case_id]}
        else:
            condition = "attribute_not_exists(#s) OR #s <> :linked"
            values[":linked"] = {"S": LINKED}
        params: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(f"{CONTACT_PREFIX}{instance_id}#{contact_id}"),
            "UpdateExpression": update,
            "ExpressionAttributeNames": {"#s": "state"},
            "ExpressionAttributeValues": values,
        }
        if condition is not None:
            params["ConditionExpression"] = condition
        try:
            self._db.update_item(**params)
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return
            raise LedgerUnavailable("contact record", error) from error
        except BotoCoreError as error:
            raise LedgerUnavailable("contact record", error) from error

    def contacts(self, instance_id: str, contact_ids: Iterable[str]) -> dict[str, ContactRecord]:
        """The records of these contacts (those that have one), in batches of 100 (BatchGetItem)."""
        wanted = list(dict.fromkeys(contact_ids))
        found: dict[str, ContactRecord] = {}
        for start in range(0, len(wanted), _BATCH_GET_MAX):
            keys = [
                _key(f"{CONTACT_PREFIX}{instance_id}#{c}") for c in wanted[start : start + _BATCH_GET_MAX]
            ]
            for item in self._batch_get(keys):
                contact_id = item["id"]["S"].rsplit("#", 1)[-1]
                found[contact_id] = ContactRecord(
                    state=item.get("state", {}).get("S", ""),
                    case_ids=frozenset(item.get("caseIds", {}).get("SS", [])),
                    updated_at=float(item.get("updatedAt", {}).get("N", "0")),
                    origin=item.get("firstOrigin", {}).get("S"),
                )
        return found

    def case_for_reference(self, domain_id: str, reference_id: str) -> str | None:
        """A case id resolved earlier for this reference id."""
        try:
            item = self._db.get_item(
                TableName=self._table, Key=_key(_reference_key(domain_id, reference_id)), ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError) as error:
            raise LedgerUnavailable("reference read", error) from error
        return item["caseId"]["S"] if item and "caseId" in item else None

    def remember_reference(self, domain_id: str, reference_id: str, case_id: str) -> None:
        now = self._clock()
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    **_key(_reference_key(domain_id, reference_id)),
                    "caseId": {"S": case_id},
                    "expiration": _n(math.ceil(now + TTL_SECONDS)),
                },
            )
        except (ClientError, BotoCoreError) as error:
            raise LedgerUnavailable("reference write", error) from error

    # --- used by Claim ---------------------------------------------------------------------------------

    def _update(
        self, identity: Identity, owner: str | None, action: str, update: str, values: dict[str, Any]
    ) -> None:
        params: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(ITEM_PREFIX + identity.key),
            "UpdateExpression": update,
            "ExpressionAttributeValues": {**values, ":now": _n(self._clock())},
        }
        if owner is not None:
            params["ConditionExpression"] = "leaseOwner = :owner"
            params["ExpressionAttributeValues"][":owner"] = {"S": owner}
        try:
            self._db.update_item(**params)
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                raise LeaseLost(action) from error
            raise LedgerUnavailable(action, error) from error
        except BotoCoreError as error:
            raise LedgerUnavailable(action, error) from error

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
        for _ in range(5):
            try:
                response = self._db.batch_get_item(RequestItems=request)
            except (ClientError, BotoCoreError) as error:
                raise LedgerUnavailable("contact read", error) from error
            items.extend(response.get("Responses", {}).get(self._table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
            time.sleep(0.05)
        raise TransientError("LedgerUnavailable", "ledger contact read: keys left unprocessed")

    def now(self) -> float:
        return self._clock()


class Claim:
    """One delivery's hold on an identity: what earlier deliveries left, and the writes this one makes.

    Not shared between threads: one record is handled by one thread.
    """

    def __init__(self, ledger: Ledger, identity: Identity, owner: str, old: dict[str, Any]) -> None:
        self._ledger = ledger
        self.identity = identity
        self._owner = owner
        pending = _float(old.get("pendingAt"))
        first = _float(old.get("firstDoubtAt"))
        last = _float(old.get("lastDoubtAt"))
        # A create left pending by an earlier delivery (it died, or lost its lease) may have committed.
        if pending is not None:
            first = pending if first is None else min(first, pending)
            last = pending if last is None else max(last, pending)
        self.first_doubt: float | None = first
        self.last_doubt: float | None = last
        self.token_generation = int(_float(old.get("tokenGeneration")) or 0)
        sent = old.get("sentAs", {}).get("S")
        # How the latest create of this item went out (the linker's parameters that can differ between messages
        # for one item: the performer, the reference id's spelling); None until one was sent.
        self.sent_as: dict[str, Any] | None = json.loads(sent) if sent else None
        self._pending: float | None = None

    @property
    def in_doubt(self) -> bool:
        """Whether an earlier create of this item may have committed."""
        return self.first_doubt is not None

    def before_send(self, sent_as: dict[str, Any] | None = None) -> None:
        """Record, durably, that a create is about to be sent. Called right before the HTTP request.

        `sent_as` replaces the one kept: a create goes out otherwise only while no earlier one may have committed
        (a refused create leaves nothing to match), so what is kept is how every create in doubt went out.
        """
        now = self._ledger.now()
        values: dict[str, Any] = {":pending": _n(now), ":generation": _n(self.token_generation)}
        update = "SET pendingAt = :pending, tokenGeneration = :generation, updatedAt = :now"
        if sent_as is not None:
            update += ", sentAs = :sent"
            values[":sent"] = {"S": json.dumps(sent_as, sort_keys=True, separators=(",", ":"))}
        if self.first_doubt is not None and self.last_doubt is not None:
            update += ", firstDoubtAt = :first, lastDoubtAt = :last"
            values[":first"] = _n(self.first_doubt)
            values[":last"] = _n(self.last_doubt)
        self._ledger._update(self.identity, self._owner, "pending", update, values)
        self._pending = now

    def rejected(self, *, token_spent: bool = False) -> None:
        """The create was refused (429, 4xx, a per-case failure): it did not commit.

        `token_spent`: the service keeps that answer for the token, so the next attempt takes a new one.
        """
        self._pending = None
        if token_spent:
            self.token_generation += 1

    def ambiguous(self) -> None:
        """The create may have committed (dropped connection, timeout, 5xx)."""
        if self._pending is not None:
            self.first_doubt = (
                self._pending if self.first_doubt is None else min(self.first_doubt, self._pending)
            )
            self.last_doubt = (
                self._pending if self.last_doubt is None else max(self.last_doubt, self._pending)
            )
            self._pending = None

    def created(self, related_item_id: str | None) -> None:
        """The item exists (made now, or found). Recorded even if the lease was lost: it is a fact."""
        values: dict[str, Any] = {":id": {"S": related_item_id or "-"}}
        self._ledger._update(
            self.identity,
            None,
            "created",
            "SET createdAt = :now, relatedItemId = :id, updatedAt = :now REMOVE pendingAt, leaseOwner, leaseUntil",
            values,
        )

    def release(self) -> None:
        """Give up the lease (the record is being handed back), keeping what may have committed."""
        if self._pending is not None:
            # Outcome unknown (interrupted): treat it as possibly committed.
            self.ambiguous()
        update = "SET updatedAt = :now, tokenGeneration = :generation"
        values: dict[str, Any] = {":generation": _n(self.token_generation)}
        if self.first_doubt is not None and self.last_doubt is not None:
            update += ", firstDoubtAt = :first, lastDoubtAt = :last"
            values[":first"] = _n(self.first_doubt)
            values[":last"] = _n(self.last_doubt)
        self._ledger._update(
            self.identity,
            self._owner,
            "release",
            update + " REMOVE pendingAt, leaseOwner, leaseUntil",
            values,
        )


def _refusal(item: dict[str, Any], identity: Identity, now: float) -> Exception:
    if not identity.matches(item.get("payloadHash", {}).get("S", identity.payload)):
        return PayloadConflict()
    if "createdAt" in item:
        related = item.get("relatedItemId", {}).get("S")
        return AlreadyCreated(None if related in (None, "-") else related)
    until = _float(item.get("leaseUntil")) or now
    return Busy(retry_after=max(1.0, until - now))


def _reference_key(domain_id: str, reference_id: str) -> str:
    # Reference ids are the customer's own numbers: store a hash, not the value.
    digest = hashlib.sha256(f"{domain_id}\n{reference_id.lower()}".encode()).hexdigest()
    return REFERENCE_PREFIX + digest


def _key(value: str) -> dict[str, Any]:
    return {"id": {"S": value}}


def _n(value: float) -> dict[str, str]:
    return {"N": repr(round(value, 3)) if isinstance(value, float) else str(value)}


def _float(attribute: dict[str, Any] | None) -> float | None:
    if not attribute or "N" not in attribute:
        return None
    return float(attribute["N"])
