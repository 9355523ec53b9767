"""A loopback HTTP emulator of the Amazon Connect Cases and Connect contact APIs case-linker uses.

`with Emulator(EmulatorConfig()) as emu:` serves both APIs at `emu.endpoint_url`; see emulator/README.md.
"""

from emulator.config import DEFAULT_QUOTAS, EmulatorConfig, Faults, Quota
from emulator.server import Call, Emulator
from emulator.state import RelatedItem

__all__ = ["DEFAULT_QUOTAS", "Call", "Emulator", "EmulatorConfig", "Faults", "Quota", "RelatedItem"]
