"""HTTP plumbing of the Emulator: the threaded server, the request handler, what one call recorded, the
reply to send, and the token bucket behind each quota."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import socket
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol

from emulator.config import Quota

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass
class Call:
    """One request received. `status` is None while in flight and for dropped connections."""

    operation: str  # "UnknownOperation" when no route matched
    service: str | None
    params: dict[str, Any]
    status: int | None
    error_code: str | None
    outcome: str  # "ok", "error", or one of drop / drop_after_commit / slow / slow_after_commit / late_commit
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


class Dispatcher(Protocol):
    def dispatch(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Reply: ...

    def sleep(self, seconds: float) -> None: ...


class Server(ThreadingHTTPServer):
    daemon_threads = True
    dispatcher: Dispatcher


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    # Headers and body go out in two writes; with Nagle on, delayed ACKs add ~40 ms to every call.
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # calls are recorded on the Emulator; stderr noise helps nobody

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        dispatcher = self.server.dispatcher
        reply = dispatcher.dispatch(self.command, self.path, dict(self.headers.items()), body)
        if reply.delay_s:
            dispatcher.sleep(reply.delay_s)
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
