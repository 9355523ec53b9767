"""infra/config.py: context validation and the derived values the stack and the local pipeline share."""

from __future__ import annotations

import ast
from fractions import Fraction
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from infra.config import (
    CONTEXT_KEYS,
    ESM_MAX_CONCURRENCY,
    ESM_MIN_CONCURRENCY,
    MAX_BATCH_SIZE,
    CaseLinkerConfig,
    ConfigError,
    region_partition,
)

DOMAIN = "11111111-2222-3333-4444-555555555555"
ARN = "arn:aws:connect:us-east-1:123456789012:instance/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
REQUIRED = {"casesDomainId": DOMAIN, "connectInstanceArn": ARN}


def config(**context: Any) -> CaseLinkerConfig:
    return CaseLinkerConfig.from_context({**REQUIRED, **context})


def config_or_reject(**context: Any) -> CaseLinkerConfig:
    """For property tests: the config, or hypothesis discards the example when the context is invalid."""
    try:
        return config(**context)
    except ConfigError:
        reject()


def problems_for(**context: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        CaseLinkerConfig.from_context({**REQUIRED, **context})
    return str(raised.value)


# --- required keys -------------------------------------------------------------------------------------
def test_missing_required_keys_are_all_named_in_one_error() -> None:
    with pytest.raises(ConfigError) as raised:
        CaseLinkerConfig.from_context({})
    assert raised.value.problems == ("casesDomainId is required", "connectInstanceArn is required")
    assert "-c casesDomainId=" in str(raised.value)


def test_blank_required_values_count_as_missing() -> None:
    with pytest.raises(ConfigError, match="casesDomainId is required"):
        CaseLinkerConfig.from_context({"casesDomainId": "  ", "connectInstanceArn": ARN})


@pytest.mark.parametrize("name", ["my_stack", "1stack", "stack name", "x" * 129])
def test_a_stack_name_cloudformation_would_refuse_is_named_with_the_other_problems(name: str) -> None:
    text = problems_for(stackName=name, maxConcurrency="two")
    assert "stackName" in text
    assert "maxConcurrency" in text


def test_a_valid_stack_name_is_accepted() -> None:
    assert config(stackName="CaseLinker-staging2") is not None


def test_parse_problems_and_field_problems_are_reported_together() -> None:
    with pytest.raises(ConfigError) as raised:
        CaseLinkerConfig.from_context({"maxConcurrency": "two", "removalPolicy": "keep"})
    assert raised.value.problems == (
        "casesDomainId is required",
        "connectInstanceArn is required",
        "maxConcurrency must be a whole number, got 'two'",
        "removalPolicy must be 'retain' or 'destroy', got 'keep'",
    )


@pytest.mark.parametrize(
    "arn",
    [
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "arn:aws:connect:us-east-1:123456789012:instance/",
        "arn:aws:connect:us-east-1:1234:instance/abc",
        "arn:aws:cases:us-east-1:123456789012:instance/abc",
        f"{ARN}/contact/abc",
    ],
)
def test_a_malformed_instance_arn_is_rejected(arn: str) -> None:
    assert "connectInstanceArn must look like arn:aws:connect:" in problems_for(connectInstanceArn=arn)


@pytest.mark.parametrize(
    ("arn", "named"),
    [
        ("arn:aws-cn:connect:us-east-1:123456789012:instance/abc", "partition aws-cn"),
        ("arn:aws:connect:cn-north-1:123456789012:instance/abc", "Region cn-north-1"),
        ("arn:aws:connect:us-gov-west-1:123456789012:instance/abc", "Region us-gov-west-1"),
        ("arn:awsx:connect:us-east-1:123456789012:instance/abc", "partition awsx"),
    ],
)
def test_an_instance_arn_whose_partition_is_not_its_regions_is_rejected(arn: str, named: str) -> None:
    # The rule would match no event (Connect's events carry the real partition) and the grants no contact.
    text = problems_for(connectInstanceArn=arn)
    assert "connectInstanceArn" in text
    assert named in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws-us-gov:connect:us-gov-west-1:123456789012:instance/abc",
        "arn:aws:connect:ap-southeast-2:123456789012:instance/abc",
    ],
)
def test_an_instance_arn_in_its_regions_partition_is_accepted(arn: str) -> None:
    assert config(connectInstanceArn=arn).connect_instance_partition == arn.split(":")[1]


def test_the_partition_of_every_region_botocore_knows_is_botocores() -> None:
    # infra/config.py stays standard-library only, so it writes the partitions out; botocore's data is the truth.
    endpoints = botocore.session.get_session().get_data("endpoints")
    regions = {region: p["partition"] for p in endpoints["partitions"] for region in p["regions"]}
    assert len(regions) > 30
    assert {region: region_partition(region) for region in regions} == regions


@pytest.mark.parametrize("domain", ["a/b", "x" * 501, "has space"])
def test_a_malformed_domain_id_is_rejected(domain: str) -> None:
    assert "casesDomainId must be a Cases domain id" in problems_for(casesDomainId=domain)


# --- optional keys: defaults ----------------------------------------------------------------------------
def test_defaults_follow_the_documented_contract() -> None:
    defaults = config()
    assert defaults.case_id_attribute == "caseId"
    assert defaults.contact_event_types == ("COMPLETED",)
    assert defaults.max_concurrency == 2
    assert defaults.cases_requests_per_second == 2.0
    assert defaults.batch_size == 10
    assert defaults.alarm_email is None
    assert defaults.removal_policy == "retain"
    assert defaults.request_event_source is None
    assert defaults.performed_by == "case-linker"


def test_the_instance_arn_is_split_into_its_parts() -> None:
    parsed = config()
    assert parsed.connect_instance_id == "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    assert parsed.connect_instance_region == "us-east-1"
    assert parsed.connect_instance_account == "123456789012"
    assert parsed.contact_arn_pattern == f"{ARN}/contact/*"
    assert parsed.agent_arn_pattern == f"{ARN}/agent/*"


# --- optional keys: strings from `-c` and JSON values from cdk.json --------------------------------------
def test_numbers_given_as_cli_strings_are_parsed() -> None:
    parsed = config(maxConcurrency="4", casesRequestsPerSecond="10.5", batchSize="5")
    assert (parsed.max_concurrency, parsed.cases_requests_per_second, parsed.batch_size) == (4, 10.5, 5)


def test_numbers_given_as_json_values_are_accepted() -> None:
    parsed = config(maxConcurrency=3, casesRequestsPerSecond=6, batchSize=1)
    assert (parsed.max_concurrency, parsed.cases_requests_per_second, parsed.batch_size) == (3, 6.0, 1)


def test_event_types_are_upper_cased_and_deduplicated_in_order() -> None:
    assert config(contactEventTypes="completed, DISCONNECTED,completed").contact_event_types == (
        "COMPLETED",
        "DISCONNECTED",
    )
    assert config(contactEventTypes=["DISCONNECTED", "COMPLETED"]).contact_event_types == (
        "DISCONNECTED",
        "COMPLETED",
    )


def test_removal_policy_is_case_insensitive() -> None:
    assert config(removalPolicy="DESTROY").removal_policy == "destroy"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"maxConcurrency": str(ESM_MIN_CONCURRENCY - 1)}, "maxConcurrency must be 2..1000"),
        ({"maxConcurrency": ESM_MAX_CONCURRENCY + 1}, "maxConcurrency must be 2..1000"),
        ({"maxConcurrency": "2.5"}, "maxConcurrency must be a whole number"),
        ({"maxConcurrency": True}, "maxConcurrency must be a whole number"),
        ({"casesRequestsPerSecond": "0"}, "casesRequestsPerSecond must be above 0"),
        ({"casesRequestsPerSecond": "fast"}, "casesRequestsPerSecond must be a number"),
        ({"casesRequestsPerSecond": "nan"}, "casesRequestsPerSecond must be above 0"),
        ({"batchSize": "0"}, f"batchSize must be 1..{MAX_BATCH_SIZE}"),
        ({"batchSize": MAX_BATCH_SIZE + 1}, f"batchSize must be 1..{MAX_BATCH_SIZE}"),
        ({"contactEventTypes": ","}, "contactEventTypes must name at least one event type"),
        ({"contactEventTypes": "COMPLETED;QUEUED"}, "is not an event type name"),
        (
            {"contactEventTypes": {"COMPLETED": 1}},
            "contactEventTypes must be a comma-separated string or a list",
        ),
        ({"alarmEmail": "oncall"}, "alarmEmail must be an email address"),
        ({"removalPolicy": "snapshot"}, "removalPolicy must be 'retain' or 'destroy'"),
        ({"requestEventSource": "aws.connect"}, "requestEventSource must be your own event source"),
        ({"requestEventSource": "has space"}, "requestEventSource must be your own event source"),
        ({"performedBy": "pipe|not|allowed"}, "performedBy must be 'agent' or a Cases customEntity"),
        ({"performedBy": "Agent"}, "performedBy 'Agent' is not 'agent'"),
        ({"caseIdAttribute": "x" * 200}, "caseIdAttribute must be a contact attribute name"),
    ],
)
def test_a_malformed_optional_value_is_rejected_with_its_key_named(
    context: dict[str, Any], message: str
) -> None:
    assert message in problems_for(**context)


def test_a_batch_that_cannot_finish_in_fifteen_minutes_is_rejected() -> None:
    message = problems_for(batchSize="100", maxConcurrency="1000", casesRequestsPerSecond="2")
    assert "cannot finish in 900 s" in message


# --- derived values -------------------------------------------------------------------------------------
def test_cases_max_rps_is_the_account_quota_shared_by_the_maximum_concurrency() -> None:
    assert config().cases_max_rps == 1.0
    assert config(maxConcurrency="4", casesRequestsPerSecond="10").cases_max_rps == 2.5


def test_the_default_function_timeout_fits_a_paced_batch_with_retry_headroom() -> None:
    # 10 records x 2 Cases calls at 1 req/s = 20 s paced; at 40% of that rate (a co-tenant using 60% of the
    # quota) 50 s, + 30 s headroom = 80 s.
    assert config().function_timeout_seconds == 80


def test_a_batch_slower_than_the_slack_allows_gets_lambdas_longest_timeout_not_a_refusal() -> None:
    # 10 records x 2 calls at 0.04 req/s = 500 s paced: 1.5x (780 s with headroom) fits in 900 s, 2.5x does not
    parsed = config(maxConcurrency="50")
    assert parsed.paced_batch_seconds == 500
    assert parsed.function_timeout_seconds == 900
    with pytest.raises(ConfigError, match="batchSize 10 cannot finish in 900 s"):
        config(maxConcurrency="60")


@pytest.mark.parametrize(
    "context",
    [{}, {"batchSize": "1"}, {"batchSize": "50", "casesRequestsPerSecond": "20"}, {"maxConcurrency": "10"}],
)
def test_the_function_timeout_always_covers_a_full_batch_at_the_paced_rate(context: dict[str, str]) -> None:
    parsed = config(**context)
    paced_seconds = parsed.batch_size * 2 / parsed.cases_max_rps
    assert paced_seconds < parsed.function_timeout_seconds <= 900


@pytest.mark.parametrize("context", [{}, {"batchSize": "50"}, {"maxConcurrency": "10"}])
def test_visibility_timeout_is_at_least_six_function_timeouts_plus_the_batching_window(
    context: dict[str, str],
) -> None:
    parsed = config(**context)
    assert (
        parsed.visibility_timeout_seconds
        >= 6 * parsed.function_timeout_seconds + parsed.batching_window_seconds
    )


def test_max_receive_count_leaves_room_for_throttling_bursts() -> None:
    # AWS recommends at least 5 for Lambda event sources; each throttled hand-back costs one receive.
    assert config().max_receive_count >= 5


def test_dead_letter_queues_keep_messages_fourteen_days() -> None:
    assert config().dlq_retention_seconds == 14 * 24 * 3600


def test_the_rule_target_retries_for_the_maximum_event_age() -> None:
    parsed = config()
    assert parsed.rule_target_max_event_age_seconds == 24 * 3600
    assert parsed.rule_target_retry_attempts == 185


def test_the_contact_event_pattern_matches_the_instance_and_the_configured_types() -> None:
    assert config(contactEventTypes="COMPLETED,DISCONNECTED").contact_event_pattern == {
        "source": ["aws.connect"],
        "detail-type": ["Amazon Connect Contact Event"],
        "detail": {"eventType": ["COMPLETED", "DISCONNECTED"], "instanceArn": [ARN]},
    }


def test_the_request_pattern_exists_only_when_a_source_is_configured() -> None:
    assert config().request_event_pattern is None
    assert config(requestEventSource="com.example.crm").request_event_pattern == {
        "source": ["com.example.crm"],
        "detail-type": ["Case Related Item Request"],
    }


def test_the_lambda_environment_carries_exactly_the_linkers_variables() -> None:
    parsed = config(
        contactEventTypes="COMPLETED,DISCONNECTED", caseIdAttribute="linkedCase", performedBy="agent"
    )
    assert parsed.lambda_environment(
        dead_letter_queue_url="https://dlq", idempotency_table_name="table", main_queue_url="https://main"
    ) == {
        "CASES_DOMAIN_ID": DOMAIN,
        "CASE_ID_ATTRIBUTE": "linkedCase",
        "CONTACT_EVENT_TYPES": "COMPLETED,DISCONNECTED",
        "CONNECT_INSTANCE_ARN": ARN,
        "DEAD_LETTER_QUEUE_URL": "https://dlq",
        "IDEMPOTENCY_TABLE_NAME": "table",
        "MAIN_QUEUE_URL": "https://main",
        "MAX_RECEIVE_COUNT": "10",
        "PERFORMED_BY": "agent",
        "CASES_MAX_RPS": "1",
        "CASES_MAX_BURST": "5",
        "CASES_QUOTA_RPS": "2",
        "CASES_QUOTA_BURST": "10",
        "CASES_BUDGET": "shared",
        "POWERTOOLS_SERVICE_NAME": "case-linker",
        "POWERTOOLS_METRICS_NAMESPACE": "CaseLinker",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


@pytest.mark.parametrize(
    ("rate", "burst"), [("12345.67", "10"), ("1.9999996", "12.3456789"), ("2", "1234567.8")]
)
def test_the_shared_budgets_quota_and_burst_are_never_written_above_the_accounts(
    rate: str, burst: str
) -> None:
    # The fleet-wide budget never goes above the configured quota: what the function reads must not either
    # (rounded to nearest, 12345.67 was written 12345.7).
    environment = config(casesRequestsPerSecond=rate, casesBurst=burst).budget_environment()
    assert Fraction(environment["CASES_QUOTA_RPS"]) <= Fraction(rate)
    assert Fraction(environment["CASES_QUOTA_BURST"]) <= Fraction(burst)
    assert Fraction(environment["CASES_QUOTA_RPS"]) >= Fraction(rate) * (1 - Fraction(1, 10**5))


def test_each_environment_gets_its_share_of_the_account_burst_even_below_one() -> None:
    assert config().cases_max_burst == 5.0
    assert config(maxConcurrency="4", casesBurst="20").cases_max_burst == 5.0
    # 50 environments, an account burst of 10: a share of 0.2 each (the old floor of 1 let the fleet burst 50).
    assert config(maxConcurrency="50").cases_max_burst == 0.2


def test_with_twenty_environments_and_a_burst_of_ten_the_fleet_bursts_ten() -> None:
    # The case issue 13 names: the floor of one token per environment let this fleet burst 20.
    environment = config(maxConcurrency="20", casesBurst="10").lambda_environment(
        dead_letter_queue_url="u", idempotency_table_name="t", main_queue_url="q"
    )
    assert Fraction(environment["CASES_MAX_BURST"]) * 20 == 10


@settings(max_examples=300, deadline=None)
@given(
    max_concurrency=st.integers(min_value=ESM_MIN_CONCURRENCY, max_value=ESM_MAX_CONCURRENCY),
    burst=st.floats(min_value=1, max_value=100_000, allow_nan=False, allow_infinity=False),
    rate=st.floats(min_value=0.01, max_value=100_000, allow_nan=False, allow_infinity=False),
)
def test_the_fleet_never_bursts_or_paces_above_the_account(
    max_concurrency: int, burst: float, rate: float
) -> None:
    # GIVEN any valid context (a batch of one, so a low per-environment rate still fits the 15-minute limit)
    parsed = config_or_reject(
        maxConcurrency=max_concurrency, casesBurst=burst, casesRequestsPerSecond=rate, batchSize=1
    )
    # WHEN every environment the event source may run reads the values the stack writes
    environment = parsed.lambda_environment(
        dead_letter_queue_url="u", idempotency_table_name="t", main_queue_url="q"
    )
    share_burst, share_rate = Fraction(environment["CASES_MAX_BURST"]), Fraction(environment["CASES_MAX_RPS"])
    # The account's figures as decimals, the way a person writes them in the context.
    account_burst, account_rate = Fraction(repr(burst)), Fraction(repr(rate))
    # THEN together they never burst or pace above the account (exact arithmetic on the written decimals)
    assert share_burst > 0
    assert share_rate > 0
    assert share_burst * max_concurrency <= account_burst
    assert share_rate * max_concurrency <= account_rate
    # ... and lose less than 1e-5 of the account's budget to rounding
    assert share_burst * max_concurrency > account_burst * Fraction(99_999, 100_000)
    assert share_rate * max_concurrency > account_rate * Fraction(99_999, 100_000)


# --- backlog, retention and the backlog alarm -----------------------------------------------------------
def test_the_fleet_drains_a_backlog_at_the_quota_counting_two_cases_calls_per_contact() -> None:
    # Default quota 2 req/s per API, two calls per contact counted against it: 1 contact/s for the fleet.
    assert config().drain_rate_contacts_per_second == 1.0
    assert config().drain_seconds(3_600) == 3_600
    assert config(casesRequestsPerSecond="10").drain_seconds(3_600) == 720


def test_the_main_queue_keeps_messages_seven_days() -> None:
    assert config().main_queue_retention_seconds == 7 * 24 * 3600


def test_a_message_moved_to_a_dlq_keeps_a_week_there_to_be_replayed() -> None:
    # SQS keeps a message's first enqueue time when it moves it to a DLQ: the DLQ must keep it longer.
    parsed = config()
    assert parsed.dlq_retention_seconds - parsed.main_queue_retention_seconds >= 7 * 24 * 3600


def test_the_backlog_alarm_fires_once_a_message_waited_longer_than_its_retries_can_take() -> None:
    parsed = config()
    assert parsed.oldest_message_alarm_seconds == parsed.max_receive_count * parsed.visibility_timeout_seconds
    assert parsed.oldest_message_alarm_seconds == 4_800


def test_the_backlog_figures_at_the_default_quota() -> None:
    parsed = config()
    assert parsed.backlog_when_alarm_fires == 4_800  # contacts queued at once that make the alarm fire
    assert parsed.largest_backlog_before_expiry == 604_800  # 7 days at 1 contact/s
    assert parsed.expiry_margin_seconds == 7 * 24 * 3600 - 4_800


def test_a_backlog_is_described_by_its_drain_time_alarm_and_margin() -> None:
    parsed = config()
    small = parsed.backlog(1_000)
    assert (small.drain_seconds, small.alarm_after_seconds, small.expired_contacts) == (1_000, None, 0)
    assert small.margin_seconds == 7 * 24 * 3600 - 1_000
    large = parsed.backlog(1_000_000)
    assert (large.alarm_after_seconds, large.expired_contacts) == (4_800, 1_000_000 - 604_800)
    assert large.margin_seconds < 0


@settings(max_examples=200, deadline=None)
@given(
    max_concurrency=st.integers(min_value=ESM_MIN_CONCURRENCY, max_value=ESM_MAX_CONCURRENCY),
    rate=st.floats(min_value=0.01, max_value=10_000, allow_nan=False, allow_infinity=False),
    batch_size=st.integers(min_value=1, max_value=MAX_BATCH_SIZE),
)
def test_the_backlog_alarm_always_fires_days_before_sqs_deletes_a_message(
    max_concurrency: int, rate: float, batch_size: int
) -> None:
    parsed = config_or_reject(
        maxConcurrency=max_concurrency, casesRequestsPerSecond=rate, batchSize=batch_size
    )
    assert parsed.expiry_margin_seconds >= 6 * 24 * 3600
    assert parsed.dlq_retention_seconds > parsed.main_queue_retention_seconds


def test_a_burst_below_one_is_rejected_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="casesBurst"):
        config(casesBurst="0.5")


def test_a_fractional_rate_is_written_without_losing_precision() -> None:
    rate = config(maxConcurrency="3").lambda_environment(
        dead_letter_queue_url="u", idempotency_table_name="t", main_queue_url="q"
    )
    assert float(rate["CASES_MAX_RPS"]) == pytest.approx(2 / 3, rel=1e-5)


# --- the sweeper's keys ------------------------------------------------------------------------------------
def test_the_sweeper_defaults_follow_the_issue() -> None:
    defaults = config()
    assert defaults.sweeper_enabled is True
    assert (defaults.sweep_interval_minutes, defaults.sweep_window_minutes, defaults.sweep_lag_minutes) == (
        15,
        60,
        15,
    )
    assert defaults.connect_search_requests_per_second == 0.5
    assert defaults.follow_contact_chain is True


@pytest.mark.parametrize(
    ("raw", "expected"), [("false", False), ("TRUE", True), (False, False), (True, True)]
)
def test_sweeper_switches_accept_cli_strings_and_json_booleans(raw: Any, expected: bool) -> None:
    parsed = config(sweeperEnabled=raw, followContactChain=raw)
    assert (parsed.sweeper_enabled, parsed.follow_contact_chain) == (expected, expected)


def test_the_sweeper_environment_carries_exactly_its_contract() -> None:
    parsed = config(sweepWindowMinutes="90", sweepLagMinutes="0", connectSearchRequestsPerSecond="0.25")
    assert parsed.sweeper_environment(main_queue_url="https://main", idempotency_table_name="table") == {
        "CONNECT_INSTANCE_ARN": ARN,
        "MAIN_QUEUE_URL": "https://main",
        "IDEMPOTENCY_TABLE_NAME": "table",
        "CASES_DOMAIN_ID": DOMAIN,
        "CASE_ID_ATTRIBUTE": "caseId",
        "SWEEP_WINDOW_MINUTES": "90",
        "SWEEP_LAG_MINUTES": "0",
        "CONNECT_SEARCH_RPS": "0.25",
        "FOLLOW_CONTACT_CHAIN": "true",
        "CASES_QUOTA_RPS": "2",
        "CASES_QUOTA_BURST": "10",
        "CASES_BUDGET": "shared",
        "POWERTOOLS_SERVICE_NAME": "case-linker",
        "POWERTOOLS_METRICS_NAMESPACE": "CaseLinker",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_the_sweeper_draws_on_the_linkers_budget_only_while_it_follows_chains() -> None:
    # Chain look-ups are its only Cases calls: the same quota as the linker's, or none at all
    raised = config(casesRequestsPerSecond="5", casesBurst="20")
    linker = raised.lambda_environment(
        dead_letter_queue_url="https://dlq", idempotency_table_name="table", main_queue_url="https://main"
    )
    sweeper = raised.sweeper_environment(main_queue_url="https://main", idempotency_table_name="table")
    budget = ("CASES_QUOTA_RPS", "CASES_QUOTA_BURST", "CASES_BUDGET")
    assert {name: sweeper[name] for name in budget} == {name: linker[name] for name in budget}
    chains_off = config(followContactChain="false").sweeper_environment(
        main_queue_url="https://main", idempotency_table_name="table"
    )
    assert not set(budget) & set(chains_off)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"sweeperEnabled": "maybe"}, "sweeperEnabled must be true or false"),
        ({"followContactChain": 1}, "followContactChain must be true or false"),
        ({"sweepIntervalMinutes": "0"}, "sweepIntervalMinutes must be 1..480 minutes"),
        (
            {"sweepIntervalMinutes": "481", "sweepWindowMinutes": "1440"},
            "sweepIntervalMinutes must be 1..480",
        ),
        ({"sweepIntervalMinutes": "5.5"}, "sweepIntervalMinutes must be a whole number"),
        ({"sweepWindowMinutes": "1441"}, "sweepWindowMinutes must be 2..1440 minutes"),
        ({"sweepLagMinutes": "-1"}, "sweepLagMinutes must be 0..1440 minutes"),
        ({"connectSearchRequestsPerSecond": "0"}, "connectSearchRequestsPerSecond must be above 0"),
        ({"connectSearchRequestsPerSecond": "slow"}, "connectSearchRequestsPerSecond must be a number"),
        ({"sweepIntervalMinutes": "40"}, "must be at least twice sweepIntervalMinutes"),
        (
            {"connectSearchRequestsPerSecond": "0.01", "sweepIntervalMinutes": "1"},
            "cannot read one SearchContacts page in a 60 s run",
        ),
    ],
)
def test_a_malformed_sweeper_value_is_rejected_with_its_key_named(
    context: dict[str, Any], message: str
) -> None:
    assert message in problems_for(**context)


@settings(max_examples=200, deadline=None)
@given(
    interval=st.integers(min_value=1, max_value=720),
    window=st.integers(min_value=2, max_value=1440),
    rate=st.floats(min_value=0.001, max_value=100, allow_nan=False, allow_infinity=False),
)
def test_every_accepted_sweep_covers_each_contact_twice_and_reads_a_page(
    interval: int, window: int, rate: float
) -> None:
    parsed = config_or_reject(
        sweepIntervalMinutes=interval, sweepWindowMinutes=window, connectSearchRequestsPerSecond=rate
    )
    # Each finished contact falls in the windows of at least two runs: a failed run is covered by the next.
    assert parsed.sweep_window_minutes >= 2 * parsed.sweep_interval_minutes
    # A run never outlasts the interval, and can always read at least one page before its deadline.
    assert parsed.sweeper_timeout_seconds <= parsed.sweep_interval_seconds
    assert parsed.sweeper_search_pages_per_run >= 1
    # The sweeper's alarms look back three intervals at most: inside CloudWatch's one-day evaluation range.
    assert 3 * parsed.sweep_interval_seconds <= 24 * 3600
    # A queued run expires within Lambda's bounds, and never before the next run is due unless Lambda's cap hits.
    assert 60 <= parsed.sweeper_max_event_age_seconds <= 6 * 3600
    assert parsed.sweeper_max_event_age_seconds == min(6 * 3600, parsed.sweep_interval_seconds)


def test_config_is_immutable() -> None:
    parsed = config()
    with pytest.raises(AttributeError):
        parsed.batch_size = 5  # type: ignore[misc]


def test_every_context_key_is_documented_in_the_readme() -> None:
    guide = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert [key for key in CONTEXT_KEYS if f"`{key}`" not in guide] == []


def test_config_module_does_not_import_the_cdk() -> None:
    # The local pipeline imports it without aws-cdk-lib's start-up cost.
    source = (Path(__file__).resolve().parents[2] / "infra" / "config.py").read_text()
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
    }
    assert not imported & {"aws_cdk", "constructs", "cdk_nag"}
