"""`halo-patch compare --weights`: needs the `weights` command (issue 15); run after it is merged.

The base starts from SRC.pt, each variant from SRC carried by `halo-patch weights` (a real subprocess).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import run_cli
from test_compare import BASE, VARIANT, compare_args, make_dataset


def test_compare_weights_starts_both_from_the_same_checkpoint(patched_installed: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data")
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp_path / "cfg"), "PYTHONPATH": str(patched_installed.parent)}
    env.pop("PYTEST_CURRENT_TEST", None)
    make_src = (
        "import sys; from ultralytics import YOLO; m = YOLO('yolo11n.yaml'); "
        "m.train(data=sys.argv[1], epochs=1, imgsz=64, batch=4, workers=0, device='cpu', plots=False, project=sys.argv[2], name='src', verbose=False)"
    )
    proc = subprocess.run([sys.executable, "-c", make_src, str(data), str(tmp_path / "src")], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    src = tmp_path / "src" / "src" / "weights" / "last.pt"
    out = tmp_path / "out"
    result = run_cli(*compare_args(patched_installed, data, out, seeds=1, epochs=1), "--weights", str(src),
                     env={"YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp_path / "cfg")})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Carrying {src} into {VARIANT} (halo-patch weights)" in result.stdout
    carried = list((out / ".halo-compare" / "weights").rglob(f"{VARIANT}.pt"))
    assert len(carried) == 1
    base_args = yaml.safe_load((out / "runs" / f"{BASE}-seed0" / "args.yaml").read_text())
    variant_args = yaml.safe_load((out / "runs" / f"{VARIANT}-seed0" / "args.yaml").read_text())
    assert base_args["pretrained"] == str(src) and variant_args["pretrained"] == str(carried[0])
    differ = {k for k in base_args if base_args[k] != variant_args.get(k)}
    assert differ == {"model", "pretrained", "name", "save_dir"}
    doc = json.loads((out / "compare.json").read_text())
    assert doc["fairness"]["per_run"][-1].startswith("pretrained (--weights")
