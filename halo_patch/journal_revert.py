"""Plan a revert from what is recognisably ours in the tree now, then commit it through the journal.

Revert never copies a stored original over the current file blindly: it takes our nodes out of the
current tasks.py by CST (so a user's own edits, or a newer release after an upgrade, stay byte for
byte), and deletes only files whose bytes are still what apply wrote. The manifest only sharpens
that: where a file is still exactly what apply wrote, its stored original is put back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from halo_patch import footprint, journal
from halo_patch.errors import AnchorError
from halo_patch.journal import Manifest, Step
from halo_patch.target import UltralyticsTarget


@dataclass(frozen=True)
class Refusal:
    """A file with our changes edited by hand: revert stops unless --force."""

    rel: str
    current: bytes
    forced: bytes | None  # what --force leaves (None: the file is deleted)
    why: str


@dataclass(frozen=True)
class RevertPlan:
    steps: tuple[Step, ...]
    rows: tuple[tuple[str, str], ...]  # (file, what revert does) for the report
    refused: tuple[Refusal, ...]
    notes: tuple[str, ...]  # files kept, version/path mismatches
    dirs: tuple[str, ...]  # dirs to remove when empty

    @property
    def empty(self) -> bool:
        return not self.steps


def _label(target: UltralyticsTarget, path: Path) -> str:
    return f"{path} (Ultralytics {target.version or 'uninstalled'})"


def plan_revert(target: UltralyticsTarget, manifest: Manifest | None, force: bool) -> RevertPlan:
    """Every file revert changes, from the tree as it is now (pure: reads only)."""
    trusted = {
        rel: e
        for rel, e in journal.trusted_entries(target, manifest).items()
        if footprint.is_our_entry(target, target.root / rel, e.action)
    }
    recorded = {e.path: e for e in manifest.files} if manifest else {}
    record = target.record_hashes()
    steps: list[Step] = []
    rows: list[tuple[str, str]] = []
    refused: list[Refusal] = []
    notes: list[str] = []
    for edit in footprint.PYTHON_EDITS:
        path = edit.locate(target)
        rel = target.relative(path)
        data = footprint.read_regular(path)
        if data is None or record.get(rel) == journal.sha256(data):
            continue  # absent, or exactly the installed wheel's file
        if not footprint.is_inside(target, path):
            notes.append(f"kept {rel}: a symlink out of the package tree")
            continue
        try:
            stripped, removal = footprint.strip_ours(edit, data, _label(target, path), force)
        except AnchorError as exc:
            entry = trusted.get(rel)
            if entry is not None and entry.action == "modified":
                steps.append(Step(path, rel, data, journal.read_blob(target, entry.sha256_before)))
                rows.append((rel, "restored"))
            else:
                notes.append(f"kept {rel}: {exc}")
            continue
        if removal.edited and not force:
            forced = footprint.strip_ours(edit, data, _label(target, path), True)[0]
            names = ", ".join(dict.fromkeys(removal.edited))
            refused.append(Refusal(rel, data, forced, f"our {names} changed since apply"))
            continue
        if stripped == data:
            continue
        entry = trusted.get(rel)
        if entry is not None and entry.action == "modified" and journal.sha256(stripped) != entry.sha256_before:
            stripped = journal.read_blob(target, entry.sha256_before)  # unchanged since apply: the stored original
        if edit.stub is not None and footprint.as_lf(stripped) == edit.stub:
            steps.append(Step(path, rel, data, None))
            rows.append((rel, "deleted"))
        else:
            steps.append(Step(path, rel, data, stripped))
            rows.append((rel, "restored" if entry is not None and not removal.edited else "our lines removed"))
    handled = {s.rel for s in steps}
    for created in footprint.CREATED_FILES:
        for path in created.locate(target):
            _plan_delete(target, path, created.is_ours, recorded, force, steps, rows, refused, notes, handled)
    any_ours = lambda data: any(c.is_ours(data) for c in footprint.CREATED_FILES)  # noqa: E731
    for entry in recorded.values():  # files the manifest names outside the table: deleted only when recognisably ours
        if entry.action == "created":
            path = target.root / entry.path
            _plan_delete(target, path, any_ours, {}, force, steps, rows, refused, notes, handled)
    dirs = [target.relative(d) for d in footprint.owned_dirs(target)]
    dirs += [d for d in (manifest.created_dirs if manifest else ()) if d not in dirs]
    if target.kind == "uninstalled":
        for s in steps:
            dirs += [target.relative(p) for p in s.path.parents if target.package_dir in [p, *p.parents]]
    if manifest is not None:
        notes += _mismatches(target, manifest)
    return RevertPlan(tuple(steps), tuple(rows), tuple(refused), tuple(notes), tuple(dict.fromkeys(dirs)))


def _plan_delete(target, path, is_ours, recorded, force, steps, rows, refused, notes, handled) -> None:
    rel = target.relative(path)
    if rel in handled or not path.exists() and not path.is_symlink():
        return
    handled.add(rel)
    if path.is_symlink() or not path.is_file():
        notes.append(f"kept {rel}: not a regular file, so not one halo-patch wrote")
        return
    data = path.read_bytes()
    if is_ours(data):
        steps.append(Step(path, rel, data, None))
        rows.append((rel, "deleted"))
    elif rel in recorded and recorded[rel].action == "created":
        if force:
            steps.append(Step(path, rel, data, None))
            rows.append((rel, "deleted (edited, --force)"))
        else:
            refused.append(Refusal(rel, data, None, "changed since apply created it"))
    else:
        notes.append(f"kept {rel}: not as halo-patch writes it")


def _mismatches(target: UltralyticsTarget, manifest: Manifest) -> list[str]:
    out = []
    if target.version and manifest.ultralytics_version != target.version:
        out.append(
            f"the state records Ultralytics {manifest.ultralytics_version}, the tree is {target.version} "
            "(upgraded or reinstalled): only what is still recognisably ours is taken out"
        )
    if manifest.package_dir != str(target.package_dir):
        out.append(f"the state records {manifest.package_dir}, this tree is {target.package_dir} (moved or copied)")
    return out


def commit_revert(target: UltralyticsTarget, plan: RevertPlan) -> None:
    """Run the revert as one journaled transaction; the state dir goes at the end (caller holds the lock)."""
    journal.commit(target, "revert", plan.steps, None, plan.dirs)
