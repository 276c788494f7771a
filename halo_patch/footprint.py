"""What apply leaves in a tree, recognisable without the state dir: a table of our edits and files.

Two tables, one row per thing apply makes; status and revert read only the tables, so a new layout
or file registers a row (`register_python_edit`, `register_created_file`, `register_owned_dir`):

- PYTHON_EDITS: a Python file apply edits in place, and the `remove_*` transforms that take our
  nodes out of its current text (after an upgrade, or beside a user's own edits). When apply
  created the file, what is left after removal equals its stub and the file is deleted instead.
- CREATED_FILES: files apply creates, and how to tell that one is still exactly as written (the
  shipped template's bytes, a valid ownership seal).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from halo_patch import ownership, plan, transforms
from halo_patch.modules import SPECS
from halo_patch.target import UltralyticsTarget
from halo_patch.transforms import Removal, SourceFile
from halo_patch.transforms.source import decode_source, encode_source

@dataclass(frozen=True)
class PythonEdit:
    """A Python file apply edits: where it is, how to take our nodes out, its stub if apply creates it."""

    name: str
    locate: Callable[[UltralyticsTarget], Path]
    removers: tuple[Callable[..., Removal], ...]  # each called as remove(src, force=...)
    stub: bytes | None = None  # the file's bytes without our nodes when apply created it


@dataclass(frozen=True)
class CreatedFile:
    """A file apply creates: where such files are, and whether given bytes are exactly ours."""

    name: str
    locate: Callable[[UltralyticsTarget], Iterable[Path]]
    is_ours: Callable[[bytes], bool]


PYTHON_EDITS: list[PythonEdit] = []
CREATED_FILES: list[CreatedFile] = []
OWNED_DIRS: list[Callable[[UltralyticsTarget], Path]] = []  # dirs apply may create: pruned when empty


def register_python_edit(edit: PythonEdit) -> None:
    PYTHON_EDITS.append(edit)


def register_created_file(created: CreatedFile) -> None:
    CREATED_FILES.append(created)


def register_owned_dir(locate: Callable[[UltralyticsTarget], Path]) -> None:
    OWNED_DIRS.append(locate)


def model_yamls(target: UltralyticsTarget) -> list[Path]:
    """Files named like a yaml apply writes (`<stem>-HaloAttention.yaml`, or after --adopt
    `<stem>-HaloAttention-halo-patch.yaml`) in cfg/models/<dir>/; ours only while sealed."""
    models = target.package_dir / "cfg" / "models"
    if not models.is_dir():
        return []
    names = [f"*/*{suffix}.yaml" for spec in SPECS for suffix in (spec.yaml_suffix, spec.adopt_suffix)]
    return sorted({p for pattern in names for p in models.glob(pattern)})


def _remove_modules_import(src: SourceFile, force: bool = False) -> Removal:
    return transforms.remove_class_import(src, transforms.MODULES_IMPORT, force=force)  # --layout modules


register_python_edit(
    PythonEdit("tasks.py", lambda t: t.tasks_py, (transforms.remove_class_import, _remove_modules_import, transforms.remove_branch))
)
register_python_edit(
    PythonEdit(
        "Addmodules/__init__.py",
        lambda t: t.addmodules_dir / "__init__.py",
        (transforms.remove_package_import,),
        stub=plan.PACKAGE_INIT.encode(),
    )
)
register_python_edit(
    PythonEdit("nn/modules/__init__.py", lambda t: t.package_dir / "nn" / "modules" / "__init__.py", (transforms.remove_modules_export,))
)
register_created_file(
    CreatedFile(
        f"{plan.MODULE.class_name} module",
        lambda t: [plan.module_path(t, layout) for layout in plan.LAYOUTS],
        lambda b: as_lf(b) == plan.module_template(),
    )
)
register_created_file(CreatedFile("model yaml", model_yamls, ownership.is_sealed))
register_owned_dir(lambda t: t.addmodules_dir)
register_owned_dir(lambda t: t.package_dir / "cfg" / "models" / "custom")


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
    return next((c for c in CREATED_FILES if path in list(c.locate(target))), None)


def owned_dirs(target: UltralyticsTarget) -> list[Path]:
    return [locate(target) for locate in OWNED_DIRS]


def is_inside(target: UltralyticsTarget, path: Path) -> bool:
    """True when `path` (resolved) lies inside the package tree."""
    real = Path(os.path.realpath(path))
    package = Path(os.path.realpath(target.package_dir))
    return real == package or package in real.parents


def is_our_entry(target: UltralyticsTarget, path: Path, action: str) -> bool:
    """Whether a manifest entry names something apply makes: a Python file it edits, or a created
    file whose bytes are recognisably ours. A foreign manifest naming other files is ignored."""
    if python_edit_for(target, path) is not None:
        return True
    data = read_regular(path)
    return action == "created" and data is not None and any(c.is_ours(data) for c in CREATED_FILES)
