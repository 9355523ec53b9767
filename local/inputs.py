"""What the pipeline publishes: sample event files, or synthetic contact events with seeded cases."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONNECT_SOURCE = "aws.connect"
CONTACT_DETAIL_TYPE = "Amazon Connect Contact Event"
REQUEST_DETAIL_TYPE = "Case Related Item Request"
_CHANNELS = ("VOICE", "CHAT", "TASK", "EMAIL")
# Files in events/ that are not events.
SEED_FILE = "seed.json"
EXPECTED_FILE = "expected.json"
NON_EVENT_FILES = frozenset({EXPECTED_FILE, SEED_FILE})
EVENT_SUFFIXES = frozenset({".json", ".jsonl", ".txt"})


def squash(key: str) -> str:
    """`detail-type`, `DetailType` and `detail_type` all become `detailtype`: AWS's samples mix casings."""
    return key.replace("-", "").replace("_", "").lower()


def lenient_get(document: dict[str, Any], key: str) -> Any:
    wanted = squash(key)
    return next((value for k, value in document.items() if isinstance(k, str) and squash(k) == wanted), None)


@dataclass(frozen=True)
class Input:
    """One message to publish: `body` is the SQS message body exactly as the sample file holds it."""

    name: str
    body: str
    document: Any = None  # the parsed body, or None when it is not JSON
    # String message attributes a producer sets (sent only when the input goes straight to the queue).
    attributes: Mapping[str, str] | None = None

    @classmethod
    def of(cls, name: str, body: str, attributes: Mapping[str, str] | None = None) -> Input:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            document = None
        return cls(name=name, body=body, document=document, attributes=attributes)

    @property
    def envelope(self) -> dict[str, Any] | None:
        """The EventBridge envelope, when the body is one with an object `detail`."""
        doc = self.document
        if (
            isinstance(doc, dict)
            and isinstance(lenient_get(doc, "detail-type"), str)
            and isinstance(lenient_get(doc, "detail"), dict)
            and isinstance(lenient_get(doc, "source"), str)
        ):
            return doc
        return None

    @property
    def detail(self) -> dict[str, Any] | None:
        envelope = self.envelope
        if envelope is not None:
            detail: dict[str, Any] = lenient_get(envelope, "detail")
            return detail
        return self.document if isinstance(self.document, dict) else None

    @property
    def is_contact_event(self) -> bool:
        envelope = self.envelope
        return envelope is not None and lenient_get(envelope, "detail-type") == CONTACT_DETAIL_TYPE

    @property
    def contact_arn(self) -> str | None:
        """`instanceArn/contact/contactId` for a contact event (the linker builds the same)."""
        detail = self.detail if self.is_contact_event else None
        if detail is None:
            return None
        instance, contact = lenient_get(detail, "instanceArn"), lenient_get(detail, "contactId")
        if isinstance(instance, str) and isinstance(contact, str) and instance and contact:
            return f"{instance}/contact/{contact}"
        return None

    @property
    def contact_event_type(self) -> str | None:
        detail = self.detail if self.is_contact_event else None
        value = lenient_get(detail, "eventType") if detail else None
        return value.strip().upper() if isinstance(value, str) else None

    @property
    def request(self) -> dict[str, Any] | None:
        """The related-item request, bare or as the detail of a `Case Related Item Request` envelope."""
        envelope = self.envelope
        if envelope is not None:
            return self.detail if lenient_get(envelope, "detail-type") == REQUEST_DETAIL_TYPE else None
        doc = self.document
        return doc if isinstance(doc, dict) and "type" in doc and "content" in doc else None

    def put_events_entry(self) -> dict[str, Any]:
        """The PutEvents entry that makes EventBridge deliver this envelope (with a new id and time)."""
        envelope = self.envelope
        if envelope is None:
            raise ValueError(f"{self.name} is not an EventBridge envelope")
        entry: dict[str, Any] = {
            "Source": lenient_get(envelope, "source"),
            "DetailType": lenient_get(envelope, "detail-type"),
            "Detail": json.dumps(lenient_get(envelope, "detail")),
        }
        resources = lenient_get(envelope, "resources")
        if isinstance(resources, list) and all(isinstance(r, str) for r in resources):
            entry["Resources"] = resources
        time = lenient_get(envelope, "time")
        if isinstance(time, str):
            with contextlib.suppress(ValueError):
                entry["Time"] = dt.datetime.fromisoformat(time.replace("Z", "+00:00"))
        return entry


def event_files(path: Path) -> list[tuple[str, Path]]:
    """The event files a file or folder given holds, sorted, with the name their inputs get.

    A file found in a folder is named by its path relative to that folder; a file given directly, as given.
    """
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    found = []
    for file in files:
        if path.is_dir() and (file.name in NON_EVENT_FILES or file.suffix not in EVENT_SUFFIXES):
            continue
        if file.name.startswith("."):
            continue
        # Relative to the folder given ("bad/malformed-body.txt"), as expected.json names them.
        found.append((file.relative_to(path).as_posix() if path.is_dir() else str(file), file))
    return found


def load_inputs(paths: Iterable[Path]) -> list[Input]:
    """Every `.json`/`.txt` file under the given files or folders (sorted), but expected.json and seed.json.

    A file holds one SQS body, byte for byte (a `.txt` one may be deliberately malformed); a `.jsonl` file
    holds one body per line (`name:line`).
    """
    inputs: list[Input] = []
    for path in paths:
        for name, file in event_files(path):
            text = file.read_text(encoding="utf-8")
            if file.suffix == ".jsonl":
                for number, line in enumerate(text.splitlines(), start=1):
                    if line.strip():
                        inputs.append(Input.of(f"{name}:{number}", line))
            else:
                inputs.append(Input.of(name, text))
    return inputs


def nearest_file(path: Path, name: str) -> Path | None:
    """`name` in the folder given (a file's own folder) or the nearest folder above it: events/bad and
    events/bad/x.json both find events/seed.json."""
    folder = path.resolve() if path.is_dir() else path.resolve().parent
    return next((f / name for f in (folder, *folder.parents) if (f / name).is_file()), None)


def shared_file(paths: Iterable[Path], name: str) -> Path | None:
    """The one `name` nearest to every path that has one; ValueError when two paths find different ones.

    Two seeds (or expected.json) are two different worlds (their domain, instance, cases): one run has one.
    """
    found = sorted({f for path in paths if (f := nearest_file(path, name)) is not None})
    if len(found) > 1:
        raise ValueError(f"the inputs' nearest {name} are not the same file ({', '.join(map(str, found))})")
    return found[0] if found else None


def expected_outcomes(paths: Iterable[Path], expected_path: Path) -> dict[str, Any]:
    """expected.json's outcomes for the inputs under `paths` that find this very file, keyed by input name.

    expected.json names a file by its path relative to its own folder ("bad/malformed-body.txt"); a line of a
    `.jsonl` file as `file.jsonl:N`. Inputs it does not name get no expectation (their outcome is unchecked).
    """
    expected_path = expected_path.resolve()
    document = json.loads(expected_path.read_text(encoding="utf-8"))
    nested = isinstance(document.get("events"), dict)
    outcomes: dict[str, Any] = document["events"] if nested else document
    chosen: dict[str, Any] = {}
    for path in paths:
        if nearest_file(path, expected_path.name) != expected_path:
            continue
        for name, file in event_files(path):
            relative = file.resolve().relative_to(expected_path.parent).as_posix()
            for key, outcome in outcomes.items():
                if key == relative or key.startswith(f"{relative}:"):
                    chosen[name + key[len(relative) :]] = outcome
    context = {k: v for k, v in document.items() if k != "events"} if nested else {}
    return {**context, "events": chosen}


@dataclass(frozen=True)
class SyntheticLoad:
    """N contact COMPLETED events, each with a case seeded for it and its case id in the contact attributes."""

    inputs: list[Input]
    seed: dict[str, Any]
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)


def synthetic_contacts(
    count: int,
    *,
    instance_arn: str,
    domain_id: str,
    case_id_attribute: str = "caseId",
    region: str = "us-east-1",
    account_id: str = "123456789012",
    contacts_per_case: int = 1,
) -> SyntheticLoad:
    """Contact events as Connect publishes them, plus the emulator seed and the expected outcomes."""
    instance_id = instance_arn.rsplit("/", 1)[-1]
    cases: list[dict[str, Any]] = []
    contacts: list[dict[str, Any]] = []
    inputs: list[Input] = []
    expected: dict[str, dict[str, Any]] = {}
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for index in range(count):
        case_id = f"synthetic-case-{index // contacts_per_case:05d}"
        if index % contacts_per_case == 0:
            cases.append({"id": case_id, "title": f"Synthetic case {index // contacts_per_case}"})
        contact_id = str(uuid.UUID(int=index + 1))
        channel = _CHANNELS[index % len(_CHANNELS)]
        contacts.append(
            {
                "instanceId": instance_id,
                "contactId": contact_id,
                "channel": channel,
                "attributes": {case_id_attribute: case_id},
            }
        )
        initiated = start + dt.timedelta(seconds=index)
        envelope = {
            "version": "0",
            "id": str(uuid.UUID(int=10**9 + index)),
            "detail-type": CONTACT_DETAIL_TYPE,
            "source": CONNECT_SOURCE,
            "account": account_id,
            "time": (initiated + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": [instance_arn, f"{instance_arn}/contact/{contact_id}"],
            "detail": {
                "eventType": "COMPLETED",
                "contactId": contact_id,
                "initialContactId": contact_id,
                "channel": channel,
                "instanceArn": instance_arn,
                "initiationMethod": "INBOUND",
                "initiationTimestamp": initiated.isoformat().replace("+00:00", "Z"),
                "disconnectTimestamp": (initiated + dt.timedelta(minutes=4))
                .isoformat()
                .replace("+00:00", "Z"),
            },
        }
        name = f"synthetic-{index + 1:05d}"
        inputs.append(Input.of(name, json.dumps(envelope)))
        expected[name] = {"outcome": "linked", "caseId": case_id, "type": "Contact"}
    seed = {"domains": [{"id": domain_id, "name": "synthetic", "cases": cases}], "contacts": contacts}
    return SyntheticLoad(inputs=inputs, seed=seed, expected=expected)


def first_instance_arn(inputs: Sequence[Input]) -> str | None:
    for item in inputs:
        detail = item.detail if item.is_contact_event else None
        arn = lenient_get(detail, "instanceArn") if detail else None
        if isinstance(arn, str) and arn:
            return arn
    return None


def first_request_source(inputs: Sequence[Input]) -> str | None:
    """The source of the first `Case Related Item Request` envelope: the one the optional rule matches."""
    for item in inputs:
        envelope = item.envelope
        if envelope is not None and lenient_get(envelope, "detail-type") == REQUEST_DETAIL_TYPE:
            source = lenient_get(envelope, "source")
            if isinstance(source, str) and not source.startswith("aws."):
                return source
    return None
