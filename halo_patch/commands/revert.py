"""`halo-patch revert`: under the tree's lock, finish an interrupted run, then take out what is ours."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from halo_patch import journal, json_report, report
from halo_patch.planning.revert import plan_revert
from halo_patch.planning.trust import finish_interrupted
from halo_patch.errors import DriftError, HaloPatchError
from halo_patch.journal import Op
from halo_patch.target import find_target, require_writable
from halo_patch.modules import DEFAULT as MODULE
from halo_patch.planning.user_module import find_spec, tree_specs


def run(target_path: Path | None, force: bool, console: Console, module: str | None = None, json_path: Path | None = None) -> int:
    json_report.check_path(json_path)
    target = find_target(target_path, leftovers=True)
    report.print_target(console, target)
    require_writable(target)
    only = None
    if module is not None:
        only = find_spec(target, module)
        if only is None:
            names = ", ".join(s.class_name for s in tree_specs(target))
            raise HaloPatchError(f"--module {module}: no such module in {target.package_dir}; expected one of {names}")
    name = only.class_name if only is not None else MODULE.class_name
    with journal.locked(target, on_wait=lambda: report.print_waiting(console, target)):
        recovered, warning = finish_interrupted(target)
        report.print_recovered(console, recovered, warning)
        if recovered is Op.REVERT and only is None:  # the interrupted revert was this one's job: nothing is left to take out
            json_report.write(json_path, json_report.revert_dict(target, plan_revert(target, force), "finished the interrupted revert"))
            return 0
        plan = plan_revert(target, force, only)
        for note in plan.notes:
            console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True, highlight=False)
        if plan.refused:
            for r in plan.refused:
                report.print_diff(console, r.rel, r.diff_from, r.diff_to)
            raise DriftError(plan.refusal)
        if plan.empty:
            report.print_findings(console, plan.findings)
        if plan.empty and not target.state_dir.exists():
            _nothing(console, plan, name)
            json_report.write(json_path, json_report.revert_dict(target, plan, "nothing to revert"))
            return 0
        try:
            journal.commit(plan.changes)
        except OSError as exc:
            raise HaloPatchError(f"{journal.describe_failure(exc)}; rolled back, nothing changed") from None
    if plan.empty:
        _nothing(console, plan, name)
        json_report.write(json_path, json_report.revert_dict(target, plan, "nothing to revert"))
        return 0
    t = report.table(f"Reverted {name} from {escape(str(target.package_dir))}", ["file", "action"])
    for edit in plan.rows:
        t.add_row(escape(edit.rel), escape(edit.why))
    console.print(t)
    json_report.write(json_path, json_report.revert_dict(target, plan, "reverted"))
    return 0


def _nothing(console: Console, plan, name: str) -> None:
    if plan.findings:
        console.print(
            f"Nothing of halo-patch's to take out: the {name} installed by hand (listed above) is left as it is.",
            soft_wrap=True,
        )
    else:
        console.print(f"{name} is not applied; nothing to revert.")
