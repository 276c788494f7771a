"""What apply leaves in a tree, recognisable without the state dir: a table of our edits and files.

The tables, one row per thing apply makes; apply, status and revert read them, so a new layout or
file registers a row (`register_python_edit`, `register_created_file`, `register_owned_dir`):

- PYTHON_EDITS: a Python file apply edits in place (in apply's write order: packages first, tasks.py
  last; revert walks it backwards), and its `nodes`: each edit of ours in it, how status names it
  and finds it, and the `remove_*` transform that takes it out of the current text (after an
  upgrade, or beside a user's own edits). When apply created the file, what is left after removal
  equals its stub and the file is deleted instead.
- CREATED_FILES: files apply creates, and how to tell that one is still exactly as written (the
  shipped template's bytes, a valid ownership seal).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from halo_patch import ownership, transforms
from halo_patch.planning import layout
from halo_patch.journal.state import Action
from halo_patch.modules import SPECS
from halo_patch.target import UltralyticsTarget
from halo_patch.transforms import Removal, SourceFile
from halo_patch.transforms.source import decode_source, encode_source


@dataclass(frozen=True)
class Node:
    """One edit of ours in a Python file: its name in status, whether it is there, how it goes."""

    name: str
    present: Callable[[SourceFile, layout.Layout, UltralyticsTarget], bool]  # status: applied (else absent)
    remove: Callable[..., Removal]  # called as remove(src, force=...): our node out, or found edited
    layouts: tuple[layout.Layout, ...] = tuple(layout.Layout)  # the layouts status shows it for


@dataclass(frozen=True)
class PythonEdit:
    """A Python file apply edits: where it is, our nodes in it, its stub if apply creates it."""

    name: str
    locate: Callable[[UltralyticsTarget], Path]
    nodes: tuple[Node, ...]
    stub: bytes | None = None  # the file's bytes without our nodes when apply created it

    @property
    def removers(self) -> tuple[Callable[..., Removal], ...]:
        return tuple(n.remove for n in self.nodes)


@dataclass(frozen=True)
class CreatedFile:
    """A file apply creates: where such files are, and whether given bytes are exactly ours."""

    name: str
    locate: Callable[[UltralyticsTarget], Iterable[Path]]
    is_ours: Callable[[Path, bytes], bool]  # these bytes, at this path, are exactly what apply writes
    was_ours: Callable[[Path, bytes], bool] | None = None  # also what an earlier release wrote (with a manifest entry)


PYTHON_EDITS: list[PythonEdit] = []
CREATED_FILES: list[CreatedFile] = []
OWNED_DIRS: list[Callable[[UltralyticsTarget], Path]] = []  # dirs apply may create: pruned when empty


def register_python_edit(edit: PythonEdit) -> None:
    PYTHON_EDITS.append(edit)


def register_created_file(created: CreatedFile) -> None:
    CREATED_FILES.append(created)


def register_owned_dir(locate: Callable[[UltralyticsTarget], Path]) -> None:
    OWNED_DIRS.append(locate)


def _yaml_patterns() -> list[str]:
    return [f"*/*{suffix}.yaml" for spec in SPECS for suffix in (spec.yaml_suffix, spec.adopt_suffix)]


def model_yamls(target: UltralyticsTarget) -> list[Path]:
    """Files named like a yaml apply writes (`<stem>-HaloAttention.yaml`, or after --adopt
    `<stem>-HaloAttention-halo-patch.yaml`) in cfg/models/<dir>/; ours only while sealed."""
    models = target.models_dir
    if not models.is_dir():
        return []
    return sorted({p for pattern in _yaml_patterns() for p in models.glob(pattern)})


def is_model_yaml_path(target: UltralyticsTarget, path: Path) -> bool:
    """Whether `path` (existing or not) is named like a yaml apply writes, in cfg/models/<dir>/."""
    if path.parent.parent != target.models_dir:
        return False
    rel = PurePosixPath(path.parent.name, path.name)
    return any(rel.match(pattern) for pattern in _yaml_patterns())


def _remove_modules_import(src: SourceFile, force: bool = False) -> Removal:
    return transforms.remove_class_import(src, transforms.MODULES_IMPORT, force=force)  # --layout modules


def _binds_class(src: SourceFile, chosen: layout.Layout, target: UltralyticsTarget) -> bool:
    """tasks.py binds the class, read statically (a star import counts only while `__all__` lets it)."""
    return transforms.binds_class(src, layout.class_package(chosen), star_binds=layout.star_binds(target))


ADDMODULES, MODULES = (layout.Layout.ADDMODULES,), (layout.Layout.MODULES,)
register_python_edit(
    PythonEdit(
        "nn/modules/__init__.py",
        lambda t: t.modules_init,
        (Node("nn/modules export", lambda src, *_: transforms.has_modules_export(src), transforms.remove_modules_export, MODULES),),
    )
)
register_python_edit(
    PythonEdit(
        "Addmodules/__init__.py",
        lambda t: t.addmodules_init,
        (Node("Addmodules import", lambda src, *_: transforms.has_package_import(src), transforms.remove_package_import, ADDMODULES),),
        stub=layout.PACKAGE_INIT.encode(),
    )
)
register_python_edit(
    PythonEdit(
        "tasks.py",
        lambda t: t.tasks_py,
        (
            Node("tasks.py import", _binds_class, transforms.remove_class_import, ADDMODULES),
            Node("tasks.py import", _binds_class, _remove_modules_import, MODULES),
            Node("parse_model branch", lambda src, *_: transforms.has_branch(src), transforms.remove_branch),
        ),
    )
)
register_created_file(
    CreatedFile(
        f"{layout.MODULE.class_name} module",
        lambda t: [layout.module_path(t, each) for each in layout.Layout],
        lambda _, b: as_lf(b) == layout.module_template(),
    )
)
register_created_file(
    CreatedFile("model yaml", model_yamls, lambda p, b: ownership.is_sealed_as(b, p), lambda p, b: ownership.is_sealed(b, p))
)
register_owned_dir(lambda t: t.addmodules_dir)
register_owned_dir(lambda t: t.custom_models_dir)


# ---------------------------------------------------------------- reading files


def as_lf(data: bytes) -> bytes:
    """Bytes apply writes with the tree's line endings, compared as written (LF)."""
    return data.replace(b"\r\n", b"\n")


def read_regular(path: Path) -> bytes | None:
    """The bytes of a regular file (through a symlink), None when there is none."""
    try:
        return path.read_bytes() if path.is_file() else None
    except OSError:
        return None


def strip_ours(edit: PythonEdit, data: bytes, label: str, force: bool = False) -> tuple[bytes, Removal]:
    """The file's bytes without our nodes, and what was found (BOM and line endings kept)."""
    text, bom = decode_source(data, label)
    src = SourceFile.parse(text, label)
    result = Removal(src)
    for remove in edit.removers:
        result = result.then(remove(result.src, force=force))
    out = data if not result.removed and not (force and result.edited) else encode_source(result.src.code, bom)
    return out, result


def python_edit_for(target: UltralyticsTarget, path: Path) -> PythonEdit | None:
    return next((e for e in PYTHON_EDITS if e.locate(target) == path), None)


def created_file_for(target: UltralyticsTarget, path: Path) -> CreatedFile | None:
    """The kind of file apply creates at `path` (which need not exist yet), or None."""
    found = next((c for c in CREATED_FILES if path in list(c.locate(target))), None)
    if found is None and is_model_yaml_path(target, path):
        found = next((c for c in CREATED_FILES if c.locate is model_yamls), None)
    return found


def owned_dirs(target: UltralyticsTarget) -> list[Path]:
    return [locate(target) for locate in OWNED_DIRS]


def is_inside(target: UltralyticsTarget, path: Path) -> bool:
    """True when `path` (resolved) lies inside the package tree."""
    real = Path(os.path.realpath(path))
    package = Path(os.path.realpath(target.package_dir))
    return real == package or package in real.parents


def is_our_entry(target: UltralyticsTarget, path: Path, action: Action) -> bool:
    """Whether a manifest entry names something apply makes: a Python file it edits, or a created
    file whose bytes are recognisably ours. A foreign manifest naming other files is ignored."""
    if python_edit_for(target, path) is not None:
        return True
    data = read_regular(path)
    return action is Action.CREATED and data is not None and any((c.was_ours or c.is_ours)(path, data) for c in CREATED_FILES)
