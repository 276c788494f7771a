"""Commit a plan as one transaction: lock, atomic writes, rollback, manifest and backups.

The manifest and backups live in `<root>/.halo-patch/` (beside the package, never inside the tree
that Ultralytics globs for yaml files); the lock lives in the system temp dir, so a revert leaves
the root exactly as it was before apply.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from halo_patch.errors import LockedError, TargetError
from halo_patch.target import UltralyticsTarget

MANIFEST = "manifest.json"


def sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # relative to the target root, posix
    action: str  # "created" or "modified"
    sha256_before: str | None
    sha256_after: str


@dataclass(frozen=True)
class Manifest:
    halo_patch_version: str
    ultralytics_version: str
    package_dir: str
    created_dirs: tuple[str, ...]
    files: tuple[ManifestEntry, ...]

    def entry(self, rel: str) -> ManifestEntry | None:
        return next((e for e in self.files if e.path == rel), None)


# ---------------------------------------------------------------- reading state


def load_manifest(target: UltralyticsTarget) -> Manifest | None:
    path = target.state_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Manifest(
            halo_patch_version=data["halo_patch_version"],
            ultralytics_version=data["ultralytics_version"],
            package_dir=data["package_dir"],
            created_dirs=tuple(data["created_dirs"]),
            files=tuple(ManifestEntry(**e) for e in data["files"]),
        )
    except (ValueError, KeyError, TypeError):
        raise TargetError(f"{path}: unreadable halo-patch manifest; expected the JSON that apply writes") from None


def backup(target: UltralyticsTarget, kind: str, rel: str) -> bytes | None:
    """A stored copy of a file as it was `before` apply or as apply wrote it (`after`)."""
    path = target.state_dir / kind / rel
    return path.read_bytes() if path.is_file() else None


# ---------------------------------------------------------------- writing


def atomic_write(path: Path, data: bytes) -> None:
    """Temp file in the same dir, fsync, os.replace, fsync the dir; keeps the file's mode."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".halo-tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Transaction:
    """File operations that are undone, in reverse order, if the transaction does not finish."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []  # how to take back each operation done so far

    def mkdir(self, path: Path) -> None:
        """Create `path` and any missing parents, each undone by rmdir."""
        missing = [p for p in [path, *path.parents] if not p.exists()]
        for p in reversed(missing):
            p.mkdir()
            self._undo.append(p.rmdir)

    def write(self, path: Path, data: bytes) -> None:
        self.mkdir(path.parent)
        prior = path.read_bytes() if path.exists() else None
        atomic_write(path, data)
        self._undo.append(lambda: atomic_write(path, prior) if prior is not None else path.unlink(missing_ok=True))

    def delete(self, path: Path) -> None:
        if path.is_dir():
            for child in sorted(path.iterdir(), reverse=True):
                self.delete(child)
            path.rmdir()
            self._undo.append(path.mkdir)
        elif path.exists():
            prior = path.read_bytes()
            path.unlink()
            self._undo.append(lambda: atomic_write(path, prior))

    def rollback(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


@contextmanager
def transaction(target: UltralyticsTarget) -> Iterator[Transaction]:
    """Hold the target's lock; roll back every operation if the block raises (Ctrl-C included)."""
    from filelock import FileLock, Timeout

    key = hashlib.sha1(str(target.package_dir).encode()).hexdigest()[:16]
    lock = FileLock(Path(tempfile.gettempdir()) / f"halo-patch-{key}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise LockedError(f"{target.package_dir}: another halo-patch run is changing this tree; try again when it ends") from None
    tx = Transaction()
    try:
        yield tx
    except BaseException:
        tx.rollback()
        raise
    finally:
        lock.release()


def write_manifest(tx: Transaction, target: UltralyticsTarget, manifest: Manifest) -> None:
    data = asdict(manifest)
    tx.write(target.state_dir / MANIFEST, (json.dumps(data, indent=2) + "\n").encode())


def store_backup(tx: Transaction, target: UltralyticsTarget, kind: str, rel: str, data: bytes) -> None:
    tx.write(target.state_dir / kind / rel, data)


def remove_state(tx: Transaction, target: UltralyticsTarget) -> None:
    if target.state_dir.exists():
        tx.delete(target.state_dir)
