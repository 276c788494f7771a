"""Commit file changes as one crash-safe transaction: a write-ahead journal in the state dir.

The state dir `<root>/.halo-patch/` sits beside the package (never inside the tree Ultralytics globs):

    manifest.json   what apply changed (schema 2): each file's path, action, sha256 before/after, mode
    blobs/<sha256>  content-addressed copies: originals of modified files and the bytes apply wrote
    journal.json    only while a run changes the tree: its steps (path, sha256 from -> to)

Order of a run: blobs, then journal.json, both fsynced, before the first change to the tree; each
step re-checks the file's hash just before it replaces it; then manifest.json is written (or, for
revert, removed) and the journal last. After an interruption at any instant the journal is still
there: `recover` finishes it by hashes (a step whose file already has its new hash is done), so
status can name the interruption and apply or revert completes it. An exception inside the run
rolls every step back instead, each undo attempted even when one fails.

Everything read back from the state dir is validated first (`confine`): relative paths inside the
package, a fixed set of actions, a schema version, typed fields, blobs whose bytes match their
names. Deletion never follows a symlink. One lock per real tree: `flock` on the package dir itself.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import re
import shlex
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from halo_patch.errors import (
    ConflictError,
    HaloPatchError,
    LockedError,
    RollbackError,
    StateError,
    TargetError,
    UnfinishedError,
)
from halo_patch import interrupts, lock_holder, tempfiles
from halo_patch.target import UltralyticsTarget

SCHEMA = 2
MANIFEST = "manifest.json"
JOURNAL = "journal.json"
BLOBS = "blobs"
ACTIONS = ("created", "modified")
OPS = ("apply", "revert")
TMP_SUFFIX = ".halo-tmp"
FAULT_ENV = "HALO_PATCH_FAULT"  # test-only: "<k>:<raise|kill|enospc|interrupt>[,...]" stops the k-th file operation
FAULT_LOG_ENV = "HALO_PATCH_FAULT_LOG"  # test-only: append one line per file operation to this file
LOCK_WAIT_ENV = "HALO_PATCH_LOCK_WAIT"  # seconds to wait for another run on the same tree (default 120)
_SHA = re.compile(r"[0-9a-f]{64}")


def sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- state records


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # relative to the target root, posix, inside the package
    action: str  # "created" or "modified"
    sha256_before: str | None  # the original (None: created)
    sha256_after: str  # as apply wrote it
    mode: int = 0o644  # permission bits of the file apply wrote


@dataclass(frozen=True)
class Manifest:
    halo_patch_version: str
    ultralytics_version: str
    package_dir: str
    created_dirs: tuple[str, ...]
    files: tuple[ManifestEntry, ...]
    options: dict = field(default_factory=dict)

    def entry(self, rel: str) -> ManifestEntry | None:
        return next((e for e in self.files if e.path == rel), None)


@dataclass(frozen=True)
class Step:
    """One file of a run: its bytes before and after (None: absent)."""

    path: Path
    rel: str
    before: bytes | None
    after: bytes | None
    mode: int | None = None  # permission bits for a file the step creates

    @property
    def sha_from(self) -> str | None:
        return sha256(self.before)

    @property
    def sha_to(self) -> str | None:
        return sha256(self.after)


@dataclass(frozen=True)
class Pending:
    """An interrupted run, read back from journal.json."""

    op: str  # "apply" or "revert"
    steps: tuple[dict, ...]  # validated: path, from, to, mode
    manifest: Manifest | None
    dirs: tuple[str, ...]

    def done(self, target: UltralyticsTarget) -> int:
        return sum(_disk_sha(target.root / s["path"]) == s["to"] for s in self.steps)


# ---------------------------------------------------------------- validation


def confine(target: UltralyticsTarget, rel: object, where: str) -> Path:
    """The absolute path of a state entry, or StateError: a str, relative, without `.`/`..`, inside
    the package, and no symlink on the way that leads out of the package."""
    if not isinstance(rel, str) or not rel or "\x00" in rel or "\\" in rel:
        raise StateError(f"{where}: {rel!r} is not a path; expected a relative path inside {target.package_dir.name}/")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or any(p in ("", ".", "..") for p in rel.split("/")):
        raise StateError(f"{where}: {rel!r} leaves the package tree; expected a relative path inside {target.package_dir.name}/")
    if pure.parts[0] != target.package_dir.name or len(pure.parts) < 2:
        raise StateError(f"{where}: {rel!r} is outside the package; expected a path inside {target.package_dir.name}/")
    package = Path(os.path.realpath(target.package_dir))
    path = target.root
    for part in pure.parts:
        path = path / part
        if path.is_symlink() and not _inside(Path(os.path.realpath(path)), package):
            raise StateError(f"{where}: {rel!r} goes through a symlink out of the package tree; expected a path inside it")
    if not _inside(Path(os.path.realpath(path.parent)), package):
        raise StateError(f"{where}: {rel!r} resolves outside the package tree; expected a path inside it")
    return path


def _inside(path: Path, package: Path) -> bool:
    return path == package or package in path.parents


def _typed(obj: dict, key: str, types: type | tuple, where: str, nullable: bool = False) -> object:
    if key not in obj:
        raise StateError(f"{where}: no {key!r}; expected the JSON that halo-patch writes")
    value = obj[key]
    if value is None and nullable:
        return None
    if not isinstance(value, types) or isinstance(value, bool):
        raise StateError(f"{where}: {key!r} is {value!r}; expected {_type_name(types)}")
    return value


def _type_name(types: type | tuple) -> str:
    names = [t.__name__ for t in (types if isinstance(types, tuple) else (types,))]
    return {"str": "a string", "int": "an integer", "list": "a list", "dict": "an object"}.get(names[0], names[0])


def _sha_field(obj: dict, key: str, where: str, nullable: bool) -> str | None:
    value = _typed(obj, key, str, where, nullable)
    if value is not None and not _SHA.fullmatch(value):
        raise StateError(f"{where}: {key!r} is {value!r}; expected 64 lowercase hex digits")
    return value


def _read_json(path: Path) -> dict | None:
    if not os.path.lexists(path):
        return None
    if path.is_symlink() or not path.is_file():
        raise StateError(f"{path}: not a regular file; expected the JSON that halo-patch writes")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise StateError(f"{path}: unreadable (not JSON); expected the JSON that halo-patch writes") from None
    if not isinstance(data, dict):
        raise StateError(f"{path}: not a JSON object; expected the JSON that halo-patch writes")
    schema = data.get("schema")
    if schema != SCHEMA:
        raise StateError(f"{path}: schema {schema!r}; expected {SCHEMA} (written by another halo-patch version)")
    return data


def _check_state_dir(target: UltralyticsTarget) -> None:
    for path in (target.state_dir, target.state_dir / BLOBS):
        if path.is_symlink() or (os.path.lexists(path) and not path.is_dir()):
            raise StateError(f"{path}: not a directory halo-patch made (a symlink or a file); expected a plain directory")


def _parse_manifest(target: UltralyticsTarget, data: dict, where: str) -> Manifest:
    files = []
    for i, raw in enumerate(_typed(data, "files", list, where)):
        at = f"{where}: files[{i}]"
        if not isinstance(raw, dict):
            raise StateError(f"{at} is {raw!r}; expected an object")
        action = _typed(raw, "action", str, at)
        if action not in ACTIONS:
            raise StateError(f"{at}: action {action!r}; expected one of {', '.join(ACTIONS)}")
        rel = raw.get("path")
        confine(target, rel, at)
        before = _sha_field(raw, "sha256_before", at, nullable=True)
        if (action == "modified") != (before is not None):
            raise StateError(f"{at}: sha256_before {before!r} does not fit action {action!r}")
        mode = _typed(raw, "mode", int, at)
        if not 0 <= mode <= 0o7777:
            raise StateError(f"{at}: mode {mode!r}; expected permission bits")
        files.append(ManifestEntry(rel, action, before, _sha_field(raw, "sha256_after", at, nullable=False), mode))
    dirs = _typed(data, "created_dirs", list, where)
    for i, rel in enumerate(dirs):
        confine(target, rel, f"{where}: created_dirs[{i}]")
    return Manifest(
        halo_patch_version=_typed(data, "halo_patch_version", str, where),
        ultralytics_version=_typed(data, "ultralytics_version", str, where),
        package_dir=_typed(data, "package_dir", str, where),
        created_dirs=tuple(dirs),
        files=tuple(files),
        options=_typed(data, "options", dict, where),
    )


def load_manifest(target: UltralyticsTarget) -> Manifest | None:
    """The validated manifest, None without one; StateError (exit 2, naming the entry) otherwise."""
    with _state_hint(target):
        _check_state_dir(target)
        path = target.state_dir / MANIFEST
        data = _read_json(path)
        return None if data is None else _parse_manifest(target, data, str(path))


@contextmanager
def _state_hint(target: UltralyticsTarget) -> Iterator[None]:
    """Say, after what is wrong, the way on: without the state dir revert works by recognition."""
    try:
        yield
    except StateError as exc:
        raise StateError(f"{exc}; nothing changed: move {target.state_dir} aside to revert by recognition") from None


def load_pending(target: UltralyticsTarget) -> Pending | None:
    """The interrupted run recorded in journal.json, validated; None when no run was interrupted."""
    with _state_hint(target):
        return _load_pending(target)


def _load_pending(target: UltralyticsTarget) -> Pending | None:
    _check_state_dir(target)
    path = target.state_dir / JOURNAL
    data = _read_json(path)
    if data is None:
        return None
    where = str(path)
    op = _typed(data, "op", str, where)
    if op not in OPS:
        raise StateError(f"{where}: op {op!r}; expected one of {', '.join(OPS)}")
    steps = []
    for i, raw in enumerate(_typed(data, "steps", list, where)):
        at = f"{where}: steps[{i}]"
        if not isinstance(raw, dict):
            raise StateError(f"{at} is {raw!r}; expected an object")
        confine(target, raw.get("path"), at)
        step = {"path": raw["path"], "from": _sha_field(raw, "from", at, True), "to": _sha_field(raw, "to", at, True)}
        step["mode"] = _typed(raw, "mode", int, at, nullable=True)
        steps.append(step)
    dirs = _typed(data, "dirs", list, where)
    for i, rel in enumerate(dirs):
        confine(target, rel, f"{where}: dirs[{i}]")
    manifest = data.get("manifest")
    if manifest is not None and not isinstance(manifest, dict):
        raise StateError(f"{where}: 'manifest' is {manifest!r}; expected an object")
    return Pending(op, tuple(steps), None if manifest is None else _parse_manifest(target, manifest, f"{where}: manifest"), tuple(dirs))


def read_blob(target: UltralyticsTarget, digest: str | None) -> bytes | None:
    """A stored copy whose bytes still match its name (a truncated or edited one is None)."""
    if digest is None or not _SHA.fullmatch(digest):
        return None
    path = target.state_dir / BLOBS / digest
    if path.is_symlink() or not path.is_file():
        return None
    data = path.read_bytes()
    return data if sha256(data) == digest else None


def trusted_entries(target: UltralyticsTarget, manifest: Manifest | None) -> dict[str, ManifestEntry]:
    """Entries whose file is still exactly what apply wrote and whose original is stored intact: only
    these are ever acted on from the manifest (a state dir shipped with a clone matches nothing)."""
    if manifest is None:
        return {}
    out = {}
    for e in manifest.files:
        if _disk_sha(target.root / e.path) != e.sha256_after:
            continue
        if e.sha256_before is not None and read_blob(target, e.sha256_before) is None:
            continue
        out[e.path] = e
    return out


# ---------------------------------------------------------------- fault points (tests only)

_ops = 0


def _fault(label: str, path: Path) -> None:
    """Count a file operation; under HALO_PATCH_FAULT stop at the chosen one, as a test asks."""
    global _ops
    _ops += 1
    log = os.environ.get(FAULT_LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{_ops} {label} {path}\n")
    for spec in filter(None, os.environ.get(FAULT_ENV, "").split(",")):
        index, _, how = spec.partition(":")
        if index.strip() == str(_ops):
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if how == "interrupt":
                raise KeyboardInterrupt
            if how == "enospc":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            raise InjectedFault(f"injected fault at file operation {_ops} ({label} {path})")


class InjectedFault(RuntimeError):
    """Raised at a fault point chosen by HALO_PATCH_FAULT (tests only)."""


# ---------------------------------------------------------------- file operations


def _disk_sha(path: Path) -> str | None:
    """sha256 of the file at `path` (through a symlink), None when there is no regular file."""
    try:
        return sha256(path.read_bytes()) if path.is_file() else None
    except OSError:
        return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


def _real_file(path: Path, package: Path) -> Path:
    """Where to write `path`: itself, or its symlink's target when that lies inside the package."""
    if not path.is_symlink():
        return path
    real = Path(os.path.realpath(path))
    if not _inside(real, Path(os.path.realpath(package))):
        raise TargetError(f"{path}: a symlink to {real}, outside the package tree; expected a file inside it")
    return real


def atomic_write(path: Path, data: bytes, mode: int | None = None) -> None:
    """Temp file beside `path`, fsync, rename over it, fsync the dir: mode, owner and group kept."""
    st = os.lstat(path) if os.path.lexists(path) else None
    like = st or os.stat(path.parent)
    tmp = path.parent / f".{path.name}{TMP_SUFFIX}"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    _fault("write", tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, st.st_mode & 0o7777 if st else (mode if mode is not None else 0o666 & ~_umask()))
        _match_owner(tmp, like)
        _fault("replace", path)
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:  # ENOSPC from write(): name the file
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    _fsync_dir(path.parent)


def _mkdirs(path: Path, stop: Path) -> None:
    """Create `path` and missing parents below `stop`, each owned like the dir that holds it."""
    missing = []
    p = path
    while not os.path.lexists(p) and p != stop:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        _fault("mkdir", d)
        os.mkdir(d)
        _match_owner(d, os.stat(d.parent))


def _unlink(path: Path) -> None:
    """Remove a file or a symlink itself, never what a link points to."""
    if os.path.lexists(path):
        _fault("unlink", path)
        os.unlink(path)


def _rmdir_if_empty(path: Path) -> None:
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        _fault("rmdir", path)
        os.rmdir(path)


def _sweep_tmp(dirs: Iterable[Path]) -> None:
    """Delete temp files an interrupted run left (`.<name>.halo-tmp`), never following links."""
    for d in dict.fromkeys(dirs):
        if d.is_dir() and not d.is_symlink():
            for child in d.iterdir():
                if child.name.startswith(".") and child.name.endswith(TMP_SUFFIX):
                    _unlink(child)


def pycache_of(path: Path) -> list[Path]:
    """Bytecode Python wrote for the module at `path`: regular files only."""
    cache = path.parent / "__pycache__"
    if cache.is_symlink() or not cache.is_dir():
        return []
    return sorted(p for p in cache.glob(f"{path.stem}.*.pyc") if p.is_file() and not p.is_symlink())


# ---------------------------------------------------------------- the lock


def lock_wait() -> float:
    """Seconds to wait for the lock: $HALO_PATCH_LOCK_WAIT (a finite number >= 0), else 120."""
    raw = os.environ.get(LOCK_WAIT_ENV)
    if raw is None:
        return 120.0
    try:
        wait = float(raw)
    except ValueError:
        wait = math.nan
    if not math.isfinite(wait) or wait < 0:
        raise HaloPatchError(f"{LOCK_WAIT_ENV}={raw!r}: expected a number of seconds (0 or more)")
    return wait


@contextmanager
def locked(target: UltralyticsTarget, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the tree's lock: `flock` on the package dir itself (its real inode: a symlinked entry and
    the real path share it; nothing in $TMPDIR for others to pre-create). Waits up to
    $HALO_PATCH_LOCK_WAIT seconds (default 120) for another run, then LockedError."""
    wait = lock_wait()
    where = target.package_dir if target.package_dir.is_dir() else target.root
    fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None and wait > 0:
                on_wait()
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockedError(
                            f"{target.package_dir}: locked by another program, {lock_holder.describe(where)}; "
                            f"waited {wait:g} s (${LOCK_WAIT_ENV}); try again when it ends"
                        ) from None
                    time.sleep(0.05)
        tempfiles.sweep(target)  # what an earlier run cut short left behind
        try:
            yield
        finally:
            tempfiles.sweep(target)  # and what this one leaves, even after a second Ctrl-C
    finally:
        os.close(fd)


# ---------------------------------------------------------------- running steps


def _store_blob(target: UltralyticsTarget, data: bytes, mode: int | None) -> None:
    path = target.state_dir / BLOBS / sha256(data)
    if read_blob(target, sha256(data)) is None:
        _unlink(path)
        atomic_write(path, data, mode=mode if mode is not None else 0o644)


def _write_json(target: UltralyticsTarget, name: str, data: dict) -> None:
    atomic_write(target.state_dir / name, (json.dumps(data, indent=2) + "\n").encode(), mode=0o644)


def _manifest_json(manifest: Manifest) -> dict:
    return {
        "schema": SCHEMA,
        "halo_patch_version": manifest.halo_patch_version,
        "ultralytics_version": manifest.ultralytics_version,
        "package_dir": manifest.package_dir,
        "options": manifest.options,
        "created_dirs": list(manifest.created_dirs),
        "files": [
            {"path": e.path, "action": e.action, "sha256_before": e.sha256_before, "sha256_after": e.sha256_after, "mode": e.mode}
            for e in manifest.files
        ],
    }


def _mode_of(path: Path) -> int | None:
    return os.stat(path).st_mode & 0o7777 if path.exists() else None


def commit(
    target: UltralyticsTarget,
    op: str,
    steps: tuple[Step, ...],
    manifest: Manifest | None,
    dirs: tuple[str, ...] = (),
    keep: tuple[bytes, ...] = (),
) -> None:
    """Run `steps` as one transaction (the caller holds the lock). `manifest` is the state to leave
    (None: no state, the state dir goes); `dirs` are created (apply) or pruned when empty (revert);
    `keep` are extra bytes to store as blobs (originals the manifest names)."""
    for s in steps:  # refuse a symlink out of the tree before anything is written
        if s.after is not None:
            _real_file(s.path, target.package_dir)
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


def _prepare(target, op: str, steps: tuple[Step, ...], manifest: Manifest | None, dirs: tuple[str, ...], keep) -> None:
    """Before the first change to the tree: every byte needed to go forward or back, then the intent."""
    _mkdirs(target.state_dir / BLOBS, target.root)
    _sweep_tmp([target.state_dir, target.state_dir / BLOBS, *(s.path.parent for s in steps)])
    for s in steps:
        mode = _mode_of(s.path)
        for data in (s.before, s.after):
            if data is not None:
                _store_blob(target, data, mode if mode is not None else s.mode)
    for data in keep:
        _store_blob(target, data, None)
    record = {
        "schema": SCHEMA,
        "op": op,
        "steps": [{"path": s.rel, "from": s.sha_from, "to": s.sha_to, "mode": s.mode} for s in steps],
        "dirs": list(dirs),
        "manifest": None if manifest is None else _manifest_json(manifest),
    }
    _write_json(target, JOURNAL, record)


def _forward(target: UltralyticsTarget, s: Step, op: str) -> None:
    """Bring one file from its `before` to its `after` bytes, re-checking its hash just before."""
    current = _disk_sha(s.path)
    if current == s.sha_to:
        return
    if current != s.sha_from:
        raise ConflictError(
            f"{s.path}: changed while halo-patch was running (not what the {op} planned from); run {op} again"
        )
    if s.after is None:
        _unlink(s.path)
        for pyc in pycache_of(s.path):
            _unlink(pyc)
        return
    _mkdirs(s.path.parent, target.root)
    atomic_write(_real_file(s.path, target.package_dir), s.after, mode=s.mode)


def _finish(target: UltralyticsTarget, op: str, manifest: Manifest | None, dirs: tuple[str, ...]) -> None:
    """After the last step: prune, leave the manifest (or no state), drop unused blobs and the journal."""
    if op == "revert":
        for rel in sorted(dirs, key=lambda r: r.count("/"), reverse=True):
            _rmdir_if_empty(target.root / rel / "__pycache__")
            _rmdir_if_empty(target.root / rel)
    if manifest is not None:
        _write_json(target, MANIFEST, _manifest_json(manifest))
        _unlink(target.state_dir / JOURNAL)
        _gc_blobs(target, manifest)
    else:
        _unlink(target.state_dir / MANIFEST)
        _gc_blobs(target, None)
        _unlink(target.state_dir / JOURNAL)
        remove_state_dir(target)


def _gc_blobs(target: UltralyticsTarget, manifest: Manifest | None) -> None:
    """Delete blobs the manifest does not name (only files named like a sha256, never via links)."""
    keep = set() if manifest is None else {d for e in manifest.files for d in (e.sha256_before, e.sha256_after)}
    blobs = target.state_dir / BLOBS
    if blobs.is_dir() and not blobs.is_symlink():
        for child in sorted(blobs.iterdir()):
            if _SHA.fullmatch(child.name) and child.name not in keep:
                _unlink(child)


def remove_state_dir(target: UltralyticsTarget) -> None:
    """Remove the state dir: only the names halo-patch writes; anything else stays, and so does the dir."""
    state = target.state_dir
    if state.is_symlink() or not state.is_dir():
        return
    _sweep_tmp([state, state / BLOBS])
    blobs = state / BLOBS
    if blobs.is_dir() and not blobs.is_symlink():
        for child in sorted(blobs.iterdir()):
            if _SHA.fullmatch(child.name) and not child.is_dir():
                _unlink(child)
        _rmdir_if_empty(blobs)
    for name in (MANIFEST, JOURNAL):
        if not (state / name).is_dir():
            _unlink(state / name)
    _rmdir_if_empty(state)


def _rollback(target: UltralyticsTarget, op: str, steps: tuple[Step, ...], dirs: tuple[str, ...], exc: BaseException) -> None:
    """Undo every step (each attempted), re-hash, then report; raises RollbackError when a file
    could not be restored (the journal stays, so status names the interruption)."""
    failed: list[str] = []
    for index, s in reversed(list(enumerate(steps))):
        try:
            current = _disk_sha(s.path)
            if current == s.sha_from:
                continue
            if current != s.sha_to:
                if index == len(steps) - 1:
                    continue  # the step that failed never wrote this: someone else did, and it stays
                raise ConflictError(f"{s.path}: changed by someone else during the {op}")
            if s.before is None:
                _unlink(s.path)
                for pyc in pycache_of(s.path):
                    _unlink(pyc)
            else:
                _mkdirs(s.path.parent, target.root)
                atomic_write(_real_file(s.path, target.package_dir), s.before, mode=s.mode)
        except Exception as undo_exc:  # every undo is attempted; each failure is reported
            failed.append(_fix_command(target, s, undo_exc))
    if op == "apply":
        for rel in sorted(dirs, key=lambda r: r.count("/"), reverse=True):
            try:
                _rmdir_if_empty(target.root / rel / "__pycache__")
                _rmdir_if_empty(target.root / rel)
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
        _unlink(target.state_dir / JOURNAL)
        existing = load_manifest(target)
        if existing is None:
            remove_state_dir(target)
        else:
            _gc_blobs(target, existing)
    except (OSError, HaloPatchError):
        pass  # the tree is back; a leftover journal is finished (a no-op) by the next run


def _left_changed(s: Step, in_progress: bool) -> bool:
    """Re-hashed after a rollback: still not its old bytes (the failed step counts only if it wrote)."""
    current = _disk_sha(s.path)
    return current != s.sha_from and (not in_progress or current == s.sha_to)


def describe_failure(exc: BaseException) -> str:
    """One line for a failure: the file and the reason (an OSError without a file names the run)."""
    if isinstance(exc, OSError):
        return f"{exc.filename or 'a file operation'}: {exc.strerror or exc}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return str(exc) or type(exc).__name__


def _fix_command(target: UltralyticsTarget, s: Step, exc: BaseException | None) -> str:
    why = f" ({exc.strerror if isinstance(exc, OSError) and exc.strerror else exc})" if exc else ""
    if s.before is None:
        return f"{s.path}{why}: fix with `rm -f {shlex.quote(str(s.path))}`"
    blob = target.state_dir / BLOBS / s.sha_from
    return f"{s.path}{why}: fix with `cp {shlex.quote(str(blob))} {shlex.quote(str(s.path))}`"


def recover(target: UltralyticsTarget) -> str | None:
    """Finish an interrupted run (the caller holds the lock); returns its op, or None when there was none."""
    _sweep_tmp([target.state_dir, target.state_dir / BLOBS])
    pending = load_pending(target)
    if pending is None:
        return None
    interrupts.enter(interrupts.Phase.WRITING, pending.op)
    _sweep_tmp(target.root / Path(s["path"]).parent for s in pending.steps)
    for raw in pending.steps:
        path = target.root / raw["path"]
        current = _disk_sha(path)
        if current == raw["to"]:
            continue
        if current != raw["from"]:
            raise StateError(
                f"{path}: changed since the interrupted {pending.op} (neither its old nor its new bytes); "
                f"put it back or remove {target.state_dir / JOURNAL}"
            )
        after = None if raw["to"] is None else read_blob(target, raw["to"])
        if raw["to"] is not None and after is None:
            raise StateError(f"{target.state_dir / BLOBS / raw['to']}: missing or damaged; cannot finish the interrupted {pending.op}")
        _forward(target, Step(path, raw["path"], None if current is None else path.read_bytes(), after, raw["mode"]), pending.op)
    _finish(target, pending.op, pending.manifest, pending.dirs)
    interrupts.enter(interrupts.Phase.RECOVERED, pending.op)
    return pending.op
