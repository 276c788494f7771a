"""Each YOLO family the installed Ultralytics ships, with HaloAttention applied from its own base yaml, and a
user's own yaml: the layer goes where the base yaml's rows say, the input channels apply reports at n/s/m/l/x
are those of models Ultralytics builds, `halo-patch verify` builds, runs (non-square too) and trains a step
of every one, and revert restores every byte.

Every expected value comes from the base yaml (yaml.safe_load) and the README's rules, or from Ultralytics
itself building the written yamls in the tree (one subprocess); never from halo_patch's planner."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_helpers import cli
from conftest import copy_installed, seal_matches, tree_hashes

from halo_patch.verify.models import guess_task

# (--base, extra apply flags); a user's own yaml (by path) gets two placements, one of them in the head.
FAMILIES = ["yolo11", "yolo11-seg", "yolo11-pose", "yolo11-obb", "yolo11-cls", "yolo12", "yolo26", "yolov8"]
USER_YAML = "yolo11-p4p3.yaml"
USER_AFTER = [4, 16]
USER_FLAGS = ["--after", "4", "--after", "16", "--args", "2,1,32,4"]
POOLING = {"SPPF", "SPP", "SPPELAN"}  # README: without --after, the last backbone layer before these
SCALES = "nsmlx"
IMGSZ = 64  # verify's size: 64x64, 64x32, 96x96, 256x256, 32x32 (classify: 64x64, 64x32, 32x32)

# Ultralytics' own parse_model builds each written yaml at every scale (on torch's meta device: real
# modules and shapes, no weights), and guesses the task of every model yaml of the tree.
SCRIPT = r"""
import json, sys
from copy import deepcopy
from pathlib import Path
import torch
from ultralytics.nn.tasks import guess_model_task, parse_model, yaml_model_load

names, models_dir = json.loads(sys.argv[1]), Path(sys.argv[2])
built = {}
for name in names:
    d = yaml_model_load(name)
    with torch.device("meta"):
        net, _ = parse_model(deepcopy(d), ch=d.get("channels", 3), verbose=False)
    halo = [(i, m) for i, m in enumerate(net) if type(m).__name__ == "HaloAttention"]
    built[name] = {"scale": d.get("scale"), "halo": [i for i, _ in halo], "c_in": [m.to_q.in_features for _, m in halo],
                   "heads": [m.heads for _, m in halo], "module": sorted({type(m).__module__ for _, m in halo})}
tasks = {str(p): guess_model_task(yaml_model_load(p)) for p in sorted(models_dir.rglob("*.yaml"))}
print(json.dumps({"built": built, "tasks": tasks}))
"""


def shipped_yaml(package: Path, base: str) -> Path:
    (path,) = [p for p in (package / "cfg/models").rglob(f"{base}.yaml")]
    return path


def rows(model: dict) -> list:
    return list(model["backbone"]) + list(model.get("head") or [])


def expected_layers(base: dict, after: list[int]) -> list[int]:
    """Where the inserted rows land: after each `--after` layer, shifted by one per row inserted before it;
    without --after, after the last backbone row before the first SPPF/SPP/SPPELAN, else the backbone's last."""
    if not after:
        pooling = [i for i, r in enumerate(base["backbone"]) if r[2] in POOLING]
        after = [pooling[0] - 1 if pooling and pooling[0] > 0 else len(base["backbone"]) - 1]
    return [a + 1 + sum(b < a for b in after) for a in sorted(after)]


def scaled(stem: str, letter: str) -> str:
    """`yolo11-seg` at m -> `yolo11m-seg-HaloAttention.yaml`: the letter after the yolo version number."""
    return re.sub(r"^(yolov?\d+)", rf"\g<1>{letter}", stem, count=1) + "-HaloAttention.yaml"


def channel_table(out: str) -> list[list[str]]:
    """apply's table of inserted layers: layer, follows, read by, c_in n, s, m, l, x."""
    return [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.count("│") == 9]


def expected_shape(model: dict, h: int, w: int) -> list[int]:
    """What the model returns in eval mode at h x w, from its yaml."""
    head = model["head"][-1]
    nc = model["nc"]
    anchors = sum(math.ceil(h / s) * math.ceil(w / s) for s in (8, 16, 32))
    if head[2] == "Classify":
        return [1, nc]
    extra = {"Segment": lambda: 4 + head[3][1], "Pose": lambda: 4 + math.prod(model["kpt_shape"]), "OBB": lambda: 5}
    return [1, nc + extra.get(head[2], lambda: 4)(), anchors]


def test_every_family_builds_runs_trains_and_reverts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path))
    package = copy_installed(tmp_path / "tree")
    pristine = tree_hashes(package.parent)
    user_yaml = tmp_path / "mine" / USER_YAML
    user_yaml.parent.mkdir()
    shutil.copy(shipped_yaml(package, "yolo11"), user_yaml)
    cases = {}  # --base -> (base yaml data, the file apply writes, the base's stem, inserted layers, c_in per scale shown)
    for base, flags in [*((b, []) for b in FAMILIES), (str(user_yaml), USER_FLAGS)]:
        source = shipped_yaml(package, base) if base in FAMILIES else user_yaml
        path = (source.parent if base in FAMILIES else package / "cfg/models/custom") / f"{source.stem}-HaloAttention.yaml"
        model = yaml.safe_load(source.read_text(encoding="utf-8"))
        layers = expected_layers(model, USER_AFTER if flags else [])
        result = cli("apply", "--target", str(package), "--base", base, *flags)
        assert result.code == 0, result.err
        assert "Graph proven" in result.out
        assert f"Build it with YOLO('{scaled(source.stem, 'n')}')" in result.out
        written = path.read_bytes()  # exactly what apply wrote: sealed, with our rows at the expected layers
        assert seal_matches(written, path), base
        new_rows = rows(yaml.safe_load(written))
        assert [i for i, r in enumerate(new_rows) if r[2] == "HaloAttention"] == layers, base
        assert [r[1:] for r in new_rows if r[2] != "HaloAttention"] == [r[1:] for r in rows(model)], base
        table = channel_table(result.out)
        assert [int(row[0]) for row in table] == layers, base
        cases[base] = (model, path, source.stem, layers, {s: [int(row[3 + k]) for row in table] for k, s in enumerate(SCALES)})
    assert cases["yolo11"][3] == [9] and cases[str(user_yaml)][3] == [5, 18]  # README: after 8 C3k2 (then SPPF)
    assert cases[str(user_yaml)][1] == package / "cfg/models/custom/yolo11-p4p3-HaloAttention.yaml"
    assert scaled("yolo11-seg", "n") == "yolo11n-seg-HaloAttention.yaml" and scaled("yolov8", "x") == "yolov8x-HaloAttention.yaml"

    # Ultralytics builds every written yaml at n/s/m/l/x: the layers and input channels apply reported
    env = {**os.environ, "PYTHONPATH": str(package.parent), "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp_path),
           "PYTHONDONTWRITEBYTECODE": "1"}
    names = [scaled(stem, s) for _, _, stem, _, _ in cases.values() for s in SCALES]
    run = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(names), str(package / "cfg/models")],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    for base, (model, path, stem, layers, channels) in cases.items():
        for s in SCALES:
            got = report["built"][scaled(stem, s)]
            assert got["scale"] == s and got["halo"] == layers, (base, s)
            assert got["c_in"] == channels[s], (base, s)
            assert got["module"] == ["ultralytics.nn.Addmodules.halo_attention"]
    assert report["built"][scaled("yolo11-p4p3", "n")]["heads"] == [4, 4]  # --args 2,1,32,4
    # the task verify plans with is the one Ultralytics guesses, on every model yaml of the tree (ours too)
    known = {where: task for where, task in report["tasks"].items() if task is not None}
    assert len(known) > 40  # None: Ultralytics cannot tell from the yaml either (RT-DETR); YOLO() then says detect
    for where, task in known.items():
        assert guess_task(Path(where)) == task, where

    # halo-patch verify, once, over every yaml apply wrote: built, run at square and non-square sizes, trained a step
    before = tree_hashes(package.parent)
    verified = cli("verify", "--target", str(package), "--imgsz", str(IMGSZ), "--json", str(tmp_path / "verify.json"))
    assert verified.code == 0, verified.out + verified.err
    assert verified.out.rstrip().splitlines()[-1].startswith("verify passed: HaloAttention works in Ultralytics ")
    assert tree_hashes(package.parent) == before, "verify wrote into the target"
    steps = {s["id"]: s for s in json.loads((tmp_path / "verify.json").read_text())["steps"]}
    assert all(s["result"] == "passed" for s in steps.values()), [(k, s["detail"]) for k, s in steps.items()]
    assert steps["import"]["data"]["halo_attention_class"] == "ultralytics.nn.Addmodules.halo_attention.HaloAttention"
    keys = {base: "n" if base == "yolo11" else scaled(stem, "n").removesuffix("-HaloAttention.yaml")
            for base, (_, _, stem, _, _) in cases.items()}
    assert sorted(k for k in steps if k.startswith("build:")) == sorted(f"build:{k}" for k in keys.values())
    for base, (model, path, stem, layers, channels) in cases.items():
        build, forward, step = (steps[f"{kind}:{keys[base]}"] for kind in ("build", "forward", "train-step"))
        assert Path(build["yaml"]).resolve() == path.resolve() and build["model"] == scaled(stem, "n"), base
        assert build["data"]["layers"] == [{"index": i, "channels": c} for i, c in zip(layers, channels["n"])], base
        sizes = [tuple(map(int, size["size"].split("x"))) for size in forward["data"]["sizes"]]  # WxH
        assert any(w != h for w, h in sizes), base
        assert [size["output"] for size in forward["data"]["sizes"]] == [expected_shape(model, h, w) for w, h in sizes], base
        assert step["data"]["zero_grad"] == [] and len(step["data"]["params"]) == 6 * len(layers), base
        assert sum(p.endswith("to_q.weight") for p in step["data"]["params"]) == len(layers), base
    tasks = {base: steps[f"build:{keys[base]}"]["data"]["task"] for base in cases}
    assert tasks == {**dict.fromkeys(cases, "detect"), "yolo11-seg": "segment", "yolo11-pose": "pose",
                     "yolo11-obb": "obb", "yolo11-cls": "classify"}

    reverted = cli("revert", "--target", str(package))
    assert reverted.code == 0, reverted.err
    assert tree_hashes(package.parent) == pristine
