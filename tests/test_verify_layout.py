"""The code verify runs inside the target's interpreter keeps the rules its place needs.

It is copied into a temp dir and run by whatever Python owns the target: Python 3.8 syntax, and
imports of the standard library, torch and ultralytics (and their own dependencies) only.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import sysconfig
from pathlib import Path

import pytest

from halo_patch.verify import child
from halo_patch.verify.in_target.steps import STEPS, needed_step
from halo_patch.verify.models import ModelSpec
from halo_patch.verify.options import parse_options, plan_steps

IN_TARGET = Path(child.__file__).parent / "in_target"
SOURCES = sorted(IN_TARGET.glob("*.py"))
ALLOWED = {"torch", "ultralytics", "numpy", "PIL", "onnxruntime"}


def is_stdlib(name: str) -> bool:
    if hasattr(sys, "stdlib_module_names"):  # Python 3.10+
        return name in sys.stdlib_module_names
    spec = importlib.util.find_spec(name)
    origin = spec.origin if spec is not None else None
    return name in sys.builtin_module_names or (
        origin is not None and origin.startswith(sysconfig.get_paths()["stdlib"]) and "site-packages" not in origin
    )


def test_the_folder_holds_the_checks() -> None:
    assert {p.stem for p in SOURCES} >= {"main", "steps", "common", "build", "forward", "train_step"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_python_38_syntax_and_allowed_imports(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path), feature_version=(3, 8))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots = {node.module.split(".")[0]}
        else:
            continue
        outside = {r for r in roots if not is_stdlib(r) and r not in ALLOWED and r != "__future__"}
        assert not outside, f"{path.name}:{node.lineno} imports {outside}"
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        assert "halo_patch" not in roots


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
