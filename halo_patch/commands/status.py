"""`halo-patch status`: a table of every change, the state dir's word, and the target's identity."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from dataclasses import replace

from halo_patch import json_report, report
from halo_patch.planning.user_module import tree_specs
from halo_patch.target import find_target
from halo_patch.tree_status import APPLIED, DRIFTED, check_status, is_module_row
from halo_patch.modules import DEFAULT as MODULE

_STYLE = {APPLIED: "green", DRIFTED: "yellow"}


def run(target_path: Path | None, console: Console, json_path: Path | None = None) -> int:
    json_report.check_path(json_path)
    target = find_target(target_path, leftovers=True)
    report.print_target(console, target)
    full = check_status(target)
    users = [s for s in tree_specs(target) if s.is_user]
    status = replace(full, changes=tuple(c for c in full.changes if not any(is_module_row(c, u) for u in users)))
    title = ", ".join([MODULE.class_name, *(u.class_name for u in users)])
    t = report.table(f"{title} changes", ["change", "file", "state", "detail"])
    for c in full.changes:
        t.add_row(escape(c.change), escape(c.path), f"[{_STYLE.get(c.state, 'red')}]{c.state}[/]", escape(c.detail))
    console.print(t)
    for note in status.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    report.print_findings(console, status.findings)
    for name, findings in full.others:  # hand-made installs of other modules: named, left as they are
        console.print(f"[bold]{escape(name)}: a module added by hand, not by halo-patch (left as it is):[/]")
        for f in findings:
            console.print(f"  {escape(f.what)}  {escape(f.path)}: {escape(f.detail)}", soft_wrap=True, highlight=False)
        if any(f.in_use for f in findings):
            console.print(f"`halo-patch apply --module <its file> --adopt` puts halo-patch's {escape(name)} in its place.", highlight=False)
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
    user_ok = True
    for u in users:  # each module its own change set: its own verdict
        rows = [c for c in full.changes if is_module_row(c, u)]
        done = all(c.state == APPLIED for c in rows)
        user_ok = user_ok and done
        console.print(f"{u.class_name} (from {u.file_stem}.py) is {'applied' if done else 'partially applied'}.", highlight=False)
    console.print(f"{MODULE.class_name} is {verdict}.")
    if users and status.nothing_applied and not status.hand_made_in_use:
        code = 0 if user_ok and full.interrupted is None and full.state_trusted else 1
    else:
        code = 0 if status.fully_applied and user_ok else 1
    json_report.write(json_path, json_report.status_dict(status, verdict, code))
    return code
