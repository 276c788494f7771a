"""tasks.py: `from <package> import HaloAttention` right after the modules import.

`<package>` is `ultralytics.nn.Addmodules` (default layout) or `ultralytics.nn.modules` (`--layout
modules`). A star import of the Addmodules package already binds the class there: then no second import
is added (tutorial installs have one).
"""

from __future__ import annotations

from halo_patch.errors import AnchorError
from halo_patch.modules import DEFAULT, ModuleSpec
from halo_patch.transforms.source import (
    ADDMODULES,
    MODULES_IMPORT,
    Removal,
    SourceFile,
    _import_from_module,
    _imports_name,
    import_lines,
    our_statement,
    remove_import_of,
)

TASKS_PACKAGE = "ultralytics.nn"  # tasks.py is ultralytics/nn/tasks.py: `.Addmodules` means ultralytics.nn.Addmodules


def has_class_import(src: SourceFile, module: str = ADDMODULES, spec: ModuleSpec = DEFAULT) -> bool:
    """True when a top-level `from <module> import <Class>` binds the class."""
    return any(_imports_name(stmt, module, spec.class_name) for stmt in src.module.body)


def binds_class(src: SourceFile, module: str = ADDMODULES, spec: ModuleSpec = DEFAULT, star_binds: bool = True) -> bool:
    """True when a top-level import binds the class from `module`: by name, or (Addmodules) by `*`
    while the package's `__all__` lets the star bring it (`star_binds`, see source.star_exports)."""
    return any(
        l.module == module and (spec.class_name in l.names if l.names is not None else module == ADDMODULES and star_binds)
        for l in import_lines(src, TASKS_PACKAGE)
    )


def add_class_import(src: SourceFile, module: str = ADDMODULES, spec: ModuleSpec = DEFAULT, star_binds: bool = True) -> SourceFile:
    """tasks.py with `from <module> import HaloAttention` right after the modules import, unless an import binds it
    (a star import of Addmodules binds it only while `star_binds`: its `__all__` names the class or is absent).

    Never at the top: since 8.4.110 tasks.py starts with `from __future__ import annotations`.
    """
    if binds_class(src, module, spec, star_binds):
        return src
    body = list(src.module.body)
    anchors = [i for i, stmt in enumerate(body) if _import_from_module(stmt) == MODULES_IMPORT]
    if not anchors:
        raise AnchorError(f"{src.where}: no top-level `from {MODULES_IMPORT} import (...)` to place the import after")
    new = our_statement(src, f"from {module} import {spec.class_name}\n")
    body.insert(anchors[0] + 1, new)
    return src.with_module(src.module.with_changes(body=body))


def remove_class_import(src: SourceFile, module: str = ADDMODULES, force: bool = False, spec: ModuleSpec = DEFAULT) -> Removal:
    """tasks.py without the line add_class_import writes (`from <module> import HaloAttention` alone);
    a line that imports more names or renames the class was edited by hand: kept unless `force`."""
    return remove_import_of(src, module, spec.class_name, "tasks.py import", force)
