"""tasks.py: `from ultralytics.nn.Addmodules import HaloAttention` right after the modules import."""

from __future__ import annotations

import libcst as cst

from halo_patch.errors import AnchorError
from halo_patch.transforms.source import (
    ADDMODULES,
    CLASS_NAME,
    MODULES_IMPORT,
    Removal,
    SourceFile,
    _import_from_module,
    _imports_name,
    remove_import_of,
)


def has_class_import(src: SourceFile, module: str = ADDMODULES) -> bool:
    """True when a top-level `from <module> import HaloAttention` binds the class."""
    return any(_imports_name(stmt, module, CLASS_NAME) for stmt in src.module.body)


def add_class_import(src: SourceFile) -> SourceFile:
    """tasks.py with `from ultralytics.nn.Addmodules import HaloAttention` right after the modules import.

    Never at the top: since 8.4.110 tasks.py starts with `from __future__ import annotations`.
    """
    if has_class_import(src):
        return src
    body = list(src.module.body)
    anchors = [i for i, stmt in enumerate(body) if _import_from_module(stmt) == MODULES_IMPORT]
    if not anchors:
        raise AnchorError(f"{src.where}: no top-level `from {MODULES_IMPORT} import (...)` to place the import after")
    new = cst.parse_statement(f"from {ADDMODULES} import {CLASS_NAME}\n", config=src.module.config_for_parsing)
    body.insert(anchors[0] + 1, new)
    return src.with_module(src.module.with_changes(body=body))


def remove_class_import(src: SourceFile, force: bool = False) -> Removal:
    """tasks.py without `from ultralytics.nn.Addmodules import HaloAttention` (the inverse of add_class_import)."""
    return remove_import_of(src, ADDMODULES, CLASS_NAME, "tasks.py import", force)
