"""`apply --module FILE.py`: tutorial module files installed, stacked, trained one step, reverted one at a
time and all at once byte-exact; the refusals are one line, exit 2, the tree unchanged."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cli_helpers import cli
from conftest import copy_installed, tree_hashes
from module_files import train_step, write_modules
from warm_python import WarmPython


def _ok(*args: str) -> str:
    r = cli(*args)
    assert r.code == 0, r.out + r.err
    return r.out


def _files(root: Path) -> dict[str, str]:
    """The tree's bytes, halo-patch's own state dir left out (its manifest records the modules that stay)."""
    return {k: v for k, v in tree_hashes(root).items() if not k.startswith(".halo-patch")}


def _rows(path: Path) -> list:
    model = yaml.safe_load(path.read_text())
    return model["backbone"] + model["head"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("module_option")
    package = copy_installed(root / "tree")
    return root / "tree", package, write_modules(root / "mods")


def test_three_modules_stacked_trained_and_reverted_one_at_a_time(tree, tmp_path, warm_python: WarmPython):
    root, package, mods = tree
    models = package / "cfg" / "models" / "11"
    pristine = tree_hashes(root)
    base_rows = _rows(models / "yolo11.yaml")

    out = _ok("apply", "--target", str(root), "--module", str(mods["sppelan_block"]), "--replace", "9", "--args", "1024,256")
    assert "SPPELANBlock: channels out (SPPELANBlock(c1, c2, c3, k): input and output channels -> out)" in out
    assert "SPPELANBlock(c_in, 1024, 256) in ultralytics/cfg/models/11/yolo11-SPPELANBlock.yaml (from yolo11.yaml, detect):" in out
    assert re.search(r"│ 9 +│ 9 SPPF \(replaced\) +│ 10 C2PSA +│ 256 +│ 512 +│ 512 +│ 512 +│ 768 +│", out), out
    assert "Graph proven: every `from` and edge as in yolo11.yaml; only layer 9's module and args changed." in out
    assert "Build it with YOLO('yolo11n-SPPELANBlock.yaml')" in out
    for row in (
        r"SPPELANBlock module \(created\) +│ ultralytics/nn/Addmodules/sppelan_block.py +│ \+23 -0",
        r"Addmodules package import \(created\) +│ ultralytics/nn/Addmodules/__init__.py +│ \+3 -0",
        r"import \+ parse_model branch \(modified\) +│ ultralytics/nn/tasks.py +│ \+5 -0",
        r"model yaml, SPPELANBlock in place of layer 9 \(created\) +│ ultralytics/cfg/models/11/yolo11-SPPELANBlock.yaml +│ \+54 -0",
    ):
        assert re.search(row, out), (row, out)
    spp = models / "yolo11-SPPELANBlock.yaml"
    rows = _rows(spp)
    assert len(rows) == len(base_rows) and rows[9] == [-1, 1, "SPPELANBlock", [1024, 256]]
    assert [r[:2] for r in rows] == [r[:2] for r in base_rows]  # every `from` and repeat kept
    assert [r for i, r in enumerate(rows) if i != 9] == [r for i, r in enumerate(base_rows) if i != 9]
    after_spp = _files(root)

    out = _ok("apply", "--target", str(root), "--module", str(mods["se_block"]), "--base", str(spp), "--after", "4")
    assert "SEBlock: channels same (SEBlock(channels, reduction): one channel argument -> same)" in out
    stacked = models / "yolo11-SPPELANBlock-SEBlock.yaml"
    rows = _rows(stacked)
    assert rows[5] == [-1, 1, "SEBlock", []] and rows[10] == [-1, 1, "SPPELANBlock", [1024, 256]]
    assert len(rows) == len(base_rows) + 1
    after_se = _files(root)

    out = _ok("apply", "--target", str(root), "--module", str(mods["channel_shuffle"]), "--after", "6")
    assert "ChannelShuffle: channels none (ChannelShuffle(groups): no required argument -> none)" in out
    assert _rows(models / "yolo11-ChannelShuffle.yaml")[7] == [-1, 1, "ChannelShuffle", []]

    status = cli("status", "--target", str(root))
    assert status.code == 0, status.out
    for name, stem in (("SPPELANBlock", "sppelan_block"), ("SEBlock", "se_block"), ("ChannelShuffle", "channel_shuffle")):
        assert f"{name} module" in status.out and f"{name} parse_model branch" in status.out
        assert f"{name} (from {stem}.py) is applied." in status.out
    assert "HaloAttention is not applied." in status.out

    result = train_step(
        warm_python,
        root,
        [("yolo11n-SPPELANBlock-SEBlock.yaml", ["SEBlock", "SPPELANBlock"]), ("yolo11n-ChannelShuffle.yaml", ["ChannelShuffle"])],
        tmp_path,
    )
    both = result["yolo11n-SPPELANBlock-SEBlock.yaml"]
    assert both["layers"] == ["SEBlock", "SPPELANBlock"]
    assert all(n > 0 for n in both["n_params"]) and all(g > 0 for g in both["param_grad"])
    shuffle = result["yolo11n-ChannelShuffle.yaml"]
    assert shuffle["layers"] == ["ChannelShuffle"] and shuffle["n_params"] == [0] and shuffle["out_grad"][0] > 0

    out = _ok("verify", "--target", str(root), "--module", "SPPELANBlock", "--imgsz", "64")
    assert "build yolo11n-SPPELANBlock-SEBlock" in out and "build yolo11n-SPPELANBlock " in out
    assert "non-zero gradients on all 6 SPPELANBlock tensors" in out and "verify passed: SPPELANBlock works" in out
    out = _ok("verify", "--target", str(root), "--module", "ChannelShuffle", "--imgsz", "64")
    assert "ChannelShuffle has no parameters; gradients flow through all 1 of its outputs" in out

    _ok("revert", "--target", str(root), "--module", "ChannelShuffle")
    assert _files(root) == after_se  # every byte of the other two kept
    _ok("revert", "--target", str(root), "--module", "SEBlock")
    assert _files(root) == after_spp
    _ok("revert", "--target", str(root), "--module", "SPPELANBlock")
    assert tree_hashes(root) == pristine


def test_revert_alone_takes_every_module_out(tree):
    root, package, mods = tree
    pristine = tree_hashes(root)
    _ok("apply", "--target", str(root), "--module", str(mods["se_block"]), "--layout", "modules")
    _ok("apply", "--target", str(root))  # HaloAttention beside it
    _ok("apply", "--target", str(root), "--module", str(mods["channel_shuffle"]), "--after", "2")
    assert (package / "nn" / "modules" / "se_block.py").read_bytes().startswith(b"# halo-patch module SEBlock channels=same sha256:")
    _ok("revert", "--target", str(root))
    assert tree_hashes(root) == pristine


REFUSALS = {
    "unparsable": ("class Broken(nn.Module:\n    pass\n", "does not parse as Python"),
    "no_class": ("import torch\n\nx = 1\n", "expected exactly one top-level nn.Module subclass (found: none)"),
    "missing_import": ("import torch.nn as nn\nimport einops_not_installed_here\n\n\nclass Mix(nn.Module):\n    def __init__(self, c1, c2):\n        super().__init__()\n", "imports einops_not_installed_here, not installed"),
    "clash": ("import torch.nn as nn\n\n\nclass C2PSA(nn.Module):\n    def __init__(self, c1, c2):\n        super().__init__()\n", "class C2PSA clashes with an Ultralytics class"),
    "unknown_rule": ("import torch.nn as nn\n\n\nclass Odd(nn.Module):\n    def __init__(self, scale, bias):\n        super().__init__()\n", "cannot tell the channel rule of Odd(scale, bias)"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_are_one_line_exit_2_tree_unchanged(tree, tmp_path, case):
    root, _, _ = tree
    text, message = REFUSALS[case]
    path = tmp_path / f"{case}.py"
    path.write_text(text)
    before = tree_hashes(root)
    r = cli("apply", "--target", str(root), "--module", str(path))
    assert r.code == 2, r.out + r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(path) in lines[0], r.err
    assert tree_hashes(root) == before


def test_channels_given_and_revert_of_unknown_module(tree, tmp_path):
    root, _, _ = tree
    path = tmp_path / "odd_scale.py"
    path.write_text(REFUSALS["unknown_rule"][0])
    before = tree_hashes(root)
    for verb in ("revert", "verify"):
        r = cli(verb, "--target", str(root), "--module", "Odd")
        assert r.code == 2 and "--module Odd: no such module" in r.err, r.err
    out = _ok("apply", "--target", str(root), "--module", str(path), "--channels", "none", "--args", "2,3")
    assert "Odd: channels none (--channels none)" in out
    _ok("revert", "--target", str(root), "--module", "Odd")
    assert tree_hashes(root) == before


def test_hand_made_install_of_another_module_named_adopted_and_reverted(tmp_path):
    from module_files import SE
    from tutorial_install import CBAM_MODULE, edit, install_cbam

    root = tmp_path / "tree"
    package = copy_installed(root)
    install_cbam(package)  # the tutorial's way: CBAM.py, `from .CBAM import *`, a star import in tasks.py, `elif m is CBAM:`
    status = cli("status", "--target", str(root))
    assert "CBAM: a module added by hand, not by halo-patch (left as it is):" in status.out
    assert "  CBAM module  ultralytics/nn/Addmodules/CBAM.py: defines class CBAM" in status.out
    module = tmp_path / "cbam_block.py"
    module.write_text(CBAM_MODULE)
    before = tree_hashes(root)
    r = cli("apply", "--target", str(root), "--module", str(module))  # Ultralytics has a CBAM of its own
    assert r.code == 2 and "class CBAM clashes with an Ultralytics class (ultralytics/nn/modules/conv.py)" in r.err
    assert tree_hashes(root) == before

    addmodules = package / "nn" / "Addmodules"  # SEBlock by hand, beside CBAM, as the SE post does it
    (addmodules / "SE.py").write_text(SE)
    (addmodules / "__init__.py").write_text((addmodules / "__init__.py").read_text() + "from .SE import *\n")
    edit(package / "nn" / "tasks.py", "        else:\n            c2 = ch[f]\n", "        elif m in {SEBlock}:\n            c2 = ch[f]\n            args = [c2, *args]\n        else:\n            c2 = ch[f]\n")
    hand_made = tree_hashes(root)
    status = cli("status", "--target", str(root))
    assert "SEBlock: a module added by hand, not by halo-patch (left as it is):" in status.out and "  SEBlock module  ultralytics/nn/Addmodules/SE.py: defines class SEBlock" in status.out
    assert "`halo-patch apply --module <its file> --adopt` puts halo-patch's SEBlock in its place." in status.out

    module = tmp_path / "se_block.py"
    module.write_text(SE)
    r = cli("apply", "--target", str(root), "--module", str(module))
    assert r.code == 2 and tree_hashes(root) == hand_made
    assert "a SEBlock installed by hand is already there (listed above); run `halo-patch apply --module ... --adopt`" in r.err
    out = _ok("apply", "--target", str(root), "--module", str(module), "--adopt")
    assert "SEBlock installed by hand:" in out and "`elif m in {SEBlock}:` builds it as halo-patch does (reused)" in out
    init = (addmodules / "__init__.py").read_text()
    assert "from .se_block import SEBlock" in init and "from .SE import *" not in init  # the user's file stays, no longer imported
    assert "from .CBAM import *" in init and (addmodules / "SE.py").read_text() == SE
    _ok("revert", "--target", str(root), "--module", "SEBlock")
    assert tree_hashes(root) == hand_made


def test_usage_errors_of_module_options(tree, tmp_path):
    root, _, mods = tree
    before = tree_hashes(root)
    cases = [
        (("--module", str(mods["sppelan_block"]), "--replace", "9", "--after", "3"), "--replace: expected either --after or --replace, not both"),
        (("--module", str(mods["sppelan_block"]), "--replace", "9"), "--args (none): expected the output width first"),
        (("--module", str(mods["se_block"]), "--class", "Nope"), "defines no top-level class Nope (classes: SEBlock)"),
        (("--module", str(mods["se_block"]), "--channels", "wide"), "--channels 'wide': expected one of same, out, none"),
        (("--class", "SEBlock"), "--class/--channels: expected together with --module FILE.py"),
        (("--module", str(mods["sppelan_block"]), "--replace", "23", "--args", "64"), "--replace 23 is not a layer SPPELANBlock can take; expected 0 to 22"),
    ]
    for args, message in cases:
        r = cli("apply", "--target", str(root), *args)
        assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and message in r.err, (args, r.err)
    assert tree_hashes(root) == before
