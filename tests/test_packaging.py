"""A non-editable wheel carries templates/ and finds them (no source tree on the path)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_ships_templates_and_reads_them(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("halo_patch-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert {"halo_patch/templates/halo_attention.py", "halo_patch/templates/halo_row.yaml"} <= names
        # verify copies its in-target checks out of the installed package: every one must ship
        in_target = REPO / "halo_patch" / "verify" / "in_target"
        assert {f"halo_patch/verify/in_target/{p.name}" for p in in_target.glob("*.py")} <= names
        assert len(list(in_target.glob("*.py"))) >= 10
        assert any(n.endswith("entry_points.txt") and b"halo-patch = halo_patch.cli:main" in zf.read(n) for n in names)
        zf.extractall(tmp_path / "site")
    probe = (
        "import halo_patch.plan as p, halo_patch.model_yaml as y;"
        "print(p.__file__); print(len(p.module_template())); print(y.RowTemplate.load())"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True, text=True, check=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site"), "PYTHONNOUSERSITE": "1"},
        # -S is not used: the wheel's deps (libcst, yaml) come from this environment
    ).stdout.splitlines()
    assert out[0].startswith(str(tmp_path / "site"))
    assert int(out[1]) > 0
    assert out[2] == "RowTemplate(after=8, row=[-1, 1, 'HaloAttention', [2, 1]])"
