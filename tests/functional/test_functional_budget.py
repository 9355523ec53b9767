"""The shared Cases budget's DynamoDB adapter against moto's DynamoDB over HTTP.

The same conditional-write contract runs against the in-memory store the fleet simulation uses, so the
simulation's figures hold for the adapter the function ships.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from case_linker.budget import (
    KEY_PREFIX,
    BudgetConfig,
    BudgetState,
    BudgetStore,
    DynamoDBBudgetStore,
    MemoryBudgetStore,
    SharedBudget,
    StaleBudget,
)
from case_linker.handler import App
from case_linker.pacing import Pacer
from case_linker.telemetry import BUDGET_DEGRADED, BUDGET_REQUESTS, RELATED_ITEM_CREATED

from emulator import Emulator
from tests.functional.conftest import (
    EXPECTED,
    Aws,
    comment_request,
    count,
    event_body,
    lambda_context,
    sqs_event,
    sqs_record,
)

TABLE = "case-linker-idempotency"
OP = "CreateRelatedItem"
NOW = 1_700_000_000.0
COMMENT_CASE = EXPECTED["events"]["request-comment.json"]["case"]


def dynamodb_client(endpoint: str, timeout: float = 0.5) -> Any:
    # What the function should use for the budget: short timeouts, one retry, so a slow store degrades.
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        config=Config(
            retries={"mode": "standard", "total_max_attempts": 2},
            connect_timeout=timeout,
            read_timeout=timeout,
        ),
    )


@pytest.fixture
def table(moto_endpoint: str) -> Any:
    # moto on a busy test machine is slower than DynamoDB: more time than the function would allow.
    client = dynamodb_client(moto_endpoint, timeout=10.0)
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> Iterator[BudgetStore]:
    if request.param == "memory":
        yield MemoryBudgetStore()
    else:
        yield DynamoDBBudgetStore(request.getfixturevalue("table"), TABLE)


def test_given_either_store_when_the_same_writes_are_made_then_the_same_conditions_hold(
    store: BudgetStore,
) -> None:
    key = KEY_PREFIX + OP
    # An absent item is created by a refill, with the configured rate and epoch 0.
    created = store.refill(key, tat=NOW + 0.5, floor=NOW - 5, epoch=0, rate=2.0, expires=0)
    assert created == BudgetState(NOW + 0.5, 2.0, 0.0, 0)

    # A refill of a busy bucket fails and returns what is stored.
    with pytest.raises(StaleBudget) as stale:
        store.refill(key, tat=NOW + 9, floor=NOW, epoch=0, rate=2.0, expires=0)
    assert stale.value.current == created

    # An extension past the ceiling fails; within it, it moves tat.
    with pytest.raises(StaleBudget):
        store.extend(key, seconds=1.0, floor=NOW - 5, ceiling=NOW, epoch=0, expires=0)
    assert store.extend(key, seconds=1.5, floor=NOW - 5, ceiling=NOW + 1, epoch=0, expires=0).tat == NOW + 2.0

    # A decrease moves the epoch on and anchors the fleet's clock; a second one at the old epoch fails.
    decreased = store.decrease(key, rate=1.4, since=NOW + 1, vsince=NOW + 0.75, epoch=0, expires=0)
    assert decreased == BudgetState(NOW + 2.0, 1.4, NOW + 1, 1, NOW + 0.75)
    with pytest.raises(StaleBudget) as stale:
        store.decrease(key, rate=1.0, since=NOW + 2, vsince=NOW + 1.5, epoch=0, expires=0)
    assert stale.value.current == decreased
    with pytest.raises(StaleBudget):
        store.extend(key, seconds=1.0, floor=NOW - 5, ceiling=NOW + 9, epoch=0, expires=0)

    # An extension that may create (an environment that has seen nothing yet) creates an absent item as if
    # its tat were the floor, and is a plain extension of an existing one.
    other = KEY_PREFIX + "Other"
    assert store.extend(other, seconds=0.5, floor=NOW - 4.5, ceiling=NOW, epoch=0, expires=0, rate=2.0) == (
        BudgetState(NOW - 4.0, 2.0, 0.0, 0)
    )
    assert store.extend(
        other, seconds=0.5, floor=NOW - 4.5, ceiling=NOW, epoch=0, expires=0, rate=2.0
    ).tat == (NOW - 3.5)
    with pytest.raises(StaleBudget):  # at an epoch the item is not at
        store.extend(key, seconds=0.5, floor=NOW - 5, ceiling=NOW + 9, epoch=0, expires=0, rate=2.0)

    # An idle bucket (tat below the floor) is refilled at the current epoch.
    refilled = store.refill(key, tat=NOW + 100, floor=NOW + 50, epoch=1, rate=2.0, expires=0)
    assert refilled == BudgetState(NOW + 100, 1.4, NOW + 1, 1, NOW + 0.75)

    # A read returns the item as stored, None when there is none.
    assert store.read(key) == refilled
    assert store.read(KEY_PREFIX + "Absent") is None


def calls(budget: SharedBudget, threads: list[int], count: int) -> list[float]:
    """`count` calls, each from a new thread: their waits."""
    waits = []
    for _ in range(count):
        threads.append(len(threads))
        waits.append(budget.reserve(OP))
        budget.record(OP, throttled=False)
    return waits


def test_given_the_dynamodb_store_then_the_item_holds_numbers_only_and_expires(table: Any) -> None:
    clock = [NOW]
    threads: list[int] = []
    budget = SharedBudget(
        DynamoDBBudgetStore(table, TABLE),
        BudgetConfig(rate=2.0, burst=10.0, slow_call_s=5.0),  # moto here is slower than DynamoDB
        Pacer(1.0, 5.0),
        clock=lambda: clock[0],
        wall=lambda: clock[0],
        caller=lambda: threads[-1],
        rand=lambda: 0.0,
    )

    waits = calls(budget, threads, 11)

    assert waits[:9] == [0.0] * 9  # the burst, less the token kept back for late calls
    assert waits[9:] == [pytest.approx(0.5), pytest.approx(1.0)]
    items = table.scan(TableName=TABLE)["Items"]
    assert [item["id"]["S"] for item in items] == [KEY_PREFIX + OP]
    assert set(items[0]) == {"id", "tat", "rate", "since", "epoch", "vsince", "expiration"}
    assert int(items[0]["expiration"]["N"]) == int(NOW) + 7 * 24 * 3600
    assert budget.stats.degraded == 0


def test_given_an_unreachable_dynamodb_then_calls_are_paced_locally_not_refused() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    reasons: list[str] = []
    threads: list[int] = []
    budget = SharedBudget(
        DynamoDBBudgetStore(dynamodb_client(f"http://127.0.0.1:{port}"), TABLE),
        BudgetConfig(rate=2.0, burst=10.0),
        Pacer(1.0, 5.0),
        caller=lambda: threads[-1],
        on_degraded=reasons.append,
    )

    waits = calls(budget, threads, 6)

    # paced locally at the static share (1 req/s), without a burst the shared schedule may have promised
    assert waits == [pytest.approx(n, abs=0.05) for n in range(1, 7)]
    assert reasons == ["EndpointConnectionError"]
    assert budget.stats.fallback_calls == 6


CONTACTS = ["contact-completed-voice.json", "contact-completed-chat.json", "contact-completed-task.json"]
PACED = {"ListCasesForContact", "CreateRelatedItem", "BatchCreateRelatedItem", "SearchRelatedItems"}


def test_given_the_handler_on_the_shared_budget_when_batches_run_then_its_requests_are_counted_per_batch(
    make_app: Callable[..., App], emu: Emulator, aws: Aws
) -> None:
    # GIVEN the function as the stack wires it: the account's quota (2 req/s, burst 10) shared in the table
    app = make_app(cases_quota_rps=2.0, cases_quota_burst=10.0)
    records = [sqs_record(event_body(name)) for name in CONTACTS]

    # WHEN a batch links three contacts, and the same messages come again
    first = app.run_batch(sqs_event(*records), lambda_context())
    cases_calls = sum(1 for call in emu.calls if call.operation in PACED)
    again = app.run_batch(sqs_event(*records), lambda_context())

    # THEN every contact is linked, within the account's burst, without waiting on the quota
    assert first.response == {"batchItemFailures": []}
    assert count(first.counts, RELATED_ITEM_CREATED) == len(CONTACTS)
    # one lease per API covers the batch (the rest of the batch's calls, known from its size)
    assert 2 <= count(first.counts, BUDGET_REQUESTS) < cases_calls
    assert count(first.counts, BUDGET_DEGRADED) == 0
    stored = {item["id"]["S"] for item in aws_items(aws)}
    assert {KEY_PREFIX + "ListCasesForContact", KEY_PREFIX + "CreateRelatedItem"} <= stored
    # the repeat is answered by the link ledger: no Cases call, so no budget request, and the first batch's
    # requests are not counted twice
    assert again.response == {"batchItemFailures": []}
    assert sum(1 for call in emu.calls if call.operation in PACED) == cases_calls
    assert count(again.counts, BUDGET_REQUESTS) == 0


def test_given_the_budget_table_unreachable_when_a_batch_runs_then_it_is_paced_locally_and_counted(
    make_app: Callable[..., App], emu: Emulator, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a budget whose table does not exist (the ledger's does): every budget request fails
    app = make_app(cases_quota_rps=2.0, cases_quota_burst=10.0)
    assert app.budget is not None
    monkeypatch.setattr(app.budget, "_store", DynamoDBBudgetStore(aws_client(), "no-such-table"))

    # WHEN a batch links a contact
    result = app.run_batch(sqs_event(sqs_record(event_body(CONTACTS[0]))), lambda_context())

    # THEN it is linked anyway, paced at the static share, and the fallback is counted once
    assert result.response == {"batchItemFailures": []}
    assert count(result.counts, RELATED_ITEM_CREATED) == 1
    assert count(result.counts, BUDGET_DEGRADED) == 1


def aws_client() -> Any:
    return boto3.client("dynamodb")


def aws_items(aws: Aws) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = aws_client().scan(TableName=aws.table_name)["Items"]
    return items


@pytest.mark.parametrize("replays", [1, 5])
def test_given_a_batch_of_live_records_and_replays_when_handled_then_its_leases_take_only_the_slots_it_uses(
    make_app: Callable[..., App], emu: Emulator, aws: Aws, replays: int
) -> None:
    # GIVEN the account's quota shared in the table, and a batch of ten comments of which some are replays
    # (background work: leased from the background schedule, then the fleet's, apart from live work)
    app = make_app(cases_quota_rps=2.0, cases_quota_burst=2.0)
    assert app.budget is not None
    replayed = {"REPLAYED": {"dataType": "String", "stringValue": "dlq"}}
    records = [
        sqs_record(comment_request(COMMENT_CASE, f"note {i}"), attributes=replayed if i < replays else None)
        for i in range(10)
    ]

    # WHEN the batch is handled
    result = app.run_batch(sqs_event(*records), lambda_context(remaining_ms=120_000))

    # THEN every comment is linked, and the batch took from the fleet's schedule about the slots it used: each
    # class of work leased for its own records, not for the whole batch (slots leased and left unused are lost
    # to every environment, live contacts first)
    assert result.response == {"batchItemFailures": []}
    assert count(result.counts, RELATED_ITEM_CREATED) == len(records)
    creates = len(emu.calls_to("BatchCreateRelatedItem"))
    assert creates == len(records)
    assert app.budget.stats.leased <= creates + 1
