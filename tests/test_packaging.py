"""What users install: a non-editable wheel, in an environment where this checkout is not importable.

An earlier wheel shipped without halo_patch/commands/ while every editable test stayed green. Here
the wheel is built, installed (not editable) into a venv made for the test, and its console script
runs every verb end to end on a real Ultralytics tree, from a directory outside the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import copy_installed, tree_hashes

REPO = Path(__file__).resolve().parents[1]


def source_files() -> set[str]:
    """Every file of the package as the wheel must name it (templates/ ships as halo_patch/templates/)."""
    names = {p.relative_to(REPO).as_posix() for p in (REPO / "halo_patch").rglob("*.py")}
    names |= {f"halo_patch/templates/{p.name}" for p in (REPO / "templates").iterdir() if p.suffix in {".py", ".yaml"}}
    return names


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a clean copy of the checkout: setuptools reuses an in-tree build/ dir, which can
    hold modules the packaging config no longer names."""
    source = tmp_path_factory.mktemp("source") / "halo-patch"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("halo_patch-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory) -> Path:
    """A new venv with the wheel installed (not editable); its bin dir.

    The venv sees this environment's site-packages (torch, ultralytics, libcst...) through a .pth
    path line, which adds the directory but runs none of its .pth files, so the editable install of
    this checkout is not importable there.
    """
    env = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, capture_output=True)  # pip: this one
    python = env / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    (Path(purelib) / "outer_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True, capture_output=True,
    )
    return env / "bin"


def run_installed(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env.update({"COLUMNS": "200", "PYTHONNOUSERSITE": "1", "PATH": f"{bin_dir}:{env.get('PATH', '')}"})
    return subprocess.run([str(bin_dir / "halo-patch"), *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_wheel_holds_every_module_and_template(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n) for n in names if n.endswith("entry_points.txt"))
    missing = sorted(source_files() - names)
    assert missing == [], f"modules missing from the wheel: {missing}"
    assert "halo_patch/commands/apply.py" in names and "halo_patch/templates/halo_attention.py" in names
    # verify copies its in-target checks out of the installed package and runs them in the target's Python
    in_target = {f"halo_patch/verify/in_target/{p.name}" for p in (REPO / "halo_patch" / "verify" / "in_target").glob("*.py")}
    assert {"halo_patch/verify/in_target/__init__.py", "halo_patch/verify/in_target/main.py"} <= in_target <= names
    assert b"halo-patch = halo_patch.cli:main" in entry_points


def test_installed_console_script_runs_every_verb(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [installed / "python", "-c", "import halo_patch; print(halo_patch.__file__)"],
        capture_output=True, text=True, check=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""},
    ).stdout.strip()
    assert Path(where).is_relative_to(installed.parent) and not Path(where).is_relative_to(REPO), where

    root = tmp_path / "tree"
    copy_installed(root)
    pristine = tree_hashes(root)
    t = ["--target", str(root)]

    version = run_installed(installed, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("halo-patch "), version.stderr
    usage = run_installed(installed, "--help", cwd=tmp_path)
    assert usage.returncode == 0 and all(verb in usage.stdout for verb in ("apply", "revert", "status", "verify"))

    applied = run_installed(installed, "apply", *t, cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Applied HaloAttention" in applied.stdout
    status = run_installed(installed, "status", *t, cwd=tmp_path)
    assert status.returncode == 0 and "HaloAttention is fully applied." in status.stdout, status.stdout + status.stderr
    verified = run_installed(installed, "verify", *t, "--imgsz", "64", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verify passed: HaloAttention works in Ultralytics" in verified.stdout
    bases = run_installed(installed, "bases", *t, cwd=tmp_path)
    assert bases.returncode == 0 and "yolo11-seg" in bases.stdout, bases.stdout + bases.stderr
    reverted = run_installed(installed, "revert", *t, cwd=tmp_path)
    assert reverted.returncode == 0, reverted.stdout + reverted.stderr
    assert tree_hashes(root) == pristine
    for result in (version, usage, applied, status, verified, bases, reverted):
        assert "Traceback" not in result.stdout + result.stderr
