"""GIVEN `OP=KIND:RATE` fault specs, THEN emulator.faults.parse_fault_spec (shared by every CLI) accepts what the
emulator can inject and names what is allowed when it refuses."""

from __future__ import annotations

import pytest

from emulator import FAULT_KINDS, Faults, parse_fault_spec
from emulator.faults import faults_from_specs


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("CreateRelatedItem=server_error:0.1", ("CreateRelatedItem", "server_error", 0.1)),
        ("CreateRelatedItem=late_commit:1", ("CreateRelatedItem", "late_commit", 1.0)),
        ("BatchCreateRelatedItem=item_failure:0", ("BatchCreateRelatedItem", "item_failure", 0.0)),
        ("SearchContacts=drop:0.5", ("SearchContacts", "drop_connection", 0.5)),
        ("GetCase=slow:0.25", ("GetCase", "slow_response", 0.25)),
        ("ListCasesForContact=5xx:0.2", ("ListCasesForContact", "server_error", 0.2)),
    ],
)
def test_valid_specs_name_an_operation_a_canonical_kind_and_a_rate(
    spec: str, expected: tuple[str, str, float]
):
    assert parse_fault_spec(spec) == expected
    assert expected[1] in FAULT_KINDS


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("CreateRelatedItems=server_error:0.1", "unknown operation 'CreateRelatedItems'; one of "),
        ("CreateRelatedItem=explode:0.1", "unknown kind 'explode'; one of server_error, drop_connection"),
        ("CreateRelatedItem=server_error:1.5", "RATE must be a number between 0 and 1"),
        ("CreateRelatedItem=server_error:nan", "RATE must be a number between 0 and 1"),
        ("CreateRelatedItem=server_error:x", "RATE must be a number between 0 and 1"),
        ("CreateRelatedItem=item_failure:0.1", "item_failure applies only to BatchCreateRelatedItem"),
        ("CreateRelatedItem", "expected OP=KIND:RATE"),
        ("=server_error:0.1", "expected OP=KIND:RATE"),
    ],
)
def test_invalid_specs_raise_one_line_value_errors(spec: str, message: str):
    with pytest.raises(ValueError, match=r"^fault ") as excinfo:
        parse_fault_spec(spec)

    assert message in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_the_unknown_operation_message_lists_every_served_operation():
    with pytest.raises(ValueError, match="unknown operation") as excinfo:
        parse_fault_spec("Nope=server_error:0.1")

    for operation in ("BatchCreateRelatedItem", "SearchContacts", "StartMergeCases", "CreateRelatedItem"):
        assert operation in str(excinfo.value)


def test_several_specs_for_one_operation_combine():
    faults = faults_from_specs(
        ["CreateRelatedItem=server_error:0.1", "CreateRelatedItem=late_commit:0.2", "GetCase=drop:0.3"]
    )

    assert faults == {
        "CreateRelatedItem": Faults(server_error=0.1, late_commit=0.2),
        "GetCase": Faults(drop_connection=0.3),
    }
