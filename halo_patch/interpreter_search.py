"""Which copy of `ultralytics` Python would import, found by Python's own path rules, never by
importing it: the current directory, then PYTHONPATH, then the environment (its site-packages, the
paths its .pth files add, and editable-install finders, last, as setuptools installs them).

The console script (`halo-patch`, whose sys.path[0] is its bin dir) and `python -m halo_patch` (whose
sys.path[0] is the current directory) both answer for `python` started in the current directory."""

from __future__ import annotations

import ast
import importlib.machinery
import os
import sys
from pathlib import Path

PACKAGE = "ultralytics"


def _package_of(spec) -> Path | None:
    origin = getattr(spec, "origin", None)
    if spec is None or not origin or not str(origin).endswith("__init__.py"):
        return None  # not found, or a namespace package (no tree to patch)
    return Path(origin).parent.resolve()


def _search(paths: list[str]) -> Path | None:
    """The package the path-based finder locates on `paths` (regular packages only)."""
    return _package_of(importlib.machinery.PathFinder.find_spec(PACKAGE, [p for p in paths if p]))


def _meta_finders() -> Path | None:
    """Finders other than the path finder (editable installs), in sys.meta_path order."""
    for finder in sys.meta_path:
        if finder is importlib.machinery.PathFinder or finder in (
            importlib.machinery.BuiltinImporter, importlib.machinery.FrozenImporter
        ):
            continue
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            found = _package_of(find(PACKAGE, None))
        except Exception:  # noqa: BLE001 - a broken third-party finder is skipped, as if absent
            continue
        if found is not None:
            return found
    return None


def environment_paths() -> list[str]:
    """sys.path without its first entry (our script's dir, or the cwd under -m): PYTHONPATH and the environment."""
    return list(sys.path) if sys.flags.safe_path else list(sys.path[1:])


def environment_package() -> Path | None:
    """The copy `python` started anywhere (outside a dir holding its own copy) imports."""
    return _search(environment_paths()) or _meta_finders()


def here_package(cwd: Path | None = None) -> Path | None:
    """The copy `python` started in `cwd` (default: the current directory) imports."""
    first = [] if sys.flags.safe_path or os.environ.get("PYTHONSAFEPATH") else [str(cwd or Path.cwd())]
    return _search(first + environment_paths()) or _meta_finders()


# ------------------------------------------------------------ a venv or site-packages given as --target


def site_dirs(path: Path) -> list[Path]:
    """site-packages dirs of the environment at `path` (a venv root), or `path` itself if it is one."""
    if any(path.glob("*.pth")) or any(path.glob("*.dist-info")):
        return [path]
    found = sorted(path.glob("lib/python3*/site-packages")) + sorted(path.glob("lib64/python3*/site-packages"))
    found += [path / "Lib" / "site-packages"]
    return [d for d in dict.fromkeys(found) if d.is_dir()]


def _is_tree(package: Path) -> bool:
    return (package / "nn" / "tasks.py").is_file() and (package / "__init__.py").is_file()


def _finder_mapping(site: Path, module: str) -> Path | None:
    """`MAPPING['ultralytics']` of a setuptools editable finder module, read as text (never run)."""
    try:
        tree = ast.parse((site / f"{module}.py").read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError, RecursionError, MemoryError):
        return None
    for node in tree.body:
        targets = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        if "MAPPING" in targets and node.value is not None:
            try:
                mapping = ast.literal_eval(node.value)
            except ValueError:
                return None
            value = mapping.get(PACKAGE) if isinstance(mapping, dict) else None
            return Path(value) if isinstance(value, str) else None
    return None


def installed_in(path: Path) -> Path | None:
    """The ultralytics package the environment at `path` imports: its site-packages copy, else a dir
    a .pth file adds (an old-style editable install), else an editable finder's mapping (setuptools)."""
    for site in site_dirs(path):
        if _is_tree(site / PACKAGE):
            return (site / PACKAGE).resolve()
        pths = sorted(site.glob("*.pth"))
        finders = []
        for pth in pths:
            try:
                lines = pth.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            for line in lines:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                if line.startswith(("import ", "import\t")):
                    finders += [w.strip(" ;") for w in line.split() if w.strip(" ;").startswith("__editable__") and "." not in w]
                    continue
                entry = Path(line) if os.path.isabs(line) else site / line
                if _is_tree(entry / PACKAGE):
                    return (entry / PACKAGE).resolve()
        for module in finders:
            package = _finder_mapping(site, module)
            if package is not None and _is_tree(package):
                return package.resolve()
    return None
