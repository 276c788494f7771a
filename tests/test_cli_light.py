"""apply, revert, status and --help never import torch or ultralytics (speed, and no target code runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import copy_installed

PROBE = r"""
import json, sys
from halo_patch.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "ultralytics", "numpy", "cv2"})
print(json.dumps({"code": code, "heavy": heavy}))
"""


def run_probe(*args: str, pythonpath: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(pythonpath)},
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_verbs_import_neither_torch_nor_ultralytics(tmp_path: Path) -> None:
    """Without --target, the copy this Python would import is found: here the tree first on
    PYTHONPATH, so the test does not depend on whether the environment's own copy is patched."""
    copy_installed(tmp_path)
    t = ["--target", str(tmp_path)]
    steps = [(["--help"], 0), (["apply", *t], 0), (["status"], 0), (["revert"], 0), (["status", *t], 1), (["bases"], 0)]
    for args, code in steps:
        result = run_probe(*args, pythonpath=tmp_path)
        assert result == {"code": code, "heavy": []}, (args, result)
