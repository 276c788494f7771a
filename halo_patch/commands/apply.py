"""`halo-patch apply`: under the tree's lock, finish an interrupted run, plan, commit through the journal."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from halo_patch.planning.trust import finish_interrupted
from halo_patch import journal, report
from halo_patch.errors import AdoptError, DriftError, HaloPatchError
from halo_patch.model_yaml.show import print_model_yaml
from halo_patch.planning.apply import plan_apply
from halo_patch.planning.layout import Layout
from halo_patch.planning.options import ApplyOptions
from halo_patch.planning.plan import Plan
from halo_patch.target import find_target, require_writable
from halo_patch.modules import DEFAULT as MODULE


def options_from_cli(base: str, after: list[int] | None, args: str, layout: str | None, adopt: bool) -> ApplyOptions:
    """The apply flags as ApplyOptions; a malformed flag is a usage error (exit 2, one line).

    `layout` None: the planner keeps the layout the tree is patched with (else addmodules)."""
    try:
        numbers = MODULE.parse_args(args)
    except ValueError as exc:
        raise HaloPatchError(f"--args {args!r}: {exc}") from None
    try:
        chosen = None if layout is None else Layout(layout)
    except ValueError:
        raise HaloPatchError(f"--layout {layout!r}: expected addmodules or modules") from None
    return ApplyOptions(base=base, after=tuple(after or ()), args=numbers, layout=chosen, adopt=adopt)


def run(target_path: Path | None, dry_run: bool, check: bool, options: ApplyOptions, console: Console) -> int:
    target = find_target(target_path)
    report.print_target(console, target)
    if check or dry_run:
        return _preview(target, options, dry_run, check, console)
    require_writable(target)
    with journal.locked(target, on_wait=lambda: report.print_waiting(console, target)):
        report.print_recovered(console, *finish_interrupted(target))
        plan = _plan(target, options, console)
        if plan.empty:
            console.print(f"{MODULE.class_name} is already applied; nothing to change.")
            return 0
        if plan.refused:
            for r in plan.refused:
                report.print_diff(console, r.rel, r.diff_from, r.diff_to)
            raise DriftError(plan.refusal)
        try:
            journal.commit(plan.changes)
        except OSError as exc:
            raise HaloPatchError(f"{journal.describe_failure(exc)}; rolled back, nothing changed") from None
    t = report.table(f"Applied {MODULE.class_name} to {escape(str(target.package_dir))}", ["change", "file", "lines"])
    for edit in plan.rows:
        action = "created" if edit.created else "modified"
        t.add_row(escape(f"{edit.why} ({action})"), escape(edit.rel), report.line_counts(edit.before, edit.after))
    console.print(t)
    console.print("Check it with `halo-patch verify`.")
    _warn_scale_trap(console, target)
    return 0


def _plan(target, options: ApplyOptions, console: Console, preview: bool = False) -> Plan:
    """The plan, with any hand-made install it found listed above it (or above the error)."""
    try:
        plan = plan_apply(target, options, preview)
    except AdoptError as exc:
        report.print_findings(console, exc.findings)
        raise
    report.print_findings(console, plan.findings)
    for model in plan.models:
        print_model_yaml(console, target, model)
    return plan


def _preview(target, options: ApplyOptions, dry_run: bool, check: bool, console: Console) -> int:
    """--check / --dry-run: plan and show, write nothing (and take no lock)."""
    pending = journal.load_pending(target)
    if pending is not None:
        console.print(f"[yellow]interrupted {pending.op}[/]: `halo-patch apply` finishes it first.")
    plan = _plan(target, options, console, preview=True)
    if plan.empty and pending is None:
        console.print(f"{MODULE.class_name} is already applied; nothing to change.")
        return 0
    if dry_run:
        for edit in plan.rows:
            report.print_diff(console, edit.rel, edit.before, edit.after)
    for edit in plan.rows:
        verb = "would create" if edit.created else "would modify"
        console.print(f"  {verb} {escape(edit.rel)} ({escape(edit.why)})", highlight=False)
    return 1 if check else 0


def _warn_scale_trap(console: Console, target) -> None:
    """Ultralytics reads the scale with `(\\d+)([nslmx])(.+)?$` on the whole yaml path: a folder named
    like `v8s` or `2m` in the path makes `yolo11n-HaloAttention.yaml` resolve wrongly."""
    import re

    folder = str(target.models11_dir.parent.parent)
    hit = re.search(r"\d+[nslmx]", folder)
    if hit:
        console.print(
            f"[yellow]warning:[/] {escape(folder)} contains '{hit.group()}': Ultralytics' yaml loader drops the scale letter "
            f"after the first digit in the whole path, so YOLO('yolo11n-{MODULE.class_name}.yaml') will not find its file here: "
            "move the tree to a path without a digit followed by n/s/m/l/x."
        )
