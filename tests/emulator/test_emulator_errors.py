"""GIVEN a bad or unlucky request, THEN the emulator answers with AWS's error code and HTTP status."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError

from emulator import Emulator, Faults, Quota
from tests.emulator.helpers import INSTANCE_ID, NO_RETRY, World, client, raw


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def link(cases: Any, world: World, **overrides: Any) -> Any:
    request: dict[str, Any] = {
        "domainId": world.domain_id,
        "caseId": world.case_id,
        "type": "Contact",
        "content": {"contact": {"contactArn": world.contact_arn}},
    }
    return cases.create_related_item(**{**request, **overrides})


@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({"caseId": "c" * 501}, "length less than or equal to 500"),
        ({"caseId": "bad id!"}, "regular expression pattern"),
        ({"type": "Video"}, "enum value set: [Contact, Comment"),
        ({"content": {"contact": {"contactArn": "a" * 501}}}, "length less than or equal to 500"),
        ({"performedBy": {"customEntity": "trailing space "}}, "regular expression pattern"),
        (
            {"content": {"comment": {"body": "x", "contentType": "text/html"}}, "type": "Comment"},
            "enum value set",
        ),
    ],
    ids=[
        "501-char caseId",
        "caseId pattern",
        "unknown type",
        "long contactArn",
        "customEntity pattern",
        "enum nested",
    ],
)
def test_validation_rejects_what_botocore_lets_through(
    cases: Any, world: World, emu: Emulator, overrides, constraint
):
    with pytest.raises(ClientError) as excinfo:
        link(cases, world, **overrides)

    assert error_of(excinfo) == ("ValidationException", 400)
    assert constraint in excinfo.value.response["Error"]["Message"]
    assert emu.related_items() == []


def test_union_with_two_members_is_rejected_by_the_emulator_too(emu: Emulator, world: World):
    both = {
        "contact": {"contactArn": world.contact_arn},
        "comment": {"body": "x", "contentType": "Text/Plain"},
    }
    unchecked = client(
        "connectcases", emu, Config(parameter_validation=False, retries={"total_max_attempts": 1})
    )
    with pytest.raises(ParamValidationError):
        link(client("connectcases", emu), world, content=both)

    with pytest.raises(ClientError) as excinfo:
        link(unchecked, world, content=both)

    assert error_of(excinfo) == ("ValidationException", 400)
    assert "Exactly one member must be set" in excinfo.value.response["Error"]["Message"]
    assert emu.related_items() == []


def test_missing_required_member_and_content_not_matching_type_are_rejected(emu: Emulator, world: World):
    unchecked = client(
        "connectcases", emu, Config(parameter_validation=False, retries={"total_max_attempts": 1})
    )
    with pytest.raises(ClientError) as missing:
        unchecked.create_related_item(domainId=world.domain_id, caseId=world.case_id, type="Contact")
    with pytest.raises(ClientError) as mismatch:
        link(unchecked, world, type="Comment")

    assert error_of(missing) == ("ValidationException", 400)
    assert (
        "'content' failed to satisfy constraint: Member must not be null"
        in missing.value.response["Error"]["Message"]
    )
    assert error_of(mismatch) == ("ValidationException", 400)


def test_contact_arn_must_be_a_connect_contact_arn(cases: Any, world: World):
    with pytest.raises(ClientError) as excinfo:
        link(cases, world, content={"contact": {"contactArn": "not-an-arn"}})
    assert error_of(excinfo) == ("ValidationException", 400)


def test_all_validation_errors_are_reported_at_once(cases: Any, world: World):
    with pytest.raises(ClientError) as excinfo:
        link(cases, world, caseId="c" * 501, type="Video")
    assert excinfo.value.response["Error"]["Message"].startswith("2 validation errors detected: ")


@pytest.mark.parametrize("what", ["domain", "case"])
def test_unknown_domain_or_case_is_resource_not_found(cases: Any, world: World, what: str):
    overrides = {"domainId": "no-such-domain"} if what == "domain" else {"caseId": "no-such-case"}
    with pytest.raises(ClientError) as excinfo:
        link(cases, world, **overrides)

    assert error_of(excinfo) == ("ResourceNotFoundException", 404)
    assert excinfo.value.response["resourceType"] == what.capitalize()


def test_unknown_contact_is_resource_not_found_on_both_connect_operations(connect: Any, world: World):
    with pytest.raises(ClientError) as attributes:
        connect.get_contact_attributes(InstanceId=INSTANCE_ID, InitialContactId="no-such-contact")
    with pytest.raises(ClientError) as described:
        connect.describe_contact(InstanceId=INSTANCE_ID, ContactId="no-such-contact")

    assert error_of(attributes) == ("ResourceNotFoundException", 404)
    assert error_of(described) == ("ResourceNotFoundException", 404)
    assert "no-such-contact" in attributes.value.response["Error"]["Message"]


def test_connect_validation_uses_connects_own_error_codes(connect: Any):
    with pytest.raises(ClientError) as attributes:
        connect.get_contact_attributes(InstanceId=INSTANCE_ID, InitialContactId="c" * 257)
    with pytest.raises(ClientError) as described:
        connect.describe_contact(InstanceId="i" * 101, ContactId="c")

    assert error_of(attributes) == ("InvalidRequestException", 400)
    assert error_of(described) == ("InvalidParameterException", 400)


def test_related_item_quota_is_200_per_case(emu: Emulator, cases: Any, world: World):
    emu.configure(throttling=False)
    for n in range(199):
        emu.add_related_item(
            world.domain_id,
            world.case_id,
            "Comment",
            {"comment": {"body": f"{n}", "contentType": "Text/Plain"}},
        )
    link(cases, world)  # the 200th fits

    with pytest.raises(ClientError) as excinfo:
        link(cases, world)

    assert error_of(excinfo) == ("ServiceQuotaExceededException", 402)
    assert len(emu.related_items(case_id=world.case_id)) == 200


def test_throttling_answers_429(emu: Emulator, cases: Any, world: World):
    emu.configure(quotas={"GetCase": Quota(rate=0.01, burst=2)})
    for _ in range(2):
        cases.get_case(domainId=world.domain_id, caseId=world.case_id, fields=[{"id": "title"}])

    with pytest.raises(ClientError) as excinfo:
        cases.get_case(domainId=world.domain_id, caseId=world.case_id, fields=[{"id": "title"}])

    assert error_of(excinfo) == ("ThrottlingException", 429)


def test_injected_server_errors_change_nothing(emu: Emulator, cases: Any, connect: Any, world: World):
    emu.configure(
        faults={
            "CreateRelatedItem": Faults(server_error=1.0),
            "GetContactAttributes": Faults(server_error=1.0),
        }
    )

    with pytest.raises(ClientError) as cases_error:
        link(cases, world)
    with pytest.raises(ClientError) as connect_error:
        connect.get_contact_attributes(InstanceId=INSTANCE_ID, InitialContactId=world.contact_id)

    assert error_of(cases_error) == ("InternalServerException", 500)
    assert error_of(connect_error) == ("InternalServiceException", 500)
    assert emu.related_items() == []


def test_unsigned_request_is_access_denied(emu: Emulator, world: World):
    answer = raw(emu, "POST", f"/domains/{world.domain_id}", authorization=None)

    assert answer.status == 403
    assert answer.headers["x-amzn-ErrorType"] == "AccessDeniedException"
    assert answer.body["message"]


def test_unknown_route_is_an_aws_style_404(emu: Emulator):
    answer = raw(emu, "POST", "/no/such/api", body={})

    assert answer.status == 404
    assert answer.headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert "message" in answer.body
    assert emu.calls[-1].operation == "UnknownOperation"


def test_malformed_json_is_a_validation_error(emu: Emulator, world: World):
    answer = raw(
        emu, "POST", f"/domains/{world.domain_id}/cases/{world.case_id}/related-items/", body=b"{not json"
    )

    assert answer.status == 400
    assert answer.headers["x-amzn-ErrorType"] == "ValidationException"


def test_error_body_carries_message_in_the_services_own_casing(emu: Emulator):
    cases_answer = raw(emu, "POST", "/domains/nope")
    connect_answer = raw(emu, "GET", f"/contact/attributes/{INSTANCE_ID}/nope")

    assert cases_answer.status == connect_answer.status == 404
    assert "message" in cases_answer.body
    assert "Message" in connect_answer.body


def test_no_retry_client_sees_exactly_one_call(emu: Emulator, world: World):
    cases = client("connectcases", emu, NO_RETRY)
    emu.script("CreateRelatedItem", ["ThrottlingException"])
    with pytest.raises(ClientError):
        link(cases, world)
    assert [(c.status, c.error_code) for c in emu.calls_to("CreateRelatedItem")] == [
        (429, "ThrottlingException")
    ]
