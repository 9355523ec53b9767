"""The only module that calls Amazon Connect Cases and Connect.

It translates AWS error codes into our own small set of errors (case_linker.errors), never by matching
message text, and hooks pacing, the batch deadline and the circuit breaker into botocore's event system so
that botocore's own retries are paced and bounded too.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, ParamValidationError
from botocore.exceptions import ConnectionError as BotoConnectionError

from case_linker.budget import BACKGROUND_WORK, SharedBudget
from case_linker.errors import (
    AmbiguousError,
    CaseBusyError,
    LinkerError,
    PermanentError,
    ThrottledError,
    TransientError,
    error_code,
)
from case_linker.mapping import RelatedItem, same_item, search_filter
from case_linker.pacing import BatchGuard, Pacer
from case_linker.telemetry import RETRIED, THROTTLED, Counters

THROTTLING_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "Throttling"})
# Retrying cannot fix these: the message goes to the dead-letter queue.
PERMANENT_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "ServiceQuotaExceededException",
        "ValidationException",
        "InvalidParameterException",
        "InvalidRequestException",
        "SerializationException",
    }
)
# Largest first backoff botocore's standard mode uses (throttling); doubles per attempt, capped at 20 s.
_BOTOCORE_BACKOFF_BASE = 1.0
_BOTOCORE_BACKOFF_CAP = 20.0
_SEARCH_PAGE = 25
_LIST_PAGE = 10
_MAX_PAGES = 10  # 200 related items per case fit in 8 pages of 25
# BatchCreateRelatedItem is authorised as cases:CreateRelatedItem; whether AWS counts it against that API's
# quota is not documented, so it is paced in the same bucket (never more than either quota allows).
PACING_KEY = {"BatchCreateRelatedItem": "CreateRelatedItem"}
# The case field that holds a case's reference id, for SearchCases. Not confirmed by AWS documentation.
REFERENCE_ID_FIELD = "reference_id"
# BatchCreateRelatedItem's per-case error codes: what each means for us. None of these items was created.
_BATCH_FAILURES: dict[str, tuple[type[LinkerError], str]] = {
    "CASE_NOT_FOUND": (PermanentError, "ResourceNotFoundException"),
    "DOMAIN_NOT_FOUND": (PermanentError, "ResourceNotFoundException"),
    "VALIDATION_ERROR": (PermanentError, "ValidationException"),
    "ACCESS_DENIED": (PermanentError, "AccessDeniedException"),
    "SERVICE_QUOTA_EXCEEDED": (PermanentError, "ServiceQuotaExceededException"),
    "CONFLICT": (CaseBusyError, "ConflictException"),
    "THROTTLED": (ThrottledError, "ThrottlingException"),
    "INTERNAL_ERROR": (TransientError, "InternalServerException"),
}
# How long a case that is being merged is left alone before the record is tried again.
CASE_BUSY_RETRY_SECONDS = 30.0

# Called by the before-send hook right before a create goes on the wire (after pacing): the ledger's
# durable "a create is in flight" mark. Per thread of execution, so concurrent records do not mix.
_on_send: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "case_linker_on_send", default=None
)


@dataclass(frozen=True)
class Created:
    """A new related item: its id, and the case it went on (known even when named by reference id)."""

    related_item_id: str
    case_id: str | None


def _pacing_key(event_name: str) -> str:
    """The quota an HTTP attempt draws on, from botocore's event name (`before-send.connectcases.<Operation>`)."""
    operation = event_name.rsplit(".", 1)[-1]
    return PACING_KEY.get(operation, operation)


def install_guards(
    client: Any,
    *,
    guard: BatchGuard,
    counters: Counters,
    max_attempts: int,
    pacer: Pacer | SharedBudget | None = None,
    breaker: bool = False,
) -> None:
    """Hook pacing, the deadline and (for Cases) the breaker into every HTTP attempt of `client`."""
    service = client.meta.service_model.service_id.hyphenize()

    def before_send(event_name: str, **_: Any) -> None:
        if breaker:
            guard.check_breaker()
        key = _pacing_key(event_name)
        if isinstance(pacer, SharedBudget):
            # Asked again after each wait: a throttle in this environment meanwhile revokes the slot.
            background = BACKGROUND_WORK.get()
            while (
                wait := pacer.reserve(
                    key,
                    not_after=guard.last_start,
                    background=background,
                    expected=guard.expected(background),
                )
            ) > 0:
                guard.sleep(wait)
        elif pacer is not None:
            guard.sleep(pacer.reserve(key, not_after=guard.last_start))
        hook = _on_send.get()
        if hook is not None:
            hook()

    def needs_retry(
        response: tuple[Any, dict[str, Any]] | None,
        attempts: int,
        caught_exception: Exception | None = None,
        event_name: str = "",
        **_: Any,
    ) -> None:
        throttled = _refused_for_rate(response)
        if isinstance(pacer, SharedBudget):
            # Feedback for the fleet's rate: every attempt, throttled or not.
            pacer.record(_pacing_key(event_name), throttled=throttled)
        if throttled:
            counters.incr(THROTTLED)
        if attempts < max_attempts and _may_be_retried(response, caught_exception):
            # botocore is about to sleep and try again: refuse if the worst-case pause plus one more
            # attempt would overrun the deadline, rather than find out after sleeping.
            worst = min(_BOTOCORE_BACKOFF_BASE * 2 ** (attempts - 1), _BOTOCORE_BACKOFF_CAP)
            guard.check_time(worst)
        # No opinion: botocore's retry handler decides.

    client.meta.events.register(f"before-send.{service}", before_send)
    client.meta.events.register_first(f"needs-retry.{service}", needs_retry)


def _is_throttle(response: tuple[Any, dict[str, Any]] | None) -> bool:
    if response is None:
        return False
    http, parsed = response
    return getattr(http, "status_code", 0) == 429 or parsed.get("Error", {}).get("Code") in THROTTLING_CODES


def _refused_for_rate(response: tuple[Any, dict[str, Any]] | None) -> bool:
    """A throttle, or BatchCreateRelatedItem's answer (HTTP 200) that its case was refused for the rate: each is a
    refusal the Throttled metric and the fleet's rate must hear of."""
    if _is_throttle(response):
        return True
    failed = (response[1].get("failedItems") if response is not None else None) or []
    return any(isinstance(entry, dict) and entry.get("errorCode") == "THROTTLED" for entry in failed)


def _may_be_retried(response: tuple[Any, dict[str, Any]] | None, caught: Exception | None) -> bool:
    if caught is not None:
        return isinstance(caught, HTTPClientError | BotoConnectionError)
    if response is None:
        return False
    return _is_throttle(response) or getattr(response[0], "status_code", 0) >= 500


class CasesGateway:
    """Calls to Cases (reads retried by botocore; CreateRelatedItem attempted once) and Connect."""

    def __init__(self, *, cases: Any, cases_create: Any, connect: Any, counters: Counters) -> None:
        self._cases = cases
        self._cases_create = cases_create
        self._connect = connect
        self._counters = counters

    def contact_attributes(self, instance_id: str, initial_contact_id: str) -> dict[str, str]:
        """The contact's user-defined attributes (Connect GetContactAttributes)."""
        response = self._call(
            self._connect,
            "GetContactAttributes",
            {"InstanceId": instance_id, "InitialContactId": initial_contact_id},
        )
        attributes = response.get("Attributes") or {}
        return {str(k): v for k, v in attributes.items() if isinstance(v, str)}

    def contact_on_case(self, domain_id: str, contact_arn: str, case_id: str) -> bool:
        """Whether the contact is already a related item of the case (ListCasesForContact), or of the case it
        was merged into: a finished merge moves the secondary's contacts to the primary."""
        params: dict[str, Any] = {"domainId": domain_id, "contactArn": contact_arn, "maxResults": _LIST_PAGE}
        elsewhere: set[str] = set()
        for _ in range(_MAX_PAGES):
            response = self._call(self._cases, "ListCasesForContact", params)
            found = {str(case.get("caseId")) for case in response.get("cases", [])}
            if case_id in found:
                return True
            elsewhere |= found
            if not response.get("nextToken"):
                break
            params = {**params, "nextToken": response["nextToken"]}
        # Only when the contact is on another case: a look-up more, never one per contact.
        return bool(elsewhere) and self._merged_into(domain_id, case_id) in elsewhere

    def _merged_into(self, domain_id: str, case_id: str) -> str | None:
        """The case `case_id` was merged into as the secondary of a finished merge (GetMergeCasesStatus)."""
        try:
            status = self._call(
                self._cases, "GetMergeCasesStatus", {"domainId": domain_id, "caseId": case_id}
            )
        except PermanentError as error:
            if error.code == "ResourceNotFoundException":
                return None  # not part of a merge
            if error.code == "AccessDeniedException":
                return None  # a role without cases:GetMergeCasesStatus: link to the case named, as before
            raise
        if status.get("status") == "COMPLETED" and case_id in status.get("secondaryCaseIds", []):
            return str(status.get("primaryCaseId") or "") or None
        return None

    def find_items(self, item: RelatedItem, *, since: float, until: float) -> list[str]:
        """Ids of related items on the case that could be `item` made by an earlier attempt of ours.

        Same type and content, performed by the same performer (when the result shows one: the API's model
        makes it optional), associated in [since, until] (epoch seconds: when our attempts could have landed).
        An identical item alone is never proof: another request may have made it earlier.
        """
        params: dict[str, Any] = {
            "domainId": item.domain_id,
            "caseId": item.case_id,
            "filters": [search_filter(item)],
            "maxResults": _SEARCH_PAGE,
        }
        found_ids: list[str] = []
        for _ in range(_MAX_PAGES):
            response = self._call(self._cases, "SearchRelatedItems", params)
            for found in response.get("relatedItems", []):
                if (
                    same_item(item, found)  # and the same performer, when the result shows it
                    and since <= _epoch(found.get("associationTime")) <= until
                    and found.get("relatedItemId")
                ):
                    found_ids.append(str(found["relatedItemId"]))
            if not response.get("nextToken"):
                break
            params = {**params, "nextToken": response["nextToken"]}
        return found_ids

    def case_for_reference(self, domain_id: str, reference_id: str) -> str | None:
        """The case id of the case with this reference id (SearchCases), None if there is none."""
        params = {
            "domainId": domain_id,
            "filter": {
                "field": {"equalTo": {"id": REFERENCE_ID_FIELD, "value": {"stringValue": reference_id}}}
            },
            "maxResults": 2,
        }
        cases = self._call(self._cases, "SearchCases", params).get("cases", [])
        if len(cases) > 1:
            raise PermanentError(
                "ValidationException", "referenceId: more than one case has this reference id"
            )
        return str(cases[0]["caseId"]) if cases else None

    def create(self, item: RelatedItem, *, client_token: str, on_send: Callable[[], None]) -> Created:
        """One create attempt: BatchCreateRelatedItem with `client_token` for Comments, else CreateRelatedItem.

        `on_send` runs right before the request goes on the wire. Raises ThrottledError or CaseBusyError
        (nothing committed), AmbiguousError (may have committed), PermanentError or TransientError.
        """
        named_by = "caseId" if item.case_id else "referenceId"
        operation, params = (
            ("BatchCreateRelatedItem", item.batch_params(client_token))
            if item.uses_client_token
            else ("CreateRelatedItem", item.api_params())
        )
        with _sending(on_send):
            try:
                response = self._call(self._cases_create, operation, params, ambiguous=True)
            except PermanentError as error:
                if error.code != "ResourceNotFoundException":
                    raise
                # The whole request found no case (the domain is this deployment's own, checked before any call).
                raise PermanentError(
                    error.code, _not_found(named_by, f"{operation}: {error.code}")
                ) from error
        if item.uses_client_token:
            return batch_outcome(response, named_by=named_by)
        return Created(str(response.get("relatedItemId", "")), item.case_id)

    def _call(
        self, client: Any, operation: str, params: dict[str, Any], ambiguous: bool = False
    ) -> dict[str, Any]:
        method = getattr(client, _snake(operation))
        try:
            response: dict[str, Any] = method(**params)
        except ClientError as error:
            self._count_retries(error.response)
            raise translate(error, operation, ambiguous=ambiguous) from error
        except ParamValidationError as error:
            raise PermanentError(
                "ValidationException", f"{operation} rejected by client-side validation"
            ) from error
        except (TypeError, ValueError, OverflowError) as error:
            # botocore failed to serialise the request (e.g. a number no double holds): nothing was sent and
            # resending cannot help. Backstop for what the models should already have rejected.
            raise PermanentError(
                "ValidationException", f"{operation} request could not be serialised: {type(error).__name__}"
            ) from error
        except BotoCoreError as error:
            # Connection errors and timeouts: the request may have reached the service.
            kind = AmbiguousError if ambiguous else TransientError
            raise kind(type(error).__name__, f"{operation}: {type(error).__name__}") from error
        self._count_retries(response)
        return response

    def _count_retries(self, response: dict[str, Any]) -> None:
        retries = int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)
        if retries:
            self._counters.incr(RETRIED, value=retries)


@contextmanager
def _sending(hook: Callable[[], None]) -> Iterator[None]:
    token = _on_send.set(hook)
    try:
        yield
    finally:
        _on_send.reset(token)


def batch_outcome(response: dict[str, Any], named_by: str = "caseId") -> Created:
    """The one case's entry of a BatchCreateRelatedItem response, as an id or one of our errors.

    `named_by`: the request's field that named the case (`caseId` or `referenceId`), for the reason of a
    case that was not found."""
    for entry in response.get("successfulItems", []):
        case = entry.get("caseIdentifier") or {}
        return Created(str(entry.get("relatedItemId", "")), case.get("caseId"))
    for entry in response.get("failedItems", []):
        failure = str(entry.get("errorCode") or "UNKNOWN")
        kind, code = _BATCH_FAILURES.get(failure, (TransientError, failure))
        # The service's errorMessage may quote the request: only the code is kept.
        message = (
            _not_found(named_by, f"BatchCreateRelatedItem: {failure}")
            if failure == "CASE_NOT_FOUND"
            else f"BatchCreateRelatedItem failed for the case: {failure}"
        )
        error = (
            CaseBusyError(code, message, retry_after=CASE_BUSY_RETRY_SECONDS)
            if kind is CaseBusyError
            else kind(code, message)
        )
        error.token_spent = True
        raise error
    raise TransientError("EmptyResponse", "BatchCreateRelatedItem answered with no item for the case")


def _not_found(named_by: str, answer: str) -> str:
    """The reason for a case that is not there: the request's field that named it, then the service's answer."""
    words = {"caseId": "case id", "referenceId": "reference id"}.get(named_by, "id")
    return f"{named_by}: no case in the domain has this {words} ({answer})"


def _epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return float("-inf")


def translate(error: ClientError, operation: str, *, ambiguous: bool = False) -> LinkerError:
    """Map an AWS error response to our errors by code and HTTP status."""
    code = error_code(error) or "Unknown"
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    message = f"{operation} failed: {code} (HTTP {status})"
    if code in THROTTLING_CODES or status == 429:
        return ThrottledError(code, message)
    if code == "ConflictException" or status == 409:
        # The case is the secondary of a running merge (CreateRelatedItem), or, for BatchCreateRelatedItem,
        # our client token is still being processed: our tokens hash every parameter, so a token reused
        # with other parameters cannot happen. Either way nothing was committed and it passes.
        return CaseBusyError(code, message, retry_after=CASE_BUSY_RETRY_SECONDS)
    if code in PERMANENT_CODES:
        return PermanentError(code, message)
    if ambiguous and status >= 500:
        return AmbiguousError(code, message)
    return TransientError(code, message)


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
