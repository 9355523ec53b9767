"""GIVEN seeded contacts, THEN Connect SearchContacts finds them by time range, channel, initiation method,
queue, agent, tags and searchable attributes, pages stably, counts, and throttles like AWS; DescribeContact
and ListAssociatedContacts tell the chain."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import Emulator
from emulator.contacts import ContactMix, generate_contacts
from tests.emulator.helpers import INSTANCE_ID

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
AGENT = f"arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE_ID}/agent/agent-7"


def ago(minutes: float) -> dt.datetime:
    return NOW - dt.timedelta(minutes=minutes)


@pytest.fixture
def unthrottled(emu: Emulator) -> Emulator:
    emu.configure(quotas={"SearchContacts": None})
    return emu


def search(
    connect: Any, start: dt.datetime, end: dt.datetime, kind: str = "DISCONNECT_TIMESTAMP", **extra: Any
) -> Any:
    return connect.search_contacts(
        InstanceId=INSTANCE_ID, TimeRange={"Type": kind, "StartTime": start, "EndTime": end}, **extra
    )


def ids(answer: dict[str, Any]) -> list[str]:
    return sorted(c["Id"] for c in answer["Contacts"])


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_contacts_that_ended_in_the_window_come_back_with_their_summary_and_no_attributes(
    unthrottled: Emulator, connect: Any
):
    emu = unthrottled
    emu.put_contact(
        INSTANCE_ID,
        "first",
        {"caseId": "case-1"},
        agent_arn=AGENT,
        queue_id="basic",
        initiation_time=ago(50),
        disconnect_time=ago(40),
        tags={"caseId": "case-1"},
    )
    emu.put_contact(
        INSTANCE_ID, "leg", initial_contact_id="first", initiation_time=ago(40), disconnect_time=ago(30)
    )
    emu.put_contact(INSTANCE_ID, "too-early", initiation_time=ago(200), disconnect_time=ago(190))
    emu.put_contact(INSTANCE_ID, "ongoing", channel="CHAT", initiation_time=ago(20), ongoing=True)

    answer = search(connect, ago(60), ago(0))

    assert ids(answer) == ["first", "leg"]
    assert answer["TotalCount"] == 2
    by_id = {c["Id"]: c for c in answer["Contacts"]}
    first, leg = by_id["first"], by_id["leg"]
    assert first["Arn"] == emu.contact_arn(INSTANCE_ID, "first")
    assert (first["Channel"], first["InitiationMethod"]) == ("VOICE", "INBOUND")
    assert (first["InitiationTimestamp"], first["DisconnectTimestamp"]) == (ago(50), ago(40))
    assert first["AgentInfo"]["Id"] == "agent-7"
    assert first["QueueInfo"]["Id"] == "basic"
    assert first["Tags"] == {"caseId": "case-1"}
    assert "InitialContactId" not in first
    assert (leg["InitialContactId"], leg["PreviousContactId"], leg["InitiationMethod"]) == (
        "first",
        "first",
        "TRANSFER",
    )
    assert all("Attributes" not in c for c in answer["Contacts"])


def test_each_time_range_type_reads_its_own_timestamp(unthrottled: Emulator, connect: Any):
    unthrottled.put_contact(
        INSTANCE_ID,
        "c",
        agent_arn=AGENT,
        queue_id="q",
        initiation_time=ago(100),
        enqueue_time=ago(95),
        connected_to_agent_time=ago(90),
        disconnect_time=ago(10),
        scheduled_time=ago(120),
    )
    window = {
        "INITIATION_TIMESTAMP": (ago(101), ago(99)),
        "ENQUEUE_TIMESTAMP": (ago(96), ago(94)),
        "CONNECTED_TO_AGENT_TIMESTAMP": (ago(91), ago(89)),
        "DISCONNECT_TIMESTAMP": (ago(11), ago(9)),
        "SCHEDULED_TIMESTAMP": (ago(121), ago(119)),
    }

    for kind, (start, end) in window.items():
        assert ids(search(connect, start, end, kind)) == ["c"], kind
        assert ids(search(connect, start - dt.timedelta(hours=3), start - dt.timedelta(hours=2), kind)) == []


def test_channels_initiation_methods_queues_and_agents_narrow_the_search(unthrottled: Emulator, connect: Any):
    emu = unthrottled
    emu.put_contact(INSTANCE_ID, "voice", agent_arn=AGENT, queue_id="q1", disconnect_time=ago(5))
    emu.put_contact(
        INSTANCE_ID, "chat", channel="CHAT", initiation_method="API", queue_id="q2", disconnect_time=ago(5)
    )
    emu.put_contact(INSTANCE_ID, "callback", initiation_method="CALLBACK", disconnect_time=ago(5))

    def found(**criteria: Any) -> list[str]:
        return ids(search(connect, ago(10), ago(0), SearchCriteria=criteria))

    assert found(Channels=["CHAT"]) == ["chat"]
    assert found(InitiationMethods=["CALLBACK", "API"]) == ["callback", "chat"]
    assert found(QueueIds=["q1"]) == ["voice"]
    assert found(AgentIds=["agent-7"]) == ["voice"]
    assert found(Channels=["VOICE"], InitiationMethods=["INBOUND"]) == ["voice"]


def test_contact_tags_filter_by_condition_all_of_and_any_of(unthrottled: Emulator, connect: Any):
    emu = unthrottled
    emu.put_contact(INSTANCE_ID, "a", tags={"caseId": "c-1", "team": "red"}, disconnect_time=ago(5))
    emu.put_contact(INSTANCE_ID, "b", tags={"caseId": "c-2"}, disconnect_time=ago(5))
    emu.put_contact(INSTANCE_ID, "none", disconnect_time=ago(5))

    def found(tags: dict[str, Any]) -> list[str]:
        return ids(search(connect, ago(10), ago(0), SearchCriteria={"ContactTags": tags}))

    assert found({"TagCondition": {"TagKey": "caseId"}}) == ["a", "b"]
    assert found({"TagCondition": {"TagKey": "caseId", "TagValue": "c-2"}}) == ["b"]
    assert found({"AndConditions": [{"TagKey": "caseId"}, {"TagKey": "team", "TagValue": "red"}]}) == ["a"]
    assert found({"OrConditions": [[{"TagKey": "team"}], [{"TagKey": "caseId", "TagValue": "c-2"}]]}) == [
        "a",
        "b",
    ]


def test_searchable_attributes_must_be_configured_as_searchable(unthrottled: Emulator, connect: Any):
    emu = unthrottled
    emu.put_contact(INSTANCE_ID, "a", {"caseId": "c-1", "tier": "gold"}, disconnect_time=ago(5))
    emu.put_contact(INSTANCE_ID, "b", {"caseId": "c-2"}, disconnect_time=ago(5))
    emu.put_contact(INSTANCE_ID, "a-leg", initial_contact_id="a", disconnect_time=ago(4))
    criteria = {"SearchableContactAttributes": {"Criteria": [{"Key": "caseId", "Values": ["c-1"]}]}}

    with pytest.raises(ClientError) as excinfo:
        search(connect, ago(10), ago(0), SearchCriteria=criteria)
    emu.configure(searchable_contact_attributes=("caseId", "tier"))
    matched = search(connect, ago(10), ago(0), SearchCriteria=criteria)
    either = search(
        connect,
        ago(10),
        ago(0),
        SearchCriteria={
            "SearchableContactAttributes": {
                "Criteria": [{"Key": "caseId", "Values": ["c-2"]}, {"Key": "tier", "Values": ["gold"]}],
                "MatchType": "MATCH_ANY",
            }
        },
    )

    assert error_of(excinfo) == ("InvalidParameterException", 400)
    assert ids(matched) == ["a", "a-leg"]  # attributes belong to the chain
    assert ids(either) == ["a", "a-leg", "b"]


def test_pages_stay_stable_while_contacts_are_added(unthrottled: Emulator, connect: Any):
    emu = unthrottled
    for n in range(5):
        emu.put_contact(INSTANCE_ID, f"c{n}", initiation_time=ago(30 - n), disconnect_time=ago(20 - n))

    first = search(connect, ago(60), ago(0), MaxResults=2)
    for n in range(3):  # newer contacts sort first (initiation time, descending)
        emu.put_contact(INSTANCE_ID, f"new{n}", initiation_time=ago(3), disconnect_time=ago(1))
    seen = ids(first)
    token = first.get("NextToken")
    while token:
        page = search(connect, ago(60), ago(0), MaxResults=2, NextToken=token)
        seen += ids(page)
        token = page.get("NextToken")

    assert sorted(seen) == [f"c{n}" for n in range(5)]
    assert first["TotalCount"] == 5
    assert search(connect, ago(60), ago(0))["TotalCount"] == 8


def test_the_paginator_walks_every_page_newest_first_by_default(unthrottled: Emulator, connect: Any):
    for n in range(7):
        unthrottled.put_contact(
            INSTANCE_ID, f"c{n}", initiation_time=ago(30 - n), disconnect_time=ago(20 - n)
        )

    pages = connect.get_paginator("search_contacts").paginate(
        InstanceId=INSTANCE_ID,
        TimeRange={"Type": "DISCONNECT_TIMESTAMP", "StartTime": ago(60), "EndTime": ago(0)},
        PaginationConfig={"PageSize": 3},
    )
    order = [c["Id"] for page in pages for c in page["Contacts"]]
    ascending = search(
        connect, ago(60), ago(0), Sort={"FieldName": "INITIATION_TIMESTAMP", "Order": "ASCENDING"}
    )

    assert order == [f"c{n}" for n in reversed(range(7))]
    assert [c["Id"] for c in ascending["Contacts"]] == [f"c{n}" for n in range(7)]


def test_a_token_from_another_search_is_refused(unthrottled: Emulator, connect: Any):
    for n in range(3):
        unthrottled.put_contact(INSTANCE_ID, f"c{n}", disconnect_time=ago(5))
    token = search(connect, ago(10), ago(0), MaxResults=1)["NextToken"]

    with pytest.raises(ClientError) as excinfo:
        search(connect, ago(11), ago(0), MaxResults=1, NextToken=token)

    assert error_of(excinfo) == ("InvalidParameterException", 400)


@pytest.mark.parametrize(
    ("start", "end", "extra"),
    [
        (ago(0), ago(10), {}),
        (ago(60 * 24 * 60), ago(0), {}),
        (NOW - dt.timedelta(days=800), NOW - dt.timedelta(days=790), {}),
        (ago(10), ago(0), {"MaxResults": 101}),
        (ago(10), ago(0), {"SearchCriteria": {"Name": {"SearchText": ["x"], "MatchType": "MATCH_ALL"}}}),
        (ago(10), ago(0), {"Sort": {"FieldName": "EXPIRY_TIMESTAMP", "Order": "ASCENDING"}}),
    ],
    ids=[
        "start after end",
        "over 8 weeks",
        "over 2 years back",
        "MaxResults 101",
        "unsupported criteria",
        "sort",
    ],
)
def test_requests_outside_the_limits_are_invalid_parameters(
    unthrottled: Emulator, connect: Any, start: dt.datetime, end: dt.datetime, extra: dict[str, Any]
):
    unthrottled.put_contact(INSTANCE_ID, "c", disconnect_time=ago(5))

    with pytest.raises(ClientError) as excinfo:
        search(connect, start, end, **extra)

    assert error_of(excinfo) == ("InvalidParameterException", 400)


def test_the_range_limits_are_configurable(unthrottled: Emulator, connect: Any):
    unthrottled.configure(contact_search_max_range_s=None, contact_search_lookback_s=None)
    unthrottled.put_contact(
        INSTANCE_ID,
        "old",
        initiation_time=NOW - dt.timedelta(days=900),
        disconnect_time=NOW - dt.timedelta(days=899),
    )

    assert ids(search(connect, NOW - dt.timedelta(days=1000), NOW)) == ["old"]


def test_results_stop_at_the_configured_maximum(unthrottled: Emulator, connect: Any):
    unthrottled.configure(contact_search_max_results=3)
    for n in range(5):
        unthrottled.put_contact(INSTANCE_ID, f"c{n}", disconnect_time=ago(5 + n))

    first = search(connect, ago(60), ago(0), MaxResults=2)
    second = search(connect, ago(60), ago(0), MaxResults=2, NextToken=first["NextToken"])

    assert len(first["Contacts"]) + len(second["Contacts"]) == 3
    assert "NextToken" not in second
    assert second["TotalCount"] == 5


@pytest.mark.parametrize("limit", [None, 3], ids=["end of the matches", "end of the results served"])
def test_a_last_page_can_lead_to_an_empty_one(unthrottled: Emulator, connect: Any, limit: int | None):
    unthrottled.configure(contact_search_max_results=limit, contact_search_trailing_empty_page=True)
    for n in range(5):
        unthrottled.put_contact(INSTANCE_ID, f"c{n}", disconnect_time=ago(5))

    first = search(connect, ago(10), ago(0), MaxResults=5)
    last = search(connect, ago(10), ago(0), MaxResults=5, NextToken=first["NextToken"])

    assert len(first["Contacts"]) == (limit or 5)
    assert last["Contacts"] == []
    assert "NextToken" not in last
    assert last["TotalCount"] == 5


def test_search_contacts_is_throttled_at_half_a_request_per_second(emu: Emulator, connect: Any):
    emu.put_contact(INSTANCE_ID, "c", disconnect_time=ago(5))

    search(connect, ago(10), ago(0))
    with pytest.raises(ClientError) as excinfo:
        search(connect, ago(10), ago(0))

    assert error_of(excinfo) == ("ThrottlingException", 429)


def test_an_unknown_instance_is_resource_not_found(unthrottled: Emulator, connect: Any):
    with pytest.raises(ClientError) as excinfo:
        connect.search_contacts(
            InstanceId="no-such-instance",
            TimeRange={"Type": "DISCONNECT_TIMESTAMP", "StartTime": ago(10), "EndTime": ago(0)},
        )

    assert error_of(excinfo) == ("ResourceNotFoundException", 404)


def test_describe_contact_tells_the_chain_the_method_the_queue_and_the_tags(emu: Emulator, connect: Any):
    emu.put_contact(INSTANCE_ID, "first", {"caseId": "c-1"}, disconnect_time=ago(30))
    emu.put_contact(
        INSTANCE_ID,
        "callback",
        previous_contact_id="first",
        initiation_method="CALLBACK",
        queue_id="callbacks",
        tags={"team": "red"},
        initiation_time=ago(20),
        disconnect_time=ago(10),
    )

    contact = connect.describe_contact(InstanceId=INSTANCE_ID, ContactId="callback")["Contact"]

    assert (contact["PreviousContactId"], contact["InitiationMethod"]) == ("first", "CALLBACK")
    assert contact["QueueInfo"]["Id"] == "callbacks"
    assert contact["Tags"] == {"team": "red"}
    assert contact["Attributes"] == {}  # a callback starts a chain of its own
    assert (contact["InitiationTimestamp"], contact["DisconnectTimestamp"]) == (ago(20), ago(10))


def test_list_associated_contacts_returns_the_whole_contact_tree(emu: Emulator, connect: Any):
    emu.put_contact(INSTANCE_ID, "first", initiation_time=ago(50), disconnect_time=ago(40))
    emu.put_contact(
        INSTANCE_ID, "leg", initial_contact_id="first", initiation_time=ago(40), disconnect_time=ago(30)
    )
    emu.put_contact(
        INSTANCE_ID,
        "callback",
        previous_contact_id="leg",
        initiation_method="CALLBACK",
        initiation_time=ago(20),
        disconnect_time=ago(10),
    )
    emu.put_contact(INSTANCE_ID, "stranger", disconnect_time=ago(5))

    listed = connect.list_associated_contacts(InstanceId=INSTANCE_ID, ContactId="callback")[
        "ContactSummaryList"
    ]

    assert [c["ContactId"] for c in listed] == ["first", "leg", "callback"]
    assert listed[2]["PreviousContactId"] == "leg"
    assert listed[1]["InitialContactId"] == "first"


def test_seeded_contacts_take_relative_and_absolute_times(emu: Emulator, connect: Any):
    emu.configure(quotas={"SearchContacts": None})
    ended = ago(11)
    loaded = dt.datetime.now(dt.UTC)
    emu.load_seed(
        {
            "contacts": [
                {
                    "instanceId": INSTANCE_ID,
                    "contactId": "relative",
                    "initiationTimestamp": "-30m",
                    "disconnectTimestamp": "-20m",
                    "tags": {"caseId": "c-1"},
                },
                {
                    "instanceId": INSTANCE_ID,
                    "contactId": "absolute",
                    "initiationTimestamp": ago(12).isoformat(),
                    "disconnectTimestamp": ended.isoformat().replace("+00:00", "Z"),
                },
                {"instanceId": INSTANCE_ID, "contactId": "ongoing", "disconnectTimestamp": None},
            ]
        }
    )

    relative = connect.describe_contact(InstanceId=INSTANCE_ID, ContactId="relative")["Contact"]
    absolute = connect.describe_contact(InstanceId=INSTANCE_ID, ContactId="absolute")["Contact"]
    ongoing = connect.describe_contact(InstanceId=INSTANCE_ID, ContactId="ongoing")["Contact"]

    # Relative times count from when the seed was loaded (NOW is this module's import time).
    assert abs((relative["DisconnectTimestamp"] - (loaded - dt.timedelta(minutes=20))).total_seconds()) < 60
    assert absolute["DisconnectTimestamp"] == ended
    assert "DisconnectTimestamp" not in ongoing


def test_generated_contacts_load_and_are_all_found_by_search(unthrottled: Emulator, connect: Any):
    generated = generate_contacts(
        INSTANCE_ID,
        60,
        ago(120),
        ago(0),
        ["case-1", "case-2"],
        mix=ContactMix(case_share=0.5, tag_share=0.5, transfer_share=0.3, callback_share=0.3),
        rng_seed=7,
    )
    unthrottled.load_seed({"contacts": generated.contacts})
    unthrottled.configure(throttling=False)  # one GetContactAttributes per contact below

    pages = connect.get_paginator("search_contacts").paginate(
        InstanceId=INSTANCE_ID,
        TimeRange={"Type": "DISCONNECT_TIMESTAMP", "StartTime": ago(120), "EndTime": ago(0)},
        PaginationConfig={"PageSize": 25},
    )
    found = {c["Id"]: c for page in pages for c in page["Contacts"]}

    assert len(found) == len(generated.contacts) == 60
    for contact_id, case_id in generated.case_ids.items():
        tagged = found[contact_id].get("Tags", {}).get("caseId")
        attribute = connect.get_contact_attributes(InstanceId=INSTANCE_ID, InitialContactId=contact_id)[
            "Attributes"
        ].get("caseId")
        assert case_id == (tagged or attribute), contact_id
    assert (
        generated.chain_case_ids
    )  # tags and callbacks make contacts that reach a case only through the chain
    assert {c["InitiationMethod"] for c in found.values()} >= {"INBOUND", "TRANSFER", "CALLBACK"}


def test_the_generator_is_reproducible_and_honours_the_case_share():
    def make(seed: int) -> Any:
        return generate_contacts(
            INSTANCE_ID,
            400,
            ago(600),
            ago(0),
            ["c"],
            mix=ContactMix(case_share=0.25, transfer_share=0, callback_share=0),
            rng_seed=seed,
        )

    first, again, other = make(1), make(1), make(2)

    assert first.contacts == again.contacts
    assert first.contacts != other.contacts
    assert 0.15 < len(first.with_case_id) / 400 < 0.35
    assert all(ago(600).isoformat() <= c["initiationTimestamp"] for c in first.contacts)
