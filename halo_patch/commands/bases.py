"""`halo-patch bases`: the base model yamls the target offers for `apply --base`."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from halo_patch import report
from halo_patch.errors import HaloPatchError
from halo_patch.target import find_target


def run(target_path: Path | None, console: Console) -> int:
    target = find_target(target_path)
    report.print_target(console, target)
    raise HaloPatchError("bases: not implemented yet")  # TODO(issue 9): list cfg/models/ bases
