"""File operations of a run: each one atomic, confined, never following a link it deletes.

Every operation passes `checkpoint(label, path)` first. It does nothing: it only names the points
between file operations, so the crash-safety tests can stop a run at each of them from their own
wrapper (nothing here reads the environment).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from halo_patch.errors import TargetError

TMP_SUFFIX = ".halo-tmp"


def checkpoint(label: str, path: Path) -> None:
    """The point just before a file operation (`write`, `replace`, `mkdir`, `unlink`, `rmdir`)."""


def sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def disk_sha(path: Path) -> str | None:
    """sha256 of the file at `path` (through a symlink), None when there is no regular file."""
    try:
        return sha256(path.read_bytes()) if path.is_file() else None
    except OSError:
        return None


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def mode_of(path: Path) -> int | None:
    return os.stat(path).st_mode & 0o7777 if path.exists() else None


def inside(path: Path, package: Path) -> bool:
    return path == package or package in path.parents


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _match_owner(path: Path, like: os.stat_result) -> None:
    """Give `path` the owner and group of `like` (the file it replaces, or its tree) when we may."""
    st = os.lstat(path)
    if (st.st_uid, st.st_gid) == (like.st_uid, like.st_gid):
        return
    try:
        os.chown(path, like.st_uid if os.geteuid() == 0 else -1, like.st_gid, follow_symlinks=False)
    except OSError:
        pass  # a non-root user cannot give files away; the file stays this user's


def confine_dirs(path: Path, package: Path) -> None:
    """TargetError unless the real path of the directory that holds `path` (its nearest existing
    one, for a file in dirs still to be made) lies inside the package: no symlinked dir on the way
    (nn/Addmodules, cfg/models/custom) may lead a write or a delete out of the tree."""
    parent = path.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    real = Path(os.path.realpath(parent))
    if not inside(real, Path(os.path.realpath(package))):
        raise TargetError(
            f"{path}: {parent} leads to {real}, outside the package tree (a symlink on the way); "
            "expected a directory inside the package; nothing changed"
        )


def real_file(path: Path, package: Path) -> Path:
    """Where to write `path`: itself, or its symlink's target when that lies inside the package;
    TargetError when a directory on its way leads out of the package."""
    confine_dirs(path, package)
    if not path.is_symlink():
        return path
    real = Path(os.path.realpath(path))
    if not inside(real, Path(os.path.realpath(package))):
        raise TargetError(f"{path}: a symlink to {real}, outside the package tree; expected a file inside it")
    return real


def atomic_write(path: Path, data: bytes, mode: int | None = None) -> None:
    """Temp file beside `path`, fsync, rename over it, fsync the dir: mode, owner and group kept."""
    st = os.lstat(path) if os.path.lexists(path) else None
    like = st or os.stat(path.parent)
    tmp = path.parent / f".{path.name}{TMP_SUFFIX}"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    checkpoint("write", tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, st.st_mode & 0o7777 if st else (mode if mode is not None else 0o666 & ~umask()))
        _match_owner(tmp, like)
        checkpoint("replace", path)
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:  # ENOSPC from write(): name the file
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    _fsync_dir(path.parent)


def set_aside(path: Path) -> Path:
    """Rename `path` (something in the state dir halo-patch did not write) to a free `<name>.not-halo-patch[N]`."""
    n = 0
    while os.path.lexists(aside := path.with_name(f"{path.name}.not-halo-patch{n or ''}")):
        n += 1
    checkpoint("replace", aside)
    os.rename(path, aside)
    return aside


def mkdirs(path: Path, stop: Path) -> None:
    """Create `path` and missing parents below `stop`, each owned like the dir that holds it."""
    missing = []
    p = path
    while not os.path.lexists(p) and p != stop:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        checkpoint("mkdir", d)
        os.mkdir(d)
        _match_owner(d, os.stat(d.parent))


def unlink(path: Path) -> None:
    """Remove a file or a symlink itself, never what a link points to."""
    if os.path.lexists(path):
        checkpoint("unlink", path)
        os.unlink(path)


def pycache_of(path: Path) -> list[Path]:
    """Bytecode Python wrote for the module at `path`: regular files only."""
    cache = path.parent / "__pycache__"
    if cache.is_symlink() or not cache.is_dir():
        return []
    return sorted(p for p in cache.glob(f"{path.stem}.*.pyc") if p.is_file() and not p.is_symlink())


def delete_module_file(path: Path) -> None:
    """Delete a file and the bytecode Python wrote for it."""
    unlink(path)
    for pyc in pycache_of(path):
        unlink(pyc)


def rmdir_if_empty(path: Path) -> None:
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        checkpoint("rmdir", path)
        os.rmdir(path)


def prune_dirs(root: Path, rels: Iterable[str]) -> None:
    """Remove each dir (relative to `root`) that is empty but for an empty __pycache__, deepest first;
    never one reached through a symlinked dir (its real path must be where it is named)."""
    real_root = os.path.realpath(root)
    for rel in sorted(rels, key=lambda r: r.count("/"), reverse=True):
        if os.path.realpath(root / rel) != os.path.join(real_root, *rel.split("/")):
            continue
        rmdir_if_empty(root / rel / "__pycache__")
        rmdir_if_empty(root / rel)


def sweep_tmp(dirs: Iterable[Path]) -> None:
    """Delete temp files an interrupted run left (`.<name>.halo-tmp`), never following links."""
    for d in dict.fromkeys(dirs):
        if d.is_dir() and not d.is_symlink():
            for child in d.iterdir():
                if child.name.startswith(".") and child.name.endswith(TMP_SUFFIX):
                    unlink(child)
