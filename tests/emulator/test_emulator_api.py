"""GIVEN the emulator, WHEN unmodified boto3 clients call it, THEN they get what AWS would answer."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest

from emulator import Emulator
from tests.emulator.helpers import INSTANCE_ID, NO_RETRY, World


def test_create_related_item_stores_the_contact_with_arn_time_and_performer(
    emu: Emulator, cases: Any, world: World
):
    before = dt.datetime.now(dt.UTC)

    answer = cases.create_related_item(
        domainId=world.domain_id,
        caseId=world.case_id,
        type="Contact",
        content={"contact": {"contactArn": world.contact_arn}},
        performedBy={"customEntity": "case-linker"},
    )

    [item] = emu.related_items(domain_id=world.domain_id, case_id=world.case_id)
    assert answer["relatedItemId"] == item.related_item_id
    assert answer["relatedItemArn"] == (
        f"arn:aws:cases:us-east-1:123456789012:domain/{world.domain_id}/case/{world.case_id}"
        f"/related-item/{item.related_item_id}"
    )
    assert item.type == "Contact"
    assert item.content == {"contact": {"contactArn": world.contact_arn}}
    assert item.performed_by == {"customEntity": "case-linker"}
    assert item.association_time >= before - dt.timedelta(seconds=1)
    [call] = emu.calls_to("CreateRelatedItem")
    assert (call.status, call.error_code, call.outcome) == (200, None, "ok")
    assert call.params["caseId"] == world.case_id
    assert call.params["content"] == {"contact": {"contactArn": world.contact_arn}}


def test_list_cases_for_contact_finds_only_cases_linked_to_that_contact(
    emu: Emulator, cases: Any, world: World
):
    other_case = emu.create_case(world.domain_id, title="Unrelated")
    emu.add_related_item(
        world.domain_id, other_case, "Comment", {"comment": {"body": "hi", "contentType": "Text/Plain"}}
    )
    assert cases.list_cases_for_contact(domainId=world.domain_id, contactArn=world.contact_arn)["cases"] == []

    cases.create_related_item(
        domainId=world.domain_id,
        caseId=world.case_id,
        type="Contact",
        content={"contact": {"contactArn": world.contact_arn}},
    )

    found = cases.list_cases_for_contact(domainId=world.domain_id, contactArn=world.contact_arn)["cases"]
    assert [c["caseId"] for c in found] == [world.case_id]
    assert found[0]["templateId"]


def test_search_related_items_honours_type_filters(emu: Emulator, cases: Any, world: World):
    chat_arn = emu.put_contact(INSTANCE_ID, "chat-1", channel="CHAT")
    emu.add_related_item(
        world.domain_id, world.case_id, "Contact", {"contact": {"contactArn": world.contact_arn}}
    )
    emu.add_related_item(world.domain_id, world.case_id, "Contact", {"contact": {"contactArn": chat_arn}})
    emu.add_related_item(
        world.domain_id, world.case_id, "Comment", {"comment": {"body": "note", "contentType": "Text/Plain"}}
    )

    def search(*filters: dict[str, Any]) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"filters": list(filters)} if filters else {}
        items: list[dict[str, Any]] = cases.search_related_items(
            domainId=world.domain_id, caseId=world.case_id, **kwargs
        )["relatedItems"]
        return items

    assert len(search()) == 3
    [by_arn] = search({"contact": {"contactArn": world.contact_arn}})
    assert by_arn["type"] == "Contact"
    assert by_arn["content"]["contact"]["contactArn"] == world.contact_arn
    assert by_arn["content"]["contact"]["channel"] == "VOICE"
    assert isinstance(by_arn["associationTime"], dt.datetime)
    assert isinstance(by_arn["content"]["contact"]["connectedToSystemTime"], dt.datetime)
    assert [i["content"]["contact"]["contactArn"] for i in search({"contact": {"channel": ["CHAT"]}})] == [
        chat_arn
    ]
    assert [i["type"] for i in search({"comment": {}})] == ["Comment"]
    assert len(search({"comment": {}}, {"contact": {"contactArn": chat_arn}})) == 2
    assert search({"contact": {"contactArn": emu.contact_arn(INSTANCE_ID, "never-linked")}}) == []


def test_search_related_items_paginates(emu: Emulator, cases: Any, world: World):
    for n in range(5):
        emu.add_related_item(
            world.domain_id,
            world.case_id,
            "Comment",
            {"comment": {"body": f"n{n}", "contentType": "Text/Plain"}},
        )
    first = cases.search_related_items(domainId=world.domain_id, caseId=world.case_id, maxResults=3)
    second = cases.search_related_items(
        domainId=world.domain_id, caseId=world.case_id, maxResults=3, nextToken=first["nextToken"]
    )
    bodies = [i["content"]["comment"]["body"] for i in first["relatedItems"] + second["relatedItems"]]
    assert bodies == ["n0", "n1", "n2", "n3", "n4"]
    assert "nextToken" not in second


def test_get_case_and_create_case_round_trip(cases: Any, world: World):
    seeded = cases.get_case(
        domainId=world.domain_id, caseId=world.case_id, fields=[{"id": "title"}, {"id": "status"}]
    )
    assert seeded["fields"] == [
        {"id": "title", "value": {"stringValue": "Broken router"}},
        {"id": "status", "value": {"stringValue": "open"}},
    ]

    created = cases.create_case(
        domainId=world.domain_id,
        templateId=seeded["templateId"],
        fields=[{"id": "title", "value": {"stringValue": "New"}}],
        clientToken="token-1",
    )
    again = cases.create_case(
        domainId=world.domain_id, templateId=seeded["templateId"], fields=[], clientToken="token-1"
    )

    assert again["caseId"] == created["caseId"]
    assert created["caseArn"].endswith(f"domain/{world.domain_id}/case/{created['caseId']}")
    fetched = cases.get_case(domainId=world.domain_id, caseId=created["caseId"], fields=[{"id": "title"}])
    assert fetched["fields"] == [{"id": "title", "value": {"stringValue": "New"}}]


def test_domains_are_created_listed_and_described(cases: Any, emu: Emulator):
    created = cases.create_domain(name="support")
    assert created["domainStatus"] == "Active"
    assert created["domainArn"] == f"arn:aws:cases:us-east-1:123456789012:domain/{created['domainId']}"
    described = cases.get_domain(domainId=created["domainId"])
    assert described["name"] == "support"
    assert isinstance(described["createdTime"], dt.datetime)
    assert [d["domainId"] for d in cases.list_domains()["domains"]] == [created["domainId"]]


def test_contact_attributes_are_shared_by_the_contact_chain(emu: Emulator, connect: Any, world: World):
    emu.put_contact(INSTANCE_ID, "transfer-1", initial_contact_id=world.contact_id)

    by_initial = connect.get_contact_attributes(InstanceId=INSTANCE_ID, InitialContactId=world.contact_id)
    by_transfer = connect.get_contact_attributes(InstanceId=INSTANCE_ID, InitialContactId="transfer-1")

    assert by_initial["Attributes"] == by_transfer["Attributes"] == {"caseId": world.case_id}


def test_describe_contact_accepts_an_instance_arn(emu: Emulator, connect: Any, world: World):
    agent = f"{emu.instance_arn(INSTANCE_ID)}/agent/agent-7"
    emu.put_contact(INSTANCE_ID, "contact-2", attributes={"x": "1"}, channel="CHAT", agent_arn=agent)

    contact = connect.describe_contact(InstanceId=emu.instance_arn(INSTANCE_ID), ContactId="contact-2")[
        "Contact"
    ]

    assert contact["Arn"] == emu.contact_arn(INSTANCE_ID, "contact-2")
    assert contact["Channel"] == "CHAT"
    assert contact["AgentInfo"]["Id"] == "agent-7"
    assert contact["Attributes"] == {"x": "1"}
    assert contact["DisconnectTimestamp"] >= contact["InitiationTimestamp"]


def test_clients_find_the_emulator_through_endpoint_environment_variables(
    emu: Emulator, world: World, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL_CONNECTCASES", emu.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CONNECT", emu.endpoint_url)

    cases = boto3.client("connectcases", region_name="us-east-1", config=NO_RETRY)
    connect = boto3.client("connect", region_name="us-east-1", config=NO_RETRY)

    assert cases.get_domain(domainId=world.domain_id)["domainId"] == world.domain_id
    assert connect.get_contact_attributes(InstanceId=INSTANCE_ID, InitialContactId=world.contact_id)[
        "Attributes"
    ]
    assert {c.service for c in emu.calls} == {"connectcases", "connect"}


def test_reset_forgets_state_calls_and_scripts(emu: Emulator, cases: Any, world: World):
    emu.script("GetDomain", ["InternalServerException"])
    emu.reset()
    assert emu.calls == []
    assert emu.related_items() == []
    domain_id = emu.create_domain("fresh")
    assert cases.get_domain(domainId=domain_id)["name"] == "fresh"


def test_seed_loads_domains_cases_items_and_contacts(emu: Emulator, cases: Any, connect: Any):
    from pathlib import Path

    emu.seed_from_file(Path(__file__).resolve().parents[2] / "emulator" / "seed.example.json")

    domain_id = "11111111-2222-3333-4444-555555555555"
    linked = emu.contact_arn(INSTANCE_ID, "already-linked-0001")
    assert (
        cases.list_cases_for_contact(domainId=domain_id, contactArn=linked)["cases"][0]["caseId"]
        == "case-0002"
    )
    attributes = connect.get_contact_attributes(
        InstanceId=INSTANCE_ID, InitialContactId="contact-0002-transfer"
    )
    assert attributes["Attributes"] == {"caseId": "case-0001"}
    # The seed merges case-0003 into case-0002 at once: case-0002 also links to case-0003, now closed.
    assert sorted(i.type for i in emu.related_items(domain_id=domain_id, case_id="case-0002")) == [
        "Comment",
        "ConnectCase",
        "Contact",
    ]
    assert emu.case_fields(domain_id, "case-0003")["status"] == "closed"
    assert emu.reference_id(domain_id, "case-0001") == "DEMO-0001"
