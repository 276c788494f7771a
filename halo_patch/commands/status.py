"""`halo-patch status`: a table of every change, and the target's identity."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from halo_patch import report
from halo_patch.status import APPLIED, DRIFTED, check_status
from halo_patch.target import find_target

_STYLE = {APPLIED: "green", DRIFTED: "yellow"}


def run(target_path: Path | None, console: Console) -> int:
    target = find_target(target_path)
    report.print_target(console, target)
    status = check_status(target)
    t = report.table("HaloAttention changes", ["change", "file", "state", "detail"])
    for c in status.changes:
        t.add_row(c.change, c.path, f"[{_STYLE.get(c.state, 'red')}]{c.state}[/]", c.detail)
    console.print(t)
    report.print_findings(console, status.findings)
    if status.hand_made_in_use:
        console.print("A HaloAttention installed by hand is in use; `halo-patch apply --adopt` puts halo-patch's in its place.")
    verdict = "installed by hand, not by halo-patch" if status.hand_made_in_use else "fully applied" if status.fully_applied else "not applied" if status.nothing_applied else "partially applied"
    console.print(f"HaloAttention is {verdict}.")
    return 0 if status.fully_applied else 1
