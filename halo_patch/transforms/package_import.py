"""Addmodules/__init__.py: `from .halo_attention import HaloAttention` after its last import."""

from __future__ import annotations

import libcst as cst

from halo_patch.modules import DEFAULT, ModuleSpec
from halo_patch.transforms.source import Removal, SourceFile, our_statement, remove_import_of
from halo_patch.transforms.tasks_import import has_class_import

PACKAGE_IMPORT = DEFAULT.package_import  # the default module's line


def has_package_import(src: SourceFile, spec: ModuleSpec = DEFAULT) -> bool:
    """True when Addmodules/__init__.py has `from .<stem> import <Class>`."""
    return has_class_import(src, module=f".{spec.file_stem}", spec=spec)


def add_package_import(src: SourceFile, spec: ModuleSpec = DEFAULT) -> SourceFile:
    """An existing Addmodules/__init__.py with our import after its last top-level import."""
    if has_package_import(src, spec):
        return src
    body = list(src.module.body)
    imports = [
        i
        for i, stmt in enumerate(body)
        if isinstance(stmt, cst.SimpleStatementLine) and all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body)
    ]
    at = imports[-1] + 1 if imports else len(body)
    body.insert(at, our_statement(src, spec.package_import))
    return src.with_module(src.module.with_changes(body=body))


def remove_package_import(src: SourceFile, force: bool = False, spec: ModuleSpec = DEFAULT) -> Removal:
    """Addmodules/__init__.py without `from .<stem> import <Class>`."""
    return remove_import_of(src, f".{spec.file_stem}", spec.class_name, "Addmodules import", force)
