"""What every command shares: the run's state (clients, queues, output), error handling and confirmation."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from botocore.exceptions import BotoCoreError, ClientError

from ops.aws import Clients
from ops.errors import ExitCode, OpsError, endpoint_hint, translate_botocore_error, translate_client_error
from ops.output import Output
from ops.queues import Dlq, Queues, resolve_queues
from ops.sqs import QueueDepth


@dataclass
class Overrides:
    """What tests inject through `CliRunner.invoke(app, ..., obj=Overrides(...))`; empty in real use."""

    clients: dict[str, Any] = field(default_factory=dict)
    interactive: bool | None = None
    poll_seconds: float = 2.0
    wait_seconds: int = 1
    hold_seconds: int | None = None


@dataclass
class State:
    """One run: the AWS clients, where the queues are, how to print. Built by the root callback."""

    clients: Clients
    output: Output
    overrides: Overrides
    stack_name: str
    queue_url: str | None
    processing_dlq_url: str | None
    rule_target_dlq_url: str | None
    _queues: Queues | None = None

    def queues(self) -> Queues:
        if self._queues is None:
            self._queues = resolve_queues(
                cloudformation=self.clients.cloudformation,
                stack_name=self.stack_name,
                queue_url=self.queue_url,
                processing_dlq_url=self.processing_dlq_url,
                rule_target_dlq_url=self.rule_target_dlq_url,
            )
        return self._queues

    def known_dlqs(self, which: Dlq | None) -> list[tuple[Dlq, str]]:
        """The DLQ asked for, or (None) every DLQ whose URL is known."""
        queues = self.queues()
        if which is not None:
            return [(which, queues.require_dlq(which))]
        known = [(dlq, url) for dlq in Dlq if (url := queues.dlq(dlq)) is not None]
        if not known:
            raise OpsError("no DLQ known: pass --dlq-url and/or --rule-target-dlq-url", ExitCode.USAGE)
        return known

    def interactive(self) -> bool:
        if self.overrides.interactive is not None:
            return self.overrides.interactive
        return sys.stdin.isatty()

    def confirm(self, yes: bool, *, action: str, queue: QueueDepth, count: str, detail: str = "") -> None:
        """Ask before changing anything, naming the queue, its account and Region, and how many messages."""
        if yes:
            return
        if not self.interactive():
            raise OpsError(
                "stdin is not a terminal, so I cannot ask for confirmation", ExitCode.USAGE, hint="pass --yes"
            )
        question = f"{action} {count} on queue {queue.where()}{detail}?"
        if not ask(question):
            self.output.note("nothing changed")
            raise typer.Exit(ExitCode.INTERRUPTED)


def ask(question: str) -> bool:
    """`question [y/N]:` on stderr, the answer from stdin; EOF (stdin closed) aborts.

    Not typer.confirm: click writes the prompt's last space to stdout (through `input`), which would put a stray
    character in front of a `--output json` result.
    """
    while True:
        typer.echo(f"{question} [y/N]: ", nl=False, err=True)
        line = sys.stdin.readline()
        if not line:
            typer.echo("", err=True)
            raise typer.Abort()
        answer = line.strip().lower()
        if answer in ("y", "yes"):
            return True
        if answer in ("", "n", "no"):
            return False
        typer.echo("error: answer y or n", err=True)


def state(ctx: typer.Context) -> State:
    """The run's State, from any command's context."""
    found = ctx.find_root().obj
    if not isinstance(found, State):
        raise RuntimeError("the root callback did not run")
    return found


P = ParamSpec("P")
R = TypeVar("R")


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn our errors, AWS errors and Ctrl-C into one line on stderr and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        context = kwargs.get("ctx")
        try:
            return command(*args, **kwargs)
        except OpsError as e:
            fail(_located(e, context))
        except ClientError as e:
            fail(translate_client_error(e, f"AWS {e.operation_name}"))
        except BotoCoreError as e:
            fail(_located(translate_botocore_error(e, "AWS call"), context))
        except KeyboardInterrupt:
            typer.echo("interrupted: messages this run held are released or reappear on their own.", err=True)
            raise typer.Exit(ExitCode.INTERRUPTED) from None

    return wrapper


def _located(error: OpsError, context: Any) -> OpsError:
    """An endpoint nothing answered at, named in the hint as the user gave it (`--endpoint-url`, a variable)."""
    # The command's ctx: click's Context (typer.Context is a subclass it does not always build).
    run = context.find_root().obj if hasattr(context, "find_root") else None
    if error.endpoint_url is None or not isinstance(run, State):
        return error
    error.hint = endpoint_hint(run.clients.endpoint_source(error.endpoint_url))
    return error


def fail(error: OpsError) -> NoReturn:
    """`error: <message>; <hint>` on one line of stderr, and the error's exit code."""
    line = error.message if not error.hint else f"{error.message}; {error.hint}"
    typer.echo(f"error: {' '.join(line.split())}", err=True)
    raise typer.Exit(error.exit_code)
