"""The libcst edits on small before/after sources (the release tests cover real tasks.py files)."""

from __future__ import annotations

import pytest

from halo_patch.errors import AnchorError
from halo_patch.transforms import SourceFile, add_branch, add_class_import, add_package_import, has_branch

TASKS = '''\
from __future__ import annotations

from ultralytics.nn.modules import (
    Conv,
)
from ultralytics.utils import LOGGER


def parse_model(d, ch, verbose=True):
    for i, (f, n, m, args) in enumerate(d["backbone"] + d["head"]):
        if restricted and not isinstance(m, type):
            raise TypeError(m)
        if m in base_modules:
            c2 = args[0]
        elif m is Concat:
            c2 = sum(ch[x] for x in f)
        else:
            c2 = ch[f]
        if m is SPPF and len(args) <= 3:
            pass
'''


def src(text: str) -> SourceFile:
    return SourceFile.parse(text, "tasks.py (Ultralytics 9.9.9)")


def test_import_goes_after_the_modules_import_not_the_top() -> None:
    out = add_class_import(src(TASKS)).code
    assert out.startswith("from __future__ import annotations\n")
    assert ")\nfrom ultralytics.nn.Addmodules import HaloAttention  # halo-patch\nfrom ultralytics.utils import LOGGER\n" in out


def test_branch_goes_before_the_final_else_of_the_m_in_chain() -> None:
    out = add_branch(src(TASKS)).code
    assert (
        "        elif m is Concat:\n            c2 = sum(ch[x] for x in f)\n"
        "        elif m is HaloAttention:  # halo-patch\n            c2 = ch[f]  # halo-patch\n            args = [c2, *args]  # halo-patch\n"
        "        else:\n            c2 = ch[f]\n        if m is SPPF"
    ) in out


def test_edits_are_idempotent_and_change_nothing_else() -> None:
    once = add_branch(add_class_import(src(TASKS)))
    assert has_branch(once)
    twice = add_branch(add_class_import(once))
    assert twice is once
    removed = once.code.replace("from ultralytics.nn.Addmodules import HaloAttention  # halo-patch\n", "").replace(
        "        elif m is HaloAttention:  # halo-patch\n            c2 = ch[f]  # halo-patch\n            args = [c2, *args]  # halo-patch\n", ""
    )
    assert removed == TASKS


def test_tab_indented_source_keeps_its_indentation() -> None:
    tabbed = TASKS.replace("    ", "\t")
    out = add_branch(src(tabbed)).code
    assert "\t\telif m is HaloAttention:  # halo-patch\n\t\t\tc2 = ch[f]  # halo-patch\n\t\t\targs = [c2, *args]  # halo-patch\n\t\telse:" in out
    compile(out, "tasks.py", "exec")


def test_two_chains_is_an_error_not_a_guess() -> None:
    doubled = TASKS.replace("        if m is SPPF and len(args) <= 3:", "        if m in other:\n            pass\n        if m is SPPF:")
    with pytest.raises(AnchorError, match="expected one `if m in ...:` chain in parse_model's loop, found 2"):
        add_branch(src(doubled))


def test_package_import_after_existing_imports() -> None:
    out = add_package_import(SourceFile.parse('"""Mine."""\nfrom .CBAM import CBAM\n\n__all__ = ["CBAM"]\n', "x")).code
    assert out == '"""Mine."""\nfrom .CBAM import CBAM\nfrom .halo_attention import HaloAttention  # halo-patch\n\n__all__ = ["CBAM"]\n'


def test_remove_is_the_exact_inverse_of_add() -> None:
    from halo_patch.transforms import remove_branch, remove_class_import

    for text in (TASKS, TASKS.replace("\n", "\r\n")):
        patched = add_branch(add_class_import(src(text)))
        without_import = remove_class_import(patched)
        without_both = remove_branch(without_import.src)
        assert without_both.src.code == text
        assert without_import.removed + without_both.removed == ("tasks.py import", "parse_model branch")


def test_remove_keeps_user_lines_and_refuses_an_edited_branch_unless_forced() -> None:
    from halo_patch.transforms import remove_branch, remove_class_import

    patched = add_branch(add_class_import(src(TASKS))).code
    ours = "from ultralytics.nn.Addmodules import HaloAttention  # halo-patch\n"
    mine = patched.replace(ours, "# mine\n" + ours)
    kept = remove_class_import(src(mine)).src.code
    assert "# mine\nfrom ultralytics.utils import LOGGER" in kept and "Addmodules" not in kept

    edited = patched.replace("            args = [c2, *args]  # halo-patch\n", "            args = [c2, *args, 3]  # halo-patch\n")
    refused = remove_branch(src(edited))
    assert refused.edited == ("parse_model branch",) and refused.removed == () and refused.src.code == edited
    forced = remove_branch(src(edited), force=True)
    assert "HaloAttention:" not in forced.src.code


def test_forced_removal_from_an_edited_import_keeps_the_other_names() -> None:
    from halo_patch.transforms import remove_class_import

    patched = add_class_import(src(TASKS)).code.replace(
        "from ultralytics.nn.Addmodules import HaloAttention  # halo-patch\n", "from ultralytics.nn.Addmodules import HaloAttention, CBAM  # halo-patch\n"
    )
    assert remove_class_import(src(patched)).edited == ("tasks.py import",)
    out = remove_class_import(src(patched), force=True).src.code
    assert "from ultralytics.nn.Addmodules import CBAM\n" in out and "HaloAttention" not in out
