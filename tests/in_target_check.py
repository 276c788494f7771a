"""The one check of code that runs in the target's Python (verify, weights, compare): Python 3.8 syntax,
imports of the standard library and the given packages only (never halo_patch), and, where `lazy`, those
packages imported inside functions, never at the module's top level."""

from __future__ import annotations

import ast
import importlib.util
import sys
import sysconfig
from pathlib import Path


def is_stdlib(name: str) -> bool:
    if hasattr(sys, "stdlib_module_names"):  # Python 3.10+
        return name in sys.stdlib_module_names
    spec = importlib.util.find_spec(name)
    origin = spec.origin if spec is not None else None
    return name in sys.builtin_module_names or (
        origin is not None and origin.startswith(sysconfig.get_paths()["stdlib"]) and "site-packages" not in origin
    )


def import_problems(source: str, name: str, allowed: frozenset[str] | set[str], lazy: bool) -> list[str]:
    """What breaks the rules in `source`, one line each ("name:line imports ..."); [] when it keeps them.
    A SyntaxError for code a Python 3.8 parser refuses."""
    tree = ast.parse(source, name, feature_version=(3, 8))
    top_level = {id(n) for n in tree.body}
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots = {node.module.split(".")[0]}
        else:
            continue  # a relative import: the package's own modules
        outside = sorted(r for r in roots if r not in allowed and (r == "halo_patch" or not is_stdlib(r)))
        if outside:
            problems.append(f"{name}:{node.lineno} imports {', '.join(outside)}")
        if lazy and id(node) in top_level and roots & set(allowed):
            problems.append(f"{name}:{node.lineno} imports {', '.join(sorted(roots & set(allowed)))} at the top level")
    return problems


def assert_in_target_source(path: Path, allowed: frozenset[str] | set[str], lazy: bool = True) -> None:
    problems = import_problems(path.read_text(encoding="utf-8"), path.name, allowed, lazy)
    assert not problems, problems
