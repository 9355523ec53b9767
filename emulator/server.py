"""The Emulator: a loopback HTTP server that answers Cases and Connect requests, with quotas and faults."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import random
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from emulator import model
from emulator.config import EmulatorConfig, Quota
from emulator.state import FieldInput, RelatedItem, Store, field_value

# Outcomes a script may name besides an error code.
OK, DROP, DROP_AFTER, SLOW, SLOW_AFTER = "ok", "drop", "drop_after_commit", "slow", "slow_after_commit"
_KINDS = {OK, DROP, DROP_AFTER, SLOW, SLOW_AFTER}
_SCOPE = re.compile(r"Credential=[^/,]+/[^/,]+/[^/,]+/([^/,]+)/aws4_request")


@dataclass
class Call:
    """One request received. `status` is None while in flight and for dropped connections."""

    operation: str  # "UnknownOperation" when no route matched
    service: str | None
    params: dict[str, Any]
    status: int | None
    error_code: str | None
    outcome: str  # "ok", "error", or one of drop / drop_after_commit / slow / slow_after_commit
    at: dt.datetime  # wall clock, UTC
    monotonic: float


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay_s: float = 0.0  # sleep before answering (slow responses)
    drop: bool = False  # close the connection instead of answering


class TokenBucket:
    def __init__(self, quota: Quota) -> None:
        self.rate = quota.rate
        self.capacity = float(quota.burst)
        self.tokens = self.capacity
        self.last = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: Emulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    # Headers and body go out in two writes; with Nagle on, delayed ACKs add ~40 ms to every call.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # calls are recorded on the Emulator; stderr noise helps nobody

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        emulator = self.server.emulator
        reply = emulator._dispatch(self.command, self.path, dict(self.headers.items()), body)
        if reply.delay_s:
            emulator._sleep(reply.delay_s)
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):  # the client may already have gone
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True  # a client that timed out closed its end

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


class Emulator:
    """Cases + Connect on one loopback endpoint. Use as a context manager, or start()/stop()."""

    def __init__(self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or EmulatorConfig()
        self._host, self._port = host, port
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._calls: list[Call] = []
        self._scripts: dict[str, deque[str]] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._rng = random.Random(self.config.seed)
        self._store = self._new_store()

    # --- lifecycle ---
    def start(self) -> Emulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self._host, self._port), _Handler)
        self._server.emulator = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping on latency or slow responses
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
            self._store.max_related_items = self.config.max_related_items_per_case
            self._store.require_known_contact = self.config.require_known_contact
            if {"throttling", "quotas", "quota_scale"} & changes.keys():
                self._buckets.clear()
            if "seed" in changes:
                self._rng = random.Random(self.config.seed)

    def script(self, operation: str, outcomes: list[str]) -> None:
        """The next len(outcomes) requests to `operation` get these outcomes (error code, "drop", "ok", ...)."""
        if operation not in model.ALL_OPERATIONS:
            raise ValueError(f"unknown operation {operation}")
        with self._lock:
            self._scripts.setdefault(operation, deque()).extend(outcomes)

    def reset(self) -> None:
        """Forget all state, calls, scripts and buckets; keep the configuration."""
        with self._lock:
            self._store = self._new_store()
            self._calls.clear()
            self._scripts.clear()
            self._buckets.clear()
            self._rng = random.Random(self.config.seed)

    def _new_store(self) -> Store:
        store = Store(self.config.region, self.config.account_id)
        store.max_related_items = self.config.max_related_items_per_case
        store.require_known_contact = self.config.require_known_contact
        return store

    # --- in-process seeding (no throttling, no faults, not recorded) ---
    def create_domain(self, name: str, domain_id: str | None = None) -> str:
        with self._lock:
            return self._store.add_domain(name, domain_id).domain_id

    def create_case(
        self,
        domain_id: str,
        title: str | None = None,
        fields: Mapping[str, FieldInput] | None = None,
        case_id: str | None = None,
    ) -> str:
        values = {key: field_value(v) for key, v in (fields or {}).items()}
        if title is not None:
            values["title"] = field_value(title)
        with self._lock:
            return self._store.add_case(domain_id, values, case_id=case_id).case_id

    def put_contact(
        self,
        instance_id: str,
        contact_id: str,
        attributes: Mapping[str, str] | None = None,
        initial_contact_id: str | None = None,
        channel: str = "VOICE",
        agent_arn: str | None = None,
    ) -> str:
        """Store a contact (and its chain's attributes); returns the contact ARN."""
        with self._lock:
            contact = self._store.put_contact(
                instance_id, contact_id, dict(attributes or {}), initial_contact_id, channel, agent_arn
            )
            return self._store.contact_arn(contact.instance_id, contact.contact_id)

    def add_related_item(
        self,
        domain_id: str,
        case_id: str,
        type: str,
        content: dict[str, Any],
        performed_by: dict[str, Any] | None = None,
    ) -> RelatedItem:
        """Store a related item as if CreateRelatedItem had succeeded, e.g. a contact linked earlier."""
        with self._lock:
            return dataclasses.replace(
                self._store.add_related_item(domain_id, case_id, type, content, performed_by)
            )

    def instance_arn(self, instance_id: str) -> str:
        return self._store.instance_arn(instance_id)

    def contact_arn(self, instance_id: str, contact_id: str) -> str:
        return self._store.contact_arn(instance_id, contact_id)

    def load_seed(self, seed: Mapping[str, Any]) -> None:
        """Load domains, cases, related items and contacts; the format is in emulator/README.md."""
        for domain in seed.get("domains", []):
            domain_id = self.create_domain(domain.get("name", "seeded"), domain.get("id"))
            for case in domain.get("cases", []):
                case_id = self.create_case(domain_id, case.get("title"), case.get("fields"), case.get("id"))
                for item in case.get("relatedItems", []):
                    self.add_related_item(
                        domain_id, case_id, item["type"], item["content"], item.get("performedBy")
                    )
        for contact in seed.get("contacts", []):
            self.put_contact(
                contact["instanceId"],
                contact["contactId"],
                contact.get("attributes"),
                contact.get("initialContactId"),
                contact.get("channel", "VOICE"),
                contact.get("agentArn"),
            )

    def seed_from_file(self, path: str | Path) -> None:
        self.load_seed(json.loads(Path(path).read_text()))

    # --- inspection ---
    def related_items(self, domain_id: str | None = None, case_id: str | None = None) -> list[RelatedItem]:
        """Copies of the stored related items, oldest first."""
        with self._lock:
            return self._store.related_items(domain_id, case_id)

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, operation: str) -> list[Call]:
        return [c for c in self.calls if c.operation == operation]

    # --- request handling ---
    def _sleep(self, seconds: float) -> None:
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

    def _dispatch(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
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
            if scripted == OK:
                return OK
            faults = self.config.faults.get(op)
            if faults is None:
                return OK
            draw = self._rng.random()
            after = self._rng.random() < self.config.after_commit_share
            if draw < faults.server_error:
                return "InternalServerException"
            if draw < faults.server_error + faults.drop_connection:
                return DROP_AFTER if after else DROP
            if draw < faults.server_error + faults.drop_connection + faults.slow_response:
                return SLOW_AFTER if after else SLOW
            return OK

    def _process(
        self, call: Call, service: str, op: str, route: model.Route, params: dict[str, Any]
    ) -> Reply:
        self._sleep(self.config.latency_s + self.config.op_latency_s.get(op, 0.0))
        outcome = self._decide(op)
        if outcome == "InternalServerException":
            outcome = model.server_error_code(service)
        if outcome not in _KINDS:
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
        try:
            with self._lock:
                result = self._store.handler(op)(params)
        except model.ApiError as e:
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
