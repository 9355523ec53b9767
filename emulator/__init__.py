"""A loopback HTTP emulator of the Amazon Connect Cases and Connect contact APIs case-linker uses.

`with Emulator(EmulatorConfig()) as emu:` serves both APIs at `emu.endpoint_url`; see emulator/README.md.
"""

from emulator.case_search import REFERENCE_ID_FIELD
from emulator.cases import Merge
from emulator.config import DEFAULT_QUOTAS, EmulatorConfig, Faults, Quota
from emulator.faults import FAULT_KINDS, parse_fault_spec
from emulator.server import EVENTS, Call, Emulator
from emulator.state import RelatedItem

__all__ = [
    "DEFAULT_QUOTAS",
    "EVENTS",
    "FAULT_KINDS",
    "REFERENCE_ID_FIELD",
    "Call",
    "Emulator",
    "EmulatorConfig",
    "Faults",
    "Merge",
    "Quota",
    "RelatedItem",
    "parse_fault_spec",
]
