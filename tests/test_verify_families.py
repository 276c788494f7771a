"""`halo-patch verify` on every YOLO11 family: segment, pose, obb and classify yamls built, run and trained.

The family yamls are written by `halo-patch apply --base <family>`; the broken ones by hand, sealed
with halo_patch.ownership so that they pass as apply's.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import cli
from conftest import copy_installed, make_site_packages, tree_hashes

from halo_patch import ownership
from halo_patch.target import find_target
from halo_patch.verify.models import parse_bases, plan_models, with_scale

FAMILIES = {"yolo11-seg": "segment", "yolo11-pose": "pose", "yolo11-obb": "obb", "yolo11-cls": "classify"}
HALO_ROW = [-1, 1, "HaloAttention", [2, 1]]


def base_model(package: Path, base: str) -> dict[str, Any]:
    return yaml.safe_load((package / "cfg" / "models" / "11" / f"{base}.yaml").read_text(encoding="utf-8"))


def write_family_yaml(package: Path, base: str, model: dict[str, Any]) -> Path:
    """`<base>-HaloAttention.yaml` beside the base, sealed as apply seals what it writes."""
    path = package / "cfg" / "models" / "11" / f"{base}-HaloAttention.yaml"
    path.write_text(ownership.seal(yaml.safe_dump(model, sort_keys=False), path), encoding="utf-8")
    return path


def apply_families(root: Path, bases: tuple[str, ...]) -> None:
    """`halo-patch apply`, then `halo-patch apply --base <family>` for each family."""
    for args in [()] + [("--base", base) for base in bases]:
        result = cli("apply", "--target", str(root), *args)
        assert result.code == 0, result.out + result.err


@pytest.fixture(scope="module")
def family_tree(tmp_path_factory) -> Path:
    """A copy of the installed release, patched, with a sealed HaloAttention yaml per family; its package dir."""
    root = tmp_path_factory.mktemp("families")
    package = copy_installed(root)
    apply_families(root, tuple(FAMILIES))
    return package


@pytest.fixture
def family_copy(family_tree: Path, tmp_path: Path) -> Path:
    shutil.copytree(family_tree.parent, tmp_path / "tree")
    return tmp_path / "tree" / "ultralytics"


def verdict(out: str) -> str:
    return out.rstrip().splitlines()[-1]


def anchors(h: int, w: int) -> int:
    return sum(math.ceil(h / s) * math.ceil(w / s) for s in (8, 16, 32))


# ---------------------------------------------------------------- every family passes


def test_every_family_builds_runs_and_trains(family_tree: Path, tmp_path: Path) -> None:
    before = tree_hashes(family_tree.parent)
    report = tmp_path / "report.json"
    result = cli("verify", "--target", str(family_tree), "--json", str(report))
    assert result.code == 0, result.out + result.err
    assert verdict(result.out).startswith("verify passed: HaloAttention works in Ultralytics ")
    assert tree_hashes(family_tree.parent) == before, "verify wrote into the target"

    data = json.loads(report.read_text())
    ids = [s["id"] for s in data["steps"]]
    expected_ids = ["status", "import", "build:n", "forward:n", "train-step:n"]
    for base in sorted(FAMILIES):  # the default yaml first, then the others by path
        model = base.replace("yolo11", "yolo11n")
        expected_ids += [f"build:{model}", f"forward:{model}", f"train-step:{model}"]
    assert ids == expected_ids
    steps = {s["id"]: s for s in data["steps"]}
    assert all(s["result"] == "passed" for s in data["steps"]), [(s["id"], s["detail"]) for s in data["steps"]]
    for label in ("build n", "forward n", "train step n", "build yolo11n-seg", "forward yolo11n-pose", "train step yolo11n-cls"):
        assert re.search(rf"^(│ )?{re.escape(label)}\s", result.out, re.M), label  # boxed, or plain when wider than the screen

    for base, task in FAMILIES.items():
        key = base.replace("yolo11", "yolo11n")
        spec = base_model(family_tree, base)
        build, forward, step = steps[f"build:{key}"], steps[f"forward:{key}"], steps[f"train-step:{key}"]
        written = yaml.safe_load(Path(build["yaml"]).read_text(encoding="utf-8"))
        (index,) = [i for i, row in enumerate(written["backbone"] + written["head"]) if row[2] == "HaloAttention"]
        assert build["model"] == f"{key}-HaloAttention.yaml" and build["scale"] == "n"
        assert build["data"]["task"] == task and build["data"]["layers"] == [{"index": index, "channels": 256}]
        assert build["detail"].startswith(f"layer {index} HaloAttention 256 ch; ") and f"({key} " in build["detail"]
        assert build["data"]["params"] > build["data"]["plain_params"]
        assert step["data"]["zero_grad"] == [] and len(step["data"]["params"]) == 6
        sizes = [s["size"] for s in forward["data"]["sizes"]]
        if task == "classify":
            assert sizes == ["224x224", "224x160", "32x32"]
            assert [s["output"] for s in forward["data"]["sizes"]] == [[1, spec["nc"]]] * 3
            assert [s["halo"] for s in forward["data"]["sizes"]] == [["7x7"], ["7x5"], ["1x1"]]
            assert forward["detail"] == (
                f"224x224, 224x160, 32x32 (WxH): {spec['nc']} class probabilities summing to 1; HaloAttention at P5 7x7, 7x5, 1x1"
            )
            assert "at 224x224" in step["detail"]
            continue
        assert sizes == ["640x640", "640x480", "672x672", "256x256", "32x32"]
        extra = {"segment": 32, "pose": spec.get("kpt_shape", [0, 0])[0] * spec.get("kpt_shape", [0, 0])[1], "obb": 1}[task]
        hws = [(640, 640), (480, 640), (672, 672), (256, 256), (32, 32)]
        assert [s["output"] for s in forward["data"]["sizes"]] == [[1, 4 + spec["nc"] + extra, anchors(h, w)] for h, w in hws]
        assert "HaloAttention at P5 20x20, 20x15, 21x21, 8x8, 1x1" in forward["detail"]
        assert f"x 8400, 6300, 9261, 1344, 21 anchors" in forward["detail"]
        if task == "segment":
            assert [s["proto"] for s in forward["data"]["sizes"]] == [[1, 32, h // 4, w // 4] for h, w in hws]
            assert f"{4 + spec['nc'] + 32} = 4 box + {spec['nc']} class + 32 mask coefficient channels" in forward["detail"]
            assert "mask prototypes 32 x 160x160, 160x120, 168x168, 64x64, 8x8" in forward["detail"]
        if task == "pose":
            k, d = spec["kpt_shape"]
            assert f"+ {k * d} keypoint ({k}x{d}) channels" in forward["detail"]
        if task == "obb":
            assert f"{spec['nc'] + 5} = 4 box + {spec['nc']} class + 1 angle channels" in forward["detail"]
        assert step["detail"].endswith(f"at 640x640 ({task} batch of 3)")


def test_base_and_scale_pick_the_models(family_tree: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = cli("verify", "--target", str(family_tree), "--base", "yolo11-cls", "--scale", "n,s", "--json", str(report))
    assert result.code == 0, result.out
    data = json.loads(report.read_text())
    assert data["options"]["bases"] == ["yolo11-cls"]
    assert [s["id"] for s in data["steps"]] == [
        "status", "import",
        "build:yolo11n-cls", "forward:yolo11n-cls", "train-step:yolo11n-cls",
        "build:yolo11s-cls", "forward:yolo11s-cls", "train-step:yolo11s-cls",
    ]  # fmt: skip
    builds = {s["id"]: s for s in data["steps"] if s["id"].startswith("build:")}
    assert builds["build:yolo11s-cls"]["model"] == "yolo11s-cls-HaloAttention.yaml"
    assert builds["build:yolo11s-cls"]["data"]["channels"] == 512 > builds["build:yolo11n-cls"]["data"]["channels"]


def test_families_on_an_older_release(tmp_path: Path) -> None:
    """8.4.0: its pose and obb losses read the batch's resized_shape, its segment loss the batch size."""
    package = make_site_packages("8.4.0", tmp_path / "site")
    apply_families(package.parent, ("yolo11-seg", "yolo11-pose", "yolo11-obb"))
    result = cli("verify", "--target", str(package.parent), "--base", "yolo11-seg,yolo11-pose,yolo11-obb", "--imgsz", "320")
    assert result.code == 0, result.out
    assert verdict(result.out).startswith(f"verify passed: HaloAttention works in Ultralytics 8.4.0 at {package}")
    for family in ("seg", "pose", "obb"):
        assert re.search(rf"^(│ )?train step yolo11n-{family}\s", result.out, re.M)


# ---------------------------------------------------------------- broken family yamls


def test_yaml_without_the_layer_fails_at_build(family_copy: Path) -> None:
    write_family_yaml(family_copy, "yolo11-pose", base_model(family_copy, "yolo11-pose"))  # sealed, but no HaloAttention row
    result = cli("verify", "--target", str(family_copy), "--base", "yolo11-pose")
    assert result.code == 1, result.out
    n_layers = len(base_model(family_copy, "yolo11-pose")["backbone"]) + len(base_model(family_copy, "yolo11-pose")["head"])
    assert verdict(result.out) == (
        f"verify failed at build yolo11n-pose: yolo11n-pose-HaloAttention.yaml builds without a HaloAttention layer "
        f"({n_layers} layers); expected the row(s) apply inserted: rewrite the yaml with halo-patch apply"
    )
    assert result.out.count("needs build yolo11n-pose") == 2


def test_yaml_with_unshifted_indices_fails_at_build(family_copy: Path) -> None:
    """The row inserted but the head's `from` indices left as they were: the graph differs from the base."""
    model = base_model(family_copy, "yolo11-seg")
    model["backbone"].insert(9, HALO_ROW)
    write_family_yaml(family_copy, "yolo11-seg", model)
    result = cli("verify", "--target", str(family_copy), "--base", "yolo11-seg")
    assert result.code == 1, result.out
    line = verdict(result.out)
    assert line.startswith("verify failed at build yolo11n-seg: layer ")
    assert "of yolo11n-seg, the same layer before HaloAttention was inserted, outputs" in line
    assert line.endswith("a `from` index points wrong")


def test_edited_yaml_is_not_verified_as_apply_wrote_it(family_copy: Path) -> None:
    path = family_copy / "cfg" / "models" / "11" / "yolo11-seg-HaloAttention.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "# my note\n", encoding="utf-8")
    result = cli("verify", "--target", str(family_copy), "--base", "yolo11-seg")
    assert result.code == 2 and result.out == ""
    assert result.err.startswith(f"error: {path.resolve()}: not as halo-patch apply wrote it (edited since, or written by hand")
    assert result.err.rstrip().endswith("run halo-patch apply --base yolo11-seg")
    keys = [m.key for m in plan_models(find_target(family_copy), (), ("n",))]
    assert keys == ["n", "yolo11n-cls", "yolo11n-obb", "yolo11n-pose"]


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    "file_name, scaled",
    [
        ("yolo11-HaloAttention.yaml", "yolo11n-HaloAttention.yaml"),
        ("yolo11-seg-HaloAttention.yaml", "yolo11n-seg-HaloAttention.yaml"),
        ("yolov8-pose-HaloAttention.yaml", "yolov8n-pose-HaloAttention.yaml"),
        ("yolo26-obb-HaloAttention-halo-patch.yaml", "yolo26n-obb-HaloAttention-halo-patch.yaml"),
        ("yoloe-11-seg-HaloAttention.yaml", "yoloe-11n-seg-HaloAttention.yaml"),
        ("yolo11s-mine-HaloAttention.yaml", None),  # the name carries its scale already
        ("my-net-HaloAttention.yaml", None),  # no place for a scale letter
    ],
)
def test_scale_letter_goes_after_the_yolo_number(file_name: str, scaled: str | None) -> None:
    assert with_scale(file_name, "n") == scaled


def test_adopt_named_yaml_is_found_and_built_by_its_own_name(family_copy: Path) -> None:
    """`apply --adopt` writes <base>-HaloAttention-halo-patch.yaml beside a hand-made <base>-HaloAttention.yaml."""
    models = family_copy / "cfg" / "models" / "11"
    ours = models / "yolo11-seg-HaloAttention.yaml"
    body = ours.read_text(encoding="utf-8").split("\n", 1)[1]  # what apply --adopt writes: the same rows, sealed at its own name
    adopted = models / "yolo11-seg-HaloAttention-halo-patch.yaml"
    adopted.write_text(ownership.seal(body, adopted), encoding="utf-8")
    ours.write_text("# my own tutorial yaml\n" + yaml.safe_dump(base_model(family_copy, "yolo11-seg")), encoding="utf-8")
    (spec,) = plan_models(find_target(family_copy), ("yolo11-seg",), ("s",))
    assert (spec.key, spec.name, spec.plain) == ("yolo11s-seg", "yolo11s-seg-HaloAttention-halo-patch.yaml", "yolo11s-seg.yaml")
    assert spec.yaml_path == (models / "yolo11-seg-HaloAttention-halo-patch.yaml").resolve()


def test_base_names_accept_file_names_and_paths() -> None:
    assert parse_bases("yolo11-seg, yolo11-pose-HaloAttention.yaml,cfg/models/11/yolo11-obb.yaml,yolo11-seg") == (
        "yolo11-seg",
        "yolo11-pose",
        "yolo11-obb",
    )
    assert parse_bases("yolo11-HaloAttention-halo-patch.yaml") == ("yolo11",)
