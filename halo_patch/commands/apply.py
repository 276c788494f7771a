"""`halo-patch apply`: plan, then commit the plan as one transaction with a manifest."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from halo_patch import __version__, journal, report
from halo_patch.errors import AdoptError, HaloPatchError
from halo_patch.journal import Manifest, ManifestEntry
from halo_patch.model_yaml.report import print_model_yaml
from halo_patch.plan import ApplyOptions, Plan, plan_apply
from halo_patch.target import find_target, require_writable


def options_from_cli(base: str, after: list[int] | None, args: str, layout: str, adopt: bool) -> ApplyOptions:
    """The apply flags as ApplyOptions; a malformed flag is a usage error (exit 2, one line)."""
    try:
        numbers = tuple(int(a) for a in args.split(","))
    except ValueError:
        raise HaloPatchError(f"--args {args!r}: expected block,halo[,dim_head,heads] as integers, e.g. 2,1") from None
    if len(numbers) not in (2, 3, 4) or any(n < 0 for n in numbers) or numbers[0] < 1:
        raise HaloPatchError(f"--args {args!r}: expected block,halo[,dim_head,heads]: block >= 1, the others >= 0")
    if layout not in ("addmodules", "modules"):
        raise HaloPatchError(f"--layout {layout!r}: expected addmodules or modules")
    return ApplyOptions(base=base, after=tuple(after or ()), args=numbers, layout=layout, adopt=adopt)


def run(target_path: Path | None, dry_run: bool, check: bool, options: ApplyOptions, console: Console) -> int:
    target = find_target(target_path)
    report.print_target(console, target)
    try:
        plan = plan_apply(target, options)
    except AdoptError as exc:
        report.print_findings(console, exc.findings)
        raise
    report.print_findings(console, plan.findings)
    for model in plan.models:
        print_model_yaml(console, target, model)
    if plan.empty:
        console.print("HaloAttention is already applied; nothing to change.")
        return 0
    if dry_run:
        for change in plan.changes:
            report.print_diff(console, target.relative(change.path), change.before, change.after)
    if check or dry_run:
        for change in plan.changes:
            verb = "would create" if change.before is None else "would modify"
            console.print(f"  {verb} {target.relative(change.path)} ({change.what})", highlight=False)
        return 1 if check else 0
    require_writable(target)
    commit(plan)
    t = report.table(f"Applied HaloAttention to {target.package_dir}", ["change", "file", "lines"])
    for change in plan.changes:
        action = "created" if change.before is None else "modified"
        t.add_row(f"{change.what} ({action})", target.relative(change.path), report.line_counts(change.before, change.after))
    console.print(t)
    console.print("Check it with `halo-patch verify`.")
    _warn_scale_trap(console, target)
    return 0


def _warn_scale_trap(console: Console, target) -> None:
    """Ultralytics reads the scale with `(\\d+)([nslmx])(.+)?$` on the whole yaml path: a folder named
    like `v8s` or `2m` in the path makes `yolo11n-HaloAttention.yaml` resolve wrongly."""
    import re

    folder = str(target.models11_dir.parent.parent)
    hit = re.search(r"\d+[nslmx]", folder)
    if hit:
        console.print(
            f"[yellow]warning:[/] {folder} contains '{hit.group()}': Ultralytics' yaml loader drops the scale letter "
            "after the first digit in the whole path, so YOLO('yolo11n-HaloAttention.yaml') will not find its file here: "
            "move the tree to a path without a digit followed by n/s/m/l/x."
        )


def commit(plan: Plan) -> Manifest:
    """Write every change and the manifest, or nothing: a failed write rolls back what was written."""
    try:
        return _commit(plan)
    except OSError as exc:
        raise HaloPatchError(f"{exc.filename}: {exc.strerror}; rolled back, nothing changed") from None


def _commit(plan: Plan) -> Manifest:
    target = plan.target
    old = journal.load_manifest(target)
    entries = {e.path: e for e in old.files} if old else {}
    created_dirs = list(old.created_dirs) if old else []
    with journal.transaction(target) as tx:
        for change in plan.changes:
            rel = target.relative(change.path)
            first = entries.get(rel)
            action = first.action if first else ("created" if change.before is None else "modified")
            sha_before = first.sha256_before if first else journal.sha256(change.before)
            if action == "modified" and change.before is not None and (first is None or change.pristine):
                # First edit, or the file was replaced by a pristine one (a pip reinstall): back it up.
                # A half-applied file keeps the backup of the original from the first apply.
                journal.store_backup(tx, target, "before", rel, change.before)
                sha_before = journal.sha256(change.before)
            missing_dirs = [target.relative(p) for p in [change.path.parent, *change.path.parent.parents] if not p.exists()]
            created_dirs.extend(d for d in reversed(missing_dirs) if d not in created_dirs)
            tx.write(change.path, change.after)
            journal.store_backup(tx, target, "after", rel, change.after)
            entries[rel] = ManifestEntry(rel, action, sha_before, journal.sha256(change.after))
        manifest = Manifest(__version__, target.version, str(target.package_dir), tuple(created_dirs), tuple(entries.values()))
        journal.write_manifest(tx, target, manifest)
    return manifest
