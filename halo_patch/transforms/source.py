"""What every transform shares: the parsed file, the names apply adds, small typed shape predicates.

Shapes are matched with small typed predicates rather than `libcst.matchers`: importing the
matchers module alone costs 0.55 s, a third of the CLI's time budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst
from libcst.helpers import get_full_name_for_node

from halo_patch.errors import AnchorError, NotPythonError
from halo_patch.marker import is_marked, mark, unmark
from halo_patch.modules import DEFAULT
from halo_patch.safe_read import check_python_nesting

CLASS_NAME = DEFAULT.class_name  # the default module's names (the transforms take a spec for others)
MODULES_IMPORT = "ultralytics.nn.modules"  # the anchor import in tasks.py
ADDMODULES = "ultralytics.nn.Addmodules"  # where our class lives
MODULE_STEM = DEFAULT.file_stem  # ultralytics/nn/Addmodules/<stem>.py

BOM = b"\xef\xbb\xbf"

BRANCH_SOURCE = DEFAULT.branch_source  # the parse_model branch apply writes (see ModuleSpec.branch_source)


@dataclass(frozen=True)
class Removal:
    """What a `remove_*` edit did: the source without our nodes, and which nodes it met."""

    src: "SourceFile"  # the source with our intact nodes taken out (edited ones too when forced)
    removed: tuple[str, ...] = ()  # our nodes taken out
    edited: tuple[str, ...] = ()  # our nodes found changed by hand (taken out only when forced)

    @property
    def code(self) -> str:
        return self.src.code

    def then(self, other: "Removal") -> "Removal":
        """This removal followed by `other` (made on this removal's source)."""
        return Removal(other.src, self.removed + other.removed, self.edited + other.edited)


def _is_name(node: cst.CSTNode | None, name: str) -> bool:
    return isinstance(node, cst.Name) and node.value == name


@dataclass(frozen=True)
class SourceFile:
    """A parsed Python file and the label used in messages (its path, the Ultralytics version)."""

    module: cst.Module
    where: str

    @property
    def code(self) -> str:
        return module_code(self.module)

    def with_module(self, module: cst.Module) -> SourceFile:
        return SourceFile(module, self.where)

    @classmethod
    def parse(cls, source: str, where: str) -> SourceFile:
        module = _PARSED.get(source)
        if module is None:
            check_python_nesting(source, where)  # libcst would crash (SIGSEGV) on a 100 000-deep expression
            try:
                module = cst.parse_module(source)
            except cst.ParserSyntaxError as exc:
                raise NotPythonError(f"{where}: not valid Python (line {exc.raw_line}); expected an Ultralytics source") from None
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.pop(next(iter(_PARSED)))
            _PARSED[source] = module
        return cls(module, where)


# One parse per text: a run reads tasks.py in its planner, its trust check and its status rows.
# libcst trees are immutable (every edit makes a new tree), so one parsed text serves every reader.
_PARSED: dict[str, cst.Module] = {}
_PARSED_MAX = 8


def module_code(module: cst.Module) -> str:
    """`module.code`, with the text of each top-level statement kept by node. An edit rebuilds only the
    statements it changes and keeps the others (the same immutable nodes), so writing tasks.py again in
    one process (a revert after its trust check, a test's many runs) generates only those statements;
    libcst's codegen is the slowest step of apply and revert (~0.35 s on tasks.py)."""
    for text, parsed in _PARSED.items():
        if parsed is module:  # unedited: libcst gives back the text it parsed
            return text
    if not module.has_trailing_newline or not module.body:  # the last newline is popped: libcst's own way
        return module.code
    parts = [module.code_for_node(node) for node in module.header]
    parts += [_statement_code(module, stmt) for stmt in module.body]
    parts += [module.code_for_node(node) for node in module.footer]
    return "".join(parts)


def _statement_code(module: cst.Module, stmt: cst.CSTNode) -> str:
    """The text of a top-level statement (no indent around it), cached by node, indent and newline."""
    key = (id(stmt), module.default_indent, module.default_newline)
    hit = _CODE.get(key)
    if hit is not None and hit[0] is stmt:
        return hit[1]
    code = module.code_for_node(stmt)
    if len(_CODE) >= _CODE_MAX:
        _CODE.pop(next(iter(_CODE)))
    _CODE[key] = (stmt, code)  # the node is kept alive with its text, so its id is never reused meanwhile
    return code


_CODE: dict[tuple[int, str, str], tuple[cst.CSTNode, str]] = {}
_CODE_MAX = 4096  # a few versions of tasks.py and the small files beside it


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


def canonical(src: SourceFile, node: cst.CSTNode) -> str:
    """A statement's code without the comments/blank lines above it, in the file's own newline/indent."""
    if hasattr(node, "leading_lines"):
        node = node.with_changes(leading_lines=())
    return src.module.code_for_node(node)


def without_statement(src: SourceFile, index: int) -> SourceFile:
    """The module without top-level statement `index`; lines above it stay with the next statement."""
    body = list(src.module.body)
    gone = body.pop(index)
    lead = getattr(gone, "leading_lines", ())
    if lead:
        if index < len(body):
            body[index] = body[index].with_changes(leading_lines=(*lead, *body[index].leading_lines))
        else:
            return src.with_module(src.module.with_changes(body=body, footer=(*lead, *src.module.footer)))
    return src.with_module(src.module.with_changes(body=body))


def our_statement(src: SourceFile, code: str) -> cst.BaseStatement:
    """A statement apply adds (`code`), parsed in the file's own layout and marked as ours."""
    return mark(cst.parse_statement(code, config=src.module.config_for_parsing))


def remove_import_of(src: SourceFile, module: str, name: str, label: str, force: bool) -> Removal:
    """Take out `from <module> import <name>` lines that carry our mark (our node). A marked line
    that imports more names or renames it was edited by hand: kept, unless `force`, which then drops
    only `name` from it. An unmarked line is the user's own, whatever it says: always kept."""
    ours = canonical(src, our_statement(src, f"from {module} import {name}\n"))
    removed: list[str] = []
    edited: list[str] = []
    index = 0
    while index < len(src.module.body):
        stmt = src.module.body[index]
        if _import_from_module(stmt) == module and _names_in(stmt, name) and is_marked(stmt):
            if canonical(src, stmt) == ours:
                src = without_statement(src, index)
                removed.append(label)
                continue
            edited.append(label)
            if force:
                node = stmt.body[0]
                rest = [a for a in node.names if get_full_name_for_node(a.name) != name]
                if rest:
                    rest[-1] = rest[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
                    new = unmark(stmt.with_changes(body=[node.with_changes(names=rest)]))
                    src = src.with_module(src.module.with_changes(body=_swap(src.module.body, index, new)))
                else:
                    src = without_statement(src, index)
                    continue
        index += 1
    return Removal(src, tuple(removed), tuple(edited))


def _names_in(stmt: cst.CSTNode, name: str) -> bool:
    names = stmt.body[0].names
    return not isinstance(names, cst.ImportStar) and any(get_full_name_for_node(a.name) == name for a in names)


def _swap(items, index, new):
    return (*items[:index], new, *items[index + 1 :])


def decode_source(data: bytes, label: str) -> tuple[str, bool]:
    """Python source text and whether it had a UTF-8 BOM; AnchorError for bytes apply would refuse."""
    bom = data.startswith(BOM)
    try:
        text = data[len(BOM) :].decode("utf-8") if bom else data.decode("utf-8")
    except UnicodeDecodeError:
        raise AnchorError(f"{label}: not UTF-8 text; expected an Ultralytics source file") from None
    if "\x00" in text:
        raise AnchorError(f"{label}: holds a NUL byte; expected an Ultralytics source file")
    return text, bom


def encode_source(text: str, bom: bool) -> bytes:
    return (BOM if bom else b"") + text.encode("utf-8")


def resolve_module(module: str, package: str) -> str:
    """`module` as written in a file of `package`, made absolute (`.Addmodules` in ultralytics.nn -> ultralytics.nn.Addmodules)."""
    dots = len(module) - len(module.lstrip("."))
    if not dots:
        return module
    parts = package.split(".")[: len(package.split(".")) - (dots - 1)]
    rest = module[dots:]
    return ".".join([*parts, rest] if rest else parts)


@dataclass(frozen=True)
class ImportLine:
    """One top-level `from X import ...` statement: its index in the module body, the absolute module,
    the names it binds (None for `*`)."""

    index: int
    module: str
    names: tuple[str, ...] | None


def import_lines(src: SourceFile, package: str) -> list[ImportLine]:
    """Every top-level `from X import ...` of `src`, with X made absolute for a file of `package`."""
    out = []
    for index, stmt in enumerate(src.module.body):
        written = _import_from_module(stmt)
        if written is None:
            continue
        names = stmt.body[0].names
        bound = None if isinstance(names, cst.ImportStar) else tuple((a.evaluated_alias or a.evaluated_name) for a in names)
        out.append(ImportLine(index, resolve_module(written, package), bound))
    return out


def without_name(src: SourceFile, line: ImportLine, name: str) -> SourceFile:
    """`src` with `name` dropped from one import statement, or the statement dropped when nothing else is left."""
    body = list(src.module.body)
    if line.names is None or set(line.names) <= {name}:
        del body[line.index]
        return src.with_module(src.module.with_changes(body=body))
    stmt = body[line.index]
    node = stmt.body[0]
    kept = [a for a in node.names if (a.evaluated_alias or a.evaluated_name) != name]
    kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    body[line.index] = stmt.with_changes(body=[node.with_changes(names=kept)])
    return src.with_module(src.module.with_changes(body=body))


def _all_index(src: SourceFile) -> int | None:
    """Index of the top-level `__all__ = (...)` / `[...]` statement."""
    for index, stmt in enumerate(src.module.body):
        if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Assign):
            assign = stmt.body[0]
            if any(_is_name(t.target, "__all__") for t in assign.targets) and isinstance(assign.value, (cst.Tuple, cst.List)):
                return index
    return None


def _changes_all(stmt: cst.CSTNode) -> bool:
    """A top-level statement that binds or changes `__all__` (assignment of any kind, `__all__.extend(...)`)."""
    if not isinstance(stmt, cst.SimpleStatementLine):
        return False
    for small in stmt.body:
        if isinstance(small, cst.Assign) and any(_is_name(t.target, "__all__") for t in small.targets):
            return True
        if isinstance(small, (cst.AugAssign, cst.AnnAssign)) and _is_name(small.target, "__all__"):
            return True
        if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call) and isinstance(small.value.func, cst.Attribute):
            if _is_name(small.value.func.value, "__all__"):
                return True
    return False


def star_exports(src: SourceFile, name: str) -> bool:
    """Whether `from <this package> import *` binds `name` (imported in it), read statically: no
    `__all__`, or one literal `__all__` list/tuple that names it. Any other `__all__` counts as not."""
    changes = [stmt for stmt in src.module.body if _changes_all(stmt)]
    if not changes:
        return True
    return len(changes) == 1 and _all_index(src) is not None and name in all_names(src)


def all_names(src: SourceFile) -> list[str]:
    index = _all_index(src)
    if index is None:
        return []
    value = src.module.body[index].body[0].value
    return [e.value.evaluated_value for e in value.elements if isinstance(e.value, cst.SimpleString)]


def with_all_entry(src: SourceFile, name: str) -> SourceFile:
    """`src` with `"name"` ending its top-level `__all__` tuple/list, laid out like the entries before it."""
    index = _all_index(src)
    if index is None or name in all_names(src):
        return src
    stmt = src.module.body[index]
    value = stmt.body[0].value
    elements = list(value.elements)
    new = cst.Element(cst.SimpleString(f'"{name}"'))
    if elements:  # the new entry takes the last one's comma; the last one takes its neighbour's (same layout)
        last = elements[-1]
        spacer = elements[-2].comma if len(elements) > 1 else cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        new = new.with_changes(comma=last.comma)
        elements[-1] = last.with_changes(comma=spacer)
    elements.append(new)
    body = list(src.module.body)
    body[index] = stmt.with_changes(body=[stmt.body[0].with_changes(value=value.with_changes(elements=elements))])
    return src.with_module(src.module.with_changes(body=body))


def without_all_entry(src: SourceFile, name: str) -> SourceFile:
    """`src` without `"name"` in its top-level `__all__` (the inverse of with_all_entry)."""
    index = _all_index(src)
    if index is None or name not in all_names(src):
        return src
    stmt = src.module.body[index]
    value = stmt.body[0].value
    elements = list(value.elements)
    at = next(i for i, e in enumerate(elements) if isinstance(e.value, cst.SimpleString) and e.value.evaluated_value == name)
    if at == len(elements) - 1 and at > 0:  # the entry before it takes back the last comma
        elements[at - 1] = elements[at - 1].with_changes(comma=elements[at].comma)
    del elements[at]
    body = list(src.module.body)
    body[index] = stmt.with_changes(body=[stmt.body[0].with_changes(value=value.with_changes(elements=elements))])
    return src.with_module(src.module.with_changes(body=body))
