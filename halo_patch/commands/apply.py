"""`halo-patch apply`: under the tree's lock, finish an interrupted run, plan, commit through the journal."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from halo_patch.planning.trust import finish_interrupted
from halo_patch import journal, json_report, report
from halo_patch.errors import AdoptError, DriftError, HaloPatchError
from halo_patch.model_yaml import resolve_base
from halo_patch.model_yaml.show import print_model_yaml
from halo_patch.planning.apply import plan_apply
from halo_patch.planning.layout import Layout
from halo_patch.planning.options import ApplyOptions
from halo_patch.planning.plan import Plan
from halo_patch.target import find_target, require_writable
from halo_patch.modules import DEFAULT as MODULE
from halo_patch.modules import ModuleSpec
from halo_patch.planning.layout import detect_layout
from halo_patch.planning.user_module import load_for_target


def options_from_cli(
    base: str,
    after: list[int] | None,
    args: str | None,
    layout: str | None,
    adopt: bool,
    module: ModuleSpec = MODULE,
    replace: int | None = None,
) -> ApplyOptions:
    """The apply flags as ApplyOptions; a malformed flag is a usage error (exit 2, one line).

    `layout` None: the planner keeps the layout the tree is patched with (else addmodules)."""
    if args is None:
        args = ",".join(str(a) for a in module.default_args)
    try:
        numbers = module.parse_args(args)
    except ValueError as exc:
        raise HaloPatchError(f"--args {args!r}: {exc}") from None
    try:
        chosen = None if layout is None else Layout(layout)
    except ValueError:
        raise HaloPatchError(f"--layout {layout!r}: expected addmodules or modules") from None
    if replace is not None and after:
        raise HaloPatchError("--replace: expected either --after or --replace, not both")
    return ApplyOptions(base=base, after=tuple(after or ()), args=numbers, layout=chosen, adopt=adopt, module=module, replace=replace)


def user_module(target_path: Path | None, path: Path, class_name: str | None, channels: str | None, layout: str | None, console: Console) -> ModuleSpec:
    """`--module FILE.py` checked against the target (exit 2, one line, nothing written, when it is not); the
    channel rule chosen is printed."""
    target = find_target(target_path)
    try:
        chosen = Layout(layout) if layout is not None else detect_layout(target)
    except ValueError:
        raise HaloPatchError(f"--layout {layout!r}: expected addmodules or modules") from None
    loaded = load_for_target(target, path, class_name, channels, chosen)
    console.print(f"{escape(loaded.spec.class_name)}: channels {loaded.spec.channels.value} ({escape(loaded.chosen)})", highlight=False, soft_wrap=True)
    return loaded.spec


def run(
    target_path: Path | None, dry_run: bool, check: bool, options: ApplyOptions, console: Console, json_path: Path | None = None
) -> int:
    json_report.check_path(json_path)
    target = find_target(target_path)
    report.print_target(console, target)
    if check or dry_run:
        return _preview(target, options, dry_run, check, console, json_path)
    require_writable(target)
    resolve_base(target, options.base, options.module.class_name)  # a bad --base (a FIFO, /dev/zero, not a yaml) fails here, before the lock
    with journal.locked(target, on_wait=lambda: report.print_waiting(console, target)):
        report.print_recovered(console, *finish_interrupted(target))
        plan = _plan(target, options, console)
        if plan.empty:
            console.print(f"{options.module.class_name} is already applied; nothing to change.")
            json_report.write(json_path, json_report.apply_dict(target, plan, "already applied", 0))
            return 0
        if plan.refused:
            for r in plan.refused:
                report.print_diff(console, r.rel, r.diff_from, r.diff_to)
            raise DriftError(plan.refusal)
        try:
            journal.commit(plan.changes)
        except OSError as exc:
            raise HaloPatchError(f"{journal.describe_failure(exc)}; rolled back, nothing changed") from None
    t = report.table(f"Applied {options.module.class_name} to {escape(str(target.package_dir))}", ["change", "file", "lines"])
    for edit in plan.rows:
        action = "created" if edit.created else "modified"
        t.add_row(escape(f"{edit.why} ({action})"), escape(edit.rel), report.line_counts(edit.before, edit.after))
    console.print(t)
    console.print("Check it with `halo-patch verify`.")
    _warn_scale_trap(console, target, plan)
    json_report.write(json_path, json_report.apply_dict(target, plan, "applied", 0))
    return 0


def _plan(target, options: ApplyOptions, console: Console, preview: bool = False) -> Plan:
    """The plan, with any hand-made install it found listed above it (or above the error)."""
    try:
        plan = plan_apply(target, options, preview)
    except AdoptError as exc:
        report.print_findings(console, exc.findings, options.module.class_name)
        raise
    report.print_findings(console, plan.findings, options.module.class_name)
    for model in plan.models:
        print_model_yaml(console, target, model)
    return plan


def _preview(target, options: ApplyOptions, dry_run: bool, check: bool, console: Console, json_path: Path | None = None) -> int:
    """--check / --dry-run: plan and show, write nothing (and take no lock)."""
    pending = journal.load_pending(target)
    if pending is not None:
        console.print(f"[yellow]interrupted {pending.op}[/]: `halo-patch apply` finishes it first.")
    plan = _plan(target, options, console, preview=True)
    if plan.empty and pending is None:
        console.print(f"{options.module.class_name} is already applied; nothing to change.")
        json_report.write(json_path, json_report.apply_dict(target, plan, "already applied", 0))
        return 0
    if dry_run:
        for edit in plan.rows:
            report.print_diff(console, edit.rel, edit.before, edit.after)
    for edit in plan.rows:
        verb = "would create" if edit.created else "would modify"
        console.print(f"  {verb} {escape(edit.rel)} ({escape(edit.why)})", highlight=False)
    code = 1 if check else 0
    json_report.write(json_path, json_report.apply_dict(target, plan, "would change" if check else "dry run", code))
    return code


def _warn_scale_trap(console: Console, target, plan: Plan) -> None:
    """Warn only where the YOLO(...) call we print would fail. Ultralytics finds a bare yaml name with
    `glob(<package>/**/<name>)`: glob characters ([ ] * ?) in the package path make it find nothing."""
    import glob
    import re

    folder = str(target.package_dir)
    magic = [ch for ch in "[]*?" if ch in folder]
    if not magic or not glob.has_magic(folder):
        return
    for model in plan.models:
        full = str(model.path.with_name(model.build)) if re.search(r"\d+[nslmx]", str(model.path.parent)) is None else ""
        instead = f"build it by its full path, YOLO('{full}'), or " if full else ""
        console.print(
            f"[yellow]warning:[/] YOLO('{escape(model.build)}') will not find its file here: Ultralytics looks a yaml name up "
            f"with glob('{escape(folder)}/**/...'), and {escape(' '.join(magic))} in that path are glob pattern characters; "
            f"{escape(instead)}move the tree to a path without [ ] * ?.",
            highlight=False,
            soft_wrap=True,
        )
