"""The sweeper's adapter: Connect SearchContacts, and the cases a contact chain is on (ListCasesForContact).

AWS error codes become our errors through `cases.translate`, as for every other call. Pacing is not done
here but on the clients this adapter is given (`cases.install_guards` with their own token buckets): the
SearchContacts quota (0.5 requests/s, burst 1, by public figures; CONNECT_SEARCH_RPS) shares nothing with
the Cases quotas.

SearchContacts' documented limits (API reference, and the Connect admin guide for contact search):
`MaxResults` 1..100 a page, a `NextToken` to page on; contacts up to two years old; a time range of up to
8 weeks and the first 10,000 results of a search (documented for contact search in the console; treated as
the API's limits too). Results carry ids, channel, initiation method, timestamps, agent and queue ids and
contact tags, never user-defined contact attributes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from case_linker.cases import translate
from case_linker.errors import PermanentError, TransientError
from case_linker.telemetry import RETRIED, Counters

SEARCH_PAGE_SIZE = 100
# A search serves its first 10,000 results (documented for the console's contact search; taken as the API's).
# Whether TotalCount then counts every match or only those is not documented, so a search that served this
# many is continued whatever TotalCount says.
SEARCH_RESULT_LIMIT = 10_000
# A chain's contact found on more than one case is ambiguous: two results are enough to know.
_CHAIN_CASES_PAGE = 2
_CHAIN_CASES_MAX_PAGES = 3


@dataclass(frozen=True)
class FoundContact:
    """One SearchContacts result (a ContactSearchSummary), reduced to what a COMPLETED event carries."""

    contact_id: str
    initial_contact_id: str
    previous_contact_id: str | None = None
    channel: str | None = None
    initiation_method: str | None = None
    initiation_time: dt.datetime | None = None
    disconnect_time: dt.datetime | None = None
    agent_id: str | None = None
    queue_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def chain(self) -> tuple[str, ...]:
        """The other contacts of its chain it names: its initial contact, then its previous one."""
        refs: list[str] = []
        for ref in (self.initial_contact_id, self.previous_contact_id):
            if ref and ref != self.contact_id and ref not in refs:
                refs.append(ref)
        return tuple(refs)


@dataclass(frozen=True)
class SearchPage:
    contacts: list[FoundContact]
    total: int | None
    next_token: str | None


def found_contact(summary: Mapping[str, Any]) -> FoundContact:
    """A ContactSearchSummary as a FoundContact (AWS leaves InitialContactId out on a chain's first contact)."""
    contact_id = str(summary["Id"])
    agent = summary.get("AgentInfo") or {}
    queue = summary.get("QueueInfo") or {}
    tags = summary.get("Tags") or {}
    return FoundContact(
        contact_id=contact_id,
        initial_contact_id=str(summary.get("InitialContactId") or contact_id),
        previous_contact_id=summary.get("PreviousContactId") or None,
        channel=summary.get("Channel"),
        initiation_method=summary.get("InitiationMethod"),
        initiation_time=summary.get("InitiationTimestamp"),
        disconnect_time=summary.get("DisconnectTimestamp"),
        agent_id=agent.get("Id"),
        queue_id=queue.get("Id"),
        tags={str(k): v for k, v in tags.items() if isinstance(v, str)},
    )


class ContactSearch:
    """SearchContacts on `connect`, ListCasesForContact on `cases`; both clients already paced."""

    def __init__(
        self, *, connect: Any, cases: Any, counters: Counters, page_size: int = SEARCH_PAGE_SIZE
    ) -> None:
        self._connect = connect
        self._cases = cases
        self._counters = counters
        self._page_size = page_size

    def page(
        self, instance_id: str, start: dt.datetime, end: dt.datetime, next_token: str | None = None
    ) -> SearchPage:
        """One page of the contacts that disconnected in [start, end], oldest first."""
        params: dict[str, Any] = {
            "InstanceId": instance_id,
            "TimeRange": {"Type": "DISCONNECT_TIMESTAMP", "StartTime": start, "EndTime": end},
            "Sort": {"FieldName": "DISCONNECT_TIMESTAMP", "Order": "ASCENDING"},
            "MaxResults": self._page_size,
        }
        if next_token:
            params["NextToken"] = next_token
        response = self._call(self._connect.search_contacts, "SearchContacts", params)
        total = response.get("TotalCount")
        return SearchPage(
            contacts=[found_contact(summary) for summary in response.get("Contacts", [])],
            total=int(total) if total is not None else None,
            next_token=response.get("NextToken") or None,
        )

    def cases_of_contact(self, domain_id: str, contact_arn: str) -> frozenset[str]:
        """The cases the contact is a related item of: none, one, or two of several (enough to say so)."""
        params: dict[str, Any] = {
            "domainId": domain_id,
            "contactArn": contact_arn,
            "maxResults": _CHAIN_CASES_PAGE,
        }
        cases: set[str] = set()
        for _ in range(_CHAIN_CASES_MAX_PAGES):
            response = self._call(self._cases.list_cases_for_contact, "ListCasesForContact", params)
            cases.update(str(case["caseId"]) for case in response.get("cases", []) if case.get("caseId"))
            if len(cases) >= _CHAIN_CASES_PAGE or not response.get("nextToken"):
                break
            params = {**params, "nextToken": response["nextToken"]}
        return frozenset(cases)

    def _call(self, method: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            response: dict[str, Any] = method(**params)
        except ClientError as error:
            raise translate(error, operation) from error
        except ParamValidationError as error:
            raise PermanentError(
                "ValidationException", f"{operation} rejected by client-side validation"
            ) from error
        except BotoCoreError as error:
            raise TransientError(type(error).__name__, f"{operation}: {type(error).__name__}") from error
        retries = int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)
        if retries:
            self._counters.incr(RETRIED, value=retries)
        return response
