"""GIVEN seeded instances, THEN Connect DescribeInstance and ListIntegrationAssociations tell what `ops doctor`
checks: the instance exists and a Cases domain is associated with it."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import Emulator
from tests.emulator.helpers import INSTANCE_ID


@pytest.fixture
def seeded(emu: Emulator) -> Emulator:
    emu.load_seed(
        {
            "domains": [{"id": "d-1", "name": "support"}],
            "instances": [{"id": INSTANCE_ID, "alias": "acme-support", "casesDomain": "support"}],
        }
    )
    return emu


def test_describe_instance_returns_an_active_instance(seeded: Emulator, connect: Any):
    instance = connect.describe_instance(InstanceId=INSTANCE_ID)["Instance"]

    assert instance["Id"] == INSTANCE_ID
    assert instance["Arn"] == seeded.instance_arn(INSTANCE_ID)
    assert (instance["InstanceStatus"], instance["InstanceAlias"]) == ("ACTIVE", "acme-support")
    assert instance["InstanceAccessUrl"] == "https://acme-support.my.connect.aws/"


def test_the_cases_domain_is_an_integration_association_of_the_instance(
    seeded: Emulator, connect: Any, cases: Any
):
    domain_arn = cases.get_domain(domainId="d-1")["domainArn"]

    listed = connect.list_integration_associations(InstanceId=INSTANCE_ID, IntegrationType="CASES_DOMAIN")
    by_arn = connect.list_integration_associations(
        InstanceId=seeded.instance_arn(INSTANCE_ID), IntegrationArn=domain_arn
    )
    other = connect.list_integration_associations(InstanceId=INSTANCE_ID, IntegrationType="EVENT")

    [association] = listed["IntegrationAssociationSummaryList"]
    assert (association["IntegrationType"], association["IntegrationArn"]) == ("CASES_DOMAIN", domain_arn)
    assert association["InstanceId"] == INSTANCE_ID
    assert association["IntegrationAssociationArn"].startswith(
        f"{seeded.instance_arn(INSTANCE_ID)}/integration-association/"
    )
    assert by_arn["IntegrationAssociationSummaryList"] == [association]
    assert other["IntegrationAssociationSummaryList"] == []


def test_an_instance_without_a_domain_has_no_cases_association(emu: Emulator, connect: Any):
    emu.add_instance("bare-instance")

    listed = connect.list_integration_associations(InstanceId="bare-instance", IntegrationType="CASES_DOMAIN")

    assert listed["IntegrationAssociationSummaryList"] == []


def test_an_instance_holding_contacts_exists_without_being_declared(emu: Emulator, connect: Any):
    emu.put_contact("implied-instance", "c-1")

    assert connect.describe_instance(InstanceId="implied-instance")["Instance"]["InstanceStatus"] == "ACTIVE"


@pytest.mark.parametrize("operation", ["describe_instance", "list_integration_associations"])
def test_an_unknown_instance_is_resource_not_found(emu: Emulator, connect: Any, operation: str):
    with pytest.raises(ClientError) as excinfo:
        getattr(connect, operation)(InstanceId="no-such-instance")

    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_a_seed_naming_an_unknown_domain_is_refused(emu: Emulator):
    with pytest.raises(ValueError, match="no Cases domain"):
        emu.load_seed({"instances": [{"id": INSTANCE_ID, "casesDomain": "nope"}]})
