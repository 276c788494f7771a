"""Edit a model yaml's text in place, guided by the positions yaml's composer gives each node.

Only three kinds of edit are made, so every comment, blank line and layout choice of the base file
survives: a `from` integer is rewritten, a trailing `# 9`-style layer comment is renumbered, and a
new row is added on its own line after the row it follows (inline after it in a flow-style list).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from halo_patch.model_yaml.graph import Splice

MARK = "inserted by halo-patch"
_LAYER_COMMENT = re.compile(r"(\s*#\s*)(\d+)(?!\d)")
_DASH = re.compile(r"^(\s*)-\s+$")


class LayoutError(ValueError):
    """The text cannot be edited in place (the caller turns this into a user-facing error)."""


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    text: str


def compose(text: str) -> yaml.MappingNode:
    node = yaml.compose(text, Loader=yaml.SafeLoader)  # the pure-Python loader: marks index characters
    if not isinstance(node, yaml.MappingNode):
        raise LayoutError("the top level is not a mapping")
    return node


def find_section(root: yaml.MappingNode, key: str) -> yaml.SequenceNode | None:
    """The node of `key:` (the last one, as yaml.safe_load keeps)."""
    found = None
    for k, v in root.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            found = v
    return found if isinstance(found, yaml.SequenceNode) else None


def find_node_end(node: yaml.Node) -> int:
    """Index just past the last character of `node`'s own text."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False) or not node.value:
        return node.end_mark.index
    last = node.value[-1]
    return find_node_end(last[1] if isinstance(last, tuple) else last)


def _line_end(text: str, index: int) -> int:
    """Index just past the newline of the line holding `index` (len(text) on a last line without one)."""
    nl = text.find("\n", index)
    return len(text) if nl < 0 else nl + 1


def _from_edits(row: yaml.SequenceNode, old: Any, new: Any) -> list[Edit]:
    node = row.value[0]
    if old == new:
        return []
    if isinstance(node, yaml.ScalarNode):
        return [Edit(node.start_mark.index, node.end_mark.index, str(new))]
    return [
        Edit(item.start_mark.index, item.end_mark.index, str(n)) for item, o, n in zip(node.value, old, new) if o != n
    ]


def _comment_edit(text: str, end: int, old: int, new: int) -> list[Edit]:
    """Renumber a trailing `# <old>` comment on the row's line to `# <new>`."""
    line_end = text.find("\n", end)
    rest = text[end : len(text) if line_end < 0 else line_end]
    hit = _LAYER_COMMENT.match(rest)
    if not hit or int(hit.group(2)) != old or old == new:
        return []
    return [Edit(end + hit.start(2), end + hit.end(2), str(new))]


def _dash_indent(text: str, row: yaml.SequenceNode) -> str:
    line_start = text.rfind("\n", 0, row.start_mark.index) + 1
    hit = _DASH.match(text[line_start : row.start_mark.index])
    if not hit:
        raise LayoutError(f"row at line {row.start_mark.line + 1} does not start a `- ` item of its own line")
    return hit.group(1)


def edit_rows(text: str, rows: list[list[Any]], splice: Splice, flow_row: str) -> str:
    """`text` with `from` values remapped, layer comments renumbered and `flow_row` inserted after each
    of `splice.after` (old indices over backbone + head, in order)."""
    root = compose(text)
    nodes: list[tuple[yaml.SequenceNode, yaml.SequenceNode]] = []  # (parent, row)
    for key in ("backbone", "head"):
        parent = find_section(root, key)
        nodes.extend((parent, r) for r in (parent.value if parent is not None else []))
    if len(nodes) != len(rows):
        raise LayoutError(f"found {len(nodes)} rows in the text but {len(rows)} in the data")
    newline = "\r\n" if "\r\n" in text else "\n"
    edits: list[Edit] = []
    for i, ((parent, row), data) in enumerate(zip(nodes, rows)):
        if not isinstance(row, yaml.SequenceNode) or not row.value:
            raise LayoutError(f"row {i} is not a list")
        edits += _from_edits(row, data[0], splice.remap_from(i, data[0]))
        end = find_node_end(row)
        if not parent.flow_style:
            edits += _comment_edit(text, end, i, splice.position(i))
        if i in splice.after:
            k = splice.inserted_index(i)
            if parent.flow_style:
                edits.append(Edit(end, end, f", {flow_row}"))
            else:
                at = _line_end(text, end)
                lead = newline if at == len(text) and not text.endswith("\n") else ""
                edits.append(Edit(at, at, f"{lead}{_dash_indent(text, row)}- {flow_row} # {k} {MARK}{newline}"))
    for e in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        text = text[: e.start] + e.text + text[e.end :]
    return text
