"""The libcst edits apply makes to Python sources, each located by structure, never by text.

Each edit is a pure function `SourceFile -> SourceFile` that returns its input unchanged when the
edit is already there (idempotent by design), plus a `has_*` predicate that status reuses.
Shapes are matched with small typed predicates rather than `libcst.matchers`: importing the
matchers module alone costs 0.55 s, a third of the CLI's time budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst
from libcst.helpers import get_full_name_for_node

from halo_patch.errors import AnchorError

CLASS_NAME = "HaloAttention"
MODULES_IMPORT = "ultralytics.nn.modules"  # the anchor import in tasks.py
ADDMODULES = "ultralytics.nn.Addmodules"  # where our class lives
MODULE_STEM = "halo_attention"  # ultralytics/nn/Addmodules/halo_attention.py

# The body of `elif m is HaloAttention:`: input channels are kept, and passed first.
BRANCH_SOURCE = f"if m is {CLASS_NAME}:\n    c2 = ch[f]\n    args = [c2, *args]\n"

def _is_name(node: cst.CSTNode | None, name: str) -> bool:
    return isinstance(node, cst.Name) and node.value == name


def _is_layer_loop(stmt: cst.CSTNode) -> bool:
    """`for i, (f, n, m, args) in enumerate(...):`, the parse_model loop of every YOLO11-era release."""
    if not isinstance(stmt, cst.For) or not isinstance(stmt.target, cst.Tuple):
        return False
    elements = stmt.target.elements
    return (
        len(elements) == 2
        and _is_name(elements[0].value, "i")
        and isinstance(elements[1].value, cst.Tuple)
        and isinstance(stmt.iter, cst.Call)
        and _is_name(stmt.iter.func, "enumerate")
    )


def _tests_m(stmt: cst.CSTNode, operator: type[cst.BaseCompOp]) -> cst.Comparison | None:
    """The test of `if m <operator> ...:` (a single comparison on the name m), else None."""
    if not isinstance(stmt, cst.If) or not isinstance(stmt.test, cst.Comparison):
        return None
    test = stmt.test
    if _is_name(test.left, "m") and len(test.comparisons) == 1 and isinstance(test.comparisons[0].operator, operator):
        return test
    return None


def _is_m_in_chain(stmt: cst.CSTNode) -> bool:
    return _tests_m(stmt, cst.In) is not None


def _is_halo_branch(stmt: cst.CSTNode) -> bool:
    test = _tests_m(stmt, cst.Is)
    return test is not None and _is_name(test.comparisons[0].comparator, CLASS_NAME)


@dataclass(frozen=True)
class SourceFile:
    """A parsed Python file and the label used in messages (its path, the Ultralytics version)."""

    module: cst.Module
    where: str

    @property
    def code(self) -> str:
        return self.module.code

    def with_module(self, module: cst.Module) -> SourceFile:
        return SourceFile(module, self.where)

    @classmethod
    def parse(cls, source: str, where: str) -> SourceFile:
        try:
            return cls(cst.parse_module(source), where)
        except cst.ParserSyntaxError as exc:
            raise AnchorError(f"{where}: not valid Python (line {exc.raw_line}); expected an Ultralytics source") from None


# ---------------------------------------------------------------- import in tasks.py


def _import_from_module(stmt: cst.CSTNode) -> str | None:
    """`a.b.c` for a top-level `from a.b.c import ...` line, else None."""
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.ImportFrom):
        node = stmt.body[0]
        if node.relative:
            return "." * len(node.relative) + (get_full_name_for_node(node.module) or "") if node.module else "."
        return get_full_name_for_node(node.module)
    return None


def _imports_name(stmt: cst.CSTNode, module: str, name: str) -> bool:
    if _import_from_module(stmt) != module:
        return False
    names = stmt.body[0].names
    return not isinstance(names, cst.ImportStar) and any(
        a.asname is None and get_full_name_for_node(a.name) == name for a in names
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


# ---------------------------------------------------------------- branch in parse_model


def _find_parse_model(src: SourceFile) -> tuple[int, cst.FunctionDef]:
    for index, stmt in enumerate(src.module.body):
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value == "parse_model":
            return index, stmt
    raise AnchorError(f"{src.where}: no module-level `def parse_model(d, ch, verbose=True)`")


def _find_chain(src: SourceFile) -> tuple[int, int, cst.If]:
    """The one `if m in ...:` elif chain among the top-level statements of parse_model's layer loop.

    Returns the loop's index in the function body, the chain's index in the loop body, and the chain.
    """
    _, func = _find_parse_model(src)
    loops = [(i, stmt) for i, stmt in enumerate(func.body.body) if _is_layer_loop(stmt)]
    if len(loops) != 1:
        raise AnchorError(f"{src.where}: expected one `for i, (f, n, m, args) in enumerate(...)` loop in parse_model")
    loop_index, loop = loops[0]
    chains = [(i, stmt) for i, stmt in enumerate(loop.body.body) if _is_m_in_chain(stmt)]
    if len(chains) != 1:
        raise AnchorError(f"{src.where}: expected one `if m in ...:` chain in parse_model's loop, found {len(chains)}")
    return loop_index, chains[0][0], chains[0][1]


def _replace_chain(src: SourceFile, new_chain: cst.If) -> SourceFile:
    """Rebuild only the path module -> parse_model -> loop -> chain (a full-tree visit costs ~1 s)."""
    func_index, func = _find_parse_model(src)
    loop_index, chain_index, _ = _find_chain(src)
    loop = func.body.body[loop_index]
    new_loop = loop.with_changes(body=loop.body.with_changes(body=_replaced(loop.body.body, chain_index, new_chain)))
    new_func = func.with_changes(body=func.body.with_changes(body=_replaced(func.body.body, loop_index, new_loop)))
    return src.with_module(src.module.with_changes(body=_replaced(src.module.body, func_index, new_func)))


def _replaced(items, index, new):
    return (*items[:index], new, *items[index + 1 :])


def _branches(chain: cst.If) -> list[cst.If]:
    out = [chain]
    while isinstance(out[-1].orelse, cst.If):
        out.append(out[-1].orelse)
    return out


def has_branch(src: SourceFile) -> bool:
    """True when the chain holds an `elif m is HaloAttention:` branch."""
    return any(_is_halo_branch(b) for b in _branches(_find_chain(src)[2]))


def add_branch(src: SourceFile) -> SourceFile:
    """tasks.py with `elif m is HaloAttention: c2 = ch[f]; args = [c2, *args]` before the chain's final else."""
    branches = _branches(_find_chain(src)[2])
    if any(_is_halo_branch(b) for b in branches):
        return src
    final_else = branches[-1].orelse
    if not isinstance(final_else, cst.Else):
        raise AnchorError(f"{src.where}: the `if m in ...` chain in parse_model has no final `else:`")
    new = cst.ensure_type(cst.parse_statement(BRANCH_SOURCE, config=src.module.config_for_parsing), cst.If)
    rebuilt: cst.BaseSuite | cst.If | cst.Else = new.with_changes(orelse=final_else)
    for branch in reversed(branches):  # rebuild the chain bottom-up: nodes are immutable
        rebuilt = branch.with_changes(orelse=rebuilt)
    return _replace_chain(src, rebuilt)


# ---------------------------------------------------------------- Addmodules/__init__.py

PACKAGE_IMPORT = f"from .{MODULE_STEM} import {CLASS_NAME}\n"


def has_package_import(src: SourceFile) -> bool:
    """True when Addmodules/__init__.py has `from .halo_attention import HaloAttention`."""
    return has_class_import(src, module=f".{MODULE_STEM}")


def add_package_import(src: SourceFile) -> SourceFile:
    """An existing Addmodules/__init__.py with our import after its last top-level import."""
    if has_package_import(src):
        return src
    body = list(src.module.body)
    imports = [
        i
        for i, stmt in enumerate(body)
        if isinstance(stmt, cst.SimpleStatementLine) and all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body)
    ]
    at = imports[-1] + 1 if imports else len(body)
    body.insert(at, cst.parse_statement(PACKAGE_IMPORT, config=src.module.config_for_parsing))
    return src.with_module(src.module.with_changes(body=body))
