"""Run a plan's file steps as one crash-safe transaction: write-ahead journal, commit, rollback, recover.

Order of a run: blobs, then journal.json, both fsynced, before the first change to the tree; each
step re-checks the file's hash just before it replaces it; then manifest.json is written (or, for
revert, removed) and the journal last. After an interruption at any instant the journal is still
there: `recover` finishes it by hashes (a step whose file already has its new hash is done), so
status can name the interruption and apply or revert completes it. An exception inside the run
rolls every step back instead, each undo attempted even when one fails. The caller holds the lock.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from halo_patch import interrupts
from halo_patch.errors import ConflictError, ForeignJournal, HaloPatchError, RollbackError, StateError, UnfinishedError
from halo_patch.journal import files
from halo_patch.journal.files import atomic_write, delete_module_file, disk_sha, mkdirs, prune_dirs, real_file, sha256, unlink
from halo_patch.journal.state import (
    BLOBS,
    JOURNAL,
    MANIFEST,
    SCHEMA,
    SHA,
    Manifest,
    Op,
    load_manifest,
    load_pending,
    manifest_json,
    read_blob,
)
from halo_patch.target import UltralyticsTarget


@dataclass(frozen=True)
class FileEdit:
    """One file of a plan: its bytes before and after (None: absent), and why it changes."""

    path: Path
    rel: str  # relative to the target root, as the journal and reports name it
    before: bytes | None
    after: bytes | None
    mode: int | None = None  # permission bits for a file the edit creates
    why: str = ""  # one line for reports: "HaloAttention module", "our lines removed", ...

    @property
    def sha_from(self) -> str | None:
        return sha256(self.before)

    @property
    def sha_to(self) -> str | None:
        return sha256(self.after)

    @property
    def created(self) -> bool:
        return self.before is None


@dataclass(frozen=True)
class ChangeSet:
    """What one run does, as the planner froze it: the file edits in order, and the state to leave."""

    target: UltralyticsTarget
    op: Op
    edits: tuple[FileEdit, ...]
    manifest: Manifest | None  # the state dir's manifest afterwards (None: no state dir)
    dirs: tuple[str, ...] = ()  # dirs the edits create (apply) or to prune when empty (revert)
    keep: tuple[bytes, ...] = ()  # more bytes to store as blobs (originals the manifest names)


def _store_blob(target: UltralyticsTarget, data: bytes, mode: int | None) -> None:
    path = target.state_dir / BLOBS / sha256(data)
    if read_blob(target, sha256(data)) is None:
        if path.is_dir() and not path.is_symlink():  # not one halo-patch wrote: set aside whole, never deleted
            files.set_aside(path)
        unlink(path)
        atomic_write(path, data, mode=mode if mode is not None else 0o644)


def _write_json(target: UltralyticsTarget, name: str, data: dict) -> None:
    atomic_write(target.state_dir / name, (json.dumps(data, indent=2) + "\n").encode(), mode=0o644)


def commit(changes: ChangeSet) -> None:
    """Run a change set as one transaction (the caller holds the lock): every edit or none."""
    target, op, steps, manifest, dirs, keep = changes.target, changes.op, changes.edits, changes.manifest, changes.dirs, changes.keep
    for s in steps:  # refuse a symlink out of the tree (the file's, or a dir's on its way) before anything is written
        if s.after is not None:
            real_file(s.path, target.package_dir)
        else:
            files.confine_dirs(s.path, target.package_dir)
    started = 0  # steps begun: the last one may be half way (its file is then old or new, never torn)
    interrupts.enter(interrupts.Phase.WRITING, op)
    try:
        _prepare(target, op, steps, manifest, dirs, keep)
        for s in steps:
            started += 1
            _forward(target, s, op)
    except BaseException as exc:
        _rollback(target, op, steps[:started], dirs, exc)
        interrupts.enter(interrupts.Phase.ROLLED_BACK, op)
        raise
    interrupts.enter(interrupts.Phase.MADE, op)
    try:
        _finish(target, op, manifest, dirs)
        interrupts.enter(interrupts.Phase.DONE, op)
    except OSError as exc:  # every file is changed; only the state dir's bookkeeping is behind
        raise UnfinishedError(
            f"{describe_failure(exc)}; the {op} is made but the state dir could not be updated; "
            f"run `halo-patch {op} --target {shlex.quote(str(target.root))}` again to finish"
        ) from None


def _prepare(target, op: Op, steps: tuple[FileEdit, ...], manifest: Manifest | None, dirs: tuple[str, ...], keep) -> None:
    """Before the first change to the tree: every byte needed to go forward or back, then the intent."""
    mkdirs(target.state_dir / BLOBS, target.root)
    files.sweep_tmp([target.state_dir, target.state_dir / BLOBS, *(s.path.parent for s in steps)])
    for s in steps:
        mode = files.mode_of(s.path)
        for data in (s.before, s.after):
            if data is not None:
                _store_blob(target, data, mode if mode is not None else s.mode)
    for data in keep:
        _store_blob(target, data, None)
    record = {
        "schema": SCHEMA,
        "op": op.value,
        "steps": [{"path": s.rel, "from": s.sha_from, "to": s.sha_to, "mode": s.mode} for s in steps],
        "dirs": list(dirs),
        "manifest": None if manifest is None else manifest_json(manifest),
    }
    _write_json(target, JOURNAL, record)


def _forward(target: UltralyticsTarget, s: FileEdit, op: Op) -> None:
    """Bring one file from its `before` to its `after` bytes, re-checking its hash just before."""
    current = disk_sha(s.path)
    if current == s.sha_to:
        return
    if current != s.sha_from:
        raise ConflictError(
            f"{s.path}: changed while halo-patch was running (not what the {op} planned from); run {op} again"
        )
    _put(target, s.path, s.after, s.mode)


def _put(target: UltralyticsTarget, path: Path, data: bytes | None, mode: int | None) -> None:
    """The file at `path` made `data` (None: deleted, with its bytecode)."""
    if data is None:
        files.confine_dirs(path, target.package_dir)
        delete_module_file(path)
        return
    mkdirs(path.parent, target.root)
    atomic_write(real_file(path, target.package_dir), data, mode=mode)


def _finish(target: UltralyticsTarget, op: Op, manifest: Manifest | None, dirs: tuple[str, ...]) -> None:
    """After the last step: prune, leave the manifest (or no state), drop unused blobs and the journal."""
    if op is Op.REVERT:
        prune_dirs(target.root, dirs)
    if manifest is not None:
        _write_json(target, MANIFEST, manifest_json(manifest))
        unlink(target.state_dir / JOURNAL)
        _gc_blobs(target, manifest)
    else:
        unlink(target.state_dir / MANIFEST)
        _gc_blobs(target, None)
        unlink(target.state_dir / JOURNAL)
        remove_state_dir(target)


def _gc_blobs(target: UltralyticsTarget, manifest: Manifest | None) -> None:
    """Delete blobs the manifest does not name (only files named like a sha256, never via links)."""
    keep = set() if manifest is None else {d for e in manifest.files for d in (e.sha256_before, e.sha256_after)}
    blobs = target.state_dir / BLOBS
    if blobs.is_dir() and not blobs.is_symlink():
        for child in sorted(blobs.iterdir()):
            if SHA.fullmatch(child.name) and child.name not in keep and (child.is_symlink() or not child.is_dir()):
                unlink(child)


def remove_state_dir(target: UltralyticsTarget) -> None:
    """Remove the state dir: only the names halo-patch writes; anything else stays, and so does the dir."""
    state = target.state_dir
    if state.is_symlink() or not state.is_dir():
        return
    files.sweep_tmp([state, state / BLOBS])
    blobs = state / BLOBS
    if blobs.is_dir() and not blobs.is_symlink():
        for child in sorted(blobs.iterdir()):
            if SHA.fullmatch(child.name) and not child.is_dir():
                unlink(child)
        files.rmdir_if_empty(blobs)
    for name in (MANIFEST, JOURNAL):
        if not (state / name).is_dir():
            unlink(state / name)
    files.rmdir_if_empty(state)


def _rollback(target: UltralyticsTarget, op: Op, steps: tuple[FileEdit, ...], dirs: tuple[str, ...], exc: BaseException) -> None:
    """Undo every step (each attempted), re-hash, then report; raises RollbackError when a file
    could not be restored (the journal stays, so status names the interruption)."""
    failed: list[str] = []
    for index, s in reversed(list(enumerate(steps))):
        try:
            current = disk_sha(s.path)
            if current == s.sha_from:
                continue
            if current != s.sha_to:
                if index == len(steps) - 1:
                    continue  # the step that failed never wrote this: someone else did, and it stays
                raise ConflictError(f"{s.path}: changed by someone else during the {op}")
            _put(target, s.path, s.before, s.mode)
        except Exception as undo_exc:  # every undo is attempted; each failure is reported
            failed.append(_fix_command(target, s, undo_exc))
    if op is Op.APPLY:
        try:
            prune_dirs(target.root, dirs)
        except OSError:
            pass  # an empty dir left behind changes nothing Ultralytics reads
    unrestored = [s for i, s in enumerate(steps) if _left_changed(s, in_progress=i == len(steps) - 1)]
    if failed or unrestored:
        if not failed:
            failed = [_fix_command(target, s, None) for s in unrestored]
        raise RollbackError(
            f"{describe_failure(exc)}; rollback could not restore {len(failed)} file(s): " + "; ".join(failed)
            + f"; then run `halo-patch {op} --target {shlex.quote(str(target.root))}` to finish"
        ) from None
    try:  # the state dir as it was before the run: its manifest and the blobs that one names
        unlink(target.state_dir / JOURNAL)
        existing = load_manifest(target)
        if existing is None:
            remove_state_dir(target)
        else:
            _gc_blobs(target, existing)
    except (OSError, HaloPatchError):
        pass  # the tree is back; a leftover journal is finished (a no-op) by the next run


def _left_changed(s: FileEdit, in_progress: bool) -> bool:
    """Re-hashed after a rollback: still not its old bytes (the failed step counts only if it wrote)."""
    current = disk_sha(s.path)
    return current != s.sha_from and (not in_progress or current == s.sha_to)


def describe_failure(exc: BaseException) -> str:
    """One line for a failure: the file and the reason (an OSError without a file names the run)."""
    if isinstance(exc, OSError):
        return f"{exc.filename or 'a file operation'}: {exc.strerror or exc}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return str(exc) or type(exc).__name__


def _fix_command(target: UltralyticsTarget, s: FileEdit, exc: BaseException | None) -> str:
    why = f" ({exc.strerror if isinstance(exc, OSError) and exc.strerror else exc})" if exc else ""
    if s.before is None:
        return f"{s.path}{why}: fix with `rm -f {shlex.quote(str(s.path))}`"
    blob = target.state_dir / BLOBS / s.sha_from
    return f"{s.path}{why}: fix with `cp {shlex.quote(str(blob))} {shlex.quote(str(s.path))}`"


def recover(target: UltralyticsTarget, check: Callable[[Op, Path, bytes | None, bytes | None], bool] | None = None) -> Op | None:
    """Finish an interrupted run (the caller holds the lock); returns its op, or None when there was none.

    `check(op, path, current, new)`: whether a pending step is one the run makes (the planner
    recomputes it from the tree); when one is not, ForeignJournal and nothing is written."""
    files.sweep_tmp([target.state_dir, target.state_dir / BLOBS])
    pending = load_pending(target)
    if pending is None:
        return None
    interrupts.enter(interrupts.Phase.WRITING, pending.op)
    files.sweep_tmp(target.root / Path(s.path).parent for s in pending.steps)
    todo = []
    for raw in pending.steps:
        path = target.root / raw.path
        current = disk_sha(path)
        if current == raw.sha_to:
            continue
        if current != raw.sha_from:
            raise StateError(
                f"{path}: changed since the interrupted {pending.op} (neither its old nor its new bytes); "
                f"put it back or remove {target.state_dir / JOURNAL}"
            )
        after = None if raw.sha_to is None else read_blob(target, raw.sha_to)
        if raw.sha_to is not None and after is None:
            raise StateError(f"{target.state_dir / BLOBS / raw.sha_to}: missing or damaged; cannot finish the interrupted {pending.op}")
        before = None if current is None else path.read_bytes()
        if check is not None and not check(pending.op, path, before, after):
            raise ForeignJournal(f"{raw.path}: its step is not one halo-patch {pending.op} makes from this tree")
        todo.append(FileEdit(path, raw.path, before, after, raw.mode))
    for step in todo:
        _forward(target, step, pending.op)
    _finish(target, pending.op, pending.manifest, pending.dirs)
    interrupts.enter(interrupts.Phase.RECOVERED, pending.op)
    return pending.op
