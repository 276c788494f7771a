"""`halo-patch revert`: restore every modified file byte for byte, delete what apply created."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from halo_patch import journal, report
from halo_patch.errors import DriftError, HaloPatchError
from halo_patch.journal import Manifest, ManifestEntry
from halo_patch.status import check_status
from halo_patch.target import UltralyticsTarget, find_target, require_writable


@dataclass(frozen=True)
class Drift:
    entry: ManifestEntry
    current: bytes | None  # the file now (None: deleted)
    applied: bytes | None  # the file as apply wrote it


def run(target_path: Path | None, force: bool, console: Console) -> int:
    target = find_target(target_path)
    report.print_target(console, target)
    manifest = journal.load_manifest(target)
    if manifest is None:
        status = check_status(target)
        if status.nothing_applied:
            console.print("HaloAttention is not applied; nothing to revert.")
            return 0
        present = ", ".join(c.change for c in status.changes if c.state != "absent")
        raise HaloPatchError(
            f"{target.state_dir / journal.MANIFEST}: missing, but the tree has HaloAttention changes ({present}) "
            "that halo-patch did not record; undo them by hand or reinstall Ultralytics"
        )
    require_writable(target)
    drifts = find_drift(target, manifest)
    if drifts and not force:
        for d in drifts:
            report.print_diff(console, d.entry.path, d.applied, d.current)
        names = ", ".join(d.entry.path for d in drifts)
        raise DriftError(f"{names}: changed since apply (diff above); re-run with --force to restore the originals anyway")
    try:
        restore(target, manifest)
    except OSError as exc:
        raise HaloPatchError(f"{exc.filename}: {exc.strerror}; rolled back, nothing changed") from None
    t = report.table(f"Reverted HaloAttention from {target.package_dir}", ["file", "action"])
    for e in manifest.files:
        t.add_row(e.path, "restored" if e.action == "modified" else "deleted")
    console.print(t)
    return 0


def find_drift(target: UltralyticsTarget, manifest: Manifest) -> list[Drift]:
    """Files whose bytes are not what apply wrote (a created file that is gone is not drift)."""
    drifts = []
    for e in manifest.files:
        path = target.root / e.path
        current = path.read_bytes() if path.is_file() else None
        if current is None and e.action == "created":
            continue
        if journal.sha256(current) != e.sha256_after:
            drifts.append(Drift(e, current, journal.backup(target, "after", e.path)))
    return drifts


def restore(target: UltralyticsTarget, manifest: Manifest) -> None:
    """One transaction: originals back, created files and their bytecode gone, then the state dir."""
    with journal.transaction(target) as tx:
        for e in manifest.files:
            path = target.root / e.path
            if e.action == "modified":
                before = journal.backup(target, "before", e.path)
                if before is None or journal.sha256(before) != e.sha256_before:
                    raise HaloPatchError(f"{target.state_dir / 'before' / e.path}: backup missing or damaged; cannot restore {e.path}")
                tx.write(path, before)
            else:
                tx.delete(path)
                for pyc in path.parent.glob(f"__pycache__/{path.stem}.*.pyc"):
                    tx.delete(pyc)
        for rel in sorted(manifest.created_dirs, key=len, reverse=True):
            _remove_if_empty(tx, target.root / rel / "__pycache__")
            _remove_if_empty(tx, target.root / rel)
        journal.remove_state(tx, target)


def _remove_if_empty(tx: journal.Transaction, path: Path) -> None:
    if path.is_dir() and not any(path.iterdir()):
        tx.delete(path)
