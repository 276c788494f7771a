"""`halo-patch compare --weights`: both sides start from one checkpoint.

The base starts from SRC.pt (det_n of the session's checkpoints: conftest trained_sources, made by Ultralytics'
trainer), each variant from SRC carried by `halo-patch weights` (a real subprocess).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import run_cli
from test_compare import BASE, VARIANT, compare_args, make_dataset


def test_compare_weights_starts_both_from_the_same_checkpoint(patched_installed: Path, trained_sources: dict, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data")
    src = trained_sources["src"]["det_n"]
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
