"""The modules halo-patch installs: one `ModuleSpec` each (spec.py); HaloAttention is the built-in."""

from halo_patch.modules.halo import HALO
from halo_patch.modules.spec import Arg, Channels, ModuleSpec

SPECS: tuple[ModuleSpec, ...] = (HALO,)  # every module this halo-patch knows, the default first
DEFAULT = HALO

__all__ = ["Arg", "Channels", "DEFAULT", "HALO", "ModuleSpec", "SPECS"]
