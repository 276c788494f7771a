"""`halo-patch status`: a table of every change, the state dir's word, and the target's identity."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from halo_patch import json_report, report
from halo_patch.target import find_target
from halo_patch.tree_status import APPLIED, DRIFTED, check_status
from halo_patch.modules import DEFAULT as MODULE

_STYLE = {APPLIED: "green", DRIFTED: "yellow"}


def run(target_path: Path | None, console: Console, json_path: Path | None = None) -> int:
    json_report.check_path(json_path)
    target = find_target(target_path, leftovers=True)
    report.print_target(console, target)
    status = check_status(target)
    t = report.table(f"{MODULE.class_name} changes", ["change", "file", "state", "detail"])
    for c in status.changes:
        t.add_row(escape(c.change), escape(c.path), f"[{_STYLE.get(c.state, 'red')}]{c.state}[/]", escape(c.detail))
    console.print(t)
    for note in status.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    report.print_findings(console, status.findings)
    if status.hand_made_in_use:
        console.print(f"A {MODULE.class_name} installed by hand is in use; `halo-patch apply --adopt` puts halo-patch's in its place.")
    if status.hand_made_in_use:
        verdict = "installed by hand, not by halo-patch"
    elif not status.state_trusted and all(c.state == APPLIED for c in status.changes):
        verdict = "applied, but its state dir is not trusted"
    elif status.interrupted:
        verdict = f"partially applied: interrupted {status.interrupted}"
    else:
        verdict = "fully applied" if status.fully_applied else "not applied" if status.nothing_applied else "partially applied"
    console.print(f"{MODULE.class_name} is {verdict}.")
    code = 0 if status.fully_applied else 1
    json_report.write(json_path, json_report.status_dict(status, verdict, code))
    return code
