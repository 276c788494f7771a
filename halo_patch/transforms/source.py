"""What every transform shares: the parsed file, the names apply adds, small typed shape predicates.

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
