"""`halo-patch verify` on real patched Ultralytics trees: checks run in a real subprocess, no mocks."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from cli_helpers import cli
from conftest import copy_installed, installed_package_dir, run_cli, tree_hashes
from tutorial_install import install_tutorial

BRANCH = "        elif m is HaloAttention:  # halo-patch\n            c2 = ch[f]  # halo-patch\n            args = [c2, *args]  # halo-patch\n"
QUICK_STEPS = ["status", "import", "build:n", "forward:n", "train-step:n"]


@pytest.fixture
def patched_copy(patched_installed: Path, tmp_path: Path) -> Path:
    """A private copy of the patched tree (manifest included) that a test may damage; its package dir."""
    shutil.copytree(patched_installed.parent, tmp_path / "tree")
    return tmp_path / "tree" / "ultralytics"


def verdict(out: str) -> str:
    return out.rstrip().splitlines()[-1]


def fake_environment(prefix: Path, python_script: str) -> Path:
    """<prefix>/lib/pythonX.Y/site-packages holding a patched copy, and <prefix>/bin/python; the site dir."""
    site_dir = prefix / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    copy_installed(site_dir)
    assert cli("apply", "--target", str(site_dir)).code == 0
    python = prefix / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\n{python_script}\n")
    python.chmod(0o755)
    return site_dir


# ---------------------------------------------------------------- passing


def test_quick_steps_pass(patched_installed: Path) -> None:
    before = tree_hashes(patched_installed.parent)
    result = cli("verify", "--target", str(patched_installed))
    assert result.code == 0, result.out + result.err
    for label in ("patch status", "ultralytics import", "build n", "forward n", "train step n"):
        assert re.search(rf"^(│ )?{re.escape(label)}\s", result.out, re.M), label  # boxed, or plain when wider than the screen
    assert result.out.count("passed") >= 5 and "failed" not in result.out and "skipped" not in result.out
    assert "layer 9 HaloAttention 256 ch" in result.out
    assert "640x640, 640x480, 672x672, 256x256, 32x32 (WxH)" in result.out
    assert "HaloAttention at P5 20x20, 20x15, 21x21, 8x8, 1x1" in result.out
    assert verdict(result.out).startswith("verify passed: HaloAttention works in Ultralytics ")
    assert str(patched_installed) in verdict(result.out)
    # the copy is not what this Python imports on its own: verify says how to get the same import in real runs
    assert f"note: without PYTHONPATH={patched_installed.parent.resolve()}, this Python imports ultralytics from" in result.out
    assert tree_hashes(patched_installed.parent) == before


def test_train_export_json(patched_installed: Path, tmp_path: Path) -> None:
    """--train and --export at imgsz 64, through the console entry point; nothing written outside its temp dir."""
    temp, home, report = tmp_path / "temp", tmp_path / "home", tmp_path / "report.json"
    temp.mkdir()
    home.mkdir()
    before = tree_hashes(patched_installed.parent)
    result = run_cli(
        "verify", "--target", str(patched_installed), "--train", "--export", "onnx", "--imgsz", "64", "--json", str(report),
        env={"TMPDIR": str(temp), "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert verdict(result.stdout).startswith("verify passed")
    assert tree_hashes(patched_installed.parent) == before, "verify wrote into the target"
    assert list(temp.iterdir()) == [] and list(home.iterdir()) == [], "verify left files behind"

    data = json.loads(report.read_text())
    assert data["passed"] is True and data["exit_code"] == 0
    assert data["verdict"] == verdict(result.stdout)
    assert data["target"]["package_dir"] == str(patched_installed)
    assert data["options"] == {"scales": ["n"], "device": "cpu", "imgsz": 64, "train": True, "export": "onnx", "bases": []}
    assert Path(data["environment"]["ultralytics_file"]).parent == patched_installed.resolve()
    assert data["interpreter"]["pythonpath"] == str(patched_installed.parent.resolve())
    steps = {s["id"]: s for s in data["steps"]}
    assert list(steps) == QUICK_STEPS + ["train:n", "predict:n", "checkpoint:n", "export:n", "onnxruntime:n"]
    assert all(s["result"] == "passed" and s["seconds"] >= 0 for s in steps.values()), data["steps"]
    assert {(s["scale"], s["model"]) for s in data["steps"][2:]} == {("n", "yolo11n-HaloAttention.yaml")}
    assert Path(steps["build:n"]["yaml"]) == (patched_installed / "cfg" / "models" / "11" / "yolo11-HaloAttention.yaml").resolve()
    assert steps["build:n"]["data"]["channels"] == 256 and steps["build:n"]["data"]["gflops"] > 0
    assert steps["build:n"]["data"]["params"] > steps["build:n"]["data"]["plain_params"]
    assert [s["size"] for s in steps["forward:n"]["data"]["sizes"]] == ["64x64", "64x32", "96x96", "256x256", "32x32"]
    assert steps["train-step:n"]["data"]["zero_grad"] == [] and steps["train-step:n"]["data"]["params"]
    assert steps["train:n"]["data"]["epochs"] == 2 and "metrics/mAP50(B)" in steps["train:n"]["data"]["metrics"]
    assert steps["predict:n"]["data"]["image"] == "64x48"
    assert steps["checkpoint:n"]["data"]["max_abs_diff"] == 0.0
    assert steps["checkpoint:n"]["data"]["class"] == "ultralytics.nn.Addmodules.halo_attention.HaloAttention"
    assert steps["onnxruntime:n"]["data"]["max_abs_diff"] < 1e-2


# ---------------------------------------------------------------- failing: the patch


def test_unpatched_tree(tmp_path: Path) -> None:
    package = copy_installed(tmp_path / "tree")
    report = tmp_path / "report.json"
    result = cli("verify", "--target", str(package), "--json", str(report))
    expected = f"HaloAttention is not applied to {package}; run halo-patch apply"
    assert result.code == 1
    assert verdict(result.out) == f"verify failed at patch status: {expected}"
    assert "KeyError" not in result.out + result.err and "Traceback" not in result.out + result.err
    data = json.loads(report.read_text())
    assert data["passed"] is False and data["exit_code"] == 1 and data["environment"] is None
    assert [(s["id"], s["result"]) for s in data["steps"]] == [("status", "failed")] + [(i, "skipped") for i in QUICK_STEPS[1:]]
    assert data["steps"][0]["detail"] == expected

    quiet = cli("verify", "--target", str(package), "-q")
    assert quiet.code == 1 and quiet.out == f"verify failed at patch status: {expected}\n"


@pytest.mark.parametrize(
    "damage, missing",
    [
        ("branch removed", "parse_model branch absent in ultralytics/nn/tasks.py"),
        ("tasks.py reinstalled", "tasks.py import absent in ultralytics/nn/tasks.py"),
        ("module missing", "HaloAttention module absent in ultralytics/nn/Addmodules/halo_attention.py (file missing)"),
    ],
)
def test_half_applied_tree(damage: str, missing: str, patched_copy: Path) -> None:
    tasks = patched_copy / "nn" / "tasks.py"
    if damage == "branch removed":
        text = tasks.read_text(encoding="utf-8")
        assert text.count(BRANCH) == 1
        tasks.write_text(text.replace(BRANCH, ""), encoding="utf-8")
    elif damage == "tasks.py reinstalled":  # what `pip install --force-reinstall ultralytics` does
        shutil.copyfile(copy_installed(patched_copy.parent.parent / "pristine") / "nn" / "tasks.py", tasks)
    else:
        (patched_copy / "nn" / "Addmodules" / "halo_attention.py").unlink()
    result = cli("verify", "--target", str(patched_copy))
    assert result.code == 1, result.out
    line = verdict(result.out)
    assert line.startswith(f"verify failed at patch status: HaloAttention is only partly applied to {patched_copy}: ")
    assert missing in line and line.endswith("; run halo-patch apply")
    assert "KeyError" not in result.out and "Traceback" not in result.out


# ---------------------------------------------------------------- failing: the wrong copy is imported


def test_environment_imports_another_copy(tmp_path: Path) -> None:
    """A patched site-packages whose environment's python imports a different ultralytics (the DDP trap)."""
    site_dir = fake_environment(tmp_path / "env", f'exec "{sys.executable}" "$@"')
    result = cli("verify", "--target", str(site_dir))
    assert result.code == 1, result.out
    assert f"Checks run in {tmp_path / 'env' / 'bin' / 'python'}" in " ".join(result.out.split())
    line = verdict(result.out)
    assert line.startswith("verify failed at ultralytics import: ")
    assert f"imports ultralytics from {installed_package_dir().resolve()} (a pip-installed copy)" in line
    assert f"not from the patched target {(site_dir / 'ultralytics').resolve()}" in line
    assert re.search(r"^(│ )?build n\s", result.out, re.M) and "needs ultralytics import" in result.out


def test_sitecustomize_puts_another_copy_first(patched_installed: Path, tmp_path: Path) -> None:
    """A clone on PYTHONPATH, but the environment puts another (unpatched) copy in front of it."""
    other = copy_installed(tmp_path / "other")
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(f"import sys\nsys.path.insert(0, {str(other.parent)!r})\n")
    result = cli("verify", "--target", str(patched_installed), "--quiet", env={"PYTHONPATH": str(hook)})
    assert result.code == 1
    assert result.out.count("\n") == 1  # --quiet: the verdict only
    assert result.out.startswith("verify failed at ultralytics import: ")
    assert f"imports ultralytics from {other.resolve()} (another copy), not from the patched target" in result.out


def test_checks_process_dies(tmp_path: Path) -> None:
    site_dir = fake_environment(tmp_path / "env", 'echo "this python is broken" >&2; exit 3')
    result = cli("verify", "--target", str(site_dir))
    assert result.code == 1
    assert verdict(result.out) == (
        f"verify failed at ultralytics import: the checks process ({tmp_path / 'env' / 'bin' / 'python'}) "
        "exited with code 3 during this step"
    )
    assert "this python is broken" in result.out


# ---------------------------------------------------------------- usage errors: exit 2, nothing run


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scale", "n,q"], "--scale 'n,q': unknown scale 'q'; expected letters from n, s, m, l, x separated by commas"),
        (["--scale", ""], "--scale '': unknown scale ''"),
        (["--export", "tflite"], "--export 'tflite': unsupported format; expected one of: onnx"),
        (["--imgsz", "100"], "--imgsz 100: expected a positive multiple of 32"),
        (["--json", "/nonexistent-dir/r.json"], "--json /nonexistent-dir/r.json: no such directory /nonexistent-dir"),
        (["--base", "yolo11-obb"], "--base yolo11-obb: apply wrote no yolo11-obb-HaloAttention.yaml under "),
        (["--base", "yolo11-obb"], "(it wrote: yolo11); run halo-patch apply --base yolo11-obb first"),
        (["--base", ","], "--base ',': empty name; expected base names such as yolo11-seg, comma-separated"),
    ],
)
def test_usage_errors(args: list[str], message: str, patched_installed: Path) -> None:
    result = cli("verify", "--target", str(patched_installed), *args)
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("error: ") and message in result.err, result.err


def test_temp_dir_that_trips_the_scale_regex(patched_installed: Path, tmp_path: Path) -> None:
    temp = tmp_path / "run7m"  # Ultralytics would read `7m` as "scale m"
    temp.mkdir()
    result = run_cli("verify", "--target", str(patched_installed), env={"TMPDIR": str(temp)})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: {temp}: the temp dir path holds a digit followed by n/s/m/l/x")


def test_target_not_found(tmp_path: Path) -> None:
    result = cli("verify", "--target", str(tmp_path / "nope"))
    assert result.code == 2
    assert result.err == f"error: {tmp_path / 'nope'}: no such directory; expected an Ultralytics clone, package or site-packages dir\n"


# ---------------------------------------------------------------- other layouts apply writes


def test_layout_modules(tmp_path: Path) -> None:
    """`apply --layout modules`: HaloAttention comes from ultralytics/nn/modules/halo_attention.py."""
    package = copy_installed(tmp_path / "tree")
    assert cli("apply", "--target", str(package), "--layout", "modules").code == 0
    report = tmp_path / "report.json"
    result = cli("verify", "--target", str(package), "--json", str(report), "--imgsz", "64")
    assert result.code == 0, result.out
    env = json.loads(report.read_text())["environment"]
    assert env["halo_attention_class"] == "ultralytics.nn.modules.halo_attention.HaloAttention"
    assert Path(env["halo_attention_file"]) == (package / "nn" / "modules" / "halo_attention.py").resolve()


def test_adopted_tutorial_install(tmp_path: Path) -> None:
    """After `apply --adopt` the user's yolo11-HaloAttention.yaml stays and ours is built by its own name;
    the 640x480 pass (P5 20x15) proves the model runs our module, not the tutorial's (it asserts divisibility)."""
    package = copy_installed(tmp_path / "tree")
    install_tutorial(package, "is")
    assert cli("apply", "--target", str(package), "--adopt").code == 0
    report = tmp_path / "report.json"
    result = cli("verify", "--target", str(package), "--json", str(report))
    assert result.code == 0, result.out
    data = json.loads(report.read_text())
    assert data["environment"]["halo_attention_class"] == "ultralytics.nn.Addmodules.halo_attention.HaloAttention"
    build = next(s for s in data["steps"] if s["id"] == "build:n")
    assert build["model"] == "yolo11n-HaloAttention-halo-patch.yaml"
    assert Path(build["yaml"]) == (package / "cfg" / "models" / "11" / "yolo11-HaloAttention-halo-patch.yaml").resolve()
    assert "640x480" in next(s for s in data["steps"] if s["id"] == "forward:n")["detail"]
