"""Checkpoints made by Ultralytics' own trainer, once per test session, in ONE process (conftest: trained_sources).

The tree is a copy of the installed release with the blog tutorial's HaloAttention installed by hand (the
base yamls build as in any tree); the same process saves the tutorial's own model with Model.save. Used by
test_weights (every source) and test_compare_weights (det_n as compare's --weights).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import copy_installed
from tutorial_install import install_tutorial

# name -> (base yaml to train, the HaloAttention yaml apply writes for its base, as YOLO takes it)
SOURCES = {
    "det_n": ("yolo11n.yaml", "yolo11n-HaloAttention.yaml"),
    "det_s": ("yolo11s.yaml", "yolo11s-HaloAttention.yaml"),
    "seg_n": ("yolo11n-seg.yaml", "yolo11n-seg-HaloAttention.yaml"),
    "seg_s": ("yolo11s-seg.yaml", "yolo11s-seg-HaloAttention.yaml"),
}

# A tiny dataset with its own class names: non-square images, one box of each class, polygon labels (detect and seg).
MAKE_DATA = """
import random
from pathlib import Path
from PIL import Image, ImageDraw

def make_data(root):
    root = Path(root)
    rng = random.Random(0)
    for split, count in (("train", 4), ("val", 2)):
        for kind in ("images", "labels"):
            (root / kind / split).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            w, h = 80, 64
            img = Image.new("RGB", (w, h), (rng.randint(0, 80),) * 3)
            draw, lines = ImageDraw.Draw(img), []
            for c in (0, 1):
                x0, y0 = rng.randint(0, w - 30), rng.randint(0, h - 30)
                x1, y1 = x0 + rng.randint(12, 28), y0 + rng.randint(12, 28)
                draw.rectangle([x0, y0, x1, y1], fill=(200, 60, 60) if c == 0 else (60, 200, 60))
                corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
                lines.append(" ".join([str(c)] + ["%.4f %.4f" % (x / w, y / h) for x, y in corners]))
            img.save(root / "images" / split / ("%d.png" % k))
            (root / "labels" / split / ("%d.txt" % k)).write_text("\\n".join(lines) + "\\n")
    (root / "data.yaml").write_text("path: %s\\ntrain: images/train\\nval: images/val\\nnames:\\n  0: widget\\n  1: gadget\\n" % root)
    return str(root / "data.yaml")
"""

TRAIN_ARGS = "epochs=1, imgsz=64, batch=4, workers=0, plots=False, device='cpu', amp=False, verbose=False, exist_ok=True"

# The tutorial's module at work: its model built from the user's yaml and saved by Ultralytics' own Model.save
# (trained it could not be: its divisibility assert fails on the validator's 96 px letterboxed batches).
# Then every source trained by the trainer, 1 epoch each.
TRAIN_SOURCES = MAKE_DATA + f"""
import json, sys, torch
from ultralytics import YOLO
work, tutorial = sys.argv[1], sys.argv[3]
torch.manual_seed(0)
model = YOLO("yolo11n-HaloAttention.yaml")
for p in model.model.parameters():  # weights of its own, unlike any fresh build
    torch.nn.init.normal_(p, std=0.05) if p.dim() > 1 else None
model.model.names = {{0: "widget", 1: "gadget"}}
model.save(tutorial)
tutorial_class = type(model.model.model[9]).__module__
data = make_data(work + "/data")
for name, base in json.loads(sys.argv[2]).items():
    YOLO(base).train(data=data, project=work + "/runs", name=name, {TRAIN_ARGS})
print("REPORT " + json.dumps({{"tutorial_class": tutorial_class}}))
"""


def run_in(tree: Path, code: str, *args: str, env: dict | None = None) -> dict:
    """Python code run by the target's Python with the tree first on its path; the JSON it reports."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True, text=True, cwd=tree.parent,
        env={**os.environ, "PYTHONPATH": str(tree), "YOLO_CONFIG_DIR": str(tree.parent / "config"), "YOLO_OFFLINE": "1",
             "YOLO_AUTOINSTALL": "false", "PYTHONDONTWRITEBYTECODE": "1", **(env or {})},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    lines = [l for l in result.stdout.splitlines() if l.startswith("REPORT ")]
    return json.loads(lines[-1][len("REPORT "):]) if lines else {"stdout": result.stdout}


def train_sources(root: Path) -> dict:
    """The tutorial tree (not yet adopted), the data, each source's best.pt, the tutorial's saved model."""
    tree = root / "t"
    copy_installed(tree)
    install_tutorial(tree / "ultralytics", form="is")
    work, tutorial = root / "work", root / "tutorial.pt"
    report = run_in(tree, TRAIN_SOURCES, str(work), json.dumps({k: v[0] for k, v in SOURCES.items()}), str(tutorial))
    src = {name: work / "runs" / name / "weights" / "best.pt" for name in SOURCES}
    return {"tree": tree, "work": work, "src": {**src, "tutorial": tutorial}, "tutorial_class": report["tutorial_class"],
            "data": work / "data" / "data.yaml"}
