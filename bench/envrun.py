"""One execution environment, in its own process: the real handler vs raw boto3 loops on the same records.

Run by `bench.inproc` as `python -m bench.envrun SPEC OUT` with stdout discarded (the handler's JSON logs and
EMF metrics would go to CloudWatch). It imports the handler with the Lambda environment from SPEC, builds the
app once (as the init phase would), then times the phases SPEC lists and writes the timings to OUT.

Phases:
- `batch`: per round, one 10-record invocation of the handler vs the same contacts' GetContactAttributes,
  ListCasesForContact and CreateRelatedItem calls made one after another.
- `overhead`: per round, N records through the handler in 10-record invocations vs a raw loop making the same
  remote calls (`raw_all`: Cases, Connect and the ledger's four DynamoDB writes) and one making only the
  Cases/Connect calls (`raw_cases`).
Every variant's API calls are counted per service (the handler's include the shared budget's DynamoDB calls).
Each variant records wall-clock seconds (`<variant>`) and this process's CPU seconds (`<variant>_cpu`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, cast

BATCH_SIZE = 10


def sqs_records(bodies: Sequence[str], queue_arn: str, region: str) -> list[dict[str, Any]]:
    """Lambda's SQS event records for these bodies, as first deliveries."""
    from local.poller import lambda_sqs_record

    now = str(int(time.time() * 1000))
    return [
        lambda_sqs_record(
            {
                "MessageId": str(uuid.uuid4()),
                "ReceiptHandle": f"bench-{uuid.uuid4()}",
                "Body": body,
                "MD5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "Attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": now,
                    "ApproximateFirstReceiveTimestamp": now,
                    "SenderId": "bench",
                },
            },
            queue_arn=queue_arn,
            region=region,
        )
        for body in bodies
    ]


class RawLoop:
    """The comparison: plain boto3 calls for one contact event, no framework, no threads."""

    def __init__(
        self, clients: Any, *, domain_id: str, table: str, attribute: str, performed_by: str
    ) -> None:
        self._clients = clients
        self._domain_id = domain_id
        self._table = table
        self._attribute = attribute
        self._performed_by = performed_by

    def link(self, body: str, *, idempotency: bool) -> bool:
        """Link one contact; True when an item was created. `idempotency` adds the same DynamoDB writes."""
        clients = self._clients
        detail = json.loads(body)["detail"]
        instance_arn, contact_id = detail["instanceArn"], detail["contactId"]
        contact_arn = f"{instance_arn}/contact/{contact_id}"
        attributes = clients.connect.get_contact_attributes(
            InstanceId=instance_arn.rsplit("/", 1)[-1],
            InitialContactId=detail.get("initialContactId") or contact_id,
        )["Attributes"]
        case_id = attributes[self._attribute]
        key = f"raw#{contact_arn}"
        if idempotency:
            self._write(key, "begin", conditional=True)
        found = clients.cases.list_cases_for_contact(
            domainId=self._domain_id, contactArn=contact_arn, maxResults=10
        )
        created = False
        if not any(case.get("caseId") == case_id for case in found.get("cases", [])):
            if idempotency:
                self._write(key, "pending")
            clients.cases_create.create_related_item(
                domainId=self._domain_id,
                caseId=case_id,
                type="Contact",
                content={"contact": {"contactArn": contact_arn}},
                performedBy={"customEntity": self._performed_by},
            )
            created = True
        if idempotency:
            self._write(key, "created")
            self._write(f"raw#contact#{contact_id}", "linked")
        return created

    # The ledger's writes for a new contact (case_linker.ledger): the item's claim (conditional), the
    # "may have committed" mark before the create, the created state, and the contact's record.
    def _write(self, key: str, state: str, *, conditional: bool = False) -> None:
        now = int(time.time())
        condition = {"ConditionExpression": "attribute_not_exists(#id) OR #state <> :created"}
        self._clients.dynamodb.update_item(
            TableName=self._table,
            Key={"id": {"S": key}},
            UpdateExpression="SET #state = :state, #expiry = :expiry, #at = :now ADD #attempts :one",
            ExpressionAttributeNames={
                "#state": "state",
                "#expiry": "expiration",
                "#at": "updatedAt",
                "#attempts": "attempts",
                **({"#id": "id"} if conditional else {}),
            },
            ExpressionAttributeValues={
                ":state": {"S": state},
                ":expiry": {"N": str(now + 14 * 86400)},
                ":now": {"N": str(now)},
                ":one": {"N": "1"},
                **({":created": {"S": "created"}} if conditional else {}),
            },
            **(condition if conditional else {}),
        )


class CallCounter:
    """Counts the API calls a set of clients sends, per service (botocore's before-send event)."""

    def __init__(self, clients: Any) -> None:
        self.counts: dict[str, int] = {}
        seen: set[int] = set()
        for client in vars(clients).values():
            if id(client) in seen or not hasattr(client, "meta"):
                continue
            seen.add(id(client))
            client.meta.events.register("before-send", self._count)

    def _count(self, event_name: str, **_: Any) -> None:
        service = event_name.split(".")[1]  # before-send.<service>.<Operation>
        self.counts[service] = self.counts.get(service, 0) + 1

    def take(self) -> dict[str, int]:
        counts, self.counts = self.counts, {}
        return counts


def _timed(action: Callable[[], None]) -> tuple[float, float]:
    """Wall-clock seconds and this process's CPU seconds (all threads) spent in `action`."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: Sequence[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    os.environ.update(spec["environ"])
    from case_linker.handler import Tuning, build_app, build_clients, make_lambda_handler
    from case_linker.settings import Settings

    from local.context import ContextSpec

    tuning = Tuning()
    settings = Settings.from_env(os.environ)
    handler_clients = build_clients(tuning)
    app = build_app(settings, handler_clients, tuning)
    handler = make_lambda_handler(lambda: app)
    raw_clients = build_clients(tuning)  # the same client settings as the handler's, without its hooks
    counters = {"handler": CallCounter(handler_clients), "raw": CallCounter(raw_clients)}
    raw = RawLoop(
        raw_clients,
        domain_id=settings.cases_domain_id,
        table=settings.idempotency_table_name,
        attribute=settings.case_id_attribute,
        performed_by=settings.performed_by_entity,
    )
    context_spec = ContextSpec(function_name="case-linker-bench", memory_limit_in_mb=256, timeout_s=60.0)
    failures: list[str] = []
    raw_created = 0

    def invoke(bodies: Sequence[str]) -> None:
        for start in range(0, len(bodies), BATCH_SIZE):
            event = {
                "Records": sqs_records(bodies[start : start + BATCH_SIZE], spec["queue_arn"], "us-east-1")
            }
            # local's LambdaContext duck-types the runtime's; Powertools only reads its attributes.
            response = handler(event, cast(Any, context_spec.start()))
            failures.extend(f["itemIdentifier"] for f in response.get("batchItemFailures", []))

    def loop(bodies: Sequence[str], *, idempotency: bool) -> None:
        nonlocal raw_created
        for body in bodies:
            raw_created += raw.link(body, idempotency=idempotency)

    results: dict[str, list[dict[str, float]]] = {}
    calls: dict[str, dict[str, dict[str, int]]] = {}
    for phase in spec["phases"]:
        rounds: list[dict[str, float]] = []
        for round_ in phase["rounds"]:
            timings: dict[str, float] = {}
            # Alternate the order between rounds so neither side always runs on a warmer machine.
            order = list(round_) if len(rounds) % 2 == 0 else list(reversed(list(round_)))
            for variant in order:
                bodies = round_[variant]
                if variant == "handler":
                    wall, cpu = _timed(partial(invoke, bodies))
                else:
                    wall, cpu = _timed(
                        partial(loop, bodies, idempotency=variant in ("raw_all", "sequential"))
                    )
                timings[variant], timings[f"{variant}_cpu"] = wall, cpu
                counted = counters["handler" if variant == "handler" else "raw"].take()
                if len(rounds) > 0:  # the measured rounds, not the warm-up
                    total = calls.setdefault(phase["name"], {}).setdefault(variant, {})
                    for service, n in counted.items():
                        total[service] = total.get(service, 0) + n
                    total["records"] = total.get("records", 0) + len(bodies)
            rounds.append(timings)
        results[phase["name"]] = rounds
    output = {"rounds": results, "calls": calls, "handler_failures": failures, "raw_created": raw_created}
    Path(argv[1]).write_text(json.dumps(output), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
