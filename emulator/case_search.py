"""SearchCases' filters and sorts, over one case's indexed field values (FieldValueUnions) and tags."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

FieldValue = dict[str, Any]  # a FieldValueUnion, e.g. {"stringValue": "open"}
# The system field that holds a case's reference id. AWS documents reference ids (CaseIdentifierUnion,
# unique per domain, case-insensitive) but not the id of the field GetCase and SearchCases use for them:
# this name is the emulator's guess; change it here if AWS names it otherwise.
REFERENCE_ID_FIELD = "reference_id"
T = TypeVar("T")


def scalar(value: FieldValue | None) -> Any:
    """The Python value of a FieldValueUnion; None for emptyValue or no value."""
    if not value:
        return None
    kind, inner = next(iter(value.items()))
    return None if kind == "emptyValue" else inner


def case_matches(fields: Mapping[str, FieldValue], tags: Mapping[str, str], flt: Mapping[str, Any]) -> bool:
    """SearchCases' CaseFilter over one case's indexed fields and tags."""
    kind, spec = next(iter(flt.items()))
    if kind == "andAll":
        return all(case_matches(fields, tags, f) for f in spec)
    if kind == "orAll":
        return any(case_matches(fields, tags, f) for f in spec)
    if kind == "not":
        return not case_matches(fields, tags, spec)
    if kind == "tag":
        wanted = spec.get("equalTo") or {}
        if wanted.get("key") is None:
            return False
        return (
            (wanted["key"] in tags)
            if wanted.get("value") is None
            else tags.get(wanted["key"]) == wanted["value"]
        )
    comparison, operand = next(iter(spec.items()))
    return _compare(fields.get(operand["id"]), comparison, operand["value"], operand["id"])


def _compare(stored: FieldValue | None, comparison: str, wanted: FieldValue, field_id: str) -> bool:
    have, want = (scalar(stored) if stored else None), scalar(wanted)
    if have is None or want is None:
        return comparison == "equalTo" and have is None and want is None
    if isinstance(have, str) != isinstance(want, str) or isinstance(have, bool) != isinstance(want, bool):
        return False
    if isinstance(have, str):
        # Reference ids are unique regardless of case, so they also match regardless of case.
        if field_id == REFERENCE_ID_FIELD or comparison == "contains":
            have, want = have.lower(), want.lower()
        if comparison == "contains":
            return want in have
    if comparison == "equalTo":
        return bool(have == want)
    if comparison == "contains":
        return False
    operators: dict[str, Callable[[Any, Any], bool]] = {
        "greaterThan": lambda a, b: a > b,
        "greaterThanOrEqualTo": lambda a, b: a >= b,
        "lessThan": lambda a, b: a < b,
        "lessThanOrEqualTo": lambda a, b: a <= b,
    }
    return operators[comparison](have, want)


def sorted_by_field(
    found: list[tuple[T, dict[str, FieldValue]]], field_id: str, descending: bool
) -> list[tuple[T, dict[str, FieldValue]]]:
    """A stable sort on one field; cases without a value for it come last either way."""
    present = [pair for pair in found if scalar(pair[1].get(field_id)) is not None]
    missing = [pair for pair in found if scalar(pair[1].get(field_id)) is None]
    present.sort(key=lambda pair: scalar(pair[1][field_id]), reverse=descending)
    return present + missing
