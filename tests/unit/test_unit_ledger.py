"""The link ledger's states on DynamoDB's own conditional writes (moto, in process)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from case_linker.identity import identity_of
from case_linker.ledger import (
    CONTACT_PREFIX,
    ITEM_PREFIX,
    LINKED,
    NO_CASE_ID,
    AlreadyCreated,
    Busy,
    Ledger,
    LedgerUnavailable,
    PayloadConflict,
)

from tests.unit.conftest import LEDGER_TABLE, Clock

TABLE = LEDGER_TABLE
IDENTITY = identity_of(
    domain_id="d", case="c", type_="Custom", content={"x": 1}, performed_by=None, idempotency_key="k"
)


@pytest.fixture
def ledger(dynamodb: Any, clock: Clock) -> Ledger:
    return Ledger(dynamodb, TABLE, clock=clock)


def stored(dynamodb: Any, key: str) -> dict[str, dict[str, str]]:
    item: dict[str, dict[str, str]] = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": key}}).get(
        "Item", {}
    )
    return item


def test_given_a_new_identity_when_begun_then_nothing_is_in_doubt_and_the_record_expires_in_15_days(
    ledger: Ledger, dynamodb: Any, clock: Clock
) -> None:
    claim = ledger.begin(IDENTITY, lease_until=clock.now + 60)

    assert not claim.in_doubt
    item = stored(dynamodb, ITEM_PREFIX + IDENTITY.key)
    assert int(item["expiration"]["N"]) == int(clock.now + 15 * 86400)
    assert "pendingAt" not in item


def test_given_a_create_about_to_be_sent_when_the_invocation_dies_then_the_next_delivery_is_in_doubt(
    ledger: Ledger, clock: Clock
) -> None:
    ledger.begin(IDENTITY, lease_until=clock.now + 5).before_send()
    clock.now += 10

    claim = ledger.begin(IDENTITY, lease_until=clock.now + 60)

    assert claim.in_doubt
    assert claim.first_doubt == claim.last_doubt == pytest.approx(clock.now - 10)


def test_given_a_live_lease_when_another_delivery_begins_then_busy_until_it_ends(
    ledger: Ledger, clock: Clock
) -> None:
    ledger.begin(IDENTITY, lease_until=clock.now + 30)

    with pytest.raises(Busy) as raised:
        ledger.begin(IDENTITY, lease_until=clock.now + 60)

    assert raised.value.retry_after == pytest.approx(30)


def test_given_a_released_claim_when_begun_again_then_the_lease_is_free_and_the_doubt_kept(
    ledger: Ledger, clock: Clock
) -> None:
    claim = ledger.begin(IDENTITY, lease_until=clock.now + 30)
    claim.before_send()
    claim.ambiguous()
    claim.release()

    again = ledger.begin(IDENTITY, lease_until=clock.now + 30)

    assert again.in_doubt
    assert again.first_doubt == pytest.approx(clock.now)


def test_given_a_refused_create_when_released_then_nothing_is_in_doubt(ledger: Ledger, clock: Clock) -> None:
    claim = ledger.begin(IDENTITY, lease_until=clock.now + 30)
    claim.before_send()
    claim.rejected()
    claim.release()

    assert not ledger.begin(IDENTITY, lease_until=clock.now + 30).in_doubt


def test_given_an_interrupted_create_when_released_then_it_counts_as_in_doubt(
    ledger: Ledger, clock: Clock
) -> None:
    claim = ledger.begin(IDENTITY, lease_until=clock.now + 30)
    claim.before_send()
    claim.release()  # outcome never known

    assert ledger.begin(IDENTITY, lease_until=clock.now + 30).in_doubt


def test_given_a_created_item_when_begun_again_then_already_created_with_its_id(
    ledger: Ledger, clock: Clock
) -> None:
    ledger.begin(IDENTITY, lease_until=clock.now + 30).created("item-7")

    with pytest.raises(AlreadyCreated) as raised:
        ledger.begin(IDENTITY, lease_until=clock.now + 30)

    assert raised.value.related_item_id == "item-7"


def test_given_a_key_reused_for_other_parameters_when_begun_then_payload_conflict(
    ledger: Ledger, clock: Clock
) -> None:
    ledger.begin(IDENTITY, lease_until=clock.now + 30).created("item-7")
    other = identity_of(
        domain_id="d", case="c2", type_="Custom", content={"x": 1}, performed_by=None, idempotency_key="k"
    )

    with pytest.raises(PayloadConflict):
        ledger.begin(other, lease_until=clock.now + 30)


def keyed(performer: str, *, given: bool) -> Any:
    return identity_of(
        domain_id="d",
        case="c",
        type_="Custom",
        content={"x": 1},
        performed_by={"customEntity": performer},
        idempotency_key="k",
        performer_given=given,
    )


def test_given_a_keyed_record_when_the_deployments_default_performer_changed_then_no_conflict(
    ledger: Ledger, clock: Clock
) -> None:
    # GIVEN a keyed request without a performer of its own, begun under PERFORMED_BY=case-linker
    ledger.begin(keyed("case-linker", given=False), lease_until=clock.now + 5).release()
    clock.now += 10

    # THEN it is the same request under PERFORMED_BY=crm-linker
    ledger.begin(keyed("crm-linker", given=False), lease_until=clock.now + 5)


def test_given_a_keyed_record_of_the_version_before_when_begun_again_then_no_conflict(
    ledger: Ledger, dynamodb: Any, clock: Clock
) -> None:
    # GIVEN a record whose payload an earlier version computed with the default performer in it
    before = identity_of(
        domain_id="d", case="c", type_="Custom", content={"x": 1},
        performed_by={"customEntity": "case-linker"}, idempotency_key="k",
    )  # fmt: skip
    ledger.begin(before, lease_until=clock.now + 30).created("item-7")

    # THEN the same request under this version finds it created, not a conflict
    with pytest.raises(AlreadyCreated):
        ledger.begin(keyed("case-linker", given=False), lease_until=clock.now + 30)
    assert before.payload == stored(dynamodb, ITEM_PREFIX + before.key)["payloadHash"]["S"]


def test_given_a_keyed_record_of_the_version_before_left_in_doubt_when_begun_again_then_its_lease_is_taken(
    ledger: Ledger, clock: Clock
) -> None:
    before = identity_of(
        domain_id="d", case="c", type_="Custom", content={"x": 1},
        performed_by={"customEntity": "case-linker"}, idempotency_key="k",
    )  # fmt: skip
    ledger.begin(before, lease_until=clock.now + 5).before_send()
    clock.now += 10

    claim = ledger.begin(keyed("case-linker", given=False), lease_until=clock.now + 30)

    assert claim.in_doubt


def test_given_a_key_reused_with_another_performer_of_the_producers_own_then_payload_conflict(
    ledger: Ledger, clock: Clock
) -> None:
    ledger.begin(keyed("crm", given=True), lease_until=clock.now + 30).created("item-7")

    with pytest.raises(PayloadConflict):
        ledger.begin(keyed("erp", given=True), lease_until=clock.now + 30)


def test_an_item_found_by_a_look_up_can_be_claimed_by_one_identity_only(ledger: Ledger) -> None:
    other = identity_of(
        domain_id="d", case="c", type_="Custom", content={"x": 1}, performed_by=None, idempotency_key="j"
    )

    assert ledger.claim_item("item-1", IDENTITY)
    assert ledger.claim_item("item-1", IDENTITY)  # the same identity again: still ours
    assert not ledger.claim_item("item-1", other)


def test_contact_records_never_fall_back_from_linked_and_read_in_batches(
    ledger: Ledger, dynamodb: Any, clock: Clock
) -> None:
    ledger.record_contact("inst", "c1", NO_CASE_ID)
    ledger.record_contact("inst", "c1", LINKED, "case-1")
    ledger.record_contact("inst", "c1", NO_CASE_ID)  # a late sweeper message must not undo the link
    for i in range(150):
        ledger.record_contact("inst", f"n{i}", NO_CASE_ID)

    records = ledger.contacts("inst", ["c1", "missing", *(f"n{i}" for i in range(150))])

    assert records["c1"].state == LINKED
    assert records["c1"].case_ids == frozenset({"case-1"})
    assert "missing" not in records
    assert len(records) == 151
    assert stored(dynamodb, f"{CONTACT_PREFIX}inst#c1")["state"]["S"] == LINKED


def test_a_resolved_reference_is_remembered_by_hash_not_by_value(ledger: Ledger, dynamodb: Any) -> None:
    ledger.remember_reference("d", "CASE-0042", "case-9")

    assert ledger.case_for_reference("d", "case-0042") == "case-9"
    assert ledger.case_for_reference("d", "CASE-0043") is None
    scanned = dynamodb.scan(TableName=TABLE)["Items"]
    assert "0042" not in str(scanned)


def test_given_dynamodb_is_unreachable_when_begun_then_ledger_unavailable_is_transient(clock: Clock) -> None:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", endpoint_url="http://127.0.0.1:9", config=_no_retries()
    )
    with pytest.raises(LedgerUnavailable) as raised:
        Ledger(client, TABLE, clock=clock).begin(IDENTITY, lease_until=clock.now + 1)
    assert raised.value.code == "LedgerUnavailable"


def _no_retries() -> object:
    from botocore.config import Config

    return Config(retries={"total_max_attempts": 1}, connect_timeout=0.5)
