"""`--layout modules`: the module under nn/modules/, exported like the package's own, so checkpoints load
under Ultralytics' restricted loading (ULTRALYTICS_SAFE_LOAD=1, 8.4.70+); revert as exact as the default."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from cli_helpers import cli
from conftest import copy_installed, make_clone, make_site_packages, tree_hashes
from warm_python import WarmPython

ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "YOLO_OFFLINE": "1"}

SAVE = """
    from ultralytics import YOLO
    YOLO("yolo11n-HaloAttention.yaml").save("halo.pt")
"""

# Ultralytics' own loader under restricted loading: torch_safe_load, then attempt_load_one_weight.
LOAD_RESTRICTED = """
    import torch
    from ultralytics.nn.tasks import _SafeLoad, load_checkpoint, torch_safe_load
    print("restricted", _SafeLoad.restricted())
    try:
        ckpt, _ = torch_safe_load("halo.pt")
    except Exception as exc:
        print("refused", type(exc).__name__, str(exc).splitlines()[0])
        raise SystemExit(0)
    model, _ = load_checkpoint("halo.pt")
    with torch.no_grad():
        y = model.float().eval()(torch.rand(1, 3, 64, 96))[0]
    print("loaded", type(model.model[9]).__module__, tuple(y.shape))
"""


def run_in_tree(warm: WarmPython, root: Path, code: str, cwd: Path, **env: str) -> str:
    """Python code in a fresh process that imports the tree at `root` first; its stdout."""
    result = warm.run(code, cwd=cwd, env={**ENV, "PYTHONPATH": str(root), **env})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def added_lines(before: str, after: str) -> list[str]:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    lines = [l for l in diff if l[:1] in "+-" and l[:3] not in ("+++", "---")]
    assert all(l.startswith("+") for l in lines), lines
    return [l[1:] for l in lines]


@pytest.mark.parametrize("layout", ["modules", "addmodules"])
def test_checkpoint_under_restricted_loading(layout: str, tmp_path: Path, warm_python: WarmPython) -> None:
    """modules: the checkpoint loads with ULTRALYTICS_SAFE_LOAD=1 through Ultralytics' loader;
    addmodules (the tutorial's place): the same checkpoint is refused there. That is the trade-off."""
    root = tmp_path / "tree"
    package = copy_installed(root)
    tasks_before = (package / "nn/tasks.py").read_text(encoding="utf-8")
    init_before = (package / "nn/modules/__init__.py").read_text(encoding="utf-8")
    applied = cli("apply", "--target", str(root), "--layout", layout)
    assert applied.code == 0, applied.err
    tasks_added = added_lines(tasks_before, (package / "nn/tasks.py").read_text(encoding="utf-8"))
    if layout == "modules":
        assert tasks_added[0] == "from ultralytics.nn.modules import HaloAttention  # halo-patch"
        assert added_lines(init_before, (package / "nn/modules/__init__.py").read_text(encoding="utf-8")) == [
            "from .halo_attention import HaloAttention  # halo-patch",
            '    "HaloAttention",',
        ]
        assert (package / "nn/modules/halo_attention.py").is_file() and not (package / "nn/Addmodules").exists()
    else:
        assert tasks_added[0] == "from ultralytics.nn.Addmodules import HaloAttention  # halo-patch"
    assert tasks_added[1:] == ["        elif m is HaloAttention:  # halo-patch", "            c2 = ch[f]  # halo-patch", "            args = [c2, *args]  # halo-patch"]

    run_in_tree(warm_python, root, SAVE, cwd=tmp_path)
    # the probe's two lines come last (Ultralytics' first-run settings notice may come first)
    out = run_in_tree(warm_python, root, LOAD_RESTRICTED, cwd=tmp_path, ULTRALYTICS_SAFE_LOAD="1").splitlines()[-2:]
    assert out[0] == "restricted True", out
    if layout == "modules":
        assert out[1] == "loaded ultralytics.nn.modules.halo_attention (1, 84, 126)", out
    else:
        assert out[1] == ("refused TypeError ERROR ❌️ halo.pt references types outside the supported Ultralytics checkpoint format. "
                          "Use an official Ultralytics model, i.e. 'yolo predict model=yolo26n.pt'"), out
        unrestricted = run_in_tree(warm_python, root, LOAD_RESTRICTED, cwd=tmp_path, ULTRALYTICS_SAFE_LOAD="0")
        assert unrestricted.splitlines()[-2:] == ["restricted False", "loaded ultralytics.nn.Addmodules.halo_attention (1, 84, 126)"]


@pytest.mark.parametrize("version", ["8.3.40", "8.4.70", "8.4.190"])
@pytest.mark.parametrize("kind", ["site-packages", "clone"])
def test_layout_modules_apply_status_revert(version: str, kind: str, tmp_path: Path) -> None:
    if kind == "clone":
        root = target = make_clone(version, tmp_path / "tree")
    else:
        target = make_site_packages(version, tmp_path / "tree")
        root = target.parent
    pristine = tree_hashes(root)
    assert cli("apply", "--target", str(target), "--layout", "modules", "--check").code == 1
    assert tree_hashes(root) == pristine
    applied = cli("apply", "--target", str(target), "--layout", "modules")
    assert applied.code == 0, applied.err
    after = tree_hashes(root)
    changed = {p for p in after if after[p] != pristine.get(p) and not p.startswith(".halo-patch")}
    assert changed == {
        "ultralytics/nn/modules/halo_attention.py",
        "ultralytics/nn/modules/__init__.py",
        "ultralytics/nn/tasks.py",
        "ultralytics/cfg/models/11/yolo11-HaloAttention.yaml",
    }
    status = cli("status", "--target", str(target))
    assert status.code == 0 and "nn/modules export" in status.out and "fully applied" in status.out
    again = cli("apply", "--target", str(target), "--layout", "modules")
    assert again.code == 0 and "already applied" in again.out
    plain = cli("apply", "--target", str(target))  # no --layout: the layout the tree is patched with
    assert plain.code == 0 and "already applied" in plain.out
    other = cli("apply", "--target", str(target), "--layout", "addmodules")
    assert other.code == 2 and other.err == (
        f"error: {root}/ultralytics/nn/modules/halo_attention.py: HaloAttention is applied with --layout modules; "
        "run `halo-patch revert` first, then apply --layout addmodules\n"
    )
    assert tree_hashes(root) == after
    assert cli("revert", "--target", str(target)).code == 0
    assert tree_hashes(root) == pristine


def test_half_applied_modules_layout_is_reported_in_that_layout(tmp_path: Path) -> None:
    """The module file deleted by hand: status still reads the tree in the modules layout and names what is missing."""
    root = tmp_path / "tree"
    package = copy_installed(root)
    assert cli("apply", "--target", str(root), "--layout", "modules").code == 0
    (package / "nn/modules/halo_attention.py").unlink()
    status = cli("status", "--target", str(root))
    assert status.code == 1 and "partially applied" in status.out
    rows = {l.split("│")[1].strip(): l.split("│")[3].strip() for l in status.out.splitlines() if l.count("│") >= 4}
    assert rows["HaloAttention module"] == "absent" and rows["nn/modules export"] == "applied"
    assert rows["tasks.py import"] == "applied" and rows["parse_model branch"] == "applied"
    assert "ultralytics/nn/modules/halo_attention.py" in status.out
