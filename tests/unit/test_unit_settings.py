"""Settings: defaults, parsing, and fail-fast errors that name the variable."""

from __future__ import annotations

import pytest
from case_linker.settings import ENVIRONMENT_VARIABLES, Settings, SettingsError

REQUIRED = {
    "CASES_DOMAIN_ID": "9f8e7d6c-5b4a-4392-8e1f-0a1b2c3d4e5f",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/case-linker-dlq",
    "IDEMPOTENCY_TABLE_NAME": "case-linker-idempotency",
}


def test_given_only_required_variables_when_loaded_then_documented_defaults_apply() -> None:
    settings = Settings.from_env(REQUIRED)

    assert settings.cases_domain_id == REQUIRED["CASES_DOMAIN_ID"]
    assert settings.case_id_attribute == "caseId"
    assert settings.contact_event_types == frozenset({"COMPLETED"})
    assert settings.performed_by_entity == "case-linker"
    assert settings.performed_by_agent is False
    assert settings.cases_max_rps == 2.0


def test_given_every_variable_when_loaded_then_each_is_parsed() -> None:
    env = {
        **REQUIRED,
        "CASE_ID_ATTRIBUTE": "ticket",
        "CONTACT_EVENT_TYPES": " completed, DISCONNECTED ,",
        "PERFORMED_BY": "crm bot",
        "CASES_MAX_RPS": "0.5",
        "CASES_MAX_BURST": "5",
    }

    settings = Settings.from_env(env)

    assert settings.case_id_attribute == "ticket"
    assert settings.contact_event_types == frozenset({"COMPLETED", "DISCONNECTED"})
    assert settings.performed_by_entity == "crm bot"
    assert settings.cases_max_rps == 0.5
    assert settings.cases_max_burst == 5.0


def test_given_performed_by_agent_when_loaded_then_agent_mode_with_default_fallback_entity() -> None:
    settings = Settings.from_env({**REQUIRED, "PERFORMED_BY": "agent"})

    assert settings.performed_by_agent is True
    assert settings.performed_by_entity == "case-linker"


@pytest.mark.parametrize("value", ["AGENT", "Agent"])
def test_given_agent_in_another_case_when_loaded_then_it_is_refused_not_taken_as_a_custom_entity(
    value: str,
) -> None:
    with pytest.raises(SettingsError, match="PERFORMED_BY") as raised:
        Settings.from_env({**REQUIRED, "PERFORMED_BY": value})

    assert "'agent'" in str(raised.value)


def test_the_declared_variable_names_are_the_ones_read() -> None:
    assert set(ENVIRONMENT_VARIABLES) == {
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
    }


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_given_a_missing_required_variable_when_loaded_then_the_error_names_it(missing: str) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != missing}

    with pytest.raises(SettingsError, match=missing):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CASES_MAX_RPS", "fast"),
        ("CASES_MAX_RPS", "0"),
        ("CASES_MAX_RPS", "-1"),
        ("CASES_MAX_RPS", "nan"),
        ("CASES_MAX_RPS", "inf"),
        ("CASES_MAX_BURST", "0"),
        # What the stack refuses for the same values (casesDomainId, caseIdAttribute, contactEventTypes)
        ("CASES_DOMAIN_ID", "has space!*"),
        ("CASE_ID_ATTRIBUTE", "bad!attr"),
        ("CASE_ID_ATTRIBUTE", "x" * 128),
        ("CONTACT_EVENT_TYPES", "_X"),
        ("CONNECT_INSTANCE_ARN", "arn:aws:connect:us-east-1:123456789012:queue/x"),
        ("MAIN_QUEUE_URL", "case-linker-main"),
        ("MAX_RECEIVE_COUNT", "0"),
        ("MAX_RECEIVE_COUNT", "ten"),
        ("MAX_RECEIVE_COUNT", "\u00b2"),  # a digit to str.isdigit, not to int()
        (
            "MAX_RECEIVE_COUNT",
            "\u0661\u0660",
        ),  # Arabic-Indic digits: int() reads them, the stack never writes them
        ("CASES_MAX_BURST", "many"),
        ("CASES_MAX_BURST", "inf"),
        ("CONTACT_EVENT_TYPES", " , "),
        ("CONTACT_EVENT_TYPES", "COMPLETED;QUEUED"),
        ("PERFORMED_BY", "bad entity!"),
        ("PERFORMED_BY", "x" * 501),
        ("DEAD_LETTER_QUEUE_URL", "case-linker-dlq"),
        ("DEAD_LETTER_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/case-linker-dlq.fifo"),
        ("MAIN_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/case-linker.fifo"),
        ("IDEMPOTENCY_TABLE_NAME", "a b"),
        ("CASES_DOMAIN_ID", "x" * 501),
        ("CASE_ID_ATTRIBUTE", "x" * 129),
    ],
)
def test_given_a_malformed_variable_when_loaded_then_the_error_names_it(name: str, value: str) -> None:
    queue = {"MAIN_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/main"}
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({**REQUIRED, **queue, name: value})


def test_given_a_receive_count_without_the_main_queue_when_loaded_then_the_error_names_both() -> None:
    # Capacity hand-backs are re-sent to the main queue before maxReceiveCount; without its URL they would be
    # dead-lettered on the last delivery instead, which "throttling never dead-letters" rules out.
    with pytest.raises(SettingsError, match=r"MAX_RECEIVE_COUNT.*MAIN_QUEUE_URL"):
        Settings.from_env({**REQUIRED, "MAX_RECEIVE_COUNT": "10"})


def test_given_a_fraction_of_a_burst_when_loaded_then_it_is_kept_so_the_fleet_stays_within_the_account() -> (
    None
):
    assert Settings.from_env({**REQUIRED, "CASES_MAX_BURST": "0.5"}).cases_max_burst == 0.5


def test_given_the_instance_queue_and_receive_count_when_loaded_then_they_are_read() -> None:
    instance = "arn:aws:connect:us-east-1:123456789012:instance/4b3f5c2e-8d1a-4e6f-9a7b-2c1d0e9f8a7b"
    settings = Settings.from_env(
        {
            **REQUIRED,
            "CONNECT_INSTANCE_ARN": instance,
            "MAIN_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/main",
            "MAX_RECEIVE_COUNT": "10",
        }
    )
    assert (settings.connect_instance_arn, settings.max_receive_count) == (instance, 10)
    assert settings.main_queue_url == "https://sqs.us-east-1.amazonaws.com/123456789012/main"
    assert Settings.from_env(REQUIRED).connect_instance_arn is None


def test_given_the_account_quota_when_loaded_then_the_budget_is_shared_unless_told_local() -> None:
    shared = Settings.from_env({**REQUIRED, "CASES_QUOTA_RPS": "20", "CASES_QUOTA_BURST": "10"})
    local = Settings.from_env({**REQUIRED, "CASES_QUOTA_RPS": "20", "CASES_BUDGET": "local"})

    assert (shared.cases_quota_rps, shared.cases_quota_burst) == (20.0, 10.0)
    assert local.cases_quota_rps is None
    assert Settings.from_env(REQUIRED).cases_quota_rps is None


@pytest.mark.parametrize(
    ("name", "value"), [("CASES_BUDGET", "fleet"), ("CASES_QUOTA_RPS", "fast"), ("CASES_QUOTA_BURST", "0.5")]
)
def test_given_a_malformed_budget_setting_when_loaded_then_the_error_names_it(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({**REQUIRED, "CASES_QUOTA_RPS": "20", name: value})


@pytest.mark.parametrize(
    "env",
    [
        {"CASES_QUOTA_BURST": "abc"},  # a burst without a quota is a typo, not a setting to ignore
        {"CASES_QUOTA_BURST": "10"},
        {"CASES_BUDGET": "local", "CASES_QUOTA_RPS": "fast"},  # local ignores the quota, not a malformed one
        {"CASES_BUDGET": "local", "CASES_QUOTA_RPS": "20", "CASES_QUOTA_BURST": "0"},
    ],
)
def test_given_a_quota_setting_that_would_be_ignored_when_malformed_when_loaded_then_the_error_names_it(
    env: dict[str, str],
) -> None:
    with pytest.raises(SettingsError, match=r"CASES_QUOTA_(RPS|BURST)"):
        Settings.from_env({**REQUIRED, **env})


def test_given_a_quota_without_a_burst_when_loaded_then_the_default_account_burst_applies() -> None:
    assert Settings.from_env({**REQUIRED, "CASES_QUOTA_RPS": "2"}).cases_quota_burst == 10.0
