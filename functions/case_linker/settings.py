"""The one place the function reads its environment. Everything else receives a `Settings`."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from case_linker.models import CUSTOM_ENTITY_PATTERN

# The variables this module reads; infra's drift test compares them with what the stack sets.
ENVIRONMENT_VARIABLES: tuple[str, ...] = (
    "CASES_DOMAIN_ID",
    "CASE_ID_ATTRIBUTE",
    "CONTACT_EVENT_TYPES",
    "DEAD_LETTER_QUEUE_URL",
    "IDEMPOTENCY_TABLE_NAME",
    "PERFORMED_BY",
    "CASES_MAX_RPS",
    "CASES_MAX_BURST",
    "CONNECT_INSTANCE_ARN",
    "MAIN_QUEUE_URL",
    "MAX_RECEIVE_COUNT",
    "CASES_QUOTA_RPS",
    "CASES_QUOTA_BURST",
    "CASES_BUDGET",
)
# The reconciliation sweeper's variables (issue 12), read by SweeperSettings; infra's drift test compares them
# with what the stack sets on the sweeper function.
SWEEPER_ENVIRONMENT_VARIABLES: tuple[str, ...] = (
    "CONNECT_INSTANCE_ARN",
    "MAIN_QUEUE_URL",
    "IDEMPOTENCY_TABLE_NAME",
    "CASES_DOMAIN_ID",
    "CASE_ID_ATTRIBUTE",
    "SWEEP_WINDOW_MINUTES",
    "SWEEP_LAG_MINUTES",
    "CONNECT_SEARCH_RPS",
    "FOLLOW_CONTACT_CHAIN",
    "CASES_QUOTA_RPS",
    "CASES_QUOTA_BURST",
    "CASES_BUDGET",
)

DEFAULT_CASE_ID_ATTRIBUTE = "caseId"
DEFAULT_CONTACT_EVENT_TYPES = "COMPLETED"
DEFAULT_PERFORMED_BY = "case-linker"
DEFAULT_CASES_MAX_RPS = 2.0
DEFAULT_CASES_QUOTA_BURST = 10.0  # the account burst per Cases API by default
DEFAULT_SWEEP_WINDOW_MINUTES = 60
DEFAULT_SWEEP_LAG_MINUTES = 15
# SearchContacts' default quota by public figures (0.5 requests/s, burst 1); AWS may raise it per account.
DEFAULT_CONNECT_SEARCH_RPS = 0.5
# One day at most: a window is searched again by every run, and SearchContacts takes up to 8 weeks a search.
MAX_SWEEP_MINUTES = 24 * 60
# PERFORMED_BY=agent records the contact's agent (performedBy.userArn) instead of a custom entity.
PERFORMED_BY_AGENT = "agent"

# The same checks as the stack's (infra/config.py) for casesDomainId, caseIdAttribute and contactEventTypes.
_EVENT_TYPE = re.compile(r"[A-Z][A-Z_]{0,63}")
_DOMAIN_ID = re.compile(r"[A-Za-z0-9._:-]{1,500}")
_ATTRIBUTE = re.compile(r"[A-Za-z0-9_.\-:@/ ]{1,127}")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.\-]{3,255}")
_INSTANCE_ARN = re.compile(r"arn:aws[a-z-]*:connect:[a-z0-9-]+:\d{12}:instance/[A-Za-z0-9-]{1,100}")
_CUSTOM_ENTITY = re.compile(CUSTOM_ENTITY_PATTERN)
# ASCII digits only: str.isdigit also accepts "²", which int() refuses.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


class SettingsError(ValueError):
    """A required setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Validated function configuration."""

    cases_domain_id: str
    dead_letter_queue_url: str
    idempotency_table_name: str
    case_id_attribute: str = DEFAULT_CASE_ID_ATTRIBUTE
    contact_event_types: frozenset[str] = frozenset({DEFAULT_CONTACT_EVENT_TYPES})
    # The customEntity recorded as creator (also the fallback when performed_by_agent has no agent).
    performed_by_entity: str = DEFAULT_PERFORMED_BY
    performed_by_agent: bool = False
    cases_max_rps: float = DEFAULT_CASES_MAX_RPS
    # Calls this environment may send at once after an idle spell: its share of the account's burst, which
    # may be a fraction of one call. None: one second's worth of cases_max_rps (at least 1).
    cases_max_burst: float | None = None
    # The Connect instance whose contacts this deployment may read and link; None accepts any instance.
    connect_instance_arn: str | None = None
    # The queue the function consumes: lets it delay a record's redelivery (ChangeMessageVisibility).
    main_queue_url: str | None = None
    # The main queue's redrive maxReceiveCount, when known.
    max_receive_count: int | None = None
    # The account's quota and burst per Cases API, shared by every environment through the budget in the
    # table (budget.py). None: each environment paces itself at its static share only (CASES_BUDGET=local).
    cases_quota_rps: float | None = None
    cases_quota_burst: float | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate the environment; raise SettingsError naming the first bad variable."""
        performed_by = _optional(environ, "PERFORMED_BY", DEFAULT_PERFORMED_BY)
        agent = performed_by == PERFORMED_BY_AGENT
        if not agent and performed_by.lower() == PERFORMED_BY_AGENT:
            # Most likely meant as the agent: a custom entity of that name would hide the mistake.
            raise SettingsError(
                f"PERFORMED_BY must be {PERFORMED_BY_AGENT!r} in lower case to record the contact's agent; "
                "no other spelling of it is taken as a custom entity name"
            )
        entity = DEFAULT_PERFORMED_BY if agent else performed_by
        if len(entity) > 500 or not _CUSTOM_ENTITY.fullmatch(entity):
            raise SettingsError(
                f"PERFORMED_BY must be {PERFORMED_BY_AGENT!r} or a Cases customEntity "
                "(1..500 characters of letters, digits, space and _-.@:/, not ending in a space)"
            )
        main_queue_url = _optional_queue_url(environ, "MAIN_QUEUE_URL")
        max_receive_count = _receive_count(environ)
        if max_receive_count is not None and main_queue_url is None:
            # Records that only wait (capacity, a merge, a lease) are re-sent to the main queue before
            # maxReceiveCount; without it they would be dead-lettered on their last delivery.
            raise SettingsError(
                "MAX_RECEIVE_COUNT needs MAIN_QUEUE_URL: records handed back for capacity are re-sent to the main "
                "queue before maxReceiveCount"
            )
        return cls(
            cases_domain_id=_domain_id(environ),
            dead_letter_queue_url=_queue_url(environ),
            idempotency_table_name=_table_name(environ),
            case_id_attribute=_case_id_attribute(environ),
            contact_event_types=_event_types(environ),
            performed_by_entity=entity,
            performed_by_agent=agent,
            cases_max_rps=_rate(environ),
            cases_max_burst=_burst(environ),
            connect_instance_arn=_instance_arn(environ),
            main_queue_url=main_queue_url,
            max_receive_count=max_receive_count,
            **_quota(environ),
        )


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is required but is missing or empty")
    return value


def _optional(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name, "").strip()
    return value or default


def _domain_id(environ: Mapping[str, str]) -> str:
    value = _required(environ, "CASES_DOMAIN_ID")
    if not _DOMAIN_ID.fullmatch(value):
        raise SettingsError("CASES_DOMAIN_ID must be a Cases domain id (1..500 of A-Z a-z 0-9 . _ : -)")
    return value


def _queue_url(environ: Mapping[str, str]) -> str:
    return _checked_queue_url(_required(environ, "DEAD_LETTER_QUEUE_URL"), "DEAD_LETTER_QUEUE_URL")


def _optional_queue_url(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return _checked_queue_url(value, name) if value else None


def _checked_queue_url(value: str, name: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise SettingsError(f"{name} must be an SQS queue URL (https://...)")
    if value.rstrip("/").endswith(".fifo"):
        # A FIFO queue takes no message without a MessageGroupId and no per-message delay: every dead-letter and
        # re-send would fail, and the records would reach the DLQ through maxReceiveCount without a reason.
        raise SettingsError(f"{name} is a FIFO queue (.fifo): case-linker sends to standard queues only")
    return value


def _instance_arn(environ: Mapping[str, str]) -> str | None:
    value = environ.get("CONNECT_INSTANCE_ARN", "").strip()
    if not value:
        return None
    if not _INSTANCE_ARN.fullmatch(value):
        raise SettingsError(
            "CONNECT_INSTANCE_ARN must be an Amazon Connect instance ARN "
            "(arn:aws:connect:<region>:<account>:instance/<id>)"
        )
    return value


def _receive_count(environ: Mapping[str, str]) -> int | None:
    raw = environ.get("MAX_RECEIVE_COUNT", "").strip()
    if not raw:
        return None
    if not _WHOLE_NUMBER.fullmatch(raw) or not 1 <= int(raw) <= 1000:
        raise SettingsError("MAX_RECEIVE_COUNT must be a whole number from 1 to 1000 (the redrive policy's)")
    return int(raw)


def _table_name(environ: Mapping[str, str]) -> str:
    value = _required(environ, "IDEMPOTENCY_TABLE_NAME")
    if not _TABLE_NAME.fullmatch(value):
        raise SettingsError("IDEMPOTENCY_TABLE_NAME must be a DynamoDB table name (3..255 of A-Za-z0-9_.-)")
    return value


def _case_id_attribute(environ: Mapping[str, str]) -> str:
    value = _optional(environ, "CASE_ID_ATTRIBUTE", DEFAULT_CASE_ID_ATTRIBUTE)
    if not _ATTRIBUTE.fullmatch(value):
        raise SettingsError(
            "CASE_ID_ATTRIBUTE must be a contact attribute name (1..127 of A-Z a-z 0-9 space and _.-:@/)"
        )
    return value


def _event_types(environ: Mapping[str, str]) -> frozenset[str]:
    raw = _optional(environ, "CONTACT_EVENT_TYPES", DEFAULT_CONTACT_EVENT_TYPES)
    types = frozenset(part.strip().upper() for part in raw.split(",") if part.strip())
    if not types or not all(_EVENT_TYPE.fullmatch(t) for t in types):
        raise SettingsError(
            "CONTACT_EVENT_TYPES must be a comma-separated list of Connect event types, e.g. COMPLETED"
        )
    return types


def _rate(environ: Mapping[str, str]) -> float:
    raw = _optional(environ, "CASES_MAX_RPS", str(DEFAULT_CASES_MAX_RPS))
    try:
        rate = float(raw)
    except ValueError:
        raise SettingsError(
            f"CASES_MAX_RPS must be a number of requests per second, not {raw[:20]!r}"
        ) from None
    if not math.isfinite(rate) or rate <= 0:
        raise SettingsError("CASES_MAX_RPS must be a positive, finite number of requests per second")
    return rate


def _burst(environ: Mapping[str, str]) -> float | None:
    raw = environ.get("CASES_MAX_BURST", "").strip()
    if not raw:
        return None
    try:
        burst = float(raw)
    except ValueError:
        raise SettingsError(f"CASES_MAX_BURST must be a number of requests, not {raw[:20]!r}") from None
    if not math.isfinite(burst) or burst <= 0:
        raise SettingsError(
            "CASES_MAX_BURST must be a positive, finite number of requests (a fraction is fine)"
        )
    return burst


def _quota(environ: Mapping[str, str]) -> dict[str, float | None]:
    """CASES_QUOTA_RPS / CASES_QUOTA_BURST, unless CASES_BUDGET is `local` (it is `shared` by default)."""
    mode = _optional(environ, "CASES_BUDGET", "shared").lower()
    if mode not in ("shared", "local"):
        raise SettingsError("CASES_BUDGET must be 'shared' or 'local'")
    raw_rate = environ.get("CASES_QUOTA_RPS", "").strip()
    if not raw_rate:
        if environ.get("CASES_QUOTA_BURST", "").strip():
            raise SettingsError(
                "CASES_QUOTA_BURST is set without CASES_QUOTA_RPS (the account quota it goes with)"
            )
        return {"cases_quota_rps": None, "cases_quota_burst": None}
    # Checked even when CASES_BUDGET=local ignores them: a malformed value is a mistake, not a choice.
    try:
        rate = float(raw_rate)
        burst = float(_optional(environ, "CASES_QUOTA_BURST", str(DEFAULT_CASES_QUOTA_BURST)))
    except ValueError:
        raise SettingsError("CASES_QUOTA_RPS and CASES_QUOTA_BURST must be numbers") from None
    if not (math.isfinite(rate) and rate > 0 and math.isfinite(burst) and burst >= 1):
        raise SettingsError("CASES_QUOTA_RPS must be above 0 and CASES_QUOTA_BURST at least 1")
    if mode == "local":
        return {"cases_quota_rps": None, "cases_quota_burst": None}
    return {"cases_quota_rps": rate, "cases_quota_burst": burst}


@dataclass(frozen=True)
class SweeperSettings:
    """Validated configuration of the reconciliation sweeper (case_linker.sweeper)."""

    connect_instance_arn: str
    main_queue_url: str
    idempotency_table_name: str
    # Needed to ask Cases which case a contact chain is on (ListCasesForContact); None when chains are off.
    cases_domain_id: str | None = None
    case_id_attribute: str = DEFAULT_CASE_ID_ATTRIBUTE
    window_minutes: int = DEFAULT_SWEEP_WINDOW_MINUTES
    lag_minutes: int = DEFAULT_SWEEP_LAG_MINUTES
    connect_search_rps: float = DEFAULT_CONNECT_SEARCH_RPS
    follow_contact_chain: bool = True
    # The linker's: chain look-ups (ListCasesForContact) draw on the fleet's shared budget as background work.
    # None: the sweeper paces them at its own local share only.
    cases_quota_rps: float | None = None
    cases_quota_burst: float | None = None

    @property
    def instance_id(self) -> str:
        return self.connect_instance_arn.rsplit("/", 1)[-1]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SweeperSettings:
        """Read and validate the sweeper's environment; raise SettingsError naming the first bad variable."""
        instance_arn = _instance_arn(environ)
        if instance_arn is None:
            raise SettingsError("CONNECT_INSTANCE_ARN is required but is missing or empty")
        queue_url = _optional_queue_url(environ, "MAIN_QUEUE_URL")
        if queue_url is None:
            raise SettingsError("MAIN_QUEUE_URL is required but is missing or empty")
        follow = _flag(environ, "FOLLOW_CONTACT_CHAIN", default=True)
        if follow and not environ.get("CASES_DOMAIN_ID", "").strip():
            raise SettingsError(
                "CASES_DOMAIN_ID is required while FOLLOW_CONTACT_CHAIN is true (a chain's case is looked up in "
                "the Cases domain)"
            )
        domain_id = _domain_id(environ) if environ.get("CASES_DOMAIN_ID", "").strip() else None
        return cls(
            connect_instance_arn=instance_arn,
            main_queue_url=queue_url,
            idempotency_table_name=_table_name(environ),
            cases_domain_id=domain_id,
            case_id_attribute=_case_id_attribute(environ),
            window_minutes=_minutes(environ, "SWEEP_WINDOW_MINUTES", DEFAULT_SWEEP_WINDOW_MINUTES, minimum=1),
            lag_minutes=_minutes(environ, "SWEEP_LAG_MINUTES", DEFAULT_SWEEP_LAG_MINUTES, minimum=0),
            connect_search_rps=_positive(environ, "CONNECT_SEARCH_RPS", DEFAULT_CONNECT_SEARCH_RPS),
            follow_contact_chain=follow,
            **_quota(environ),
        )


def _minutes(environ: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = _optional(environ, name, str(default))
    if not _WHOLE_NUMBER.fullmatch(raw) or not minimum <= int(raw) <= MAX_SWEEP_MINUTES:
        raise SettingsError(f"{name} must be a whole number of minutes from {minimum} to {MAX_SWEEP_MINUTES}")
    return int(raw)


_ONE_PER_RUN = 1 / 900  # a Lambda invocation lasts at most 900 s


def _positive(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = _optional(environ, name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of requests per second, not {raw[:20]!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise SettingsError(f"{name} must be a positive, finite number of requests per second")
    if value < _ONE_PER_RUN:
        raise SettingsError(
            f"{name} must allow at least one request in a 900 s run ({_ONE_PER_RUN:.4f} per second)"
        )
    return value


def _flag(environ: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false"):
        raise SettingsError(f"{name} must be true or false")
    return raw == "true"
