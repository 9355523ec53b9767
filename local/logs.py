"""Reading the handler's CloudWatch-style output: Powertools JSON log lines and EMF metric blobs."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Keys the handler may use for the SQS message id when it appends per-record keys.
_MESSAGE_ID_KEYS = ("message_id", "messageId", "sqs_message_id")
_EVENT_ID_KEYS = ("event_id", "eventId")
_REASON_KEYS = ("reason", "outcome", "skip_reason")


@dataclass(frozen=True)
class LogLine:
    level: str
    message: str
    fields: dict[str, Any]

    @property
    def reason(self) -> str:
        for key in _REASON_KEYS:
            value = self.fields.get(key)
            if isinstance(value, str) and value:
                return value
        return self.message


@dataclass
class HandlerOutput:
    """Everything parsed from the environments' log streams."""

    lines: list[LogLine] = field(default_factory=list)
    by_message_id: dict[str, list[LogLine]] = field(default_factory=lambda: defaultdict(list))
    by_event_id: dict[str, list[LogLine]] = field(default_factory=lambda: defaultdict(list))
    metrics: Counter[str] = field(default_factory=Counter)
    unparsed: int = 0

    def for_message(self, message_id: str | None, event_id: str | None = None) -> list[LogLine]:
        found = list(self.by_message_id.get(message_id, [])) if message_id else []
        if event_id:
            found.extend(line for line in self.by_event_id.get(event_id, []) if line not in found)
        return found


def _first_str(document: dict[str, Any], keys: Iterable[str]) -> str | None:
    for key in keys:
        value = document.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _metric_names(blob: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for directive in blob.get("_aws", {}).get("CloudWatchMetrics", []):
        for metric in directive.get("Metrics", []):
            if isinstance(metric, dict) and isinstance(metric.get("Name"), str):
                names.append(metric["Name"])
    return names


def parse_handler_output(files: Iterable[Path]) -> HandlerOutput:
    output = HandlerOutput()
    for path in files:
        for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not raw.startswith("{"):
                if raw.strip():
                    output.unparsed += 1
                continue
            try:
                document = json.loads(raw)
            except ValueError:
                output.unparsed += 1
                continue
            if not isinstance(document, dict):
                continue
            if "_aws" in document:
                for name in _metric_names(document):
                    value = document.get(name)
                    values = value if isinstance(value, list) else [value]
                    output.metrics[name] += int(sum(v for v in values if isinstance(v, int | float)))
                continue
            line = LogLine(
                level=str(document.get("level", "")),
                message=str(document.get("message", "")),
                fields=document,
            )
            output.lines.append(line)
            if (message_id := _first_str(document, _MESSAGE_ID_KEYS)) is not None:
                output.by_message_id[message_id].append(line)
            if (event_id := _first_str(document, _EVENT_ID_KEYS)) is not None:
                output.by_event_id[event_id].append(line)
    return output
