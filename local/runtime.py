"""Execution environments: where the poller's invocations run.

Lambda keeps one execution environment per concurrent invocation and reuses it: module-level state (clients,
Powertools objects) survives between invocations of the same environment but is never shared between two
environments. `WorkerProcessRuntime` models that with one OS process per environment, which also gives each its
own environment variables and log stream and lets the chaos suite kill an invocation for real.
`InProcessRuntime` calls a Python function directly; it suits stand-in handlers in tests.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from local.context import ContextSpec, LambdaContext

Handler = Callable[[dict[str, Any], LambdaContext], Any]


class InvocationStatus(StrEnum):
    OK = "ok"  # the handler returned
    ERROR = "error"  # the handler raised: Lambda fails the whole batch
    TIMEOUT = "timeout"  # the function timeout passed: the runtime killed it
    KILLED = "killed"  # the chaos hook killed it mid-batch


@dataclass(frozen=True)
class Invocation:
    status: InvocationStatus
    response: Any = None
    error_type: str | None = None
    error_message: str | None = None
    duration_s: float = 0.0


class ExecutionEnvironment(Protocol):
    name: str

    def invoke(
        self, event: dict[str, Any], spec: ContextSpec, *, kill_after_s: float | None = None
    ) -> Invocation:
        """Run one invocation; `kill_after_s` makes it die that many seconds in (chaos)."""
        ...

    def close(self) -> None: ...


class Runtime(Protocol):
    def environment(self, name: str) -> ExecutionEnvironment:
        """A fresh execution environment (one per concurrent invocation slot)."""
        ...


def load_handler(spec: str) -> Handler:
    """Import a Lambda-style handler string, `package.module.function`."""
    module_name, _, attribute = spec.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {spec!r} is not of the form module.function")
    handler: Handler = getattr(importlib.import_module(module_name), attribute)
    return handler


# ---------------------------------------------------------------------------------------------------------------
# In-process


@dataclass
class InProcessRuntime:
    """Every environment calls the handler that `factory(name)` returns, in the calling thread.

    Pass a factory that builds a new handler per environment when the handler keeps per-invocation state.
    The function timeout and kills cannot interrupt a thread: a late or killed invocation runs to its end and
    its response is discarded, as if the environment died just before returning (the worker-process runtime
    kills for real, mid-batch).
    """

    factory: Callable[[str], Handler]

    @classmethod
    def of(cls, handler: Handler) -> InProcessRuntime:
        return cls(factory=lambda _name: handler)

    def environment(self, name: str) -> ExecutionEnvironment:
        return _InProcessEnvironment(name, self.factory(name))


@dataclass
class _InProcessEnvironment:
    name: str
    handler: Handler

    def invoke(
        self, event: dict[str, Any], spec: ContextSpec, *, kill_after_s: float | None = None
    ) -> Invocation:
        started = time.monotonic()
        try:
            response = self.handler(event, spec.start())
        # A handler error is data here: Lambda reports it and fails the batch, the poller must go on.
        except Exception as error:  # noqa: BLE001
            return Invocation(
                InvocationStatus.ERROR,
                error_type=type(error).__name__,
                error_message=str(error),
                duration_s=time.monotonic() - started,
            )
        duration = time.monotonic() - started
        if kill_after_s is not None:
            return Invocation(InvocationStatus.KILLED, duration_s=duration)
        if duration > spec.timeout_s:
            return Invocation(InvocationStatus.TIMEOUT, duration_s=duration)
        return Invocation(InvocationStatus.OK, response=response, duration_s=duration)

    def close(self) -> None:
        return None


# ---------------------------------------------------------------------------------------------------------------
# One process per environment

# Never inherited by an execution environment: they could point a client at a real account.
_SCRUBBED_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


@dataclass
class WorkerProcessRuntime:
    """Each environment is a `python -m local.worker` process that imports `handler` once (its init phase).

    The child's environment is the parent's (minus profile and endpoint variables) with `environ` on top, as
    Lambda sets the function's variables before the init phase; `python_paths` become its PYTHONPATH. Its
    stdout and stderr (Powertools' JSON logs and EMF metrics) go to `log_dir/<environment>-<n>.log`, the
    environment's log stream. Invocations travel over a private pipe pair, not stdout.
    """

    handler: str
    environ: Mapping[str, str]
    log_dir: Path
    python_paths: Sequence[str] = ()
    start_timeout_s: float = 60.0
    environments: list[_WorkerProcessEnvironment] = field(default_factory=list)

    def environment(self, name: str) -> ExecutionEnvironment:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = _WorkerProcessEnvironment(name, self)
        self.environments.append(env)
        return env

    def log_files(self) -> list[Path]:
        return sorted(self.log_dir.glob("*.log"))

    def child_environment(self) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_VARIABLES}
        environment.update(self.environ)
        paths = [*self.python_paths, environment.get("PYTHONPATH", "")]
        environment["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        return environment


class _WorkerProcessEnvironment:
    def __init__(self, name: str, runtime: WorkerProcessRuntime) -> None:
        self.name = name
        self._runtime = runtime
        self._process: subprocess.Popen[bytes] | None = None
        self._send: Connection | None = None
        self._receive: Connection | None = None
        self._generation = 0
        self._lock = threading.Lock()

    def _ensure_started(self) -> tuple[Connection, Connection]:
        if self._send is not None and self._receive is not None and self._alive():
            return self._send, self._receive
        self._stop_process()
        self._generation += 1
        # A restarted environment is a new cold start with a new log stream, as in Lambda.
        log_path = self._runtime.log_dir / f"{self.name}-{self._generation}.log"
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        # The stream may hold case ids and contact ARNs: 0600, and never written through a symbolic link.
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        # A file that was there before (an earlier run's --logs) keeps its mode otherwise.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "ab") as log:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
                [
                    sys.executable,
                    "-m",
                    "local.worker",
                    str(to_child_r),
                    str(from_child_w),
                    self._runtime.handler,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._runtime.child_environment(),
                pass_fds=(to_child_r, from_child_w),
            )
        os.close(to_child_r)
        os.close(from_child_w)
        send, receive = Connection(to_child_w, readable=False), Connection(from_child_r, writable=False)
        self._process, self._send, self._receive = process, send, receive
        if not receive.poll(self._runtime.start_timeout_s):
            self._stop_process()
            raise RuntimeError(f"execution environment {self.name} did not start; see {log_path}")
        try:
            status, detail = receive.recv()
        except EOFError:
            status, detail = "init_error", "the process exited"
        if status != "ready":
            self._stop_process()
            raise RuntimeError(
                f"execution environment {self.name} failed its init phase ({detail}); see {log_path}"
            )
        return send, receive

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def invoke(
        self, event: dict[str, Any], spec: ContextSpec, *, kill_after_s: float | None = None
    ) -> Invocation:
        with self._lock:
            send, receive = self._ensure_started()
            started = time.monotonic()
            send.send(("invoke", event, spec))
            limit = spec.timeout_s if kill_after_s is None else min(kill_after_s, spec.timeout_s)
            if receive.poll(limit):
                try:
                    status, payload = receive.recv()
                except EOFError:
                    self._stop_process()
                    return Invocation(
                        InvocationStatus.ERROR,
                        error_type="Runtime.ExitError",
                        error_message="the execution environment exited during the invocation",
                        duration_s=time.monotonic() - started,
                    )
                duration = time.monotonic() - started
                if status == "ok":
                    return Invocation(InvocationStatus.OK, response=payload, duration_s=duration)
                return Invocation(
                    InvocationStatus.ERROR,
                    error_type=payload["errorType"],
                    error_message=payload["errorMessage"],
                    duration_s=duration,
                )
            # Timed out, or chaos: kill the environment; the next invocation cold-starts a new one.
            self._stop_process()
            killed = kill_after_s is not None and kill_after_s < spec.timeout_s
            return Invocation(
                InvocationStatus.KILLED if killed else InvocationStatus.TIMEOUT,
                error_type=None if killed else "Sandbox.Timedout",
                duration_s=time.monotonic() - started,
            )

    def _stop_process(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(5)
        for connection in (self._send, self._receive):
            if connection is not None:
                connection.close()
        self._process, self._send, self._receive = None, None, None

    def close(self) -> None:
        with self._lock:
            if self._send is not None and self._alive():
                with contextlib.suppress(OSError):
                    self._send.send(("stop", None, None))
                with contextlib.suppress(subprocess.TimeoutExpired):
                    if self._process is not None:
                        self._process.wait(2)
            self._stop_process()
