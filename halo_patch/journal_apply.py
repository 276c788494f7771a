"""Turn an apply Plan into journal steps and the manifest that records it, then commit it."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from halo_patch import __version__, footprint, journal
from halo_patch.errors import AnchorError
from halo_patch.journal import Manifest, ManifestEntry, Step
from halo_patch.plan import ApplyOptions, FileChange, Plan
from halo_patch.target import UltralyticsTarget


def edited_created_files(plan: Plan, options: ApplyOptions) -> list[FileChange]:
    """Changes that would overwrite a file apply creates but which is not as apply wrote it (a
    user's edit, or their own file): apply refuses these rather than lose the edit."""
    if options.adopt:
        return []
    out = []
    for change in plan.changes:
        created = footprint.created_file_for(plan.target, change.path)
        if change.before is not None and created is not None and not created.is_ours(change.before):
            out.append(change)
    return out


def _original(target: UltralyticsTarget, change: FileChange, old: ManifestEntry | None, adopt: bool) -> bytes:
    """The file as it was before any apply. An earlier apply's stored original is kept when the file
    differs from it only by our nodes (or when adopting: the hand-made install is the original);
    else `before`, with our nodes taken out when it holds some (a half-applied file)."""
    edit = footprint.python_edit_for(target, change.path)
    stored = journal.read_blob(target, old.sha256_before) if old is not None and old.action == "modified" else None
    if stored is not None and edit is not None and (adopt or _strip(edit, stored) == _strip(edit, change.before)):
        return stored
    if change.pristine or adopt or edit is None:
        return change.before
    return _strip(edit, change.before)


def _strip(edit: footprint.PythonEdit, data: bytes) -> bytes:
    try:
        return footprint.strip_ours(edit, data, str(edit.name))[0]
    except AnchorError:
        return data


def _missing_dirs(target: UltralyticsTarget, path: Path) -> list[str]:
    out = []
    for p in [path.parent, *path.parent.parents]:
        if p == target.root or os.path.lexists(p):
            break
        out.append(target.relative(p))
    return list(reversed(out))


def new_file_mode(target: UltralyticsTarget) -> int:
    """Permission bits for files apply creates: tasks.py's, without execute bits."""
    try:
        return os.stat(target.tasks_py).st_mode & 0o666
    except OSError:
        return 0o666 & ~journal._umask()


def commit_apply(target: UltralyticsTarget, plan: Plan, options: ApplyOptions) -> Manifest:
    """Write every change of `plan` as one journaled transaction (the caller holds the lock).

    Created files are written before the files that import them, so Ultralytics imports at every
    instant. Entries of an earlier manifest are carried only while their file is still exactly as
    halo-patch wrote it."""
    old = journal.load_manifest(target)
    trusted = {
        rel: e for rel, e in journal.trusted_entries(target, old).items() if footprint.is_our_entry(target, target.root / rel, e.action)
    }
    mode = new_file_mode(target)
    ordered = sorted(plan.changes, key=lambda c: c.before is not None)  # creations first, stable
    steps, entries, originals, dirs = [], {}, [], []
    for change in ordered:
        rel = target.relative(change.path)
        steps.append(Step(change.path, rel, change.before, change.after, None if change.before is not None else mode))
        dirs.extend(d for d in _missing_dirs(target, change.path) if d not in dirs)
        if change.before is None:
            entries[rel] = ManifestEntry(rel, "created", None, journal.sha256(change.after), mode)
        else:
            original = _original(target, change, old.entry(rel) if old else None, options.adopt)
            originals.append(original)
            entries[rel] = ManifestEntry(rel, "modified", journal.sha256(original), journal.sha256(change.after), _mode(change.path))
    for rel, entry in trusted.items():
        entries.setdefault(rel, entry)
    kept_dirs = [d for d in (old.created_dirs if old else ()) if (target.root / d).is_dir()]
    manifest = Manifest(
        halo_patch_version=__version__,
        ultralytics_version=target.version,
        package_dir=str(target.package_dir),
        created_dirs=tuple(dict.fromkeys([*kept_dirs, *dirs])),
        files=tuple(entries.values()),
        options=dataclasses.asdict(options),
    )
    journal.commit(target, "apply", tuple(steps), manifest, tuple(dirs), keep=tuple(originals))
    return manifest


def _mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o7777
