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
