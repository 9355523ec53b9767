"""Message shapes: a lenient Connect contact event and a strict related-item request.

The request model enforces every constraint CreateRelatedItem declares (lengths, patterns, enums, unions),
because botocore only checks required fields, minimum lengths and types. The constraints are copied from
botocore's `connectcases` model (tests/unit/test_unit_models.py checks they still agree) instead of loading the
model at cold start.
"""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    field_validator,
    model_validator,
)

# Patterns as the API model states them; we match them against the whole value.
CASE_ID_PATTERN = r"[A-Za-z0-9\-._/:#=+-]*"
# A case's reference id (CaseIdentifierUnion.referenceId): unique per domain, case-insensitive.
REFERENCE_ID_MAX = 50
CUSTOM_ENTITY_PATTERN = r"[a-zA-Z0-9_\-\.@:/ ]*[a-zA-Z0-9_\-\.@:/]"
SLA_NAME_PATTERN = r".*[\S]"
COMMENT_MAX = 15000
STRING_VALUE_MAX = 4100
TARGET_SLA_MINUTES_MAX = 1051200
CUSTOM_FIELDS_MAX = 50
IDEMPOTENCY_KEY_MAX = 256
# A field's doubleValue travels as a JSON number that must fit a double: no NaN or infinities, and no integer
# botocore cannot turn into a float (it raises OverflowError on our side instead of sending).
DOUBLE_MAX = sys.float_info.max

RELATED_ITEM_TYPES: tuple[str, ...] = ("Contact", "Comment", "File", "Sla", "ConnectCase", "Custom")
# The content union member each related-item type requires.
CONTENT_MEMBER: dict[str, str] = {
    "Contact": "contact",
    "Comment": "comment",
    "File": "file",
    "Sla": "sla",
    "ConnectCase": "connectCase",
    "Custom": "custom",
}


def _whole(pattern: str) -> str:
    return rf"^(?:{pattern})$"


_CASE_ID_RE = re.compile(_whole(CASE_ID_PATTERN))


def is_case_id(value: str) -> bool:
    """Whether `value` could be a Cases case id (CreateRelatedItem's constraints on caseId)."""
    return 1 <= len(value) <= 500 and _CASE_ID_RE.match(value) is not None


Id500 = Annotated[StrictStr, StringConstraints(min_length=1, max_length=500)]
# Connect's contact ids (UUIDs): what a contact ARN may end in (mapping._CONTACT_ARN). Anything else is not a
# contact, and is refused before it reaches a log line or an ARN.
ContactId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256, pattern=r"^[A-Za-z0-9-]+$")
]
CaseId = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=500, pattern=_whole(CASE_ID_PATTERN))
]
CustomEntity = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=500, pattern=_whole(CUSTOM_ENTITY_PATTERN))
]
ReferenceId = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=REFERENCE_ID_MAX, pattern=_whole(CASE_ID_PATTERN))
]
SlaName = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=500, pattern=_whole(SLA_NAME_PATTERN))
]
RelatedItemType = Literal["Contact", "Comment", "File", "Sla", "ConnectCase", "Custom"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Union(_Strict):
    """A Smithy union: exactly one member set."""

    @model_validator(mode="after")
    def _exactly_one(self) -> _Union:
        chosen = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(chosen) != 1:
            members = ", ".join(type(self).model_fields)
            raise ValueError(f"exactly one of {members} must be set, got {len(chosen)}")
        return self

    def member(self) -> str:
        """The name of the member that is set."""
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)


class EmptyValue(_Strict):
    pass


class FieldValueUnion(_Union):
    stringValue: Annotated[StrictStr, StringConstraints(max_length=STRING_VALUE_MAX)] | None = None
    doubleValue: (
        Annotated[StrictFloat, Field(allow_inf_nan=False)]
        | Annotated[StrictInt, Field(ge=-int(DOUBLE_MAX), le=int(DOUBLE_MAX))]
        | None
    ) = None
    booleanValue: StrictBool | None = None
    emptyValue: EmptyValue | None = None
    userArnValue: StrictStr | None = None


class FieldValue(_Strict):
    id: Id500
    value: FieldValueUnion


class ContactInput(_Strict):
    contactArn: Id500


class CommentInput(_Strict):
    body: Annotated[StrictStr, StringConstraints(min_length=1, max_length=COMMENT_MAX)]
    contentType: Literal["Text/Plain"]


class FileInput(_Strict):
    fileArn: Id500


class SlaInputConfiguration(_Strict):
    name: SlaName
    type: Literal["CaseField"]
    fieldId: Id500 | None = None
    targetFieldValues: Annotated[list[FieldValueUnion], Field(min_length=1, max_length=1)] | None = None
    targetSlaMinutes: Annotated[StrictInt, Field(ge=1, le=TARGET_SLA_MINUTES_MAX)]


class SlaInput(_Union):
    slaInputConfiguration: SlaInputConfiguration | None = None


class ConnectCaseInput(_Strict):
    caseId: CaseId


class CustomInput(_Strict):
    fields: Annotated[list[FieldValue], Field(min_length=1, max_length=CUSTOM_FIELDS_MAX)]


class RelatedItemInputContent(_Union):
    contact: ContactInput | None = None
    comment: CommentInput | None = None
    file: FileInput | None = None
    sla: SlaInput | None = None
    connectCase: ConnectCaseInput | None = None
    custom: CustomInput | None = None


class UserUnion(_Union):
    userArn: Id500 | None = None
    customEntity: CustomEntity | None = None


class RelatedItemRequest(_Strict):
    """A related-item request: CreateRelatedItem's input plus an optional domain and idempotency key.

    The case is named by `caseId` or, as BatchCreateRelatedItem's CaseIdentifierUnion allows, by its
    `referenceId` (exactly one of the two).
    """

    caseId: CaseId | None = None
    referenceId: ReferenceId | None = None
    domainId: Id500 | None = None
    type: RelatedItemType
    content: RelatedItemInputContent
    performedBy: UserUnion | None = None
    idempotencyKey: (
        Annotated[StrictStr, StringConstraints(min_length=1, max_length=IDEMPOTENCY_KEY_MAX)] | None
    ) = None

    @model_validator(mode="after")
    def _one_case_identifier(self) -> RelatedItemRequest:
        if (self.caseId is None) == (self.referenceId is None):
            raise ValueError("exactly one of caseId, referenceId must be set")
        return self

    @model_validator(mode="after")
    def _content_matches_type(self) -> RelatedItemRequest:
        expected = CONTENT_MEMBER[self.type]
        if self.content.member() != expected:
            raise ValueError(
                f"type {self.type} needs content.{expected}, got content.{self.content.member()}"
            )
        return self


# --- Connect contact events: lenient -------------------------------------------------------------


def _squash(key: str) -> str:
    return key.replace("-", "").replace("_", "").lower()


class _Lenient(BaseModel):
    """Accepts camelCase, PascalCase and snake_case keys; ignores what it does not know."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    _keys: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._keys = {}

    @model_validator(mode="before")
    @classmethod
    def _canonical_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if not cls._keys:
            cls._keys = {_squash(name): name for name in cls.model_fields}
        result: dict[str, Any] = {}
        for key, value in data.items():
            name = cls._keys.get(_squash(key), key) if isinstance(key, str) else key
            # An exact spelling wins over a differently-cased duplicate.
            if name not in result or key == name:
                result[name] = value
        return result


class AgentInfo(_Lenient):
    agentArn: str | None = None


class ContactDetail(_Lenient):
    """`detail` of an Amazon Connect Contact Event; only eventType, contactId and instanceArn are needed."""

    eventType: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=1)]
    contactId: ContactId
    instanceArn: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
    initialContactId: ContactId | None = None
    channel: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True)] | None = None
    agentInfo: AgentInfo | None = None
    tags: dict[str, Any] | None = None
    # Not Connect's: the reconciliation sweeper's finding that this contact belongs to the one case its
    # contact chain (initial or previous contact) is linked to. Used only when the contact names no case itself.
    chainCaseId: str | None = None

    @field_validator("initialContactId", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("chainCaseId", mode="before")
    @classmethod
    def _not_a_case_id_is_none(cls, value: Any) -> Any:
        # Only a hint, used when the contact names no case itself: one that is not a case id is dropped (never
        # logged), rather than refusing a contact that may well have its own case.
        return value.strip() if isinstance(value, str) and is_case_id(value.strip()) else None

    @field_validator("agentInfo", "tags", mode="before")
    @classmethod
    def _not_an_object_is_none(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else None
