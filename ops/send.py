"""`send`: put sample events on the main queue (smoke tests). One JSON file is one message body, as-is."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ops.errors import ExitCode, OpsError, translate_botocore_error, translate_client_error
from ops.replay import pack_batches

# Files in events/ that describe the samples rather than being messages (see events/README.md).
NOT_EVENTS = frozenset({"seed.json", "expected.json"})
# A folder holding this file (or under one that does) holds samples that are bad on purpose: an unknown case, a
# comment too long, an unknown shape, malformed JSON. Sent to a real stack they fill the DLQ and fire its alarm.
BAD_MARKER = ".deliberately-bad"


def is_deliberately_bad(file: Path) -> bool:
    """True when the file's folder, or a folder above it, holds the BAD_MARKER file."""
    return any((folder / BAD_MARKER).is_file() for folder in file.resolve().parents)


@dataclass
class Samples:
    """The files to send, and the deliberately bad ones left out."""

    files: list[Path]
    left_out: list[Path]


def collect_files(paths: Sequence[Path], *, include_bad: bool = False) -> Samples:
    """Files as given, and the *.json files under given folders (recursively, sorted; not seed/expected.json).

    Deliberately bad samples are left out of folders and refused by name unless `include_bad`.
    """
    files: list[Path] = []
    left_out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.json") if p.is_file() and p.name not in NOT_EVENTS)
            if not found:
                raise OpsError(f"no .json files under {path}", ExitCode.USAGE)
            for file in found:
                (files if include_bad or not is_deliberately_bad(file) else left_out).append(file)
        elif path.is_file():
            if not include_bad and is_deliberately_bad(path):
                raise OpsError(
                    f"{path} is a deliberately bad sample (it would end in the DLQ and fire its alarm): refused",
                    ExitCode.USAGE,
                    hint="pass --include-bad to send it anyway, e.g. to rehearse the DLQ runbook",
                )
            files.append(path)
        else:
            raise OpsError(f"no such file or folder: {path}", ExitCode.USAGE)
    if not files:
        raise OpsError(
            f"nothing to send: all {len(left_out)} samples are deliberately bad",
            ExitCode.USAGE,
            hint="pass --include-bad to send them",
        )
    return Samples(files=files, left_out=left_out)


def read_bodies(files: Sequence[Path]) -> list[tuple[Path, str]]:
    """Each file's exact text. A .json file must parse (a typo should fail here, not in the Lambda); other
    files given by name are sent as they are, e.g. a deliberately malformed body to exercise the DLQ."""
    bodies = []
    for file in files:
        try:
            text = file.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise OpsError(f"cannot read {file}: {e}", ExitCode.USAGE) from e
        if file.suffix == ".json":
            try:
                json.loads(text)
            except RecursionError:
                raise OpsError(f"{file} is not valid JSON: nested too deeply", ExitCode.USAGE) from None
            except ValueError as e:
                raise OpsError(f"{file} is not valid JSON: {e}", ExitCode.USAGE) from e
        bodies.append((file, text))
    return bodies


@dataclass
class SendResult:
    sent: list[tuple[Path, str]] = field(default_factory=list)  # (file, MessageId)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (file, error code)


def send_bodies(
    sqs: Any, queue_url: str, bodies: Sequence[tuple[Path, str]], result: SendResult | None = None
) -> SendResult:
    """SendMessageBatch within SQS's limits; per-message failures are reported, an AWS error raises.

    `result` is filled batch by batch, so a caller holding it knows what was sent when a later batch fails.
    """
    result = result if result is not None else SendResult()
    by_id = {str(i): file for i, (file, _) in enumerate(bodies)}
    entries: list[dict[str, Any]] = [
        {"Id": str(i), "MessageBody": body} for i, (_, body) in enumerate(bodies)
    ]
    if queue_url.endswith(".fifo"):
        for entry in entries:
            entry["MessageGroupId"] = "ops-send"
            entry["MessageDeduplicationId"] = hashlib.sha256(entry["MessageBody"].encode("utf-8")).hexdigest()
    for batch in pack_batches(entries):
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=batch)
        except ClientError as e:
            raise translate_client_error(e, f"sending to {queue_url}") from e
        except BotoCoreError as e:
            raise translate_botocore_error(e, f"sending to {queue_url}") from e
        result.sent.extend((by_id[s["Id"]], s["MessageId"]) for s in response.get("Successful", []))
        result.failed.extend((by_id[f["Id"]], f.get("Code", "")) for f in response.get("Failed", []))
    return result
