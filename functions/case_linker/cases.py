"""The only module that calls Amazon Connect Cases and Connect.

It translates AWS error codes into our own small set of errors (case_linker.errors), never by matching
message text, and hooks pacing, the batch deadline and the circuit breaker into botocore's event system so
that botocore's own retries are paced and bounded too.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, ParamValidationError
from botocore.exceptions import ConnectionError as BotoConnectionError

from case_linker.errors import AmbiguousError, LinkerError, PermanentError, ThrottledError, TransientError
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


def install_guards(
    client: Any,
    *,
    guard: BatchGuard,
    counters: Counters,
    max_attempts: int,
    pacer: Pacer | None = None,
    breaker: bool = False,
) -> None:
    """Hook pacing, the deadline and (for Cases) the breaker into every HTTP attempt of `client`."""
    service = client.meta.service_model.service_id.hyphenize()

    def before_send(event_name: str, **_: Any) -> None:
        if breaker:
            guard.check_breaker()
        operation = event_name.rsplit(".", 1)[-1]
        wait = pacer.reserve(operation, not_after=guard.last_start) if pacer is not None else 0.0
        guard.sleep(wait)

    def needs_retry(
        response: tuple[Any, dict[str, Any]] | None,
        attempts: int,
        caught_exception: Exception | None = None,
        **_: Any,
    ) -> None:
        if _is_throttle(response):
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
        """Whether the contact is already a related item of the case (ListCasesForContact)."""
        params: dict[str, Any] = {"domainId": domain_id, "contactArn": contact_arn, "maxResults": _LIST_PAGE}
        for _ in range(_MAX_PAGES):
            response = self._call(self._cases, "ListCasesForContact", params)
            if any(case.get("caseId") == case_id for case in response.get("cases", [])):
                return True
            if not response.get("nextToken"):
                return False
            params = {**params, "nextToken": response["nextToken"]}
        return False

    def find_item(self, item: RelatedItem) -> str | None:
        """The id of a related item on the case equal to `item`, if one exists (SearchRelatedItems)."""
        params: dict[str, Any] = {
            "domainId": item.domain_id,
            "caseId": item.case_id,
            "filters": [search_filter(item)],
            "maxResults": _SEARCH_PAGE,
        }
        for _ in range(_MAX_PAGES):
            response = self._call(self._cases, "SearchRelatedItems", params)
            for found in response.get("relatedItems", []):
                if same_item(item, found):
                    return str(found.get("relatedItemId", ""))
            if not response.get("nextToken"):
                return None
            params = {**params, "nextToken": response["nextToken"]}
        return None

    def create(self, item: RelatedItem) -> str:
        """One CreateRelatedItem attempt; returns the new item's id.

        Raises ThrottledError (nothing committed), AmbiguousError (may have committed), PermanentError or
        TransientError.
        """
        response = self._call(self._cases_create, "CreateRelatedItem", item.api_params(), ambiguous=True)
        return str(response.get("relatedItemId", ""))

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


def translate(error: ClientError, operation: str, *, ambiguous: bool = False) -> LinkerError:
    """Map an AWS error response to our errors by code and HTTP status."""
    code = str(error.response.get("Error", {}).get("Code") or "Unknown")
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    message = f"{operation} failed: {code} (HTTP {status})"
    if code in THROTTLING_CODES or status == 429:
        return ThrottledError(code, message)
    if code in PERMANENT_CODES:
        return PermanentError(code, message)
    if ambiguous and status >= 500:
        return AmbiguousError(code, message)
    return TransientError(code, message)


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
