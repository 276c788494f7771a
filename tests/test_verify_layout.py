"""The code verify runs inside the target's interpreter keeps the rules its place needs.

It is copied into a temp dir and run by whatever Python owns the target: Python 3.8 syntax, and
imports of the standard library, torch and ultralytics (and their own dependencies) only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from in_target_check import assert_in_target_source, import_problems

from halo_patch.verify import child
from halo_patch.verify.in_target.steps import STEPS, needed_step
from halo_patch.verify.models import ModelSpec
from halo_patch.verify.options import parse_options, plan_steps

IN_TARGET = Path(child.__file__).parent / "in_target"
SOURCES = sorted(IN_TARGET.glob("*.py"))
ALLOWED = {"torch", "ultralytics", "numpy", "PIL", "onnxruntime"}


def test_the_folder_holds_the_checks() -> None:
    assert {p.stem for p in SOURCES} >= {"main", "steps", "common", "build", "forward", "train_step"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_python_38_syntax_and_allowed_imports(path: Path) -> None:
    assert_in_target_source(path, ALLOWED, lazy=False)


def test_the_in_target_check_can_fail() -> None:
    """The shared check names each broken rule: an import from outside, halo_patch itself, a top-level
    third-party import where imports must be lazy; code newer than Python 3.8 does not parse."""
    source = "import json\nimport torch\nimport requests\nfrom halo_patch import cli\n\ndef f():\n    import torch\n"
    assert import_problems(source, "x.py", {"torch"}, lazy=True) == [
        "x.py:2 imports torch at the top level", "x.py:3 imports requests", "x.py:4 imports halo_patch"
    ]
    assert import_problems(source, "x.py", {"torch", "requests", "halo_patch"}, lazy=False) == []
    assert import_problems("from . import common\nimport os.path\n", "y.py", set(), lazy=True) == []
    with pytest.raises(SyntaxError):
        import_problems("match n:\n    case 1:\n        pass\n", "z.py", set(), lazy=True)


def test_every_planned_step_is_registered() -> None:
    model = ModelSpec("n", "yolo11n-HaloAttention.yaml", Path("yolo11-HaloAttention.yaml"), "yolo11", "n", "yolo11n.yaml", "detect")
    steps = plan_steps(parse_options("n", "cpu", 64, True, "onnx"), [model])
    kinds = [s.id.partition(":")[0] for s in steps if s.id != "status"]
    assert kinds == ["import", "build", "forward", "train-step", "train", "predict", "checkpoint", "export", "onnxruntime"]
    assert set(kinds) == set(STEPS)
    ids = [s.id for s in steps]
    for step_id in ids[1:]:
        needed = needed_step(step_id)
        assert needed is None or ids.index(needed) < ids.index(step_id), step_id


def test_train_and_export_rows_only_for_detect_models() -> None:
    seg = ModelSpec("yolo11n-seg", "yolo11n-seg-HaloAttention.yaml", Path("y.yaml"), "yolo11-seg", "n", None, "segment")
    steps = plan_steps(parse_options("n", "cpu", 64, True, "onnx"), [seg])
    assert [s.label for s in steps] == [
        "patch status", "ultralytics import", "build yolo11n-seg", "forward yolo11n-seg", "train step yolo11n-seg"
    ]  # fmt: skip
