"""Where apply puts things in a tree and how it writes them: the layout, paths, line endings, labels."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from halo_patch import transforms
from halo_patch.errors import HaloPatchError
from halo_patch.modules import DEFAULT as MODULE
from halo_patch.modules import ModuleSpec
from halo_patch.target import UltralyticsTarget
from halo_patch.transforms import SourceFile
from halo_patch.transforms.source import decode_source, star_exports


PACKAGE_INIT = '"""Modules added to Ultralytics by halo-patch (`halo-patch revert` removes them)."""\n\n'


class Layout(str, Enum):
    """Where the module file goes (`--layout`)."""

    ADDMODULES = "addmodules"  # nn/Addmodules/, the tutorial layout
    MODULES = "modules"  # nn/modules/, beside Ultralytics' own (restricted loading finds it)

    def __str__(self) -> str:
        return self.value


def module_template(spec: ModuleSpec = MODULE) -> bytes:
    return spec.template_bytes()


def tree_newline(target: UltralyticsTarget) -> bytes:
    """The tree's line ending, as tasks.py has it: files apply creates follow it."""
    try:
        with open(target.tasks_py, "rb") as fh:
            first = fh.readline()
    except OSError:
        return b"\n"
    return b"\r\n" if first.endswith(b"\r\n") else b"\n"


def with_newline(data: bytes, newline: bytes) -> bytes:
    """`data` (written with \\n) with the tree's line ending."""
    return data if newline == b"\n" else data.replace(b"\n", newline)


def module_path(target: UltralyticsTarget, layout: Layout = Layout.ADDMODULES, spec: ModuleSpec = MODULE) -> Path:
    """Where the module file goes: nn/Addmodules/ (default) or nn/modules/ (`--layout modules`)."""
    return module_dir(target, layout) / f"{spec.file_stem}.py"


def module_dir(target: UltralyticsTarget, layout: Layout) -> Path:
    return target.modules_dir if layout is Layout.MODULES else target.addmodules_dir


def class_package(layout: Layout) -> str:
    """The package tasks.py imports HaloAttention from."""
    return transforms.MODULES_IMPORT if layout is Layout.MODULES else transforms.ADDMODULES


def detect_layout(target: UltralyticsTarget, tasks: SourceFile | None = None) -> Layout:
    """The layout a tree was patched with: "modules" when our module sits in nn/modules/ or tasks.py
    imports HaloAttention from ultralytics.nn.modules (a half-applied tree)."""
    from halo_patch.modules.user import installed_specs

    in_modules = (
        module_path(target, Layout.MODULES).is_file()
        or (tasks is not None and transforms.binds_class(tasks, transforms.MODULES_IMPORT))
        or bool(installed_specs([target.modules_dir]))
    )
    return Layout.MODULES if in_modules else Layout.ADDMODULES


def star_binds(target: UltralyticsTarget, spec: ModuleSpec = MODULE) -> bool:
    """Whether `from ultralytics.nn.Addmodules import *` in tasks.py binds the class, read statically from
    Addmodules/__init__.py (its `__all__`); an unreadable file counts as not."""
    path = target.addmodules_init
    if not path.is_file():
        return True
    try:
        text = decode_source(path.read_bytes(), where(target, path))[0]
        return star_exports(SourceFile.parse(text, where(target, path)), spec.class_name)
    except (OSError, HaloPatchError):
        return False


def read_file(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def where(target: UltralyticsTarget, path: Path) -> str:
    """How a file is named in messages: its path and the Ultralytics version."""
    return f"{path} (Ultralytics {target.version})"

