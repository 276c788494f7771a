"""`apply --module FILE.py` against a tree: the user's file checked as a spec, and the modules a tree holds.

Reads only. The classes a tree already has are read with `ast` (no import): Ultralytics' own
(nn/modules/*.py, what tasks.py imports) and every module halo-patch installed. A hand-made module
of the same class in nn/Addmodules/ is no clash: it is a tutorial install (listed; `--adopt`).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from halo_patch.errors import HaloPatchError
from halo_patch.modules import DEFAULT, SPECS, ModuleSpec
from halo_patch.modules.user import Loaded, installed_specs, load_module_file, read_sealed
from halo_patch.planning.layout import Layout, module_dir
from halo_patch.target import UltralyticsTarget


def tree_specs(target: UltralyticsTarget) -> tuple[ModuleSpec, ...]:
    """The built-in specs and every user module installed in the tree (recognised by its sealed header)."""
    users = installed_specs([module_dir(target, each) for each in Layout])
    return (*SPECS, *(s for s in users if s.class_name not in {b.class_name for b in SPECS}))


def find_spec(target: UltralyticsTarget, name: str) -> ModuleSpec | None:
    """The installed module called `name` (its class name, or its file's stem)."""
    return next((s for s in tree_specs(target) if name in (s.class_name, s.file_stem)), None)


def load_for_target(target: UltralyticsTarget, path: Path, class_name: str | None, channels: str | None, layout: Layout) -> Loaded:
    """The user's module file checked against the tree it goes into (HaloPatchError, one line, when not)."""
    site_dirs = [target.root, target.package_dir.parent]
    from halo_patch.verify.interpreter import find_interpreter  # locates a Python; imports nothing of the target

    if find_interpreter(target).python == sys.executable:
        site_dirs += [Path(p) for p in sys.path if p]
    stem = path.stem
    taken = _taken_classes(target, stem)
    loaded = load_module_file(path, class_name, channels, site_dirs, taken)
    clash = module_dir(target, layout) / f"{stem}.py"
    if stem in (s.file_stem for s in SPECS) or (clash.is_file() and not _ours_of(clash, loaded.spec)):
        raise _clash(path, target.relative(clash))
    return loaded


def _clash(path: Path, rel: str) -> HaloPatchError:
    return HaloPatchError(f"--module {path}: {rel} already exists and is not halo-patch's copy of it; rename your file")


def _ours_of(path: Path, spec: ModuleSpec) -> bool:
    found = read_sealed(path.read_bytes(), path.stem)
    return found is not None and found.class_name == spec.class_name


def _taken_classes(target: UltralyticsTarget, stem: str) -> dict[str, str]:
    """Class names the tree already has -> where; the file a re-apply would overwrite does not count."""
    taken: dict[str, str] = {DEFAULT.class_name: "halo-patch's built-in module"}
    for folder, own in ((target.modules_dir, True), (target.addmodules_dir, False)):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.py")):
            if path.stem == stem or not path.is_file() or (not own and not _is_user_copy(path)):
                continue  # a hand-made module of this name in Addmodules/ is a tutorial install: apply lists it, --adopt takes it over
            who = "an Ultralytics class" if own and not _is_user_copy(path) else f"the module in {target.relative(path)}"
            for name in _classes(path):
                taken.setdefault(name, f"{who} ({target.relative(path)})")
    for name in _imported_names(target.tasks_py):
        taken.setdefault(name, f"a name tasks.py imports ({target.relative(target.tasks_py)})")
    for spec in tree_specs(target):  # our own copy of this file: applying it again is no clash
        if spec.is_user and spec.file_stem == stem:
            taken.pop(spec.class_name, None)
    return taken


def _is_user_copy(path: Path) -> bool:
    try:
        return read_sealed(path.read_bytes(), path.stem) is not None
    except OSError:
        return False


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None


def _classes(path: Path) -> list[str]:
    tree = _parse(path)
    return [n.name for n in tree.body if isinstance(n, ast.ClassDef)] if tree else []


def _imported_names(path: Path) -> list[str]:
    tree = _parse(path)
    out: list[str] = []
    for node in tree.body if tree else []:
        if isinstance(node, ast.ImportFrom) and not (node.module or "").startswith(("ultralytics.nn.Addmodules", "Addmodules")):
            out += [a.asname or a.name for a in node.names if a.name != "*"]
    return out
