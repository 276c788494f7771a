"""Addmodules/__init__.py: `from .halo_attention import HaloAttention` after its last import."""

from __future__ import annotations

import libcst as cst

from halo_patch.transforms.source import CLASS_NAME, MODULE_STEM, Removal, SourceFile, remove_import_of
from halo_patch.transforms.tasks_import import has_class_import


PACKAGE_IMPORT = f"from .{MODULE_STEM} import {CLASS_NAME}\n"


def has_package_import(src: SourceFile) -> bool:
    """True when Addmodules/__init__.py has `from .halo_attention import HaloAttention`."""
    return has_class_import(src, module=f".{MODULE_STEM}")


def add_package_import(src: SourceFile) -> SourceFile:
    """An existing Addmodules/__init__.py with our import after its last top-level import."""
    if has_package_import(src):
        return src
    body = list(src.module.body)
    imports = [
        i
        for i, stmt in enumerate(body)
        if isinstance(stmt, cst.SimpleStatementLine) and all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body)
    ]
    at = imports[-1] + 1 if imports else len(body)
    body.insert(at, cst.parse_statement(PACKAGE_IMPORT, config=src.module.config_for_parsing))
    return src.with_module(src.module.with_changes(body=body))


def remove_package_import(src: SourceFile, force: bool = False) -> Removal:
    """Addmodules/__init__.py without `from .halo_attention import HaloAttention`."""
    return remove_import_of(src, f".{MODULE_STEM}", CLASS_NAME, "Addmodules import", force)
