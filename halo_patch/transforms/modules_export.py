"""nn/modules/__init__.py (`--layout modules`): `from .halo_attention import HaloAttention` and an `__all__` entry.

Exported the way the package exports its own modules, so `ultralytics.nn.modules.HaloAttention` exists
and restricted loading finds the class under `ultralytics.nn.modules.halo_attention`.
"""

from __future__ import annotations

from halo_patch.marker import is_marked
from halo_patch.modules import DEFAULT, ModuleSpec
from halo_patch.transforms.source import (
    Removal,
    SourceFile,
    all_names,
    import_lines,
    our_statement,
    with_all_entry,
    without_all_entry,
    without_name,
)

PACKAGE = "ultralytics.nn.modules"


def _our_import(src: SourceFile, spec: ModuleSpec):
    ours = f"{PACKAGE}.{spec.file_stem}"
    return next((l for l in import_lines(src, PACKAGE) if l.module == ours and l.names == (spec.class_name,)), None)


def has_modules_export(src: SourceFile, spec: ModuleSpec = DEFAULT) -> bool:
    """True when nn/modules/__init__.py imports our class and lists it in `__all__`."""
    return _our_import(src, spec) is not None and spec.class_name in all_names(src)


def add_modules_export(src: SourceFile, spec: ModuleSpec = DEFAULT) -> SourceFile:
    """nn/modules/__init__.py with our import after its last top-level import and `"HaloAttention"` ending `__all__`."""
    if has_modules_export(src, spec):
        return src
    out = src
    if _our_import(src, spec) is None:
        body = list(src.module.body)
        at = max((l.index for l in import_lines(src, PACKAGE)), default=-1) + 1
        body.insert(at, our_statement(src, spec.package_import))
        out = src.with_module(src.module.with_changes(body=body))
    return with_all_entry(out, spec.class_name)


def remove_modules_export(src: SourceFile, force: bool = False, spec: ModuleSpec = DEFAULT) -> Removal:
    """nn/modules/__init__.py without our import and `__all__` entry (the inverse of add_modules_export).
    Only a marked import is ours, and the `__all__` entry goes with it: an unmarked export is the user's."""
    out = src
    line = _our_import(out, spec)
    if line is None or not is_marked(out.module.body[line.index]):
        return Removal(src)
    out = without_name(out, line, spec.class_name)
    out = without_all_entry(out, spec.class_name)
    return Removal(out, ("nn/modules export",) if out is not src and out.code != src.code else ())
