"""GIVEN every operation the emulator serves, THEN each answer satisfies the operation's output shape in the
botocore model (required members, unions, lengths, enums), as a real service's would."""

from __future__ import annotations

import time
from typing import Any

from emulator import Emulator
from emulator.model import ALL_OPERATIONS, CASES, CONNECT, service_model, validate
from tests.emulator.helpers import INSTANCE_ID, World, comment, raw


def test_every_operation_answers_within_its_output_shape(emu: Emulator, world: World, other_case: str):
    emu.configure(throttling=False, searchable_contact_attributes=("caseId",))
    emu.add_instance(INSTANCE_ID, alias="shapes", cases_domain=world.domain_id)
    agent = f"{emu.instance_arn(INSTANCE_ID)}/agent/a-1"
    emu.put_contact(
        INSTANCE_ID,
        "contact-2",
        initial_contact_id=world.contact_id,
        agent_arn=agent,
        queue_id="q",
        tags={"k": "v"},
    )
    emu.add_related_item(
        world.domain_id, world.case_id, "Contact", {"contact": {"contactArn": world.contact_arn}}
    )
    sla = {
        "name": "first reply",
        "type": "CaseField",
        "fieldId": "status",
        "targetFieldValues": [{"stringValue": "closed"}],
        "targetSlaMinutes": 60,
    }
    emu.add_related_item(world.domain_id, world.case_id, "Sla", {"sla": {"slaInputConfiguration": sla}})
    emu.configure(merge_duration_s=30)
    base = f"/domains/{world.domain_id}"
    case = f"{base}/cases/{world.case_id}"
    template = raw(emu, "POST", case, {"fields": [{"id": "title"}]}).body["templateId"]
    now = time.time()
    requests: list[tuple[str, str, str, str, Any]] = [
        (
            CASES,
            "CreateRelatedItem",
            "POST",
            f"{case}/related-items/",
            {"type": "Comment", "content": comment()},
        ),
        (
            CASES,
            "BatchCreateRelatedItem",
            "POST",
            "/cases:batchCreateRelatedItem",
            {
                "domainId": world.domain_id,
                "content": comment(),
                "cases": [
                    {"caseIdentifier": {"referenceId": "REF-A"}},
                    {"caseIdentifier": {"caseId": "nope"}},
                ],
                "clientToken": "shape-1",
            },
        ),
        (CASES, "SearchRelatedItems", "POST", f"{case}/related-items-search", {}),
        (CASES, "SearchAllRelatedItems", "POST", f"{base}/related-items-search", {}),
        (
            CASES,
            "ListCasesForContact",
            "POST",
            f"{base}/list-cases-for-contact",
            {"contactArn": world.contact_arn},
        ),
        (
            CASES,
            "SearchCases",
            "POST",
            f"{base}/cases-search",
            {"fields": [{"id": "title"}, {"id": "reference_id"}]},
        ),
        (CASES, "GetCase", "POST", case, {"fields": [{"id": "title"}]}),
        (
            CASES,
            "CreateCase",
            "POST",
            f"{base}/cases",
            {"templateId": template, "fields": [{"id": "title", "value": {"stringValue": "x"}}]},
        ),
        (CASES, "StartMergeCases", "POST", f"{case}/merge", {"secondaryCaseIds": [other_case]}),
        (CASES, "GetMergeCasesStatus", "POST", f"{base}/cases/{other_case}/merge-status", {}),
        (CASES, "CreateDomain", "POST", "/domains", {"name": "another"}),
        (CASES, "GetDomain", "POST", base, None),
        (CASES, "ListDomains", "POST", "/domains-list", None),
        (CONNECT, "DescribeContact", "GET", f"/contacts/{INSTANCE_ID}/contact-2", None),
        (CONNECT, "GetContactAttributes", "GET", f"/contact/attributes/{INSTANCE_ID}/contact-2", None),
        (
            CONNECT,
            "SearchContacts",
            "POST",
            "/search-contacts",
            {
                "InstanceId": INSTANCE_ID,
                "TimeRange": {"Type": "DISCONNECT_TIMESTAMP", "StartTime": now - 3600, "EndTime": now + 60},
                "SearchCriteria": {
                    "SearchableContactAttributes": {
                        "Criteria": [{"Key": "caseId", "Values": [world.case_id]}]
                    }
                },
                "MaxResults": 1,
            },
        ),
        (
            CONNECT,
            "ListAssociatedContacts",
            "GET",
            f"/contact/associated/{INSTANCE_ID}?contactId=contact-2",
            None,
        ),
        (CONNECT, "DescribeInstance", "GET", f"/instance/{INSTANCE_ID}", None),
        (
            CONNECT,
            "ListIntegrationAssociations",
            "GET",
            f"/instance/{INSTANCE_ID}/integration-associations",
            None,
        ),
    ]

    for service, operation, method, path, body in requests:
        answer = raw(emu, method, path, body)
        shape = service_model(service).operation_model(operation).output_shape
        assert answer.status == 200, (operation, answer.body)
        assert validate(shape, answer.body) == [], operation
        assert emu.calls[-1].operation == operation
    assert {r[1] for r in requests} == ALL_OPERATIONS
