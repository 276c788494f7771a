"""nn/modules/__init__.py (`--layout modules`): `from .halo_attention import HaloAttention` and an `__all__` entry.

Exported the way the package exports its own modules, so `ultralytics.nn.modules.HaloAttention` exists
and restricted loading finds the class under `ultralytics.nn.modules.halo_attention`.
"""

from __future__ import annotations

import libcst as cst

from halo_patch.transforms.source import (
    CLASS_NAME,
    MODULE_STEM,
    SourceFile,
    all_names,
    import_lines,
    with_all_entry,
    without_all_entry,
    without_name,
)

PACKAGE = "ultralytics.nn.modules"
EXPORT_IMPORT = f"from .{MODULE_STEM} import {CLASS_NAME}\n"
_OURS = f"{PACKAGE}.{MODULE_STEM}"


def _our_import(src: SourceFile):
    return next((l for l in import_lines(src, PACKAGE) if l.module == _OURS and l.names == (CLASS_NAME,)), None)


def has_modules_export(src: SourceFile) -> bool:
    """True when nn/modules/__init__.py imports our class and lists it in `__all__`."""
    return _our_import(src) is not None and CLASS_NAME in all_names(src)


def add_modules_export(src: SourceFile) -> SourceFile:
    """nn/modules/__init__.py with our import after its last top-level import and `"HaloAttention"` ending `__all__`."""
    if has_modules_export(src):
        return src
    out = src
    if _our_import(src) is None:
        body = list(src.module.body)
        at = max((l.index for l in import_lines(src, PACKAGE)), default=-1) + 1
        body.insert(at, cst.parse_statement(EXPORT_IMPORT, config=src.module.config_for_parsing))
        out = src.with_module(src.module.with_changes(body=body))
    return with_all_entry(out, CLASS_NAME)


def remove_modules_export(src: SourceFile) -> SourceFile:
    """nn/modules/__init__.py without our import and `__all__` entry (the inverse of add_modules_export)."""
    out = src
    line = _our_import(out)
    if line is not None:
        out = without_name(out, line, CLASS_NAME)
    return without_all_entry(out, CLASS_NAME)
