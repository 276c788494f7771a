"""`module_code` (libcst's codegen with each top-level statement's text kept by node) gives exactly
what libcst's own `Module.code` gives, for parsed, edited, CRLF and newline-less files; an edit made
after a first codegen regenerates only its own statements and still matches libcst."""

from __future__ import annotations

import libcst as cst
from conftest import copy_installed

from halo_patch.transforms import source
from halo_patch.transforms.source import SourceFile, module_code


def test_module_code_is_libcsts_code_for_every_shape(tmp_path) -> None:
    package = copy_installed(tmp_path)
    shapes = [(package / "nn/tasks.py").read_text(encoding="utf-8"), ""]
    for rel in ("nn/modules/__init__.py", "__init__.py"):  # small files in every shape
        text = (package / rel).read_text(encoding="utf-8")
        shapes += [text, text.rstrip("\n"), text.replace("\n", "\r\n"), "# head\n\n" + text + "\n# tail\n\n"]
    for text in shapes:
        module = cst.parse_module(text)
        assert module_code(module) == module.code == text
        edited = module.with_changes(body=[*module.body[::-1], cst.parse_statement("x = 1  # added\n")])
        assert module_code(edited) == edited.code
        assert module_code(edited) == edited.code  # the second time from the kept statement texts


def test_an_edit_regenerates_only_the_statements_it_changed(tmp_path, monkeypatch) -> None:
    package = copy_installed(tmp_path)
    text = (package / "nn/tasks.py").read_text(encoding="utf-8")
    src = SourceFile.parse(text, "tasks.py")
    first = src.with_module(src.module.with_changes(body=[*src.module.body, cst.parse_statement("x = 1\n")]))
    assert first.code == first.module.code
    made = []
    codegen = cst.Module.code_for_node
    monkeypatch.setattr(cst.Module, "code_for_node", lambda self, node: made.append(node) or codegen(self, node))
    second = src.with_module(src.module.with_changes(body=[*src.module.body[1:], cst.parse_statement("y = 2\n")]))
    second_code = second.code
    statements = [node for node in made if isinstance(node, cst.BaseStatement)]
    assert len(statements) == 1 and statements[0] is second.module.body[-1]  # only `y = 2`; the header's lines are cheap
    monkeypatch.undo()
    assert second_code == second.module.code
    assert len(source._CODE) <= source._CODE_MAX
