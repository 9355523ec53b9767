"""case-linker settings: validated CDK context plus every value derived from it.

Plain Python on purpose (no aws_cdk import): the stack and the local pipeline (`local/`) both read these
numbers, so what runs on a laptop is what `cdk deploy` creates.
"""

from __future__ import annotations

import decimal
import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final, Literal

# --- Names shared with the linker (functions/case_linker) and the dashboard -----------------------------
SERVICE_NAME: Final = "case-linker"
#: Every item of the fleet's shared Cases budget in the ledger's table starts with this (budget.KEY_PREFIX).
BUDGET_KEY_PREFIX: Final = "case-linker#budget#"
METRICS_NAMESPACE: Final = "CaseLinker"
#: The metrics the linker emits (issue 3); the dashboard graphs them.
LINKER_METRICS: Final = (
    "RelatedItemCreated",
    "AlreadyLinked",
    "NoCaseId",
    "EventIgnored",
    "Throttled",
    "Retried",
    "DeadLettered",
    "HandedBack",
    "Requeued",
    "BudgetRequests",
    "BudgetSlotsUnused",
    "BudgetDegraded",
)

#: Metrics the linker emits only broken down by one more dimension (besides `service`), never plain.
LINKER_METRIC_BREAKDOWNS: Final = {
    "RelatedItemCreated": "type",
    "DeadLettered": "errorCode",
    "HandedBack": "reason",
}
#: Throttling that persists: Cases (or Connect) refused calls in each of this many consecutive 5-minute periods.
THROTTLING_ALARM_PERIODS: Final = 3

CONNECT_EVENT_SOURCE: Final = "aws.connect"
CONTACT_EVENT_DETAIL_TYPE: Final = "Amazon Connect Contact Event"
RELATED_ITEM_REQUEST_DETAIL_TYPE: Final = "Case Related Item Request"

#: Contact event types Amazon Connect publishes today. New ones appear over time, so an unknown
#: upper-case name is accepted; this list only feeds the error message.
KNOWN_CONTACT_EVENT_TYPES: Final = (
    "INITIATED",
    "CONNECTED_TO_SYSTEM",
    "CONTACT_DATA_UPDATED",
    "QUEUED",
    "CONNECTED_TO_AGENT",
    "DISCONNECTED",
    "COMPLETED",
    "PAUSED",
    "RESUMED",
    "AMD_DISABLED",
    "WEBRTC_API",
)

#: PERFORMED_BY value that records the contact's agent (`userArn`) instead of a custom entity.
PERFORMED_BY_AGENT: Final = "agent"

#: The CDK context keys this app reads, in the order the README documents them.
CONTEXT_KEYS: Final = (
    "casesDomainId",
    "connectInstanceArn",
    "caseIdAttribute",
    "contactEventTypes",
    "maxConcurrency",
    "casesRequestsPerSecond",
    "casesBurst",
    "batchSize",
    "alarmEmail",
    "removalPolicy",
    "requestEventSource",
    "performedBy",
    "sweeperEnabled",
    "sweepIntervalMinutes",
    "sweepWindowMinutes",
    "sweepLagMinutes",
    "connectSearchRequestsPerSecond",
    "followContactChain",
)
REQUIRED_CONTEXT_KEYS: Final = ("casesDomainId", "connectInstanceArn")
#: Names the stack (app.py); checked with the rest so a bad one is listed with them, not left to a jsii traceback.
STACK_NAME_KEY: Final = "stackName"
_STACK_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")  # CloudFormation's stack names
#: Every context key the app reads.
KNOWN_CONTEXT_KEYS: Final = (*CONTEXT_KEYS, STACK_NAME_KEY)


def _misspelled(key: str) -> str | None:
    """The key of ours that `key` resembles, when it is not one itself; None for ours and for keys the CDK and
    its lookups use (`@aws-cdk/...`, `aws:cdk:...`, `availability-zones:...`) or others far from ours."""
    if key in KNOWN_CONTEXT_KEYS or key.startswith("@") or ":" in key:
        return None
    same_but_case = [k for k in KNOWN_CONTEXT_KEYS if k.lower() == key.lower()]
    close = same_but_case or difflib.get_close_matches(key, KNOWN_CONTEXT_KEYS, n=1, cutoff=0.85)
    if close:
        return close[0]
    # Cut short or spelled with separators (`sweepWindow`, `stack-name`): one of ours begins with it. Eight
    # letters at least, and only one of ours, so other tools' keys and the user's own (`window`) are left alone.
    squashed = _squash(key)
    if len(squashed) < 8:
        return None
    holding = [k for k in KNOWN_CONTEXT_KEYS if _squash(k).startswith(squashed)]
    return holding[0] if len(holding) == 1 else None


def _squash(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


# --- Fixed operating parameters (each with the reason for its value) ----------------------------------
#: Every contact record makes up to two paced Cases calls: ListCasesForContact, then CreateRelatedItem (a contact
#: already on another case one GetMergeCasesStatus more, on its own API and quota: rare, and not counted here).
CASES_CALLS_PER_RECORD: Final = 2
#: Head room above the paced time for botocore's backoff (full jitter, a few seconds per throttle), the
#: Connect GetContactAttributes call, the idempotency reads/writes and a cold start with the Powertools layer.
RETRY_HEADROOM_SECONDS: Final = 30
#: The function timeout fits a full batch at 40% of an environment's share of the quota (the paced time x 2.5):
#: with a co-tenant steadily using 60% of it, the heaviest load the design goals name, nothing runs out of time.
#: In the fleet simulation a bursty one (90% of the quota for 30 s, then 30%) made 1.5x hand back 20 and 13
#: records after the first 10 s (seeds 1 and 2); 2.5x none. It is a ceiling: the linker stops early when its
#: time runs short, so a longer one costs nothing while Cases keeps up.
TIMEOUT_SLACK: Final = 2.5
#: A configuration is refused when even 1.5x the paced time of a batch does not fit in Lambda's 900 s; between
#: that and TIMEOUT_SLACK the timeout is 900 s.
MIN_TIMEOUT_SLACK: Final = 1.5
MIN_FUNCTION_TIMEOUT_SECONDS: Final = 60
MAX_FUNCTION_TIMEOUT_SECONDS: Final = 900
#: No batching window: a backlog fills batches of ten without waiting, and at light load a window only delays
#: a lone record (publish-to-item p95 in the fleet simulation 0.3 s without it, 2.3 s with 2 s; on the local
#: rig 0.26-0.41 s without it: docs/bench.md). It costs a few more invocations when traffic is dense.
BATCHING_WINDOW_SECONDS: Final = 0
#: AWS's guidance for SQS event sources: visibility timeout >= 6x function timeout (+ batching window), so a
#: message is not redelivered while Lambda still retries a throttled invocation of the batch holding it.
VISIBILITY_TIMEOUT_FACTOR: Final = 6
#: A record handed back because Cases kept throttling costs one receive. Ten receives at the visibility
#: timeout give a burst about an hour (10 x ~6 min) to drain at the quota before anything is dead-lettered;
#: AWS recommends at least 5 for Lambda event sources.
MAX_RECEIVE_COUNT: Final = 10
#: Both DLQs keep messages the SQS maximum (14 days), so an operator has time to inspect and replay.
DLQ_RETENTION_SECONDS: Final = 14 * 24 * 3600
#: What the main queue's retention guards is a sustained backlog (inflow above the Cases quota), not an outage:
#: during an outage records reach the processing DLQ after maxReceiveCount receives (about an hour). SQS
#: deletes a message older than the retention, with no DLQ, so the retention bounds the backlog that can
#: drain without loss (`largest_backlog_before_expiry`). It is also bounded from above: a message moved to a
#: DLQ keeps its first enqueue time, so it has only (DLQ retention - its age) left there. Seven days leaves
#: a redriven message at least a week in the DLQ and holds a week of backlog at the quota.
MAIN_QUEUE_RETENTION_SECONDS: Final = 7 * 24 * 3600
#: EventBridge -> SQS delivery only fails for configuration faults (queue policy, KMS). Retry for the
#: maximum 24 hours so an operator can fix the fault without losing events (the FailedInvocations alarm fires
#: at once); only then does the event go to the rule-target DLQ.
RULE_TARGET_MAX_EVENT_AGE_SECONDS: Final = 24 * 3600
RULE_TARGET_RETRY_ATTEMPTS: Final = 185
MEMORY_SIZE_MB: Final = 256
#: The Powertools release the function's layer carries: the one the tests run (requirements-dev.txt pins
#: aws-lambda-powertools[all] at this version; tests/infra checks they agree). Bump both together.
POWERTOOLS_VERSION: Final = "3.37.0"
#: Significant digits of a per-environment share written to the environment (rounded down, see `_share`).
SHARE_DIGITS: Final = 6

# --- The sweeper (issue 12) ------------------------------------------------------------------------------
#: SearchContacts returns at most 100 contacts a page.
SEARCH_CONTACTS_PAGE_SIZE: Final = 100
#: A run stops searching this long before its deadline: enqueueing the last page, ledger reads, a cold start.
SWEEPER_HEADROOM_SECONDS: Final = 30
#: A day bounds one run's search range (the trailing window is searched again every run).
MAX_SWEEP_WINDOW_MINUTES: Final = 24 * 60
MAX_SWEEP_LAG_MINUTES: Final = 24 * 60
MIN_ASYNC_EVENT_AGE_SECONDS: Final = 60  # Lambda's bounds for an asynchronous invocation's maximum event age
MAX_ASYNC_EVENT_AGE_SECONDS: Final = 6 * 3600
#: Metrics the sweeper emits (issue 12), namespace CaseLinker, dimension service=case-linker like the linker's.
SWEEPER_METRICS: Final = (
    "SweepContactsFound",
    "SweepAlreadyHandled",
    "SweepEnqueued",
    "SweepNoCaseId",
    "EventCoverage",
)
#: EventCoverage: the share (0..1) of the finished contacts a run found that contact events had already
#: handled. Below this for EVENT_COVERAGE_ALARM_RUNS runs in a row, events are being lost: alarm. Delivery is
#: best effort, and chats whose agent left without clearing them never complete; 5% missed is not noise.
EVENT_COVERAGE_ALARM_THRESHOLD: Final = 0.95
EVENT_COVERAGE_ALARM_RUNS: Final = 3
#: The sweeper's alarms evaluate one interval per period, EVENT_COVERAGE_ALARM_RUNS periods at most, and
#: CloudWatch evaluates an alarm over one day at most: 8 hours between runs at the longest.
MAX_SWEEP_INTERVAL_MINUTES: Final = 24 * 60 // EVENT_COVERAGE_ALARM_RUNS

ESM_MIN_CONCURRENCY: Final = 2  # the SQS event source's own bounds
ESM_MAX_CONCURRENCY: Final = 1000
MAX_BATCH_SIZE: Final = 100  # larger batches cannot finish inside 15 minutes at the default quota

RemovalPolicyName = Literal["retain", "destroy"]

_DOMAIN_ID_RE: Final = re.compile(r"[A-Za-z0-9._:-]{1,500}")
_INSTANCE_ARN_RE: Final = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):connect:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):(?P<account>\d{12}):"
    r"instance/(?P<instance_id>[A-Za-z0-9-]{1,100})"
)
#: The partitions whose Regions are not the commercial partition's, by Region name prefix, longest first; a
#: Region matching none is in `aws`. Written out because this module stays standard-library only (the installed
#: ops tool reads it); a test checks it against botocore's partition data for every Region botocore knows.
_PARTITION_BY_REGION_PREFIX: Final = (
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-gov-", "aws-us-gov"),
    ("eusc-", "aws-eusc"),
    ("cn-", "aws-cn"),
)
_ATTRIBUTE_RE: Final = re.compile(r"[A-Za-z0-9_.\-:@/ ]{1,127}")
_EVENT_TYPE_RE: Final = re.compile(r"[A-Z][A-Z_]{0,63}")  # the linker checks CONTACT_EVENT_TYPES alike
_EMAIL_RE: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_EVENT_SOURCE_RE: Final = re.compile(r"[A-Za-z0-9._\-/]{1,256}")
# Cases `performedBy.customEntity` pattern (botocore does not check it; we do).
_PERFORMED_BY_RE: Final = re.compile(r"[a-zA-Z0-9_\-.@:/ ]{0,499}[a-zA-Z0-9_\-.@:/]")


class ConfigError(ValueError):
    """Invalid or missing CDK context; the message names every offending key."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            "invalid case-linker context:\n"
            + "\n".join(f"  - {p}" for p in self.problems)
            + "\nPass values with -c key=value (see the README, section Deploy), e.g.\n"
            "  npx cdk synth -c casesDomainId=<domain id> "
            "-c connectInstanceArn=arn:aws:connect:<region>:<account>:instance/<instance id>"
        )


@dataclass(frozen=True, kw_only=True)
class Backlog:
    """A backlog of `contacts` queued at once, drained at the slowest rate (README, Deploy: the backlog table)."""

    contacts: int
    drain_seconds: float
    #: When the oldest-message alarm fires after the backlog formed; None: it drains first.
    alarm_after_seconds: int | None
    #: Retention left when the last contact is linked; negative: SQS deletes some first.
    margin_seconds: float
    #: Contacts SQS deletes (expired, no DLQ) before the fleet reaches them.
    expired_contacts: int


@dataclass(frozen=True, kw_only=True)
class CaseLinkerConfig:
    """Validated case-linker settings; build it with `from_context`."""

    cases_domain_id: str
    connect_instance_arn: str
    case_id_attribute: str = "caseId"
    contact_event_types: tuple[str, ...] = ("COMPLETED",)
    max_concurrency: int = 2
    cases_requests_per_second: float = 2.0
    # The account's burst on each Cases API (AWS default 10): how many calls it accepts at once after idling.
    cases_burst: float = 10.0
    batch_size: int = 10
    alarm_email: str | None = None
    removal_policy: RemovalPolicyName = "retain"
    request_event_source: str | None = None
    performed_by: str = SERVICE_NAME
    # The reconciliation sweeper (issue 12).
    sweeper_enabled: bool = True
    sweep_interval_minutes: int = 15
    sweep_window_minutes: int = 60
    sweep_lag_minutes: int = 15
    connect_search_requests_per_second: float = 0.5
    follow_contact_chain: bool = True

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError(problems)

    # --- construction -----------------------------------------------------------------------------------
    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> CaseLinkerConfig:
        """Build from CDK context values (strings from `-c`, or JSON values from cdk.json).

        Other keys are ignored (CDK context also carries feature flags, lookups and other tools' keys), except
        one that looks like a misspelling of ours. Raises ConfigError naming every missing or malformed key.
        """
        problems: list[str] = [
            f"unknown context key {key!r} (did you mean {meant}?)"
            for key in context
            if (meant := _misspelled(key)) is not None
        ]
        values: dict[str, Any] = {}

        def get(key: str) -> Any:
            value = context.get(key)
            return None if value is None or (isinstance(value, str) and not value.strip()) else value

        for key in REQUIRED_CONTEXT_KEYS:
            if get(key) is None:
                problems.append(f"{key} is required")
        if (domain := get("casesDomainId")) is not None:
            values["cases_domain_id"] = str(domain).strip()
        if (arn := get("connectInstanceArn")) is not None:
            values["connect_instance_arn"] = str(arn).strip()
        if (attribute := get("caseIdAttribute")) is not None:
            values["case_id_attribute"] = str(attribute).strip()
        if (types := get("contactEventTypes")) is not None:
            parsed_types = _parse_event_types(types)
            if parsed_types is None:
                problems.append(
                    f"contactEventTypes must be a comma-separated string or a list of strings, got {types!r}"
                )
            else:
                values["contact_event_types"] = parsed_types
        for key, attr in (
            ("maxConcurrency", "max_concurrency"),
            ("batchSize", "batch_size"),
            ("sweepIntervalMinutes", "sweep_interval_minutes"),
            ("sweepWindowMinutes", "sweep_window_minutes"),
            ("sweepLagMinutes", "sweep_lag_minutes"),
        ):
            if (raw := get(key)) is not None:
                number = _parse_int(raw)
                if number is None:
                    problems.append(f"{key} must be a whole number, got {raw!r}")
                else:
                    values[attr] = number
        for key, attr in (
            ("casesRequestsPerSecond", "cases_requests_per_second"),
            ("casesBurst", "cases_burst"),
            ("connectSearchRequestsPerSecond", "connect_search_requests_per_second"),
        ):
            if (raw_number := get(key)) is not None:
                number_value = _parse_float(raw_number)
                if number_value is None:
                    problems.append(f"{key} must be a number, got {raw_number!r}")
                else:
                    values[attr] = number_value
        for key, attr in (
            ("sweeperEnabled", "sweeper_enabled"),
            ("followContactChain", "follow_contact_chain"),
        ):
            if (raw_flag := get(key)) is not None:
                flag = _parse_bool(raw_flag)
                if flag is None:
                    problems.append(f"{key} must be true or false, got {raw_flag!r}")
                else:
                    values[attr] = flag
        if (email := get("alarmEmail")) is not None:
            values["alarm_email"] = str(email).strip()
        if (policy := get("removalPolicy")) is not None:
            values["removal_policy"] = str(policy).strip().lower()
        if (source := get("requestEventSource")) is not None:
            values["request_event_source"] = str(source).strip()
        if (performed_by := get("performedBy")) is not None:
            values["performed_by"] = str(performed_by).strip()
        if (stack_name := get(STACK_NAME_KEY)) is not None and not _STACK_NAME_RE.fullmatch(
            str(stack_name).strip()
        ):
            problems.append(
                f"{STACK_NAME_KEY} must be a letter then up to 127 letters, digits or hyphens (CloudFormation's "
                f"stack names), got {str(stack_name)[:40]!r}"
            )

        if problems:
            # Report parse problems together with the field checks, so one run lists everything.
            try:
                cls(**_with_placeholders(values))
            except ConfigError as e:
                problems.extend(p for p in e.problems if p not in problems)
            raise ConfigError(problems)
        return cls(**values)

    # --- instance -------------------------------------------------------------------------------------------
    def _arn_part(self, name: str) -> str:
        match = _INSTANCE_ARN_RE.fullmatch(self.connect_instance_arn)
        if match is None:  # unreachable: __post_init__ validated the ARN
            raise ConfigError([f"connectInstanceArn {self.connect_instance_arn!r} is malformed"])
        return match[name]

    @property
    def connect_instance_id(self) -> str:
        return self._arn_part("instance_id")

    @property
    def connect_instance_partition(self) -> str:
        return self._arn_part("partition")

    @property
    def connect_instance_region(self) -> str:
        return self._arn_part("region")

    @property
    def connect_instance_account(self) -> str:
        return self._arn_part("account")

    @property
    def contact_arn_pattern(self) -> str:
        """IAM resource for every contact of the instance."""
        return f"{self.connect_instance_arn}/contact/*"

    @property
    def agent_arn_pattern(self) -> str:
        """IAM resource for every user (agent) of the instance."""
        return f"{self.connect_instance_arn}/agent/*"

    @property
    def records_agent_as_performer(self) -> bool:
        return self.performed_by == PERFORMED_BY_AGENT

    # --- event routing -----------------------------------------------------------------------------------
    @property
    def contact_event_pattern(self) -> dict[str, Any]:
        """EventBridge pattern of the contact-event rule."""
        return {
            "source": [CONNECT_EVENT_SOURCE],
            "detail-type": [CONTACT_EVENT_DETAIL_TYPE],
            "detail": {
                "eventType": list(self.contact_event_types),
                "instanceArn": [self.connect_instance_arn],
            },
        }

    @property
    def request_event_pattern(self) -> dict[str, Any] | None:
        """EventBridge pattern of the optional related-item-request rule (None when not configured)."""
        if self.request_event_source is None:
            return None
        return {"source": [self.request_event_source], "detail-type": [RELATED_ITEM_REQUEST_DETAIL_TYPE]}

    @property
    def rule_target_retry_attempts(self) -> int:
        return RULE_TARGET_RETRY_ATTEMPTS

    @property
    def rule_target_max_event_age_seconds(self) -> int:
        return RULE_TARGET_MAX_EVENT_AGE_SECONDS

    # --- pacing, batching and timeouts ----------------------------------------------------------------
    @property
    def cases_max_rps_text(self) -> str:
        """CASES_MAX_RPS: the account quota shared by the ESM's maximum concurrency, rounded down."""
        return _share(self.cases_requests_per_second, self.max_concurrency)

    @property
    def cases_max_rps(self) -> float:
        """Cases request rate per execution environment (the value CASES_MAX_RPS carries)."""
        return float(self.cases_max_rps_text)

    @property
    def cases_max_burst_text(self) -> str:
        """CASES_MAX_BURST: the account burst shared by the maximum concurrency, rounded down, with no floor.

        A share below one token is fine: an environment's bucket then fills to its share and a request waits
        until one token has accrued, so N environments of capacity B/N never send more than B + R*t in any
        interval t, whatever N is. (A floor of one token let 20 environments burst 20 on an account burst of 10.)
        """
        return _share(self.cases_burst, self.max_concurrency)

    @property
    def cases_max_burst(self) -> float:
        """Each environment's share of the account burst (the value CASES_MAX_BURST carries)."""
        return float(self.cases_max_burst_text)

    @property
    def batching_window_seconds(self) -> int:
        return BATCHING_WINDOW_SECONDS

    @property
    def paced_batch_seconds(self) -> int:
        """How long a full batch takes at this environment's share of the quota (CASES_MAX_RPS)."""
        return math.ceil(self.batch_size * CASES_CALLS_PER_RECORD / self.cases_max_rps)

    @property
    def function_timeout_seconds(self) -> int:
        """A full batch at 40% of the paced rate (TIMEOUT_SLACK) plus RETRY_HEADROOM_SECONDS; 60..900 s.

        Default: 10 records x 2 Cases calls at 1 req/s = 20 s paced -> 50 + 30 = 80 s. The linker itself stops
        early (hands records back) when its remaining time runs short, so this is a ceiling, not a target.
        """
        wanted = math.ceil(self.paced_batch_seconds * TIMEOUT_SLACK) + RETRY_HEADROOM_SECONDS
        return min(MAX_FUNCTION_TIMEOUT_SECONDS, max(MIN_FUNCTION_TIMEOUT_SECONDS, wanted))

    @property
    def visibility_timeout_seconds(self) -> int:
        return VISIBILITY_TIMEOUT_FACTOR * self.function_timeout_seconds + self.batching_window_seconds

    @property
    def max_receive_count(self) -> int:
        return MAX_RECEIVE_COUNT

    @property
    def main_queue_retention_seconds(self) -> int:
        return MAIN_QUEUE_RETENTION_SECONDS

    @property
    def dlq_retention_seconds(self) -> int:
        return DLQ_RETENTION_SECONDS

    # --- backlog: how long it takes to drain, when the alarm fires, what is left before expiry ---------------
    @property
    def drain_rate_contacts_per_second(self) -> float:
        """Contacts per second the whole fleet links at the configured quota, at the slowest.

        A contact costs up to CASES_CALLS_PER_RECORD paced Cases calls (a look-up and the create, each on its
        own API with its own quota). Counted as if both were spent from one quota, this is a lower bound on the
        rate (an upper bound on drain times): the real rate lies between this and twice this, and is nearer
        twice when the ledger lets the linker skip the look-up. Requests from other producers, sweeper and
        backfill messages drain at the same rate, one record each.
        """
        return self.cases_requests_per_second / CASES_CALLS_PER_RECORD

    def drain_seconds(self, contacts: int) -> float:
        """Seconds the fleet takes, at the slowest, to drain `contacts` queued at once."""
        return contacts / self.drain_rate_contacts_per_second

    @property
    def oldest_message_alarm_seconds(self) -> int:
        """Alarm threshold on the main queue's oldest message: maxReceiveCount visibility timeouts.

        A message the linker keeps handing back reaches the processing DLQ after maxReceiveCount receives, one
        visibility timeout apart, so a message older than this has not been retried that often: it is waiting
        in a backlog the fleet cannot reach in time (inflow above the quota), or nothing consumes the queue.
        """
        return self.max_receive_count * self.visibility_timeout_seconds

    @property
    def backlog_when_alarm_fires(self) -> int:
        """Contacts queued at once that make the oldest-message alarm fire (drained at the slowest rate)."""
        return math.ceil(self.oldest_message_alarm_seconds * self.drain_rate_contacts_per_second)

    @property
    def largest_backlog_before_expiry(self) -> int:
        """Contacts queued at once that still drain before SQS deletes the first of them."""
        return math.floor(self.main_queue_retention_seconds * self.drain_rate_contacts_per_second)

    @property
    def expiry_margin_seconds(self) -> int:
        """Time between the alarm and the first expiry, for the oldest message: what on-call has to act."""
        return self.main_queue_retention_seconds - self.oldest_message_alarm_seconds

    def backlog(self, contacts: int) -> Backlog:
        """What happens to `contacts` queued at once (none arriving after), at the slowest drain rate."""
        drain = self.drain_seconds(contacts)
        return Backlog(
            contacts=contacts,
            drain_seconds=drain,
            alarm_after_seconds=(
                self.oldest_message_alarm_seconds if drain > self.oldest_message_alarm_seconds else None
            ),
            margin_seconds=self.main_queue_retention_seconds - drain,
            expired_contacts=max(0, contacts - self.largest_backlog_before_expiry),
        )

    # --- the function's environment ------------------------------------------------------------------
    def lambda_environment(
        self, *, dead_letter_queue_url: str, idempotency_table_name: str, main_queue_url: str
    ) -> dict[str, str]:
        """The linker's environment variables (names fixed by issues 3 and 11 / docs/CONTRACTS.md)."""
        return {
            "CASES_DOMAIN_ID": self.cases_domain_id,
            "CASE_ID_ATTRIBUTE": self.case_id_attribute,
            "CONTACT_EVENT_TYPES": ",".join(self.contact_event_types),
            "CONNECT_INSTANCE_ARN": self.connect_instance_arn,
            "DEAD_LETTER_QUEUE_URL": dead_letter_queue_url,
            "IDEMPOTENCY_TABLE_NAME": idempotency_table_name,
            "MAIN_QUEUE_URL": main_queue_url,
            "MAX_RECEIVE_COUNT": str(self.max_receive_count),
            "PERFORMED_BY": self.performed_by,
            "CASES_MAX_RPS": self.cases_max_rps_text,
            "CASES_MAX_BURST": self.cases_max_burst_text,
            # The account's quota and burst per Cases API, shared by every environment (budget.py); the two
            # above are each environment's fallback share when the shared budget is unavailable.
            **self.budget_environment(),
            **_powertools_environment(),
        }

    def budget_environment(self) -> dict[str, str]:
        """The shared Cases budget's variables, the same for the linker and the sweeper."""
        # Rounded down like the shares (`:g` rounds to nearest: a quota of 12345.67 became 12345.7).
        return {
            "CASES_QUOTA_RPS": _share(self.cases_requests_per_second, 1),
            "CASES_QUOTA_BURST": _share(self.cases_burst, 1),
            "CASES_BUDGET": "shared",
        }

    # --- the sweeper (issue 12) ----------------------------------------------------------------------------
    @property
    def sweep_interval_seconds(self) -> int:
        return self.sweep_interval_minutes * 60

    @property
    def sweeper_timeout_seconds(self) -> int:
        """One interval, at most Lambda's 15 minutes: a run never outlasts the schedule that starts the next."""
        return min(MAX_FUNCTION_TIMEOUT_SECONDS, self.sweep_interval_seconds)

    @property
    def sweeper_max_event_age_seconds(self) -> int:
        """How long Lambda keeps a run's invocation queued: one interval (the next run is due then), within
        Lambda's 60 s..6 h for asynchronous invocations."""
        return min(MAX_ASYNC_EVENT_AGE_SECONDS, max(MIN_ASYNC_EVENT_AGE_SECONDS, self.sweep_interval_seconds))

    @property
    def sweeper_search_pages_per_run(self) -> int:
        """SearchContacts pages one run can read at the configured rate before it stops for its deadline."""
        budget = self.sweeper_timeout_seconds - SWEEPER_HEADROOM_SECONDS
        return math.floor(budget * self.connect_search_requests_per_second)

    @property
    def sweeper_contacts_per_run(self) -> int:
        """Finished contacts one run can look at; more in a window are left to the next run (windows overlap)."""
        return self.sweeper_search_pages_per_run * SEARCH_CONTACTS_PAGE_SIZE

    def sweeper_environment(self, *, main_queue_url: str, idempotency_table_name: str) -> dict[str, str]:
        """The sweeper's environment variables (names fixed by issue 12's contract)."""
        return {
            "CONNECT_INSTANCE_ARN": self.connect_instance_arn,
            "MAIN_QUEUE_URL": main_queue_url,
            "IDEMPOTENCY_TABLE_NAME": idempotency_table_name,
            "CASES_DOMAIN_ID": self.cases_domain_id,
            "CASE_ID_ATTRIBUTE": self.case_id_attribute,
            "SWEEP_WINDOW_MINUTES": str(self.sweep_window_minutes),
            "SWEEP_LAG_MINUTES": str(self.sweep_lag_minutes),
            # Rounded down like the Cases shares: one sweeper never searches above the configured rate.
            "CONNECT_SEARCH_RPS": _share(self.connect_search_requests_per_second, 1),
            "FOLLOW_CONTACT_CHAIN": "true" if self.follow_contact_chain else "false",
            # Chain look-ups (ListCasesForContact) draw on the linker's fleet budget, as background work.
            **(self.budget_environment() if self.follow_contact_chain else {}),
            **_powertools_environment(),
        }


def _powertools_environment() -> dict[str, str]:
    # The sweeper shares the linker's service name: its metrics carry the same `service` dimension.
    return {
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def _problems(config: CaseLinkerConfig) -> list[str]:
    problems: list[str] = []
    if not _DOMAIN_ID_RE.fullmatch(config.cases_domain_id):
        problems.append(
            f"casesDomainId must be a Cases domain id (1-500 of A-Z a-z 0-9 . _ : -), got {config.cases_domain_id!r}"
        )
    if not _INSTANCE_ARN_RE.fullmatch(config.connect_instance_arn):
        problems.append(
            "connectInstanceArn must look like arn:aws:connect:<region>:<12-digit account>:instance/<instance id>, "
            f"got {config.connect_instance_arn!r}"
        )
    elif (expected := region_partition(config.connect_instance_region)) not in (
        None,
        config.connect_instance_partition,
    ):
        # The rule would match no event (Connect's carry the real partition) and the grants no contact.
        problems.append(
            f"connectInstanceArn is in partition {config.connect_instance_partition}, but its Region "
            f"{config.connect_instance_region} is in partition {expected}: copy the ARN from the Amazon Connect "
            f"console, got {config.connect_instance_arn!r}"
        )
    if not _ATTRIBUTE_RE.fullmatch(config.case_id_attribute):
        problems.append(f"caseIdAttribute must be a contact attribute name, got {config.case_id_attribute!r}")
    if not config.contact_event_types:
        problems.append("contactEventTypes must name at least one event type, e.g. COMPLETED")
    for event_type in config.contact_event_types:
        if not _EVENT_TYPE_RE.fullmatch(event_type):
            problems.append(
                f"contactEventTypes: {event_type!r} is not an event type name "
                f"(known: {', '.join(KNOWN_CONTACT_EVENT_TYPES)})"
            )
    if isinstance(config.max_concurrency, bool) or not (
        ESM_MIN_CONCURRENCY <= config.max_concurrency <= ESM_MAX_CONCURRENCY
    ):
        problems.append(
            f"maxConcurrency must be {ESM_MIN_CONCURRENCY}..{ESM_MAX_CONCURRENCY} "
            f"(the SQS event source's limits), got {config.max_concurrency!r}"
        )
    if not (math.isfinite(config.cases_requests_per_second) and config.cases_requests_per_second > 0):
        problems.append(f"casesRequestsPerSecond must be above 0, got {config.cases_requests_per_second!r}")
    if not (math.isfinite(config.cases_burst) and config.cases_burst >= 1):
        problems.append(f"casesBurst must be at least 1, got {config.cases_burst!r}")
    if isinstance(config.batch_size, bool) or not (1 <= config.batch_size <= MAX_BATCH_SIZE):
        problems.append(f"batchSize must be 1..{MAX_BATCH_SIZE}, got {config.batch_size!r}")
    if config.alarm_email is not None and not _EMAIL_RE.fullmatch(config.alarm_email):
        problems.append(f"alarmEmail must be an email address, got {config.alarm_email!r}")
    if config.removal_policy not in ("retain", "destroy"):
        problems.append(f"removalPolicy must be 'retain' or 'destroy', got {config.removal_policy!r}")
    if config.request_event_source is not None and (
        not _EVENT_SOURCE_RE.fullmatch(config.request_event_source)
        or config.request_event_source.startswith("aws.")
    ):
        problems.append(
            "requestEventSource must be your own event source (not aws.*, which only AWS may put), "
            f"got {config.request_event_source!r}"
        )
    if config.performed_by != PERFORMED_BY_AGENT and config.performed_by.lower() == PERFORMED_BY_AGENT:
        problems.append(
            f"performedBy {config.performed_by!r} is not '{PERFORMED_BY_AGENT}' (lower case, to record the "
            "contact's agent), and a custom entity of that name would hide the mistake"
        )
    elif not _PERFORMED_BY_RE.fullmatch(config.performed_by):
        problems.append(
            f"performedBy must be '{PERFORMED_BY_AGENT}' or a Cases customEntity name, got {config.performed_by!r}"
        )
    problems += _sweeper_problems(config)
    least = (
        math.ceil(config.paced_batch_seconds * MIN_TIMEOUT_SLACK) + RETRY_HEADROOM_SECONDS
        if not problems
        else 0
    )
    if least > MAX_FUNCTION_TIMEOUT_SECONDS:
        problems.append(
            f"batchSize {config.batch_size} cannot finish in {MAX_FUNCTION_TIMEOUT_SECONDS} s at "
            f"{config.cases_max_rps:g} Cases requests/s per environment: lower batchSize or maxConcurrency, "
            "or raise casesRequestsPerSecond"
        )
    return problems


def _sweeper_problems(config: CaseLinkerConfig) -> list[str]:
    problems: list[str] = []
    for key, value, low, high in (
        ("sweepIntervalMinutes", config.sweep_interval_minutes, 1, MAX_SWEEP_INTERVAL_MINUTES),
        ("sweepWindowMinutes", config.sweep_window_minutes, 2, MAX_SWEEP_WINDOW_MINUTES),
        ("sweepLagMinutes", config.sweep_lag_minutes, 0, MAX_SWEEP_LAG_MINUTES),
    ):
        if isinstance(value, bool) or not low <= value <= high:
            problems.append(f"{key} must be {low}..{high} minutes, got {value!r}")
    rate = config.connect_search_requests_per_second
    if not (math.isfinite(rate) and rate > 0):
        problems.append(f"connectSearchRequestsPerSecond must be above 0, got {rate!r}")
    if problems:
        return problems
    if config.sweep_window_minutes < 2 * config.sweep_interval_minutes:
        problems.append(
            f"sweepWindowMinutes ({config.sweep_window_minutes}) must be at least twice sweepIntervalMinutes "
            f"({config.sweep_interval_minutes}): every finished contact must be searched by two runs, so the "
            "next run covers a failed one"
        )
    if config.sweeper_search_pages_per_run < 1:
        problems.append(
            f"connectSearchRequestsPerSecond {rate:g} cannot read one SearchContacts page in a "
            f"{config.sweeper_timeout_seconds} s run: raise it or sweepIntervalMinutes"
        )
    return problems


def region_partition(region: str) -> str:
    """The partition a Region belongs to (`aws`, `aws-cn`, `aws-us-gov`, ...)."""
    return next(
        (partition for prefix, partition in _PARTITION_BY_REGION_PREFIX if region.startswith(prefix)), "aws"
    )


def _share(total: float, parts: int) -> str:
    """`total / parts` as a decimal of SHARE_DIGITS significant digits, rounded down.

    Rounded down so that `parts` environments reading it never add up to more than `total` (`:g` rounds to
    nearest: 2/3 became 0.666667, and three environments paced at 2.000001 req/s). Exact arithmetic; hand-written
    because no formatter rounds in one direction. Loses less than 1e-5 of `total`.
    """
    # The decimal a person wrote (repr is the shortest string that reads back as the same float), not the
    # float's binary value: a burst of 1.9 shares as 0.95 each, not 0.949999.
    exact = Fraction(repr(total)) / parts
    with decimal.localcontext(prec=SHARE_DIGITS, rounding=decimal.ROUND_FLOOR):
        share = decimal.Decimal(exact.numerator) / decimal.Decimal(exact.denominator)
    return format(share.normalize(), "f")


def _parse_event_types(raw: Any) -> tuple[str, ...] | None:
    if isinstance(raw, str):
        items = raw.split(",")
    elif isinstance(raw, list | tuple) and all(isinstance(item, str) for item in raw):
        items = list(raw)
    else:
        return None
    # Upper-case and de-duplicate, keeping order: the rule's pattern and the linker's filter must agree.
    return tuple(dict.fromkeys(item.strip().upper() for item in items if item.strip()))


def _parse_int(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and re.fullmatch(r"\s*[+-]?\d+\s*", raw):
        return int(raw)
    return None


def _parse_float(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            return None
    return None


def _parse_bool(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    return None


def _with_placeholders(values: dict[str, Any]) -> dict[str, Any]:
    """Fill keys that failed to parse with valid stand-ins, to collect the remaining field problems."""
    stand_ins: dict[str, Any] = {
        "cases_domain_id": "placeholder",
        "connect_instance_arn": "arn:aws:connect:us-east-1:000000000000:instance/placeholder",
    }
    return {**stand_ins, **values}
