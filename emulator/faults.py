"""Injected faults: what can happen to a request, the random rates per operation, and THE parser of the
`--fault OP=KIND:RATE` specs that every CLI in the repo (emulator, local, local.chaos, bench) shares."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, fields

from emulator.model import ALL_OPERATIONS

# Outcomes a request can be given besides an AWS error code, by a script or by a random draw.
OK = "ok"
DROP = "drop"  # the connection closes before the backend sees the request: nothing is committed
DROP_AFTER = "drop_after_commit"  # committed, then the connection closes: a lost response
SLOW = "slow"  # held slow_response_s, then closed: nothing is committed
SLOW_AFTER = "slow_after_commit"  # committed; the answer is held slow_response_s
LATE_COMMIT = "late_commit"  # the connection closes now and the request commits late_commit_s later
ITEM_FAILURE = "item_failure"  # BatchCreateRelatedItem: every case of the request lands in failedItems
OUTCOMES = frozenset({OK, DROP, DROP_AFTER, SLOW, SLOW_AFTER, LATE_COMMIT, ITEM_FAILURE})

# The per-case error codes BatchCreateRelatedItem documents as transient (the caller may retry those cases).
TRANSIENT_ITEM_ERRORS = ("THROTTLED", "INTERNAL_ERROR")
ITEM_ERRORS = (
    "CASE_NOT_FOUND",
    "VALIDATION_ERROR",
    "CONFLICT",
    "THROTTLED",
    "ACCESS_DENIED",
    "SERVICE_QUOTA_EXCEEDED",
    "DOMAIN_NOT_FOUND",
    "INTERNAL_ERROR",
)
ITEM_FAILURE_OPERATIONS = frozenset({"BatchCreateRelatedItem"})


@dataclass(frozen=True)
class Faults:
    """Probabilities (0..1) of injected failures for one operation, drawn per request.

    `late_commit`: the response is lost (connection closed) and the request commits `late_commit_s` later.
    `item_failure` (BatchCreateRelatedItem only): each case fails, independently, with THROTTLED or
    INTERNAL_ERROR in `failedItems` while the others succeed.
    """

    server_error: float = 0.0
    drop_connection: float = 0.0
    slow_response: float = 0.0
    late_commit: float = 0.0
    item_failure: float = 0.0


FAULT_KINDS: tuple[str, ...] = tuple(f.name for f in fields(Faults))
# Short names the first CLI accepted; kept so old command lines still work.
KIND_ALIASES = {"5xx": "server_error", "drop": "drop_connection", "slow": "slow_response"}


def parse_fault_spec(spec: str) -> tuple[str, str, float]:
    """`OP=KIND:RATE` -> (operation, kind, rate), e.g. `CreateRelatedItem=late_commit:0.05`.

    OP must be an operation the emulator serves, KIND one of FAULT_KINDS (or an alias in KIND_ALIASES),
    RATE a number in 0..1. Raises ValueError with a one-line message naming what is allowed.
    """
    operation, has_op, rest = spec.partition("=")
    kind, has_kind, rate_text = rest.partition(":")
    if not (has_op and has_kind and operation and kind):
        raise ValueError(f"fault {spec!r}: expected OP=KIND:RATE, e.g. CreateRelatedItem=server_error:0.1")
    if operation not in ALL_OPERATIONS:
        raise ValueError(
            f"fault {spec!r}: unknown operation {operation!r}; one of {', '.join(sorted(ALL_OPERATIONS))}"
        )
    canonical = KIND_ALIASES.get(kind, kind)
    if canonical not in FAULT_KINDS:
        raise ValueError(f"fault {spec!r}: unknown kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
    if canonical == ITEM_FAILURE and operation not in ITEM_FAILURE_OPERATIONS:
        raise ValueError(
            f"fault {spec!r}: item_failure applies only to {', '.join(sorted(ITEM_FAILURE_OPERATIONS))}"
        )
    try:
        rate = float(rate_text)
    except ValueError:
        raise ValueError(f"fault {spec!r}: RATE must be a number between 0 and 1") from None
    if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
        raise ValueError(f"fault {spec!r}: RATE must be a number between 0 and 1")
    return operation, canonical, rate


def faults_from_specs(specs: Iterable[str]) -> dict[str, Faults]:
    """Several `OP=KIND:RATE` specs as EmulatorConfig.faults; one operation may get several kinds."""
    rates: dict[str, dict[str, float]] = {}
    for spec in specs:
        operation, kind, rate = parse_fault_spec(spec)
        rates.setdefault(operation, {})[kind] = rate
    return {operation: Faults(**kinds) for operation, kinds in rates.items()}


def check_outcome(outcome: str) -> None:
    """Raise ValueError unless `outcome` is something a script may name: a kind, an AWS error code
    (`...Exception`), or `item_failure:<CODE>` with a documented per-case code."""
    kind, _, code = outcome.partition(":")
    if kind == ITEM_FAILURE and code:
        if code not in ITEM_ERRORS:
            raise ValueError(f"unknown per-case error code {code!r}; one of {', '.join(ITEM_ERRORS)}")
        return
    if outcome in OUTCOMES or outcome.endswith("Exception"):
        return
    raise ValueError(
        f"unknown outcome {outcome!r}; one of {', '.join(sorted(OUTCOMES))}, an error code such as "
        "ThrottlingException, or item_failure:<CODE>"
    )


def draw(faults: Faults, rng: random.Random, after_commit_share: float) -> str:
    """A random outcome for one request: OK, an injected error code, or one of the kinds above."""
    draw = rng.random()
    after = rng.random() < after_commit_share
    edge = faults.server_error
    if draw < edge:
        return "InternalServerException"
    edge += faults.drop_connection
    if draw < edge:
        return DROP_AFTER if after else DROP
    edge += faults.slow_response
    if draw < edge:
        return SLOW_AFTER if after else SLOW
    edge += faults.late_commit
    if draw < edge:
        return LATE_COMMIT
    return OK
