"""The edits and shape checks behind --adopt and --layout modules, on small sources and real releases."""

from __future__ import annotations

import zipfile

import pytest
from conftest import RELEASES, fetch_wheel
from test_transforms import TASKS, src
from tutorial_install import TUTORIAL_MODULE

from halo_patch.errors import AdoptError
from halo_patch.transforms import (
    MODULES_IMPORT,
    SourceFile,
    add_branch,
    add_class_import,
    add_modules_export,
    find_halo_branch,
    has_branch,
    has_modules_export,
    remove_class_import,
    remove_modules_export,
)
from halo_patch.transforms.user_imports import drop_package_imports, drop_tasks_imports
from halo_patch.tutorial import module_shape

BODY = "            c2 = ch[f]\n            args = [c2, *args]\n"


def with_branch(header: str, body: str = BODY) -> str:
    return TASKS.replace("        else:\n            c2 = ch[f]\n", header + body + "        else:\n            c2 = ch[f]\n")


@pytest.mark.parametrize(
    "header",
    ["        elif m is HaloAttention:\n", "        elif m in {CBAM, HaloAttention}:\n", "        elif m in (HaloAttention,):\n", "        elif m in [HaloAttention]:\n"],
)
def test_an_equivalent_branch_in_any_form_is_reused(header: str) -> None:
    source = src(with_branch(header))
    found = find_halo_branch(source)
    assert found is not None and found.equivalent and found.header == header.strip()
    assert has_branch(source) and add_branch(source) is source


@pytest.mark.parametrize(
    "body",
    ["            args = [ch[f], *args]\n            c2 = ch[f]\n", "            c2 = ch[f]  # keep channels\n\n            args.insert(0, c2)\n"],
)
def test_equivalent_bodies_are_recognised(body: str) -> None:
    assert add_branch(src(with_branch("        elif m in {HaloAttention}:\n", body))).code.count("HaloAttention") == 1


@pytest.mark.parametrize(
    ("source", "header"),
    [
        (with_branch("        elif m is HaloAttention:\n", "            c2 = args[0]\n"), "elif m is HaloAttention:"),
        (TASKS.replace("if m in base_modules:", "if m in {Conv, HaloAttention}:"), "if m in {Conv, HaloAttention}:"),
        (
            TASKS.replace("if m in base_modules:", "if m in {\n            Classify,\n            Conv,\n            C2f,\n            SPPF,\n            HaloAttention,\n        }:"),
            "if m in {Classify, Conv, ..., HaloAttention}:",
        ),
        (TASKS.replace("    for i, (f", "    base_modules = frozenset({Conv, HaloAttention})\n    for i, (f"), "if m in base_modules:"),
    ],
    ids=["other-body", "first-set", "first-set-long", "base-modules"],
)
def test_a_branch_with_other_arguments_is_an_error(source: str, header: str) -> None:
    parsed = src(source)
    assert find_halo_branch(parsed).header == header and not has_branch(parsed)
    with pytest.raises(AdoptError, match=f"parse_model's `{header}` branch already builds HaloAttention with other arguments"):
        add_branch(parsed)


def test_branch_in_an_unrelated_set_is_not_halo() -> None:
    assert find_halo_branch(src(with_branch("        elif m in {CBAM, SimAM}:\n"))) is None


def test_tutorial_module_defects_are_recognised_by_shape() -> None:
    assert module_shape(SourceFile.parse(TUTORIAL_MODULE, "x")) == (True, True, ())
    fixed = TUTORIAL_MODULE.replace("sim.masked_fill_(mask, max_neg_value)", "sim.masked_fill_(~mask, max_neg_value)")
    fixed = fixed.replace('        assert h % block == 0 and w % block == 0, "fmap dimensions must be divisible by the block size"\n', "")
    assert module_shape(SourceFile.parse(fixed, "x")) == (False, False, ())
    negated = TUTORIAL_MODULE.replace("        mask = mask.bool()\n", "        mask = ~mask.bool()\n")
    assert module_shape(SourceFile.parse(negated, "x"))[0] is False
    extra = TUTORIAL_MODULE + "\n\nclass SimAM(nn.Module):\n    pass\n"
    assert module_shape(SourceFile.parse(extra, "x"))[2] == ("SimAM",)
    assert module_shape(SourceFile.parse("class CBAM:\n    pass\n", "x")) is None


USER = frozenset({"ultralytics.nn.Addmodules.HaloAttention"})


@pytest.mark.parametrize(
    ("imports", "kept"),
    [
        ("from ultralytics.nn.Addmodules import *\n", "from ultralytics.nn.Addmodules import *\n"),
        ("from .Addmodules import *\nfrom ultralytics.nn.Addmodules import HaloAttention\n", "from .Addmodules import *\n"),
        ("from ultralytics.nn.Addmodules.HaloAttention import *\n", "from ultralytics.nn.Addmodules import HaloAttention  # halo-patch\n"),
        ("from ultralytics.nn.Addmodules import CBAM, HaloAttention\n", "from ultralytics.nn.Addmodules import CBAM, HaloAttention\n"),
        (
            "from ultralytics.nn.Addmodules import CBAM\nfrom ultralytics.nn.Addmodules.HaloAttention import HaloAttention\n",
            "from ultralytics.nn.Addmodules import CBAM\nfrom ultralytics.nn.Addmodules import HaloAttention  # halo-patch\n",
        ),
    ],
    ids=["star", "star-and-named", "star-from-file", "named-with-cbam", "named-from-file"],
)
def test_tasks_ends_with_one_import_binding_the_class(imports: str, kept: str) -> None:
    anchor = "from ultralytics.utils import LOGGER\n"
    source = src(TASKS.replace(anchor, anchor + imports))
    out = add_class_import(drop_tasks_imports(source, USER, "ultralytics.nn.Addmodules")).code
    imports_after = [l + "\n" for l in out.splitlines() if "Addmodules" in l]
    assert "".join(sorted(imports_after)) == "".join(sorted(kept.splitlines(keepends=True)))


def test_package_init_drops_only_the_user_module() -> None:
    init = SourceFile.parse('from .CBAM import *\nfrom .HaloAttention import *\n__all__ = ["CBAM", "HaloAttention"]\n', "x")
    assert drop_package_imports(init, USER, keep_export=True).code == 'from .CBAM import *\n__all__ = ["CBAM", "HaloAttention"]\n'
    assert drop_package_imports(init, USER, keep_export=False).code == 'from .CBAM import *\n__all__ = ["CBAM"]\n'


def test_modules_layout_tasks_import_and_its_removal() -> None:
    out = add_class_import(src(TASKS), MODULES_IMPORT)
    assert ")\nfrom ultralytics.nn.modules import HaloAttention  # halo-patch\nfrom ultralytics.utils import LOGGER\n" in out.code
    assert remove_class_import(out, MODULES_IMPORT).code == TASKS
    assert remove_class_import(src(TASKS), MODULES_IMPORT).code == TASKS


@pytest.mark.parametrize("version", sorted(RELEASES))
def test_modules_export_round_trips_on_every_release(version: str) -> None:
    with zipfile.ZipFile(fetch_wheel(version)) as zf:
        text = zf.read("ultralytics/nn/modules/__init__.py").decode("utf-8")
    source = SourceFile.parse(text, f"nn/modules/__init__.py ({version})")
    added = add_modules_export(source)
    assert has_modules_export(added) and not has_modules_export(source)
    assert add_modules_export(added) is added
    new_lines = [l for l in added.code.splitlines() if l not in text.splitlines()]
    assert new_lines == ["from .halo_attention import HaloAttention  # halo-patch", '    "HaloAttention",']
    assert remove_modules_export(added).code == text
    compile(added.code, "__init__.py", "exec")
