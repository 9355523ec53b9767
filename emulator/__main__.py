"""`python -m emulator --port 4599 --seed emulator/seed.example.json`: serve Connect Cases and Connect on
loopback until interrupted (Ctrl-C or SIGTERM)."""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from emulator.config import EmulatorConfig, Quota, TokenInFlight
from emulator.faults import FAULT_KINDS, faults_from_specs
from emulator.model import ALL_OPERATIONS
from emulator.seed import SEED_ERRORS, seed_problem
from emulator.server import Emulator

USAGE_ERROR = 2
app = typer.Typer(add_completion=False, help=__doc__, pretty_exceptions_enable=False)


@dataclass(frozen=True)
class Settings:
    """What the command line asked for, checked; `serve` runs it."""

    config: EmulatorConfig
    host: str
    port: int
    seed: Path | None
    verbose: bool
    quiet: bool


def parse_quota(spec: str) -> tuple[str, Quota | None]:
    """`OP=RATE:BURST`, or `OP=off` to leave an operation unthrottled. Raises ValueError."""
    operation, _, rest = spec.partition("=")
    if operation not in ALL_OPERATIONS:
        raise ValueError(
            f"quota {spec!r}: unknown operation {operation!r}; one of {', '.join(sorted(ALL_OPERATIONS))}"
        )
    if rest == "off":
        return operation, None
    rate, _, burst = rest.partition(":")
    try:
        quota = Quota(rate=float(rate), burst=int(burst))
    except ValueError:
        raise ValueError(
            f"quota {spec!r}: expected OP=RATE:BURST (e.g. CreateRelatedItem=2:10) or OP=off"
        ) from None
    if not (quota.rate > 0 and quota.burst >= 1):
        raise ValueError(f"quota {spec!r}: RATE must be > 0 and BURST >= 1")
    return operation, quota


@app.command()
def command(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free one).")] = 0,
    seed: Annotated[
        Path | None, typer.Option(metavar="FILE", help="JSON seed file (format in emulator/README.md).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    region: Annotated[str, typer.Option(help="Region in the ARNs it makes.")] = "us-east-1",
    account_id: Annotated[str, typer.Option(help="Account in the ARNs it makes.")] = "123456789012",
    no_throttling: Annotated[bool, typer.Option("--no-throttling", help="Enforce no quota.")] = False,
    quota: Annotated[
        list[str] | None,
        typer.Option(metavar="OP=RATE:BURST", help="Override one operation's quota (repeatable); OP=off."),
    ] = None,
    quota_scale: Annotated[float, typer.Option(help="Multiply every rate (not the bursts).")] = 1.0,
    latency: Annotated[float, typer.Option(metavar="S", help="Seconds added to every request.")] = 0.0,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            metavar="OP=KIND:RATE", help=f"Inject a fault (repeatable); KIND one of {', '.join(FAULT_KINDS)}."
        ),
    ] = None,
    slow_seconds: Annotated[float, typer.Option(help="How long a slow response takes.")] = 10.0,
    after_commit_share: Annotated[
        float, typer.Option(help="Share of drops and slow responses that happen after the commit.")
    ] = 0.5,
    late_commit_seconds: Annotated[
        float, typer.Option(help="How long after its lost response a late commit lands.")
    ] = 3.0,
    late_commit_claims_token: Annotated[
        bool,
        typer.Option(help="A late commit holds its client token while pending (retries wait for it)."),
    ] = True,
    token_in_flight: Annotated[
        TokenInFlight, typer.Option(help="What a retry gets while its client token's request is in flight.")
    ] = TokenInFlight.WAIT,
    token_ttl: Annotated[
        float | None, typer.Option(metavar="S", help="Forget client tokens after S seconds (default: never).")
    ] = None,
    search_lag: Annotated[
        float, typer.Option(metavar="S", help="Searches and ListCasesForContact see writes S seconds late.")
    ] = 0.0,
    merge_duration: Annotated[float, typer.Option(metavar="S", help="How long a case merge runs.")] = 2.0,
    searchable_attribute: Annotated[
        list[str] | None,
        typer.Option(metavar="KEY", help="Contact attribute key SearchContacts may search (repeatable)."),
    ] = None,
    rng_seed: Annotated[int | None, typer.Option(help="Seed of the fault RNG (reproducible runs).")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Accept unsigned requests.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print every call on stderr.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the endpoint URL.")] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="Accepted for symmetry; output is plain.")
    ] = False,
) -> None:
    """Serve Connect Cases and Connect on loopback until interrupted."""
    durations = {
        "--latency": latency,
        "--slow-seconds": slow_seconds,
        "--late-commit-seconds": late_commit_seconds,
        "--search-lag": search_lag,
        "--merge-duration": merge_duration,
        "--token-ttl": 0.0 if token_ttl is None else token_ttl,
    }
    for flag, value in durations.items():
        if not (math.isfinite(value) and value >= 0):
            raise typer.BadParameter("must be a number of seconds >= 0", param_hint=flag)
    if not 0 <= after_commit_share <= 1:
        raise typer.BadParameter("must be between 0 and 1", param_hint="--after-commit-share")
    if not (math.isfinite(quota_scale) and quota_scale > 0):
        raise typer.BadParameter("must be > 0", param_hint="--quota-scale")
    if not 0 <= port <= 65535:
        raise typer.BadParameter("must be between 0 and 65535", param_hint="--port")
    try:
        quotas = dict(parse_quota(spec) for spec in quota or [])
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--quota") from None
    try:
        faults = faults_from_specs(fault or [])
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--fault") from None
    config = EmulatorConfig(
        region=region,
        account_id=account_id,
        throttling=not no_throttling,
        quotas=quotas,
        quota_scale=quota_scale,
        latency_s=latency,
        faults=faults,
        slow_response_s=slow_seconds,
        after_commit_share=after_commit_share,
        seed=rng_seed,
        require_auth=not no_auth,
        late_commit_s=late_commit_seconds,
        late_commit_claims_token=late_commit_claims_token,
        token_in_flight=token_in_flight.value,
        client_token_ttl_s=token_ttl,
        search_lag_s=search_lag,
        merge_duration_s=merge_duration,
        searchable_contact_attributes=tuple(searchable_attribute or ()),
    )
    run: Callable[[Settings], int] = ctx.obj or serve
    code = run(Settings(config, host, port, seed, verbose, quiet))
    if code:
        raise typer.Exit(code)


def serve(settings: Settings) -> int:
    """Load the seed, then serve until SIGINT or SIGTERM."""
    emulator = Emulator(settings.config, host=settings.host, port=settings.port)
    if settings.seed is not None:
        try:
            emulator.seed_from_file(settings.seed)
        except OSError as e:
            raise typer.BadParameter(
                f"{settings.seed}: {type(e).__name__}: {e}", param_hint="--seed"
            ) from None
        except SEED_ERRORS as e:
            raise typer.BadParameter(f"{settings.seed}: {seed_problem(e)}", param_hint="--seed") from None
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with emulator:
        url = emulator.endpoint_url
        if settings.quiet:
            sys.stdout.write(f"{url}\n")
        else:
            sys.stdout.write(
                f"case-linker emulator (Connect Cases + Connect) listening on {url}\n"
                f"export AWS_ENDPOINT_URL_CONNECTCASES={url}\n"
                f"export AWS_ENDPOINT_URL_CONNECT={url}\n"
            )
        sys.stdout.flush()
        printed = 0
        while not done.wait(0.25):
            if settings.verbose:
                printed = _print_calls(emulator, printed)
        if settings.verbose:
            _print_calls(emulator, printed)
            sys.stderr.write(json.dumps(emulator.fault_counts(), sort_keys=True) + "\n")
    return 0


def _print_calls(emulator: Emulator, printed: int) -> int:
    """One line per finished call: operation, status and outcome (never parameters: they hold customer data)."""
    calls = emulator.calls
    for call in calls[printed:]:
        if call.status is None and call.outcome == "error":
            break  # still in flight; print it next time, in order
        label = call.error_code or call.outcome
        sys.stderr.write(f"{call.at:%H:%M:%S.%f} {call.operation} {call.status or '-'} {label}\n")
        printed += 1
    sys.stderr.flush()
    return printed


def main(argv: Sequence[str] | None = None, run: Callable[[Settings], int] | None = None) -> int:
    """Parse `argv` and run (by default: serve). User mistakes print `error: ...` and return 2."""
    try:
        result = app(
            args=list(sys.argv[1:] if argv is None else argv),
            obj=run,
            standalone_mode=False,
            prog_name="python -m emulator",
        )
    except typer.TyperException as e:  # usage errors: unknown option, bad value, our own checks
        sys.stderr.write(f"error: {e.format_message()}\n")
        return USAGE_ERROR
    except typer.Exit as e:
        return int(e.exit_code)
    except typer.Abort:
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
