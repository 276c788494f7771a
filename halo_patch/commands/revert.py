"""`halo-patch revert`: under the tree's lock, finish an interrupted run, then take out what is ours."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from halo_patch import journal, journal_revert, json_report, report
from halo_patch.errors import DriftError, HaloPatchError
from halo_patch.target import find_target, require_writable


def run(target_path: Path | None, force: bool, console: Console, json_path: Path | None = None) -> int:
    json_report.check_path(json_path)
    target = find_target(target_path, leftovers=True)
    report.print_target(console, target)
    require_writable(target)
    with journal.locked(target, on_wait=lambda: report.print_waiting(console, target)):
        report.print_recovered(console, journal.recover(target))
        manifest = journal.load_manifest(target)
        plan = journal_revert.plan_revert(target, manifest, force)
        for note in plan.notes:
            console.print(f"[yellow]note:[/] {escape(note)}")
        if plan.refused:
            for r in plan.refused:
                report.print_diff(console, r.rel, r.current, r.forced)
            names = "; ".join(f"{r.rel}: {r.why}" for r in plan.refused)
            raise DriftError(
                f"{names} (diff above: what --force would take out); nothing changed; "
                "re-run with --force to remove our changes anyway"
            )
        if plan.empty and not target.state_dir.exists():
            console.print("HaloAttention is not applied; nothing to revert.")
            json_report.write(json_path, json_report.revert_dict(target, plan, "nothing to revert"))
            return 0
        try:
            journal_revert.commit_revert(target, plan)
        except OSError as exc:
            raise HaloPatchError(f"{journal.describe_failure(exc)}; rolled back, nothing changed") from None
    t = report.table(f"Reverted HaloAttention from {escape(str(target.package_dir))}", ["file", "action"])
    for rel, action in plan.rows:
        t.add_row(escape(rel), escape(action))
    console.print(t)
    json_report.write(json_path, json_report.revert_dict(target, plan, "reverted"))
    return 0
