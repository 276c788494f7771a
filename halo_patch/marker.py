"""The mark on every line halo-patch adds to a user's Python: a trailing `# halo-patch` comment.

libcst keeps comments, so an edit of ours is recognisable in the file itself, without the state dir;
a hand-written line of the same text has no mark and is never ours (revert leaves it). Every
transform that adds a statement marks it here (`mark`), and every `remove_*` takes out only marked
statements (`is_marked`). A compound statement (the parse_model branch) is marked on its header
and on each line of its body.
"""

from __future__ import annotations

import libcst as cst

MARK = "# halo-patch"


def _marked_trailer(trailer: cst.TrailingWhitespace) -> cst.TrailingWhitespace:
    return trailer.with_changes(whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment(MARK))


def mark(stmt: cst.BaseStatement) -> cst.BaseStatement:
    """`stmt` with the mark ending each of its lines (a simple line, or a compound header and body)."""
    if isinstance(stmt, cst.SimpleStatementLine):
        return stmt.with_changes(trailing_whitespace=_marked_trailer(stmt.trailing_whitespace))
    if isinstance(stmt, (cst.If, cst.For, cst.While, cst.With, cst.FunctionDef, cst.ClassDef)) and isinstance(stmt.body, cst.IndentedBlock):
        block = stmt.body
        body = [mark(s) for s in block.body]
        return stmt.with_changes(body=block.with_changes(header=_marked_trailer(block.header), body=body))
    return stmt


def marked_source(code: str) -> str:
    """`code` (statements apply adds to a file it creates) with the mark ending each line."""
    module = cst.parse_module(code)
    return module.with_changes(body=[mark(s) for s in module.body]).code


def is_marked(stmt: cst.CSTNode) -> bool:
    """True when the statement's (first) line ends with the mark: a line halo-patch added."""
    if isinstance(stmt, cst.SimpleStatementLine):
        trailer = stmt.trailing_whitespace
    elif isinstance(getattr(stmt, "body", None), cst.IndentedBlock):
        trailer = stmt.body.header
    else:
        return False
    return trailer.comment is not None and trailer.comment.value.strip() == MARK


def unmark(stmt: cst.SimpleStatementLine) -> cst.SimpleStatementLine:
    """A simple line without our mark: what is left of a line of ours once our part is taken out."""
    if not is_marked(stmt):
        return stmt
    return stmt.with_changes(trailing_whitespace=stmt.trailing_whitespace.with_changes(whitespace=cst.SimpleWhitespace(""), comment=None))


class _Unmark(cst.CSTTransformer):
    def leave_TrailingWhitespace(self, original: cst.TrailingWhitespace, updated: cst.TrailingWhitespace) -> cst.TrailingWhitespace:
        if updated.comment is not None and updated.comment.value.strip() == MARK:
            return updated.with_changes(whitespace=cst.SimpleWhitespace(""), comment=None)
        return updated


def unmarked(module: cst.Module) -> cst.Module:
    """`module` without any mark: how the previous release (before marks) wrote the same edits."""
    return module.visit(_Unmark())
