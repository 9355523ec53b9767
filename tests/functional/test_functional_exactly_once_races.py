"""Exactly once under concurrency and crashes: two deliveries, two environments, one identity.

Each test runs real Apps (as two Lambda execution environments) against one moto table and the emulator over
HTTP, and forces an interleaving: a ledger write throttled, a delivery an hour later (a clock moved on), twins
whose creates land in an order of the emulator's choosing.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from case_linker.handler import App
from case_linker.ledger import CLAIM_PREFIX, CONTACT_PREFIX

from emulator import Emulator
from tests.functional.conftest import (
    FAST,
    Aws,
    comment_request,
    event_body,
    failed_ids,
    lambda_context,
    sqs_event,
    sqs_record,
)
from tests.functional.test_functional_exactly_once import (
    COMMENT_CASE,
    VOICE_CASE,
    bodies,
    custom_request,
    script_creates,
)

ONE_ATTEMPT = dataclasses.replace(FAST, create_attempts=1)


class _ThrottledClaims:
    """The ledger's DynamoDB client, whose next `times` claim writes are throttled past botocore's retries."""

    def __init__(self, client: Any, times: int) -> None:
        self._client = client
        self.left = times

    def put_item(self, **params: Any) -> Any:
        if self.left > 0 and params["Item"]["id"]["S"].startswith(CLAIM_PREFIX):
            self.left -= 1
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "throttled"}},
                "PutItem",
            )
        return self._client.put_item(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def throttle_claims(app: App, times: int = 1) -> None:
    app.ledger._db = _ThrottledClaims(app.ledger._db, times)


def run_later(app: App, seconds: float) -> App:
    """`app`, its ledger and linker reading a clock `seconds` ahead (a delivery that comes that much later)."""
    ahead: Callable[[], float] = lambda: time.time() + seconds  # noqa: E731
    app.ledger._clock = ahead
    app.records._linker._clock = ahead  # type: ignore[attr-defined]
    return app


def test_given_a_twins_claim_throttled_when_the_other_looks_an_hour_later_then_no_comment_is_left_spare(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    # GIVEN pay-a's comment is sent and its answer lost; it commits a moment later (a late commit)
    emu.configure(late_commit_s=0.4)
    emu.script("BatchCreateRelatedItem", ["late_commit"])
    live = make_app(ONE_ATTEMPT)
    pay_a = comment_request(COMMENT_CASE, "Payment received", idempotencyKey="pay-a")
    assert failed_ids(live.run_batch(sqs_event(sqs_record(pay_a)), lambda_context()).response)
    # ... pay-b, the same words under its own key, is created meanwhile, but the ledger write that claims its
    # comment is throttled, so it is handed back in doubt
    throttle_claims(live)
    pay_b = comment_request(COMMENT_CASE, "Payment received", idempotencyKey="pay-b")
    assert failed_ids(live.run_batch(sqs_event(sqs_record(pay_b)), lambda_context()).response)
    time.sleep(0.6)  # pay-a's late commit lands
    assert len(bodies(emu, COMMENT_CASE)) == 2

    # WHEN pay-a comes again past the hour its client token is trusted, in another environment, and looks
    later = run_later(make_app(ONE_ATTEMPT), 3601)
    assert later.run_batch(sqs_event(sqs_record(pay_a, receive_count=2)), lambda_context()).response == {
        "batchItemFailures": []
    }
    # ... and pay-b comes again within its hour
    again = make_app().run_batch(sqs_event(sqs_record(pay_b, receive_count=2)), lambda_context())

    # THEN two requests, two comments: none made twice, none left over
    assert again.response == {"batchItemFailures": []}
    assert len(bodies(emu, COMMENT_CASE)) == 2


def run_together(*runs: Callable[[], Any]) -> list[Any]:
    """Run each callable in its own thread, all released at once; their results in order."""
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        start = threading.Barrier(len(runs))

        def go(run: Callable[[], Any]) -> Any:
            start.wait()
            return run()

        return list(pool.map(go, runs))


def sweepers_copy(body: str) -> str:
    """The reconciliation sweeper's message for the contact of a contact event."""
    event = json.loads(body)
    event["source"] = "case-linker.sweeper"
    return json.dumps(event)


@pytest.mark.parametrize(
    ("make_bodies", "kind"),
    [
        (lambda: [comment_request(COMMENT_CASE, "Same moment")] * 2, "Comment"),
        (lambda: [custom_request(COMMENT_CASE, "order-same-moment")] * 2, "Custom"),
        (lambda: [comment_request(COMMENT_CASE, "Same moment", idempotencyKey="k-1")] * 2, "Comment"),
        (
            lambda: [
                event_body("contact-completed-voice.json"),
                sweepers_copy(event_body("contact-completed-voice.json")),
            ],
            "Contact",
        ),
    ],
    ids=["comment", "custom", "keyed-comment", "contact-and-sweepers-copy"],
)
def test_given_one_request_as_two_messages_in_two_environments_at_once_then_one_item_and_both_end(
    make_app: Callable[..., App], emu: Emulator, make_bodies: Callable[[], list[str]], kind: str
) -> None:
    # GIVEN two environments and a slow Cases, and the same request delivered to each at the same moment
    emu.configure(latency_s=0.3)
    bodies_sent = make_bodies()
    first, second = make_app(), make_app()

    # WHEN both handle it at once
    results = run_together(
        *(
            lambda app=app, body=body: app.run_batch(sqs_event(sqs_record(body)), lambda_context())
            for app, body in zip((first, second), bodies_sent, strict=True)
        )
    )
    # ... and whichever was asked to wait comes again
    for app, body, result in zip((first, second), bodies_sent, results, strict=True):
        if result.response["batchItemFailures"]:
            again = app.run_batch(sqs_event(sqs_record(body, receive_count=2)), lambda_context())
            assert again.response == {"batchItemFailures": []}

    # THEN one item
    case = VOICE_CASE if kind == "Contact" else COMMENT_CASE
    assert len(bodies(emu, case, kind)) == 1


@pytest.mark.parametrize("kind", ["Comment", "Custom"])
def test_given_a_lost_answer_and_throttled_look_ups_when_redelivered_hours_later_then_one_item(
    make_app: Callable[..., App], emu: Emulator, kind: str
) -> None:
    # GIVEN a create that commits but whose answer is lost; what follows is throttled until the hand-back
    body = (
        comment_request(COMMENT_CASE, "Hours later")
        if kind == "Comment"
        else custom_request(COMMENT_CASE, "order-hours")
    )
    script_creates(emu, ["drop_after_commit", "ThrottlingException"])
    # (botocore tries a look-up 4 times; the comment's first delivery retries its token instead of looking)
    emu.script("SearchRelatedItems", ["ThrottlingException"] * (4 if kind == "Comment" else 8))
    app = make_app(dataclasses.replace(FAST, create_attempts=2))
    assert failed_ids(app.run_batch(sqs_event(sqs_record(body)), lambda_context()).response)
    # ... an hour later the look-up is throttled again
    assert failed_ids(
        run_later(make_app(), 3700)
        .run_batch(sqs_event(sqs_record(body, receive_count=2)), lambda_context())
        .response
    )

    # WHEN it comes again two hours later, when Cases has forgotten the client token
    emu.configure(client_token_ttl_s=0.0)
    result = run_later(make_app(), 7300).run_batch(
        sqs_event(sqs_record(body, receive_count=3)), lambda_context()
    )

    # THEN the item made by the first attempt is found, not made again
    assert result.response == {"batchItemFailures": []}
    assert len(bodies(emu, COMMENT_CASE, kind)) == 1


class _SlowClaims:
    """The ledger's DynamoDB client, whose claim writes wait `seconds` first (a paused environment)."""

    def __init__(self, client: Any, seconds: float) -> None:
        self._client = client
        self._seconds = seconds

    def put_item(self, **params: Any) -> Any:
        if params["Item"]["id"]["S"].startswith(CLAIM_PREFIX):
            time.sleep(self._seconds)
        return self._client.put_item(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_given_twins_when_one_looks_while_the_others_new_item_is_not_yet_claimed_then_two_items(
    make_app: Callable[..., App], emu: Emulator
) -> None:
    # GIVEN order-77 asked for by two requests (their own keys) in two environments; the first's create is
    # answered with a dropped connection and commits a moment later, so it looks for its item once settled
    settled = dataclasses.replace(FAST, backoff=dataclasses.replace(FAST.backoff, settle=1.0))
    emu.configure(late_commit_s=0.4)
    emu.script("CreateRelatedItem", ["late_commit"])
    first, second = make_app(settled), make_app(settled)
    # ... while the second's create answers at once, but its environment pauses before claiming its item
    second.ledger._db = _SlowClaims(second.ledger._db, 1.5)
    twin_a = custom_request(COMMENT_CASE, "order-77", idempotencyKey="a")
    twin_b = custom_request(COMMENT_CASE, "order-77", idempotencyKey="b")

    # WHEN the first looks in that pause, and finds the second's item unclaimed before its own
    def second_soon() -> Any:
        time.sleep(0.1)
        return second.run_batch(sqs_event(sqs_record(twin_b)), lambda_context())

    results = run_together(
        lambda: first.run_batch(sqs_event(sqs_record(twin_a)), lambda_context()), second_soon
    )

    # THEN both end, and the case holds two items: none spare
    assert [result.response for result in results] == [{"batchItemFailures": []}] * 2
    assert len(bodies(emu, COMMENT_CASE, "Custom")) == 2


def _write_of(operation: str, params: dict[str, Any]) -> str:
    """Which ledger write a DynamoDB call is."""
    key = (params.get("Key") or params.get("Item") or {}).get("id", {}).get("S", "")
    if key.startswith(CLAIM_PREFIX):
        return "claim"
    if key.startswith(CONTACT_PREFIX):
        return "contact"
    update = params.get("UpdateExpression", "")
    if "createdAt" in update:
        return "created"
    if "pendingAt = :pending" in update:
        return "pending"
    if "leaseOwner = :owner" in update:
        return "begin"
    if "REMOVE pendingAt, leaseOwner" in update:
        return "release"
    return operation


class _FailingWrites:
    """The ledger's DynamoDB client: each write named in `failing` fails once, throttled past botocore's
    retries; after it was made (`after_commit`: the answer is lost) or before."""

    def __init__(self, client: Any, failing: set[str], *, after_commit: bool) -> None:
        self._client = client
        self.failing = set(failing)
        self._after_commit = after_commit

    def _write(self, operation: str, params: dict[str, Any]) -> Any:
        write = _write_of(operation, params)
        call = getattr(self._client, operation)
        if write not in self.failing:
            return call(**params)
        self.failing.discard(write)
        if self._after_commit:
            call(**params)
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "throttled"}}, operation
        )

    def update_item(self, **params: Any) -> Any:
        return self._write("update_item", params)

    def put_item(self, **params: Any) -> Any:
        return self._write("put_item", params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


# The ledger writes each kind makes: a contact is found by its ARN, never claimed, and has a contact record.
_WRITES = {
    "Comment": ("pending", "created", "claim", "created+release", "claim+release"),
    "Custom": ("pending", "created", "claim", "created+release", "claim+release"),
    "Contact": ("pending", "created", "created+release", "contact"),
}


@pytest.mark.parametrize("after_commit", [False, True], ids=["refused", "answer-lost"])
@pytest.mark.parametrize(
    ("kind", "writes"),
    [(kind, writes) for kind, each in _WRITES.items() for writes in each],
    ids=[f"{kind}-{writes}" for kind, each in _WRITES.items() for writes in each],
)
def test_given_a_ledger_write_that_fails_when_the_record_comes_again_then_one_item(
    make_app: Callable[..., App], emu: Emulator, kind: str, writes: str, after_commit: bool
) -> None:
    failing = set(writes.split("+"))
    body = {
        "Comment": comment_request(COMMENT_CASE, "Ledger trouble"),
        "Custom": custom_request(COMMENT_CASE, "order-ledger"),
        "Contact": event_body("contact-completed-voice.json"),
    }[kind]
    case = VOICE_CASE if kind == "Contact" else COMMENT_CASE
    # GIVEN a delivery during which a ledger write fails (DynamoDB throttles past botocore's retries)
    app = make_app()
    app.ledger._db = _FailingWrites(app.ledger._db, failing, after_commit=after_commit)
    started = time.monotonic()
    first = app.run_batch(sqs_event(sqs_record(body)), lambda_context(3_500))

    # WHEN the record comes again (another environment, once the first invocation and its lease ended)
    if first.response["batchItemFailures"] and "release" in failing:  # else its lease was given up
        time.sleep(max(0.0, started + 3.6 - time.monotonic()))
    results = [first]
    for receive in range(2, 5):
        if not results[-1].response["batchItemFailures"]:
            break
        time.sleep(FAST.backoff.settle)
        results.append(
            make_app().run_batch(sqs_event(sqs_record(body, receive_count=receive)), lambda_context())
        )

    # THEN it ended, with exactly one item on the case
    assert results[-1].response == {"batchItemFailures": []}
    assert len(bodies(emu, case, kind)) == 1


@pytest.mark.parametrize("kind", ["Comment", "Custom"])
def test_given_a_lease_that_ends_while_its_create_is_answered_slowly_when_another_takes_over_then_one_item(
    make_app: Callable[..., App], emu: Emulator, kind: str
) -> None:
    # GIVEN a create that commits and whose answer is held back for a second
    emu.configure(slow_response_s=1.0)
    script_creates(emu, ["slow_after_commit"])
    body = (
        comment_request(COMMENT_CASE, "Slow answer")
        if kind == "Comment"
        else custom_request(COMMENT_CASE, "slow")
    )
    first = make_app()
    # ... and an environment whose clock is far enough ahead to see the first one's lease as ended
    second = run_later(make_app(), 120)

    # WHEN the second takes the same request over while the first waits for its answer
    def second_soon() -> Any:
        time.sleep(0.4)
        return second.run_batch(sqs_event(sqs_record(body)), lambda_context())

    results = run_together(
        lambda: first.run_batch(sqs_event(sqs_record(body)), lambda_context()), second_soon
    )
    for app, result in zip((first, second), results, strict=True):
        if result.response["batchItemFailures"]:
            again = app.run_batch(sqs_event(sqs_record(body, receive_count=2)), lambda_context())
            assert again.response == {"batchItemFailures": []}

    # THEN one item
    assert len(bodies(emu, COMMENT_CASE, kind)) == 1


@pytest.mark.parametrize("kind", ["Comment", "Custom"])
def test_given_a_refused_create_then_a_redeploy_and_an_ambiguous_one_when_retried_then_it_goes_out_as_last_sent(
    make_app: Callable[..., App], emu: Emulator, kind: str
) -> None:
    body = (
        comment_request(COMMENT_CASE, "Performer changed")
        if kind == "Comment"
        else custom_request(COMMENT_CASE, "order-performer")
    )
    # GIVEN a create refused as a whole (throttled: nothing committed) under PERFORMED_BY=case-linker
    script_creates(emu, ["ThrottlingException"])
    before = make_app(ONE_ATTEMPT)
    assert failed_ids(before.run_batch(sqs_event(sqs_record(body)), lambda_context()).response)
    # ... then, after a redeploy with PERFORMED_BY=crm-linker, a create that commits but whose answer is lost
    script_creates(emu, ["drop_after_commit"])
    after = make_app(ONE_ATTEMPT, performed_by_entity="crm-linker")
    assert failed_ids(
        after.run_batch(sqs_event(sqs_record(body, receive_count=2)), lambda_context()).response
    )

    # WHEN the record comes again
    time.sleep(FAST.backoff.settle)
    result = make_app(performed_by_entity="crm-linker").run_batch(
        sqs_event(sqs_record(body, receive_count=3)), lambda_context()
    )

    # THEN it goes out as the create that may have committed did (its token, its look-up): one item
    assert result.response == {"batchItemFailures": []}
    assert len(bodies(emu, COMMENT_CASE, kind)) == 1


@pytest.mark.xfail(
    strict=True,
    reason="a comment made before 2026-12-01 10:15 (661639a) has no claim item: a twin's look-up past the token's "
    "hour can take it for its own; not fixed (no index from item id to identity in records of that version)",
)
def test_given_a_twins_comment_recorded_by_the_version_before_claims_when_the_other_looks_an_hour_later_then_two(
    make_app: Callable[..., App], emu: Emulator, aws: Aws
) -> None:
    # GIVEN pay-a's comment is lost before it commits, then pay-b (same words) is created by a version that
    # recorded it as created but did not claim it (records of the version before comments were claimed)
    emu.script("BatchCreateRelatedItem", ["drop"])
    app = make_app(ONE_ATTEMPT)
    pay_a = comment_request(COMMENT_CASE, "Payment received", idempotencyKey="pay-a")
    assert failed_ids(app.run_batch(sqs_event(sqs_record(pay_a)), lambda_context()).response)
    pay_b = comment_request(COMMENT_CASE, "Payment received", idempotencyKey="pay-b")
    assert app.run_batch(sqs_event(sqs_record(pay_b)), lambda_context()).response == {"batchItemFailures": []}
    dynamodb = boto3.client("dynamodb")
    for item in dynamodb.scan(TableName=aws.table_name)["Items"]:
        if item["id"]["S"].startswith(CLAIM_PREFIX):
            dynamodb.delete_item(TableName=aws.table_name, Key={"id": item["id"]})

    # WHEN pay-a comes again past the hour its client token is trusted
    later = run_later(make_app(), 3601)
    result = later.run_batch(sqs_event(sqs_record(pay_a, receive_count=2)), lambda_context())

    # THEN pay-b's comment is not taken for pay-a's: two requests, two comments
    assert result.response == {"batchItemFailures": []}
    assert len(bodies(emu, COMMENT_CASE)) == 2
