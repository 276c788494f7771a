"""The state dir's records (manifest, journal, blobs) and their validation.

    manifest.json   what apply changed (schema 2): each file's path, action, sha256 before/after, mode
    blobs/<sha256>  content-addressed copies: originals of modified files and the bytes apply wrote
    journal.json    only while a run changes the tree: its steps (path, sha256 from -> to)

Everything read back is validated first (`confine`): relative paths inside the package, a fixed
set of ops and actions, a schema version, typed fields, blobs whose bytes match their names.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePosixPath

from halo_patch.errors import StateError
from halo_patch.journal.files import disk_sha, inside, sha256
from halo_patch.target import UltralyticsTarget

SCHEMA = 2
MANIFEST = "manifest.json"
JOURNAL = "journal.json"
BLOBS = "blobs"
SHA = re.compile(r"[0-9a-f]{64}")


class Op(str, Enum):
    """What a run does to the tree."""

    APPLY = "apply"
    REVERT = "revert"

    def __str__(self) -> str:
        return self.value


class Action(str, Enum):
    """What apply did to a file the manifest records."""

    CREATED = "created"
    MODIFIED = "modified"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # relative to the target root, posix, inside the package
    action: Action
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

    def entry(self, rel: str) -> ManifestEntry | None:
        return next((e for e in self.files if e.path == rel), None)


@dataclass(frozen=True)
class JournalStep:
    """One step of an interrupted run, as journal.json records it (validated)."""

    path: str
    sha_from: str | None
    sha_to: str | None
    mode: int | None


@dataclass(frozen=True)
class Pending:
    """An interrupted run, read back from journal.json."""

    op: Op
    steps: tuple[JournalStep, ...]
    manifest: Manifest | None
    dirs: tuple[str, ...]

    def done(self, target: UltralyticsTarget) -> int:
        return sum(disk_sha(target.root / s.path) == s.sha_to for s in self.steps)


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
        if path.is_symlink() and not inside(Path(os.path.realpath(path)), package):
            raise StateError(f"{where}: {rel!r} goes through a symlink out of the package tree; expected a path inside it")
    if not inside(Path(os.path.realpath(path.parent)), package):
        raise StateError(f"{where}: {rel!r} resolves outside the package tree; expected a path inside it")
    return path


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
    if value is not None and not SHA.fullmatch(value):
        raise StateError(f"{where}: {key!r} is {value!r}; expected 64 lowercase hex digits")
    return value


def _one_of(value: str, kind: type[Enum], key: str, where: str):
    try:
        return kind(value)
    except ValueError:
        raise StateError(f"{where}: {key} {value!r}; expected one of {', '.join(k.value for k in kind)}") from None


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


def check_state_dir(target: UltralyticsTarget) -> None:
    for path in (target.state_dir, target.state_dir / BLOBS):
        if path.is_symlink() or (os.path.lexists(path) and not path.is_dir()):
            raise StateError(f"{path}: not a directory halo-patch made (a symlink or a file); expected a plain directory")


def _parse_manifest(target: UltralyticsTarget, data: dict, where: str) -> Manifest:
    files = []
    for i, raw in enumerate(_typed(data, "files", list, where)):
        at = f"{where}: files[{i}]"
        if not isinstance(raw, dict):
            raise StateError(f"{at} is {raw!r}; expected an object")
        action = _one_of(_typed(raw, "action", str, at), Action, "action", at)
        rel = raw.get("path")
        confine(target, rel, at)
        before = _sha_field(raw, "sha256_before", at, nullable=True)
        if (action is Action.MODIFIED) != (before is not None):
            raise StateError(f"{at}: sha256_before {before!r} does not fit action {action.value!r}")
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
    )


def manifest_json(manifest: Manifest) -> dict:
    return {
        "schema": SCHEMA,
        "halo_patch_version": manifest.halo_patch_version,
        "ultralytics_version": manifest.ultralytics_version,
        "package_dir": manifest.package_dir,
        "created_dirs": list(manifest.created_dirs),
        "files": [
            {"path": e.path, "action": e.action.value, "sha256_before": e.sha256_before, "sha256_after": e.sha256_after, "mode": e.mode}
            for e in manifest.files
        ],
    }


@contextmanager
def _state_hint(target: UltralyticsTarget) -> Iterator[None]:
    """Say, after what is wrong, the way on: without the state dir revert works by recognition."""
    try:
        yield
    except StateError as exc:
        raise StateError(f"{exc}; nothing changed: move {target.state_dir} aside to revert by recognition") from None


def load_manifest(target: UltralyticsTarget) -> Manifest | None:
    """The validated manifest, None without one; StateError (exit 2, naming the entry) otherwise."""
    with _state_hint(target):
        check_state_dir(target)
        path = target.state_dir / MANIFEST
        data = _read_json(path)
        return None if data is None else _parse_manifest(target, data, str(path))


def load_pending(target: UltralyticsTarget) -> Pending | None:
    """The interrupted run recorded in journal.json, validated; None when no run was interrupted."""
    with _state_hint(target):
        return _load_pending(target)


def _load_pending(target: UltralyticsTarget) -> Pending | None:
    check_state_dir(target)
    path = target.state_dir / JOURNAL
    data = _read_json(path)
    if data is None:
        return None
    where = str(path)
    op = _one_of(_typed(data, "op", str, where), Op, "op", where)
    steps = []
    for i, raw in enumerate(_typed(data, "steps", list, where)):
        at = f"{where}: steps[{i}]"
        if not isinstance(raw, dict):
            raise StateError(f"{at} is {raw!r}; expected an object")
        confine(target, raw.get("path"), at)
        sha_from, sha_to = _sha_field(raw, "from", at, True), _sha_field(raw, "to", at, True)
        steps.append(JournalStep(raw["path"], sha_from, sha_to, _typed(raw, "mode", int, at, nullable=True)))
    dirs = _typed(data, "dirs", list, where)
    for i, rel in enumerate(dirs):
        confine(target, rel, f"{where}: dirs[{i}]")
    manifest = data.get("manifest")
    if manifest is not None and not isinstance(manifest, dict):
        raise StateError(f"{where}: 'manifest' is {manifest!r}; expected an object")
    return Pending(op, tuple(steps), None if manifest is None else _parse_manifest(target, manifest, f"{where}: manifest"), tuple(dirs))


def read_blob(target: UltralyticsTarget, digest: str | None) -> bytes | None:
    """A stored copy whose bytes still match its name (a truncated or edited one is None)."""
    if digest is None or not SHA.fullmatch(digest):
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
        if disk_sha(target.root / e.path) != e.sha256_after:
            continue
        if e.sha256_before is not None and read_blob(target, e.sha256_before) is None:
            continue
        out[e.path] = e
    return out
