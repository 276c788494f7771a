"""Take a hand-made HaloAttention out of the import graph (`apply --adopt`), keeping its file on disk.

Addmodules/__init__.py: the imports of the user's module file go (their checkpoints still unpickle:
pickle imports the file by its own module path). tasks.py: one import binds HaloAttention afterwards;
a star import of the Addmodules package is kept (other tutorial modules come through it).
"""

from __future__ import annotations

from halo_patch.transforms.source import ADDMODULES, CLASS_NAME, ImportLine, SourceFile, import_lines, without_all_entry, without_name
from halo_patch.transforms.tasks_import import TASKS_PACKAGE


def drop_package_imports(src: SourceFile, user_modules: frozenset[str], keep_export: bool, name: str = CLASS_NAME) -> SourceFile:
    """Addmodules/__init__.py without its imports of `user_modules` (absolute names); without the
    `__all__` entry too unless our class is exported from here (`keep_export`)."""
    out = src
    while True:
        line = next((l for l in import_lines(out, ADDMODULES) if l.module in user_modules), None)
        if line is None:
            break
        out = _without_line(out, line.index)
    return out if keep_export else without_all_entry(out, name)


def drop_tasks_imports(src: SourceFile, user_modules: frozenset[str], keep_module: str, name: str = CLASS_NAME) -> SourceFile:
    """tasks.py with at most one import binding HaloAttention, from `keep_module`.

    Imports of the user's module files go; a star import of the Addmodules package stays, and with
    `keep_module` Addmodules it is the one import (a named one beside it would be a second).
    """
    out = src
    while True:
        lines = import_lines(out, TASKS_PACKAGE)
        star = keep_module == ADDMODULES and any(l.module == ADDMODULES and l.names is None for l in lines)
        kept = None if star else next((l for l in lines if l.module == keep_module and l.names and name in l.names), None)
        drop = next((l for l in lines if l is not kept and _binds(l, user_modules, name)), None)
        if drop is None:
            return out
        out = _without_line(out, drop.index) if drop.names is None else without_name(out, drop, name)


def _binds(line: ImportLine, user_modules: frozenset[str], name: str = CLASS_NAME) -> bool:
    if line.names is None:
        return line.module in user_modules
    return name in line.names


def _without_line(src: SourceFile, index: int) -> SourceFile:
    body = list(src.module.body)
    del body[index]
    return src.with_module(src.module.with_changes(body=body))
