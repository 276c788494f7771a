"""The patched copy of the installed Ultralytics builds YOLO11-HaloAttention and runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BUILD_AND_RUN = r"""
import json, torch, ultralytics
from ultralytics import YOLO
model = YOLO("yolo11n-HaloAttention.yaml")
layer = model.model.model[9]
model.model.eval()
with torch.no_grad():
    y = model.model(torch.zeros(1, 3, 640, 640))
print(json.dumps({
    "file": ultralytics.__file__,
    "type": type(layer).__name__,
    "module": type(layer).__module__,
    "in_channels": layer.to_q.in_features,
    "out_shape": list((y[0] if isinstance(y, (list, tuple)) else y).shape),
}))
"""


def test_yolo11n_halo_builds_and_runs_a_forward_pass(patched_installed: Path, tmp_path: Path) -> None:
    root = patched_installed.parent
    env = {**os.environ, "PYTHONPATH": str(root), "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", BUILD_AND_RUN], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["file"] == str(patched_installed / "__init__.py")
    assert report["type"] == "HaloAttention"
    assert report["module"] == "ultralytics.nn.Addmodules.halo_attention"
    assert report["in_channels"] == 256
    assert report["out_shape"] == [1, 84, 8400]  # Detect: 4 box + 80 classes, 80^2 + 40^2 + 20^2 anchors


def test_revert_after_import_removes_bytecode_of_created_files(tmp_path: Path) -> None:
    """Importing the patched tree writes __pycache__ into Addmodules; revert leaves no trace of it."""
    from cli_helpers import cli
    from conftest import copy_installed, tree_hashes

    package = copy_installed(tmp_path / "tree")
    pristine = tree_hashes(package.parent)
    assert cli("apply", "--target", str(package)).code == 0
    env = {**os.environ, "PYTHONPATH": str(package.parent), "YOLO_CONFIG_DIR": str(tmp_path)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    probe = "import ultralytics.nn.tasks as t; print(t.HaloAttention.__module__)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "ultralytics.nn.Addmodules.halo_attention", out.stderr[-2000:]
    assert list((package / "nn/Addmodules/__pycache__").glob("halo_attention.*.pyc"))

    assert cli("revert", "--target", str(package)).code == 0
    assert not (package / "nn/Addmodules").exists()
    after = {p: h for p, h in tree_hashes(package.parent).items() if "__pycache__" not in p}
    assert after == pristine
