"""The libcst edits apply makes to Python sources, each located by structure, never by text.

One module per edit. Each edit is a pure function `SourceFile -> SourceFile` that returns its input
unchanged when the edit is already there (idempotent by design), plus a `has_*` predicate that
status reuses.
"""

from halo_patch.transforms.package_import import PACKAGE_IMPORT, add_package_import, has_package_import
from halo_patch.transforms.modules_export import add_modules_export, has_modules_export, remove_modules_export
from halo_patch.transforms.parse_model_branch import HaloBranch, add_branch, find_halo_branch, has_branch
from halo_patch.transforms.source import (
    ADDMODULES,
    BRANCH_SOURCE,
    CLASS_NAME,
    MODULE_STEM,
    MODULES_IMPORT,
    SourceFile,
)
from halo_patch.transforms.tasks_import import add_class_import, binds_class, has_class_import, remove_class_import

__all__ = [
    "ADDMODULES",
    "HaloBranch",
    "BRANCH_SOURCE",
    "CLASS_NAME",
    "MODULE_STEM",
    "MODULES_IMPORT",
    "PACKAGE_IMPORT",
    "SourceFile",
    "add_branch",
    "add_class_import",
    "add_modules_export",
    "add_package_import",
    "binds_class",
    "find_halo_branch",
    "has_branch",
    "has_class_import",
    "has_modules_export",
    "has_package_import",
    "remove_class_import",
    "remove_modules_export",
]
