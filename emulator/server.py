"""The Emulator: a loopback HTTP server that answers Cases and Connect requests, with quotas and faults.

Processing order per request: route (else 404), auth (403), latency, script entry or token bucket (429) or
random fault, validation (400), then the commit: client-token check (replay, conflict, or wait for a request
still in flight), the operation itself, and the token's record. A late commit skips the commit, drops the
connection, and runs the commit `late_commit_s` later on a thread of its own.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import random
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from emulator import model
from emulator.case_search import scalar
from emulator.cases import MERGEABLE_ITEM_TYPES, Merge
from emulator.config import EmulatorConfig
from emulator.faults import (
    DROP,
    DROP_AFTER,
    ITEM_FAILURE,
    LATE_COMMIT,
    OK,
    OUTCOMES,
    SLOW,
    SLOW_AFTER,
    TRANSIENT_ITEM_ERRORS,
    check_outcome,
    draw,
)
from emulator.model import ApiError
from emulator.seed import load_seed
from emulator.state import FieldInput, RelatedItem, Store, field_value
from emulator.tokens import TokenKey, TokenRegistry, request_fingerprint
from emulator.transport import Call, Handler, Reply, Server, TokenBucket

_SCOPE = re.compile(r"Credential=[^/,]+/[^/,]+/[^/,]+/([^/,]+)/aws4_request")
# The counters fault_counts() adds to the per-outcome counts of the recorded calls.
EVENTS = (
    "late_commit_landed",  # a late commit created what its request asked for
    "late_commit_replayed",  # a late commit found its client token committed (by a retry): nothing created
    "late_commit_failed",  # a late commit failed when it ran (e.g. a merge conflict)
    "late_commit_abandoned",  # the emulator stopped or was reset before a late commit ran
    "search_lag_miss",  # a lagging search answered otherwise than an up-to-date index would have
    "merge_conflict",  # a write to the secondary of a running merge was refused (409 or CONFLICT)
    "token_replay",  # the same client token and parameters got the original response
    "token_conflict",  # the same client token with other parameters got ConflictException
    "token_wait",  # a request waited for the request holding its client token to commit
    "token_in_flight_conflict",  # ... or got ConflictException at once (token_in_flight="conflict")
    "item_failure",  # an injected per-case failure in BatchCreateRelatedItem's failedItems
)


class _Stale(Exception):
    """The emulator was reset between a late commit's scheduling and its running."""


class Emulator:
    """Cases + Connect on one loopback endpoint. Use as a context manager, or start()/stop()."""

    def __init__(self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or EmulatorConfig()
        self._host, self._port = host, port
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # a token committed or released, a late commit ended
        self._stopping = threading.Event()
        self._wake = threading.Event()  # set to abandon the late commits scheduled so far
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._calls: list[Call] = []
        self._scripts: dict[str, deque[str]] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._rng = random.Random(self.config.seed)
        self._events: Counter[tuple[str, str]] = Counter()
        self._tokens = TokenRegistry()
        self._generation = 0
        self._late_pending = 0
        self._store = self._new_store()
        self._apply_config()

    # --- lifecycle ---
    def start(self) -> Emulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        if self._wake.is_set():
            self._wake = threading.Event()
        self._server = Server((self._host, self._port), Handler)
        self._server.dispatcher = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping on latency, slow responses or in-flight tokens
        self._wake.set()  # late commits not yet run are abandoned
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._server.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else host
        return f"http://{text}:{port}"

    # --- configuration ---
    def configure(self, **changes: Any) -> None:
        """Change EmulatorConfig fields live, e.g. configure(throttling=False, faults={...})."""
        with self._lock:
            self.config = dataclasses.replace(self.config, **changes)
            self._apply_config()
            if {"throttling", "quotas", "quota_scale"} & changes.keys():
                self._buckets.clear()
            if "seed" in changes:
                self._rng = random.Random(self.config.seed)

    def _apply_config(self) -> None:
        config, cases, connect = self.config, self._store.cases, self._store.connect
        cases.max_related_items = config.max_related_items_per_case
        cases.search_lag_s = config.search_lag_s
        cases.search_shows_performed_by = config.search_shows_performed_by
        cases.merge_duration_s = config.merge_duration_s
        connect.require_known_contact = config.require_known_contact
        connect.searchable_attributes = config.searchable_contact_attributes
        connect.max_range_s = config.contact_search_max_range_s
        connect.lookback_s = config.contact_search_lookback_s
        connect.max_results = config.contact_search_max_results
        connect.total_capped = config.contact_search_total_capped
        connect.trailing_empty_page = config.contact_search_trailing_empty_page
        self._tokens.ttl_s = config.client_token_ttl_s

    def script(self, operation: str, outcomes: list[str]) -> None:
        """The next len(outcomes) requests to `operation` get these outcomes: an error code, "ok", "drop",
        "drop_after_commit", "slow", "slow_after_commit", "late_commit", or (BatchCreateRelatedItem)
        "item_failure" / "item_failure:<CODE>" (every case of the request fails with THROTTLED / CODE; one no
        case takes waits for the next request)."""
        if operation not in model.ALL_OPERATIONS:
            raise ValueError(f"unknown operation {operation}")
        for outcome in outcomes:
            check_outcome(outcome)
            if outcome.startswith(ITEM_FAILURE) and operation != "BatchCreateRelatedItem":
                raise ValueError("item_failure applies only to BatchCreateRelatedItem")
        with self._lock:
            self._scripts.setdefault(operation, deque()).extend(outcomes)

    def reset(self) -> None:
        """Forget all state, calls, scripts, buckets, tokens, counters and pending late commits; keep the
        configuration."""
        with self._lock:
            self._generation += 1
            self._wake.set()
            self._wake = threading.Event()
            self._events = Counter()
            self._store = self._new_store()
            self._apply_config()
            self._tokens.clear()
            self._calls.clear()
            self._scripts.clear()
            self._buckets.clear()
            self._rng = random.Random(self.config.seed)
            self._changed.notify_all()

    def _new_store(self) -> Store:
        return Store(self.config.region, self.config.account_id, self._events)

    # --- in-process seeding (no throttling, no faults, not recorded) ---
    def create_domain(self, name: str, domain_id: str | None = None) -> str:
        with self._lock:
            return self._store.cases.add_domain(name, domain_id).domain_id

    def create_case(
        self,
        domain_id: str,
        title: str | None = None,
        fields: Mapping[str, FieldInput] | None = None,
        case_id: str | None = None,
        *,
        reference_id: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Store a case; without `reference_id` it gets a fresh one (unique in the domain, any case)."""
        values = {key: field_value(v) for key, v in (fields or {}).items()}
        if title is not None:
            values["title"] = field_value(title)
        with self._lock:
            case = self._store.cases.add_case(
                domain_id, values, case_id=case_id, tags=dict(tags or {}), reference_id=reference_id
            )
            return case.case_id

    def reference_id(self, domain_id: str, case_id: str) -> str | None:
        """A case's reference id."""
        with self._lock:
            return self._store.cases.case(domain_id, case_id).reference_id

    def case_fields(self, domain_id: str, case_id: str) -> dict[str, Any]:
        """A case's field values as Python values (the reference id and status included)."""
        with self._lock:
            self._store.cases.settle()
            case = self._store.cases.case(domain_id, case_id)
            return {field_id: scalar(value) for field_id, value in case.fields.items()}

    def put_contact(
        self,
        instance_id: str,
        contact_id: str,
        attributes: Mapping[str, str] | None = None,
        initial_contact_id: str | None = None,
        channel: str = "VOICE",
        agent_arn: str | None = None,
        **details: Any,
    ) -> str:
        """Store a contact (and its chain's attributes); returns the contact ARN. `details` are the keyword
        arguments of ConnectState.put_contact: previous_contact_id, related_contact_id, initiation_method,
        initiation_time, disconnect_time, ongoing, connected_to_agent_time, enqueue_time, scheduled_time,
        queue_id, tags. Missing timestamps make a 5-minute contact that ends now."""
        with self._lock:
            contact = self._store.connect.put_contact(
                instance_id, contact_id, attributes, initial_contact_id, channel, agent_arn, **details
            )
            return self._store.connect.contact_arn(contact.instance_id, contact.contact_id)

    def add_instance(
        self, instance_id: str, alias: str | None = None, cases_domain: str | None = None
    ) -> str:
        """Declare a Connect instance (DescribeInstance), optionally associated with a Cases domain (by id or
        name) as a CASES_DOMAIN integration (ListIntegrationAssociations); returns the instance ARN."""
        with self._lock:
            instance = self._store.connect.add_instance(instance_id, alias)
            if cases_domain is not None:
                domain = self._store.cases.find_domain(cases_domain)
                if domain is None:
                    raise ValueError(f"instance {instance_id}: no Cases domain {cases_domain!r}")
                self._store.connect.associate(instance.instance_id, "CASES_DOMAIN", domain.domain_arn)
            return instance.arn

    def add_related_item(
        self,
        domain_id: str,
        case_id: str,
        type: str,
        content: dict[str, Any],
        performed_by: dict[str, Any] | None = None,
    ) -> RelatedItem:
        """Store a related item as if CreateRelatedItem had succeeded long ago (every search sees it)."""
        with self._lock:
            return dataclasses.replace(
                self._store.cases.add_related_item(domain_id, case_id, type, content, performed_by)
            )

    def merge_cases(
        self,
        domain_id: str,
        primary: str,
        secondary: str,
        duration_s: float | None = None,
        related_items: Iterable[str] = tuple(sorted(MERGEABLE_ITEM_TYPES)),
        fields: Iterable[str] = (),
        performed_by: dict[str, Any] | None = None,
    ) -> None:
        """Start a merge as StartMergeCases would (same checks, ApiError when refused). It runs `duration_s`
        (default: merge_duration_s; 0 finishes it now): meanwhile writes to `secondary` get ConflictException;
        then the `related_items` types move to `primary` and `secondary` is closed."""
        with self._lock:
            self._store.cases.start_merge(
                domain_id, primary, secondary, related_items, fields, performed_by, duration_s
            )

    def merges(self, domain_id: str | None = None) -> list[Merge]:
        """Copies of the merges started so far (finished ones have completed=True)."""
        with self._lock:
            self._store.cases.settle()
            return self._store.cases.merges(domain_id)

    def instance_arn(self, instance_id: str) -> str:
        return self._store.connect.instance_arn(instance_id)

    def contact_arn(self, instance_id: str, contact_id: str) -> str:
        return self._store.connect.contact_arn(instance_id, contact_id)

    def load_seed(self, seed: Mapping[str, Any]) -> None:
        """Load domains, cases, related items, merges, instances and contacts (format: emulator/README.md)."""
        load_seed(self, seed)

    def seed_from_file(self, path: str | Path) -> None:
        self.load_seed(json.loads(Path(path).read_text()))

    # --- inspection ---
    def related_items(self, domain_id: str | None = None, case_id: str | None = None) -> list[RelatedItem]:
        """Copies of the stored related items, oldest first (finished merges applied)."""
        with self._lock:
            self._store.cases.settle()
            return self._store.cases.related_items(domain_id, case_id)

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, operation: str) -> list[Call]:
        return [c for c in self.calls if c.operation == operation]

    def fault_counts(self) -> dict[str, dict[str, int]]:
        """Per operation: how many calls ended in each outcome ("ok", an error code, "drop", "late_commit",
        ...) plus how many times each of EVENTS happened."""
        counts: dict[str, Counter[str]] = {}
        with self._lock:
            for call in self._calls:
                label = call.outcome if call.outcome not in ("error", None) else (call.error_code or "error")
                counts.setdefault(call.operation, Counter())[label] += 1
            for (operation, label), n in self._events.items():
                counts.setdefault(operation, Counter())[label] += n
        return {op: dict(sorted(c.items())) for op, c in sorted(counts.items())}

    def late_commits_pending(self) -> int:
        with self._lock:
            return self._late_pending

    def wait_for_late_commits(self, timeout_s: float = 30.0) -> bool:
        """Block until every scheduled late commit has run (or was abandoned); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self._late_pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    # --- request handling (transport.Dispatcher) ---
    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _error(self, call: Call, service: str, code: str, message: str, **extra: Any) -> Reply:
        status = model.error_status(service, code)
        call.status, call.error_code, call.outcome = status, code, "error"
        body = model.error_body(service, code, message, extra)
        headers = {
            "Content-Type": "application/json",
            "x-amzn-ErrorType": code,
            "x-amzn-RequestId": str(uuid.uuid4()),
        }
        return Reply(status=status, body=json.dumps(body).encode(), headers=headers)

    def dispatch(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        now = time.monotonic()
        call = Call("UnknownOperation", None, {}, None, None, "error", dt.datetime.now(dt.UTC), now)
        with self._lock:
            self._calls.append(call)
        lower = {k.lower(): v for k, v in headers.items()}
        scope = _SCOPE.search(lower.get("authorization", ""))
        hint = model.SIGNING_NAMES.get(scope.group(1)) if scope else None
        url = urlsplit(raw_path)
        found = model.match_route(method, url.path, hint)
        if found is None:
            return self._error(
                call, hint or model.CASES, "UnknownOperationException", f"No operation at {method} {url.path}"
            )
        route, labels = found
        service, op = route.service, route.operation.name
        call.operation, call.service = op, service
        if self.config.require_auth and not lower.get("authorization", "").startswith("AWS4-HMAC-SHA256"):
            return self._error(call, service, "AccessDeniedException", "Missing Authentication Token")
        try:
            params = model.bind_input(
                route.operation, labels, parse_qs(url.query, keep_blank_values=True), headers, body
            )
        except model.BindError as e:
            return self._error(call, service, model.validation_code(service, op), str(e))
        call.params = params
        return self._process(call, service, op, route, params)

    def _decide(self, op: str) -> str:
        """The outcome of this request: a script entry, a throttle, a random fault, or "ok"."""
        with self._lock:
            queue = self._scripts.get(op)
            scripted = queue.popleft() if queue else None
            if scripted is not None and scripted != OK:
                return scripted
            quota = self.config.quota_for(op)
            if quota is not None:
                bucket = self._buckets.get(op)
                if bucket is None:
                    bucket = self._buckets[op] = TokenBucket(quota)
                if not bucket.take():
                    return "ThrottlingException"
            faults = self.config.faults.get(op)
            if scripted == OK or faults is None:
                return OK
            return draw(faults, self._rng, self.config.after_commit_share)

    def _process(
        self, call: Call, service: str, op: str, route: model.Route, params: dict[str, Any]
    ) -> Reply:
        self.sleep(self.config.latency_s + self.config.op_latency_s.get(op, 0.0))
        outcome = self._decide(op)
        if outcome in OUTCOMES and self._names_failing_case(op, params):
            outcome = "InternalServerException"
        item_code = None
        if outcome.startswith(ITEM_FAILURE):
            item_code = outcome.partition(":")[2] or TRANSIENT_ITEM_ERRORS[0]
            outcome = OK
        if outcome == "InternalServerException":
            outcome = model.server_error_code(service)
        if outcome not in OUTCOMES:
            if outcome == "ThrottlingException":
                return self._error(call, service, outcome, "Rate exceeded")
            return self._error(call, service, outcome, f"Injected {outcome}")
        slow_s = self.config.slow_response_s
        if outcome in (DROP, SLOW):
            # Fails before reaching the backend: nothing is committed.
            call.outcome = outcome
            return Reply(drop=True, delay_s=slow_s if outcome == SLOW else 0.0)
        errors = model.validate(route.operation.input_shape, params) if route.operation.input_shape else []
        if errors:
            count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected: "
            return self._error(call, service, model.validation_code(service, op), count + "; ".join(errors))
        if outcome == LATE_COMMIT:
            self._schedule_late_commit(op, params)
            call.outcome = outcome
            return Reply(drop=True)
        try:
            result, _ = self._commit(op, params, item_code=item_code)
        except ApiError as e:
            reply = self._error(call, service, e.code, e.message, **e.extra)
        else:
            call.status, call.outcome = 200, "ok"
            body = json.dumps(model.encode_output(route.operation.output_shape, result)).encode()
            reply = Reply(
                status=route.operation.http.get("responseCode", 200),
                body=body,
                headers={"Content-Type": "application/json", "x-amzn-RequestId": str(uuid.uuid4())},
            )
        if outcome == DROP_AFTER:
            call.status, call.outcome = None, outcome
            return Reply(drop=True)
        if outcome == SLOW_AFTER:
            call.outcome = outcome
            reply.delay_s = slow_s
        return reply

    def _names_failing_case(self, op: str, params: Mapping[str, Any]) -> bool:
        failing = self.config.failing_cases
        if not failing:
            return False
        if op == "CreateRelatedItem":
            return params.get("caseId") in failing
        if op == "BatchCreateRelatedItem":
            return any(
                (entry.get("caseIdentifier") or {}).get("caseId") in failing
                for entry in params.get("cases", [])
            )
        return False

    # --- the commit, client tokens, late commits ---
    def _token_key(self, op: str, params: Mapping[str, Any]) -> TokenKey | None:
        token = params.get("clientToken")
        return (op, token) if op in model.TOKEN_OPERATIONS and token else None

    def _commit(
        self,
        op: str,
        params: dict[str, Any],
        *,
        item_code: str | None = None,
        claimed: bool = False,
        generation: int | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Run the operation against the store, honouring client tokens: (result, whether it was the
        original response replayed). `claimed`: a late commit already holds the token. Raises ApiError."""
        key = self._token_key(op, params)
        with self._changed:
            if generation is not None and generation != self._generation:
                raise _Stale
            if key is not None and not claimed:
                replay = self._claim(op, key, params)
                if replay is not None:
                    self._keep_scripted_item_failure(op, item_code)
                    return copy.deepcopy(replay), True
            injected = self._events[(op, ITEM_FAILURE)]
            try:
                result = self._store.handle(op, params, self._item_failures(op, params, item_code))
            except ApiError:
                self._keep_scripted_item_failure(op, item_code)
                if key is not None:
                    self._tokens.release(key)
                    self._changed.notify_all()
                raise
            if self._events[(op, ITEM_FAILURE)] == injected:
                self._keep_scripted_item_failure(op, item_code)
            if key is not None:
                self._tokens.commit(key, result)
                self._changed.notify_all()
            return result, False

    def _claim(self, op: str, key: TokenKey, params: dict[str, Any]) -> dict[str, Any] | None:
        """Take the token for this request (None), or the original response to replay. Holds the lock."""
        waited = False
        fingerprint = request_fingerprint(params)
        while True:
            record = self._tokens.get(key)
            if record is None:
                self._tokens.claim(key, params)
                return None
            if record.fingerprint != fingerprint:
                self._events[(op, "token_conflict")] += 1
                raise ApiError("ConflictException", "The client token was already used with other parameters")
            if record.response is not None:
                self._events[(op, "token_replay")] += 1
                return record.response
            if self.config.token_in_flight == "conflict":  # noqa: S105 - a mode name
                self._events[(op, "token_in_flight_conflict")] += 1
                raise ApiError(
                    "ConflictException", "A request with this client token is still in progress; retry later"
                )
            if not waited:
                self._events[(op, "token_wait")] += 1
                waited = True
            if self._stopping.is_set():
                raise ApiError("InternalServerException", "The service is shutting down")
            self._changed.wait(0.1)

    def _keep_scripted_item_failure(self, op: str, item_code: str | None) -> None:
        """A scripted per-case failure no case took (a client token's replay, unknown or merging cases, a
        refused request) stays first in the script: it fails the next request whose cases can take it, so a
        script means the same whatever order concurrent requests and their retries arrive in. Holds the lock."""
        if item_code is not None:
            self._scripts.setdefault(op, deque()).appendleft(f"{ITEM_FAILURE}:{item_code}")

    def _item_failures(self, op: str, params: dict[str, Any], item_code: str | None) -> dict[int, str] | None:
        if op != "BatchCreateRelatedItem":
            return None
        count = len(params["cases"])
        if item_code is not None:
            return dict.fromkeys(range(count), item_code)
        faults = self.config.faults.get(op)
        if faults is None or faults.item_failure <= 0:
            return None
        return {
            index: self._rng.choice(TRANSIENT_ITEM_ERRORS)
            for index in range(count)
            if self._rng.random() < faults.item_failure
        }

    def _schedule_late_commit(self, op: str, params: dict[str, Any]) -> None:
        key = self._token_key(op, params)
        claimed = False
        with self._lock:
            generation, wake = self._generation, self._wake
            if key is not None and self.config.late_commit_claims_token and self._tokens.get(key) is None:
                self._tokens.claim(key, params)
                claimed = True
            self._late_pending += 1
        threading.Thread(
            target=self._late_commit,
            args=(op, params, generation, wake, key if claimed else None, self.config.late_commit_s),
            name=f"late-commit-{op}",
            daemon=True,
        ).start()

    def _late_commit(
        self,
        op: str,
        params: dict[str, Any],
        generation: int,
        wake: threading.Event,
        claimed: TokenKey | None,
        delay_s: float,
    ) -> None:
        label = "late_commit_abandoned"
        try:
            if not wake.wait(delay_s):
                try:
                    _, replayed = self._commit(op, params, claimed=claimed is not None, generation=generation)
                    label = "late_commit_replayed" if replayed else "late_commit_landed"
                except ApiError:
                    label = "late_commit_failed"
                except _Stale:
                    pass
            elif claimed is not None:
                with self._lock:
                    if generation == self._generation:
                        self._tokens.release(claimed)
        finally:
            with self._changed:
                if generation == self._generation:
                    self._events[(op, label)] += 1
                self._late_pending -= 1
                self._changed.notify_all()
