"""The local pipeline: case-linker end to end on moto and the Connect/Cases emulator (`python -m local`).

The API the chaos run and the benchmarks build on: `LocalPipeline`, `PipelineOptions`, `Reconciliation`,
`Outcome`; the poller (`SqsPoller`, `EsmSettings`, `ChaosHooks`, `DuplicateMode`) and the runtimes
(`WorkerProcessRuntime`, `InProcessRuntime`) for finer control. Imported lazily: an execution environment
(`python -m local.worker`) must not pay for moto and the emulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.inputs import Input, load_inputs, synthetic_contacts
    from local.pipeline import LocalPipeline, PipelineOptions
    from local.poller import ChaosHooks, DuplicateMode, EsmSettings, SqsPoller
    from local.reconcile import Outcome, Reconciliation
    from local.runtime import InProcessRuntime, WorkerProcessRuntime

_EXPORTS = {
    "Input": "local.inputs",
    "load_inputs": "local.inputs",
    "synthetic_contacts": "local.inputs",
    "LocalPipeline": "local.pipeline",
    "PipelineOptions": "local.pipeline",
    "ChaosHooks": "local.poller",
    "DuplicateMode": "local.poller",
    "EsmSettings": "local.poller",
    "SqsPoller": "local.poller",
    "Outcome": "local.reconcile",
    "Reconciliation": "local.reconcile",
    "InProcessRuntime": "local.runtime",
    "WorkerProcessRuntime": "local.runtime",
}

__all__ = [
    "ChaosHooks",
    "DuplicateMode",
    "EsmSettings",
    "InProcessRuntime",
    "Input",
    "LocalPipeline",
    "Outcome",
    "PipelineOptions",
    "Reconciliation",
    "SqsPoller",
    "WorkerProcessRuntime",
    "load_inputs",
    "synthetic_contacts",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'local' has no attribute {name!r}")
