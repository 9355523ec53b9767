"""The emulated account's data: Cases (emulator/cases.py) and Connect (emulator/connect.py) side by side,
and which of their methods answers each operation.

Not thread-safe by itself: the Emulator holds its lock around every call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from emulator.cases import CasesState, FieldInput, RelatedItem, field_value
from emulator.connect import ConnectState, Contact, instance_id_of

__all__ = ["Contact", "FieldInput", "RelatedItem", "Store", "field_value", "instance_id_of"]


class Store:
    def __init__(self, region: str, account_id: str, events: Counter[tuple[str, str]] | None = None) -> None:
        self.events: Counter[tuple[str, str]] = Counter() if events is None else events
        self.cases = CasesState(region, account_id, self.events)
        self.connect = ConnectState(region, account_id)
        self.cases.contact_channel = self.connect.channel_of
        self.cases.check_contact = self.connect.check_contact_arn
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "CreateDomain": self.cases.create_domain,
            "GetDomain": self.cases.get_domain,
            "ListDomains": self.cases.list_domains,
            "CreateCase": self.cases.create_case,
            "GetCase": self.cases.get_case,
            "CreateRelatedItem": self.cases.create_related_item,
            "BatchCreateRelatedItem": self.cases.batch_create_related_item,
            "ListCasesForContact": self.cases.list_cases_for_contact,
            "SearchRelatedItems": self.cases.search_related_items,
            "SearchAllRelatedItems": self.cases.search_all_related_items,
            "SearchCases": self.cases.search_cases,
            "StartMergeCases": self.cases.start_merge_cases,
            "GetMergeCasesStatus": self.cases.get_merge_cases_status,
            "GetContactAttributes": self.connect.get_contact_attributes,
            "DescribeContact": self.connect.describe_contact,
            "SearchContacts": self.connect.search_contacts,
            "ListAssociatedContacts": self.connect.list_associated_contacts,
            "DescribeInstance": self.connect.describe_instance,
            "ListIntegrationAssociations": self.connect.list_integration_associations,
        }

    def handle(
        self, operation: str, params: dict[str, Any], item_failures: Mapping[int, str] | None = None
    ) -> dict[str, Any]:
        """Answer one operation (raises ApiError); merges whose time has come finish first."""
        self.cases.settle()
        if operation == "BatchCreateRelatedItem":
            return self.cases.batch_create_related_item(params, item_failures)
        return self._handlers[operation](params)
