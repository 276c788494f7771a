"""tasks.py: `elif m is HaloAttention:` before the final `else:` of parse_model's `if m in ...` chain.

A branch made by hand is recognised in any form (`m is X`, `m in {..., X}`, `m in (X,)`, X inside
the first `m in {...}` set or the `base_modules` frozenset it names) and reused when its body is
equivalent to ours (one of `EQUIVALENT_BODIES`); a branch with another body is an error, never a guess.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import libcst as cst

from halo_patch.errors import AdoptError, AnchorError
from halo_patch.marker import is_marked, mark
from halo_patch.modules import DEFAULT, ModuleSpec
from halo_patch.transforms.source import Removal, SourceFile, _is_name, canonical


def _equivalent(spec: ModuleSpec) -> set[str]:
    """The spec's equivalent branch bodies (that build it as ours does), compared as ASTs."""
    return {ast.dump(ast.parse(body)) for body in spec.equivalent_bodies}


@dataclass(frozen=True)
class HaloBranch:
    """The chain's branch that handles HaloAttention."""

    header: str  # how it reads, e.g. "elif m in {HaloAttention}:"
    equivalent: bool  # its body does what ours does
    ours: bool  # exactly `elif m is HaloAttention:` with our body and our mark (what apply writes)
    marked: bool = False  # its header carries our mark (apply wrote it, maybe edited since)


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


def _is_halo_branch(stmt: cst.CSTNode, spec: ModuleSpec) -> bool:
    test = _tests_m(stmt, cst.Is)
    return test is not None and _is_name(test.comparisons[0].comparator, spec.class_name)


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


def _names_in(node: cst.CSTNode | None) -> set[str]:
    """Every bare name inside a set/tuple/list display or a `frozenset({...})`-style call."""
    if isinstance(node, cst.Name):
        return {node.value}
    if isinstance(node, (cst.Set, cst.Tuple, cst.List)):
        return set().union(*(_names_in(e.value) for e in node.elements))
    if isinstance(node, cst.Call):
        return set().union(*(_names_in(a.value) for a in node.args))
    return set()


def _assigned_value(body, name: str) -> cst.BaseExpression | None:
    """The value of the last top-level `name = ...` among `body`'s statements."""
    value = None
    for stmt in body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Assign) and any(_is_name(t.target, name) for t in small.targets):
                    value = small.value
    return value


def _handles_halo(src: SourceFile, branch: cst.If, first: bool, spec: ModuleSpec) -> bool:
    test = _tests_m(branch, cst.Is)
    if test is not None:
        return _is_name(test.comparisons[0].comparator, spec.class_name)
    test = _tests_m(branch, cst.In)
    if test is None:
        return False
    operand = test.comparisons[0].comparator
    if isinstance(operand, cst.Name) and first:  # `m in base_modules`: the frozenset parse_model builds
        _, func = _find_parse_model(src)
        operand = _assigned_value(func.body.body, operand.value) or _assigned_value(src.module.body, operand.value)
    return spec.class_name in _names_in(operand)


def _body_key(branch: cst.If) -> str:
    code = cst.Module(body=branch.body.body).code if isinstance(branch.body, cst.IndentedBlock) else ""
    return ast.dump(ast.parse(code))


def _one_line(src: SourceFile, test: cst.BaseExpression, spec: ModuleSpec) -> str:
    """A branch test for a one-line message: a long set shortened to `m in {Classify, Conv, ..., HaloAttention}`."""
    operand = test.comparisons[0].comparator if isinstance(test, cst.Comparison) else None
    if isinstance(operand, (cst.Set, cst.Tuple, cst.List)) and len(operand.elements) > 4:
        names = [src.module.code_for_node(e.value) for e in operand.elements]
        shown = [*names[:2], "...", *([spec.class_name] if spec.class_name in names[2:] else [])]
        return f"m in {{{', '.join(shown)}}}"
    return " ".join(src.module.code_for_node(test).split())


def find_halo_branch(src: SourceFile, spec: ModuleSpec = DEFAULT) -> HaloBranch | None:
    """The first branch of parse_model's chain that handles the spec's class, in any form, or None."""
    ours = cst.ensure_type(cst.parse_statement(spec.branch_source), cst.If)
    for index, branch in enumerate(_branches(_find_chain(src)[2])):
        if _handles_halo(src, branch, index == 0, spec):
            header = ("if " if index == 0 else "elif ") + _one_line(src, branch.test, spec) + ":"
            equivalent = index > 0 and _body_key(branch) in _equivalent(spec)
            marked = is_marked(branch)
            exact = _is_halo_branch(branch, spec) and _body_key(branch) == _body_key(ours) and marked
            return HaloBranch(header, equivalent, exact, marked)
    return None


def has_branch(src: SourceFile, spec: ModuleSpec = DEFAULT) -> bool:
    """True when the chain builds the class as ours does (our branch, or an equivalent one made by hand)."""
    found = find_halo_branch(src, spec)
    return found is not None and found.equivalent


def add_branch(src: SourceFile, spec: ModuleSpec = DEFAULT) -> SourceFile:
    """tasks.py with `elif m is HaloAttention: c2 = ch[f]; args = [c2, *args]` before the chain's final else.

    An equivalent branch already there is reused; a HaloAttention branch that builds it otherwise is an
    AdoptError (it would win over ours, with other arguments).
    """
    found = find_halo_branch(src, spec)
    if found is not None and found.equivalent:
        return src
    if found is not None:
        body = "; ".join(spec.branch_body.splitlines())
        raise AdoptError(
            f"{src.where}: parse_model's `{found.header}` branch already builds {spec.class_name} with other arguments "
            f"than halo-patch's (expected `{body}`); take {spec.class_name} out of that branch, then apply again"
        )
    branches = _branches(_find_chain(src)[2])
    final_else = branches[-1].orelse
    if not isinstance(final_else, cst.Else):
        raise AnchorError(f"{src.where}: the `if m in ...` chain in parse_model has no final `else:`")
    new = cst.ensure_type(mark(cst.parse_statement(spec.branch_source, config=src.module.config_for_parsing)), cst.If)
    rebuilt: cst.BaseSuite | cst.If | cst.Else = new.with_changes(orelse=final_else)
    for branch in reversed(branches):  # rebuild the chain bottom-up: nodes are immutable
        rebuilt = branch.with_changes(orelse=rebuilt)
    return _replace_chain(src, rebuilt)


def _our_branch(src: SourceFile, spec: ModuleSpec) -> str:
    new = mark(cst.parse_statement(spec.branch_source, config=src.module.config_for_parsing))
    return canonical(src, new)


def remove_branch(src: SourceFile, force: bool = False, spec: ModuleSpec = DEFAULT) -> Removal:
    """tasks.py without `elif m is HaloAttention:  # halo-patch` (the inverse of add_branch). A marked
    branch whose body was edited by hand is kept, unless `force`; an unmarked one is the user's, always
    kept. A tree without the chain has no branch of ours."""
    try:
        branches = _branches(_find_chain(src)[2])
    except AnchorError:
        return Removal(src)
    ours = _our_branch(src, spec)
    removed: list[str] = []
    edited: list[str] = []
    kept = [branches[0]]
    tail = branches[-1].orelse
    for branch in branches[1:]:
        if _is_halo_branch(branch, spec) and is_marked(branch):
            if canonical(src, branch.with_changes(orelse=None)) == ours:
                removed.append("parse_model branch")
                continue
            edited.append("parse_model branch")
            if force:
                continue
        kept.append(branch)
    if not removed and not (force and edited):
        return Removal(src, (), tuple(edited))
    rebuilt: cst.BaseSuite | cst.If | cst.Else | None = tail
    for branch in reversed(kept):
        rebuilt = branch.with_changes(orelse=rebuilt)
    return Removal(_replace_chain(src, rebuilt), tuple(removed), tuple(edited))
