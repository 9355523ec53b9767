"""`python -m emulator --port 4599 --seed emulator/seed.example.json`: run the emulator until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from emulator.config import EmulatorConfig, Faults, Quota
from emulator.model import ALL_OPERATIONS
from emulator.server import Emulator

_FAULT_KINDS = {
    "server_error": "server_error",
    "5xx": "server_error",
    "drop": "drop_connection",
    "drop_connection": "drop_connection",
    "slow": "slow_response",
    "slow_response": "slow_response",
}


def _operation(name: str) -> str:
    if name not in ALL_OPERATIONS:
        raise argparse.ArgumentTypeError(
            f"unknown operation {name}; one of {', '.join(sorted(ALL_OPERATIONS))}"
        )
    return name


def _quota(text: str) -> tuple[str, Quota | None]:
    """OP=RATE:BURST, or OP=off."""
    op, _, spec = text.partition("=")
    if spec == "off":
        return _operation(op), None
    rate, _, burst = spec.partition(":")
    try:
        return _operation(op), Quota(rate=float(rate), burst=int(burst))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected OP=RATE:BURST, got {text}") from e


def _fault(text: str) -> tuple[str, str, float]:
    """OP=KIND:RATE with KIND server_error|drop|slow."""
    op, _, spec = text.partition("=")
    kind, _, rate = spec.partition(":")
    if kind not in _FAULT_KINDS:
        raise argparse.ArgumentTypeError(f"fault kind must be one of {', '.join(_FAULT_KINDS)}, got {kind}")
    try:
        return _operation(op), _FAULT_KINDS[kind], float(rate)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected OP=KIND:RATE, got {text}") from e


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", metavar="FILE", help="JSON seed file (see emulator/README.md)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--account-id", default="123456789012")
    parser.add_argument("--no-throttling", action="store_true")
    parser.add_argument("--quota", type=_quota, action="append", default=[], metavar="OP=RATE:BURST")
    parser.add_argument("--quota-scale", type=float, default=1.0, help="multiply every rate")
    parser.add_argument("--latency", type=float, default=0.0, metavar="S", help="added to every request")
    parser.add_argument("--fault", type=_fault, action="append", default=[], metavar="OP=KIND:RATE")
    parser.add_argument("--slow-seconds", type=float, default=10.0, help="how long a slow response takes")
    parser.add_argument("--after-commit-share", type=float, default=0.5)
    parser.add_argument("--rng-seed", type=int, default=None)
    parser.add_argument("--no-auth", action="store_true", help="accept unsigned requests")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> EmulatorConfig:
    faults: dict[str, dict[str, float]] = {}
    for op, kind, rate in args.fault:
        faults.setdefault(op, {})[kind] = rate
    return EmulatorConfig(
        region=args.region,
        account_id=args.account_id,
        throttling=not args.no_throttling,
        quotas=dict(args.quota),
        quota_scale=args.quota_scale,
        latency_s=args.latency,
        faults={op: Faults(**rates) for op, rates in faults.items()},
        slow_response_s=args.slow_seconds,
        after_commit_share=args.after_commit_share,
        seed=args.rng_seed,
        require_auth=not args.no_auth,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    emulator = Emulator(config_from(args), host=args.host, port=args.port)
    if args.seed:
        emulator.seed_from_file(args.seed)
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with emulator:
        url = emulator.endpoint_url
        sys.stdout.write(
            f"case-linker emulator (Connect Cases + Connect) listening on {url}\n"
            f"export AWS_ENDPOINT_URL_CONNECTCASES={url}\n"
            f"export AWS_ENDPOINT_URL_CONNECT={url}\n"
        )
        sys.stdout.flush()
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
