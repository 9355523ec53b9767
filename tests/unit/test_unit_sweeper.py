"""The sweeper's settings and the message it writes: pure code, no network."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import botocore
import pytest
from case_linker.contact_search import found_contact
from case_linker.mapping import LinkContact, classify
from case_linker.settings import Settings, SettingsError, SweeperSettings
from case_linker.sweeper import contact_message

INSTANCE_ARN = "arn:aws:connect:eu-west-2:123456789012:instance/11111111-2222-3333-4444-555555555555"
REQUIRED = {
    "CONNECT_INSTANCE_ARN": INSTANCE_ARN,
    "MAIN_QUEUE_URL": "https://sqs.eu-west-2.amazonaws.com/123456789012/case-linker-main",
    "IDEMPOTENCY_TABLE_NAME": "case-linker-idempotency",
    "CASES_DOMAIN_ID": "9f8e7d6c-5b4a-4392-8e1f-0a1b2c3d4e5f",
}


def test_given_the_required_variables_when_loaded_then_the_documented_defaults_apply() -> None:
    settings = SweeperSettings.from_env(REQUIRED)

    assert settings.instance_id == "11111111-2222-3333-4444-555555555555"
    assert (settings.window_minutes, settings.lag_minutes) == (60, 15)
    assert settings.connect_search_rps == 0.5
    assert settings.follow_contact_chain is True
    assert settings.case_id_attribute == "caseId"


def test_given_every_variable_when_loaded_then_each_is_parsed() -> None:
    settings = SweeperSettings.from_env(
        {
            **REQUIRED,
            "CASE_ID_ATTRIBUTE": "ticket",
            "SWEEP_WINDOW_MINUTES": "120",
            "SWEEP_LAG_MINUTES": "0",
            "CONNECT_SEARCH_RPS": "0.25",
            "FOLLOW_CONTACT_CHAIN": "FALSE",
        }
    )

    assert settings.case_id_attribute == "ticket"
    assert (settings.window_minutes, settings.lag_minutes) == (120, 0)
    assert settings.connect_search_rps == 0.25
    assert settings.follow_contact_chain is False


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"CONNECT_INSTANCE_ARN": ""}, "CONNECT_INSTANCE_ARN"),
        ({"CONNECT_INSTANCE_ARN": "arn:aws:connect:eu-west-2:1:instance/x"}, "CONNECT_INSTANCE_ARN"),
        ({"MAIN_QUEUE_URL": ""}, "MAIN_QUEUE_URL"),
        ({"MAIN_QUEUE_URL": "case-linker-main"}, "MAIN_QUEUE_URL"),
        ({"IDEMPOTENCY_TABLE_NAME": ""}, "IDEMPOTENCY_TABLE_NAME"),
        ({"CASES_DOMAIN_ID": ""}, "CASES_DOMAIN_ID"),
        ({"SWEEP_WINDOW_MINUTES": "0"}, "SWEEP_WINDOW_MINUTES"),
        ({"SWEEP_WINDOW_MINUTES": "1441"}, "SWEEP_WINDOW_MINUTES"),
        ({"SWEEP_WINDOW_MINUTES": "1.5"}, "SWEEP_WINDOW_MINUTES"),
        ({"SWEEP_WINDOW_MINUTES": "\u00b2"}, "SWEEP_WINDOW_MINUTES"),
        ({"SWEEP_LAG_MINUTES": "\u00b9"}, "SWEEP_LAG_MINUTES"),
        ({"SWEEP_LAG_MINUTES": "-1"}, "SWEEP_LAG_MINUTES"),
        ({"CONNECT_SEARCH_RPS": "fast"}, "CONNECT_SEARCH_RPS"),
        ({"CONNECT_SEARCH_RPS": "0"}, "CONNECT_SEARCH_RPS"),
        ({"CONNECT_SEARCH_RPS": "nan"}, "CONNECT_SEARCH_RPS"),
        ({"CONNECT_SEARCH_RPS": "1e-300"}, "CONNECT_SEARCH_RPS"),  # not one search in a run: never a sweep
        ({"FOLLOW_CONTACT_CHAIN": "yes please"}, "FOLLOW_CONTACT_CHAIN"),
        ({"CASE_ID_ATTRIBUTE": "x" * 129}, "CASE_ID_ATTRIBUTE"),
    ],
)
def test_given_a_missing_or_malformed_variable_when_loaded_then_the_error_names_it(
    changes: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingsError) as error:
        SweeperSettings.from_env({**REQUIRED, **changes})

    assert str(error.value).startswith(variable)


def test_given_the_cases_quota_when_loaded_then_chain_look_ups_draw_on_the_fleets_shared_budget() -> None:
    settings = SweeperSettings.from_env({**REQUIRED, "CASES_QUOTA_RPS": "2", "CASES_QUOTA_BURST": "10"})

    assert (settings.cases_quota_rps, settings.cases_quota_burst) == (2.0, 10.0)
    assert SweeperSettings.from_env(REQUIRED).cases_quota_rps is None
    local = SweeperSettings.from_env({**REQUIRED, "CASES_QUOTA_RPS": "2", "CASES_BUDGET": "local"})
    assert local.cases_quota_rps is None
    with pytest.raises(SettingsError) as error:
        SweeperSettings.from_env({**REQUIRED, "CASES_QUOTA_RPS": "lots"})
    assert str(error.value).startswith("CASES_QUOTA_RPS")


def test_given_chains_off_when_no_domain_is_set_then_the_sweeper_needs_none() -> None:
    environment = {k: v for k, v in REQUIRED.items() if k != "CASES_DOMAIN_ID"}

    settings = SweeperSettings.from_env({**environment, "FOLLOW_CONTACT_CHAIN": "false"})

    assert settings.cases_domain_id is None


# --- the message ----------------------------------------------------------------------------------------------


def summary(**extra: object) -> dict[str, object]:
    return {
        "Id": "c-2",
        "InitialContactId": "c-1",
        "PreviousContactId": "c-1",
        "Channel": "VOICE",
        "InitiationMethod": "TRANSFER",
        "InitiationTimestamp": dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC),
        "DisconnectTimestamp": dt.datetime(2026, 11, 30, 9, 7, 30, tzinfo=dt.UTC),
        "AgentInfo": {"Id": "agent-7"},
        "QueueInfo": {"Id": "queue-3"},
        "Tags": {"caseId": "case-9", "aws:connect:instanceId": "i"},
        **extra,
    }


def test_given_a_search_result_when_made_a_message_then_it_is_the_completed_event_connect_would_have_sent() -> (
    None
):
    contact = found_contact(summary())

    body = json.loads(
        contact_message(
            contact,
            instance_arn=INSTANCE_ARN,
            source="case-linker.sweeper",
            now=dt.datetime(2026, 11, 30, 10, tzinfo=dt.UTC),
            chain_case_id="case-1",
        )
    )

    assert body["source"] == "case-linker.sweeper"
    assert body["detail-type"] == "Amazon Connect Contact Event"
    assert (body["region"], body["account"], body["time"]) == (
        "eu-west-2",
        "123456789012",
        "2026-11-30T10:00:00.000Z",
    )
    assert body["resources"] == [INSTANCE_ARN, f"{INSTANCE_ARN}/contact/c-2"]
    assert body["detail"] == {
        "eventType": "COMPLETED",
        "contactId": "c-2",
        "initialContactId": "c-1",
        "previousContactId": "c-1",
        "channel": "VOICE",
        "instanceArn": INSTANCE_ARN,
        "initiationMethod": "TRANSFER",
        "initiationTimestamp": "2026-11-30T09:00:00.000Z",
        "disconnectTimestamp": "2026-11-30T09:07:30.000Z",
        "agentInfo": {"agentArn": f"{INSTANCE_ARN}/agent/agent-7"},
        "queueInfo": {"queueArn": f"{INSTANCE_ARN}/queue/queue-3"},
        "tags": {"caseId": "case-9", "aws:connect:instanceId": "i"},
        "chainCaseId": "case-1",
    }


def test_given_the_sweepers_message_when_the_linker_reads_it_then_it_is_a_contact_to_link_from_the_sweeper() -> (
    None
):
    settings = Settings(cases_domain_id="d", dead_letter_queue_url="https://q", idempotency_table_name="tbl")
    body = contact_message(
        found_contact(summary()),
        instance_arn=INSTANCE_ARN,
        source="case-linker.backfill",
        now=dt.datetime.now(dt.UTC),
    )

    decision = classify(body, settings)

    assert isinstance(decision, LinkContact)
    assert decision.origin == "backfill"
    assert decision.tag_case_id == "case-9"


def test_given_a_chains_first_contact_when_read_then_it_names_no_other_contact_of_its_chain() -> None:
    first = found_contact(summary(Id="c-1", InitialContactId=None, PreviousContactId=None))
    callback = found_contact(summary(Id="c-3", InitialContactId=None, PreviousContactId="c-2"))

    assert first.initial_contact_id == "c-1"
    assert first.chain == ()
    assert found_contact(summary()).chain == ("c-1",)
    assert callback.chain == ("c-2",)


def test_the_shipped_connect_model_is_the_pinned_botocores_and_lists_contact_tags() -> None:
    shipped = (
        Path(__file__).resolve().parents[2]
        / "functions/case_linker/data/connect/2017-08-08/service-2.json.gz"
    )
    pinned = Path(botocore.__file__).parent / "data/connect/2017-08-08/service-2.json.gz"
    model = json.loads(gzip.decompress(shipped.read_bytes()))

    assert model == json.loads(gzip.decompress(pinned.read_bytes()))
    assert "Tags" in model["shapes"]["ContactSearchSummary"]["members"]
