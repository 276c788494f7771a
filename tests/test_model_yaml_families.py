"""Each YOLO family the installed Ultralytics ships, with HaloAttention applied from its own base yaml:
the model builds, runs at a non-square size, one training step reaches HaloAttention, and revert
restores every byte. The layer index and input channels apply reports (no torch) are the built ones."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from cli_helpers import cli
from conftest import copy_installed, tree_hashes

from halo_patch import ownership
from halo_patch.model_yaml import plan_model_yaml
from halo_patch.target import find_target

# (--base, extra apply flags); a user's own yaml (by path) gets two placements, one of them in the head.
FAMILIES = ["yolo11", "yolo11-seg", "yolo11-pose", "yolo11-obb", "yolo11-cls", "yolo12", "yolo26", "yolov8"]
USER_YAML = "yolo11-p4p3.yaml"
USER_FLAGS = ["--after", "4", "--after", "16", "--args", "2,1,32,4"]
HEIGHT, WIDTH = 256, 320

SCRIPT = r"""
import json, sys, torch
from ultralytics import YOLO
from ultralytics.cfg import get_cfg
from ultralytics.utils import DEFAULT_CFG

def first_tensor(y):
    while not isinstance(y, torch.Tensor):
        y = y[0] if isinstance(y, (list, tuple)) else next(iter(y.values()))
    return y

def batch_for(task, net, h, w, b=2):
    # two boxes per image; masks, keypoints, angles where the task has them
    n = 2 * b
    img = torch.rand(b, 3, h, w)
    if task == "classify":
        return {"img": img, "cls": torch.tensor([0, 1])}
    batch = {"img": img, "batch_idx": torch.arange(b).repeat_interleave(2).float(), "cls": torch.zeros(n, 1),
             "bboxes": torch.tensor([[0.3, 0.4, 0.2, 0.3], [0.6, 0.6, 0.3, 0.2]] * b)}
    if task == "obb":
        batch["bboxes"] = torch.cat([batch["bboxes"], torch.full((n, 1), 0.3)], 1)
    if task == "pose":
        kpt = net.model[-1].kpt_shape
        batch["keypoints"] = torch.rand(n, kpt[0], kpt[1])
    if task == "segment":
        masks = torch.zeros(b, h, w)
        masks[:, h // 4 : h // 2, w // 4 : w // 2] = 1
        masks[:, h // 2 :, w // 2 :] = 2
        batch["masks"], batch["sem_masks"] = masks, torch.zeros(b, h, w)
    return batch

h, w = int(sys.argv[1]), int(sys.argv[2])
out = {}
for name in sys.argv[3:]:
    torch.manual_seed(0)
    model = YOLO(name)
    net = model.model
    halo = [(i, m) for i, m in enumerate(net.model) if type(m).__name__ == "HaloAttention"]
    net.eval()
    with torch.no_grad():
        shape = list(first_tensor(net(torch.zeros(1, 3, h, w))).shape)
    net.train()
    net.args = get_cfg(DEFAULT_CFG)
    for p in net.parameters():
        p.requires_grad_(True)
    loss, _ = net.loss(batch_for(model.task, net, h, w))
    loss.sum().backward()
    out[name] = {"task": model.task, "halo": [i for i, _ in halo], "c_in": [m.to_q.in_features for _, m in halo],
                 "heads": [m.heads for _, m in halo], "module": type(halo[0][1]).__module__, "shape": shape,
                 "grad": [float(m.to_q.weight.grad.abs().sum()) for _, m in halo]}
print(json.dumps(out))
"""


def expected_shape(model: dict) -> list[int]:
    """What the model returns in eval mode at HEIGHT x WIDTH, from its yaml."""
    head = model["head"][-1]
    nc = model["nc"]
    anchors = sum((HEIGHT // s) * (WIDTH // s) for s in (8, 16, 32))
    if head[2] == "Classify":
        return [1, nc]
    extra = {"Segment": lambda: 4 + head[3][1], "Pose": lambda: 4 + math.prod(model["kpt_shape"]), "OBB": lambda: 5}
    return [1, nc + extra.get(head[2], lambda: 4)(), anchors]


def test_every_family_builds_runs_trains_and_reverts(tmp_path: Path) -> None:
    package = copy_installed(tmp_path / "tree")
    pristine = tree_hashes(package.parent)
    own = package / "cfg/models/11/yolo11.yaml"
    user_yaml = tmp_path / "mine" / USER_YAML
    user_yaml.parent.mkdir()
    shutil.copy(own, user_yaml)
    target = find_target(package)
    plans = {}
    for base, flags in [*((b, []) for b in FAMILIES), (str(user_yaml), USER_FLAGS)]:
        result = cli("apply", "--target", str(package), "--base", base, *flags)
        assert result.code == 0, result.err
        assert "Graph proven" in result.out
        after = tuple(int(flags[i + 1]) for i, f in enumerate(flags) if f == "--after")
        args = (2, 1, 32, 4) if flags else (2, 1)
        plans[base] = plan_model_yaml(target, base, after, args)
        assert f"Build it with YOLO('{plans[base].build}')" in result.out
        written = plans[base].path.read_bytes()  # exactly what apply wrote: sealed, with our rows at the planned layers
        assert ownership.is_sealed_as(written, plans[base].path), base
        rows = [r for key in ("backbone", "head") for r in yaml.safe_load(written)[key]]
        assert [i for i, r in enumerate(rows) if r[2] == "HaloAttention"] == [l.index for l in plans[base].inserted], base
    assert plans[str(user_yaml)].path == package / "cfg/models/custom/yolo11-p4p3-HaloAttention.yaml"
    assert plans["yolo11-seg"].build == "yolo11n-seg-HaloAttention.yaml"

    env = {**os.environ, "PYTHONPATH": str(package.parent), "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp_path),
           "PYTHONDONTWRITEBYTECODE": "1"}
    names = [p.build for p in plans.values()]
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(HEIGHT), str(WIDTH), *names], capture_output=True,
                         text=True, cwd=tmp_path, env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    for base, plan in plans.items():
        got = report[plan.build]
        n_channels = [dict(layer.channels)["n"] for layer in plan.inserted]
        assert got["halo"] == [layer.index for layer in plan.inserted], base
        assert got["c_in"] == n_channels, base
        assert got["module"] == "ultralytics.nn.Addmodules.halo_attention"
        assert got["shape"] == expected_shape(yaml.safe_load(plan.text)), base
        assert all(g > 0 for g in got["grad"]), base
    assert report[plans["yolo11-cls"].build]["task"] == "classify"
    assert {report[plans[b].build]["task"] for b in ("yolo11-seg", "yolo11-pose", "yolo11-obb")} == {"segment", "pose", "obb"}
    assert report[plans[str(user_yaml)].build]["heads"] == [4, 4]
    assert report[plans[str(user_yaml)].build]["halo"] == [5, 18]  # after 4 (backbone) and after 16 (head)

    reverted = cli("revert", "--target", str(package))
    assert reverted.code == 0, reverted.err
    assert tree_hashes(package.parent) == pristine
