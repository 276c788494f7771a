"""What apply leaves in a tree, recognisable without the state dir: a table of our edits and files.

The tables, one row per thing apply makes; apply, status and revert read them, so a new layout or
file registers a row (`register_python_edit`, `register_created_file`, `register_owned_dir`):

- PYTHON_EDITS: a Python file apply edits in place (in apply's write order: packages first, tasks.py
  last; revert walks it backwards), and its `nodes`: each edit of ours in it, how status names it
  and finds it, and the `remove_*` transform that takes it out of the current text (after an
  upgrade, or beside a user's own edits). When apply created the file, what is left after removal
  equals its stub and the file is deleted instead.
- CREATED_FILES: files apply creates, and how to tell that one is still exactly as written (the
  shipped template's bytes, a valid ownership seal).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from halo_patch import ownership, transforms
from halo_patch.planning import layout
from halo_patch.journal.state import Action
from halo_patch.modules import SPECS, ModuleSpec
from halo_patch.target import UltralyticsTarget
from halo_patch.transforms import Removal, SourceFile
from halo_patch.transforms.source import decode_source, encode_source


@dataclass(frozen=True)
class Node:
    """One edit of ours in a Python file: its name in status, whether it is there, how it goes."""

    name: str
    present: Callable[[SourceFile, layout.Layout, UltralyticsTarget], bool]  # status: applied (else absent)
    remove: Callable[..., Removal]  # called as remove(src, force=...): our node out, or found edited
    layouts: tuple[layout.Layout, ...] = tuple(layout.Layout)  # the layouts status shows it for


@dataclass(frozen=True)
class PythonEdit:
    """A Python file apply edits: where it is, our nodes in it, its stub if apply creates it."""

    name: str
    locate: Callable[[UltralyticsTarget], Path]
    nodes: tuple[Node, ...]
    stub: bytes | None = None  # the file's bytes without our nodes when apply created it

    @property
    def removers(self) -> tuple[Callable[..., Removal], ...]:
        return tuple(n.remove for n in self.nodes)


@dataclass(frozen=True)
class CreatedFile:
    """A file apply creates: where such files are, and whether given bytes are exactly ours."""

    name: str
    locate: Callable[[UltralyticsTarget], Iterable[Path]]
    is_ours: Callable[[Path, bytes], bool]  # these bytes, at this path, are exactly what apply writes
    was_ours: Callable[[Path, bytes], bool] | None = None  # also what an earlier release wrote (with a manifest entry)


PYTHON_EDITS: list[PythonEdit] = []
CREATED_FILES: list[CreatedFile] = []
OWNED_DIRS: list[Callable[[UltralyticsTarget], Path]] = []  # dirs apply may create: pruned when empty


def register_python_edit(edit: PythonEdit) -> None:
    PYTHON_EDITS.append(edit)


def register_created_file(created: CreatedFile) -> None:
    CREATED_FILES.append(created)


def register_owned_dir(locate: Callable[[UltralyticsTarget], Path]) -> None:
    OWNED_DIRS.append(locate)


def _yaml_patterns(specs: tuple[ModuleSpec, ...]) -> list[str]:
    return [f"*/*{suffix}.yaml" for spec in specs for suffix in (spec.yaml_suffix, spec.adopt_suffix)]


def model_yamls(target: UltralyticsTarget, specs: tuple[ModuleSpec, ...] | None = None) -> list[Path]:
    """Files named like a yaml apply writes (`<stem>-HaloAttention.yaml`, or after --adopt
    `<stem>-HaloAttention-halo-patch.yaml`) in cfg/models/<dir>/; ours only while sealed."""
    models = target.models_dir
    if not models.is_dir():
        return []
    specs = tree_specs(target) if specs is None else specs
    return sorted({p for pattern in _yaml_patterns(specs) for p in models.glob(pattern)})


def is_model_yaml_path(target: UltralyticsTarget, path: Path) -> bool:
    """Whether `path` (existing or not) is named like a yaml apply writes, in cfg/models/<dir>/."""
    if path.parent.parent != target.models_dir:
        return False
    rel = PurePosixPath(path.parent.name, path.name)
    return any(rel.match(pattern) for pattern in _yaml_patterns(tree_specs(target)))


def uses_module(path: Path, spec: ModuleSpec) -> bool:
    """A yaml apply wrote that builds `spec`: its name holds `-<Class>` (each apply adds its class to the name)."""
    return spec.class_name in path.name.removesuffix(".yaml").split("-")[1:]


def _label(spec: ModuleSpec, name: str) -> str:
    return name if spec is SPECS[0] else f"{spec.class_name} {name}"


def python_edit_rows(specs: tuple[ModuleSpec, ...]) -> list[PythonEdit]:
    """The Python files apply edits and our nodes in them, for each of `specs` (write order)."""
    ADDMODULES, MODULES = (layout.Layout.ADDMODULES,), (layout.Layout.MODULES,)
    exports, imports, tasks = [], [], []
    for spec in specs:
        exports.append(Node(
            _label(spec, "nn/modules export"),
            lambda src, *_, s=spec: transforms.has_modules_export(src, s),
            lambda src, force=False, s=spec: transforms.remove_modules_export(src, force, s),
            MODULES,
        ))
        imports.append(Node(
            _label(spec, "Addmodules import"),
            lambda src, *_, s=spec: transforms.has_package_import(src, s),
            lambda src, force=False, s=spec: transforms.remove_package_import(src, force, s),
            ADDMODULES,
        ))
        tasks += [
            Node(
                _label(spec, "tasks.py import"),
                lambda src, chosen, target, s=spec: transforms.binds_class(src, layout.class_package(chosen), s, layout.star_binds(target, s)),
                lambda src, force=False, s=spec: transforms.remove_class_import(src, transforms.ADDMODULES, force, s),
                ADDMODULES,
            ),
            Node(
                _label(spec, "tasks.py import"),
                lambda src, chosen, target, s=spec: transforms.binds_class(src, layout.class_package(chosen), s, layout.star_binds(target, s)),
                lambda src, force=False, s=spec: transforms.remove_class_import(src, transforms.MODULES_IMPORT, force, s),
                MODULES,
            ),
            Node(
                _label(spec, "parse_model branch"),
                lambda src, *_, s=spec: transforms.has_branch(src, s),
                lambda src, force=False, s=spec: transforms.remove_branch(src, force, s),
            ),
        ]
    return [
        PythonEdit("nn/modules/__init__.py", lambda t: t.modules_init, tuple(exports)),
        PythonEdit("Addmodules/__init__.py", lambda t: t.addmodules_init, tuple(imports), stub=layout.PACKAGE_INIT.encode()),
        PythonEdit("tasks.py", lambda t: t.tasks_py, tuple(tasks)),
    ]


def module_file_row(spec: ModuleSpec) -> CreatedFile:
    return CreatedFile(
        f"{spec.class_name} module",
        lambda t: [layout.module_path(t, each, spec) for each in layout.Layout],
        lambda _, b: as_lf(b) == layout.module_template(spec),
    )


for _edit in python_edit_rows(SPECS):
    register_python_edit(_edit)
for _spec in SPECS:
    register_created_file(module_file_row(_spec))
register_created_file(
    CreatedFile("model yaml", model_yamls, lambda p, b: ownership.is_sealed_as(b, p), lambda p, b: ownership.is_sealed(b, p))
)
register_owned_dir(lambda t: t.addmodules_dir)
register_owned_dir(lambda t: t.custom_models_dir)


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


def tree_specs(target: UltralyticsTarget) -> tuple[ModuleSpec, ...]:
    """The built-in modules and every user module installed in the tree (sealed copies, no state)."""
    from halo_patch.planning.user_module import tree_specs as specs

    return specs(target)


def python_edits(target: UltralyticsTarget, specs: tuple[ModuleSpec, ...] | None = None) -> list[PythonEdit]:
    """PYTHON_EDITS, with the nodes of every module installed in the tree (or of `specs`)."""
    specs = tree_specs(target) if specs is None else specs
    if specs == SPECS:
        return PYTHON_EDITS
    rows = python_edit_rows(specs)
    return rows + [e for e in PYTHON_EDITS if e.name not in {r.name for r in rows}]


def created_files(target: UltralyticsTarget, specs: tuple[ModuleSpec, ...] | None = None) -> list[CreatedFile]:
    """CREATED_FILES, with the module file of every module installed in the tree (or of `specs`)."""
    specs = tree_specs(target) if specs is None else specs
    extra = [module_file_row(s) for s in specs if s not in SPECS]
    return CREATED_FILES + extra if specs != SPECS else CREATED_FILES


def python_edit_for(target: UltralyticsTarget, path: Path, specs: tuple[ModuleSpec, ...] | None = None) -> PythonEdit | None:
    return next((e for e in python_edits(target, specs) if e.locate(target) == path), None)


def created_file_for(target: UltralyticsTarget, path: Path) -> CreatedFile | None:
    """The kind of file apply creates at `path` (which need not exist yet), or None."""
    rows = created_files(target)
    found = next((c for c in rows if path in list(c.locate(target))), None)
    if found is None and is_model_yaml_path(target, path):
        found = next((c for c in rows if c.locate is model_yamls), None)
    return found


def owned_dirs(target: UltralyticsTarget) -> list[Path]:
    return [locate(target) for locate in OWNED_DIRS]


def is_inside(target: UltralyticsTarget, path: Path) -> bool:
    """True when `path` (resolved) lies inside the package tree."""
    real = Path(os.path.realpath(path))
    package = Path(os.path.realpath(target.package_dir))
    return real == package or package in real.parents


def is_our_entry(target: UltralyticsTarget, path: Path, action: Action) -> bool:
    """Whether a manifest entry names something apply makes: a Python file it edits, or a created
    file whose bytes are recognisably ours. A foreign manifest naming other files is ignored."""
    if python_edit_for(target, path) is not None:
        return True
    data = read_regular(path)
    return action is Action.CREATED and data is not None and any((c.was_ours or c.is_ours)(path, data) for c in created_files(target))
