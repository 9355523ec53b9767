"""One execution environment, in its own process: the real handler vs raw boto3 loops on the same records.

Run by `bench.inproc` as `python -m bench.envrun SPEC OUT` with stdout discarded (the handler's JSON logs and
EMF metrics would go to CloudWatch). It imports the handler with the Lambda environment from SPEC, builds the
app once (as the init phase would), then times the phases SPEC lists and writes the timings to OUT.

Phases:
- `batch`: per round, one 10-record invocation of the handler vs the same contacts' GetContactAttributes,
  ListCasesForContact and CreateRelatedItem calls made one after another.
- `overhead`: per round, N records through the handler in 10-record invocations vs a raw loop making the same
  remote calls (`raw_all`: Cases, Connect and the two DynamoDB idempotency writes) and one making only the
  Cases/Connect calls (`raw_cases`).
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
            self._put_in_progress(key)
        found = clients.cases.list_cases_for_contact(
            domainId=self._domain_id, contactArn=contact_arn, maxResults=10
        )
        created = False
        if not any(case.get("caseId") == case_id for case in found.get("cases", [])):
            clients.cases_create.create_related_item(
                domainId=self._domain_id,
                caseId=case_id,
                type="Contact",
                content={"contact": {"contactArn": contact_arn}},
                performedBy={"customEntity": self._performed_by},
            )
            created = True
        if idempotency:
            self._complete(key)
        return created

    # The two writes Powertools' DynamoDBPersistenceLayer makes per record (save_inprogress, save_success).
    def _put_in_progress(self, key: str) -> None:
        now = time.time()
        self._clients.dynamodb.put_item(
            TableName=self._table,
            Item={
                "id": {"S": key},
                "expiration": {"N": str(int(now) + 3600)},
                "in_progress_expiration": {"N": str(int(now * 1000) + 60_000)},
                "status": {"S": "INPROGRESS"},
            },
            ConditionExpression="attribute_not_exists(#id) OR #expiry < :now OR "
            "(#status = :inprogress AND attribute_exists(#ipe) AND #ipe < :now_ms)",
            ExpressionAttributeNames={
                "#id": "id",
                "#expiry": "expiration",
                "#ipe": "in_progress_expiration",
                "#status": "status",
            },
            ExpressionAttributeValues={
                ":now": {"N": str(int(now))},
                ":now_ms": {"N": str(int(now * 1000))},
                ":inprogress": {"S": "INPROGRESS"},
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )

    def _complete(self, key: str) -> None:
        self._clients.dynamodb.update_item(
            TableName=self._table,
            Key={"id": {"S": key}},
            UpdateExpression="SET #data = :data, #expiry = :expiry, #status = :status",
            ExpressionAttributeNames={"#data": "data", "#expiry": "expiration", "#status": "status"},
            ExpressionAttributeValues={
                ":data": {"S": json.dumps({"outcome": "created"})},
                ":expiry": {"N": str(int(time.time()) + 3600)},
                ":status": {"S": "COMPLETED"},
            },
        )


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
    app = build_app(settings, build_clients(tuning), tuning)
    handler = make_lambda_handler(lambda: app)
    raw = RawLoop(
        build_clients(tuning),  # the same client settings as the handler's, without its hooks
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
                    wall, cpu = _timed(partial(loop, bodies, idempotency=variant == "raw_all"))
                timings[variant], timings[f"{variant}_cpu"] = wall, cpu
            rounds.append(timings)
        results[phase["name"]] = rounds
    output = {"rounds": results, "handler_failures": failures, "raw_created": raw_created}
    Path(argv[1]).write_text(json.dumps(output), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
