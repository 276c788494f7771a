"""One lock per real tree: concurrent runs on one tree serialise (losers wait, or say another
halo-patch is running), and the end state equals one clean run."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

from cli_helpers import cli
from conftest import copy_installed, tree_hashes

ROUNDS = 10
RUNS = 8


def _burst(verbs: list[str], target: Path) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, "COLUMNS": "200"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "halo_patch", verb, "--target", str(target)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for verb in verbs
    ]
    out = []
    for verb, p in zip(verbs, procs):
        stdout, stderr = p.communicate(timeout=600)
        out.append(subprocess.CompletedProcess([verb], p.returncode, stdout, stderr))
    return out


def _assert_orderly(results: list[subprocess.CompletedProcess]) -> None:
    for r in results:
        assert "Traceback" not in r.stdout + r.stderr, r.stderr
        if r.returncode != 0:
            assert r.returncode == 2 and "locked by another program, held by" in r.stderr, r.stderr


def test_concurrent_applies_reverts_and_mixed_bursts(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    copy_installed(reference)
    assert cli("apply", "--target", str(reference)).code == 0
    applied = tree_hashes(reference / "ultralytics")
    tree = tmp_path / "tree"
    copy_installed(tree)
    pristine = tree_hashes(tree)
    pristine_package = tree_hashes(tree / "ultralytics")
    exact = 0
    for _ in range(ROUNDS):
        _assert_orderly(_burst(["apply"] * RUNS, tree))
        assert tree_hashes(tree / "ultralytics") == applied
        assert (tree / ".halo-patch/manifest.json").is_file() and not (tree / ".halo-patch/journal.json").exists()
        _assert_orderly(_burst(["revert"] * RUNS, tree))
        assert tree_hashes(tree) == pristine
        mixed = _burst(["apply", "revert"] * (RUNS // 2), tree)
        _assert_orderly(mixed)
        assert tree_hashes(tree / "ultralytics") in (applied, pristine_package)  # whichever ran last won, cleanly
        assert cli("revert", "--target", str(tree)).code == 0
        exact += tree_hashes(tree) == pristine
    print(f"concurrency rounds: {ROUNDS} x ({RUNS} applies, {RUNS} reverts, {RUNS} mixed), byte-exact after each: {exact}")
    assert exact == ROUNDS


def test_symlinked_package_entry_shares_the_lock_and_the_state(tmp_path: Path, monkeypatch) -> None:
    real_root = tmp_path / "real"
    copy_installed(real_root)
    pristine = tree_hashes(real_root)
    site = tmp_path / "site-packages"
    site.mkdir()
    (site / "ultralytics").symlink_to(real_root / "ultralytics", target_is_directory=True)

    assert cli("apply", "--target", str(site)).code == 0
    assert (real_root / ".halo-patch/manifest.json").is_file() and not (site / ".halo-patch").exists()
    status = cli("status", "--target", str(real_root))
    assert status.code == 0 and "no state dir" not in status.out

    monkeypatch.setenv("HALO_PATCH_LOCK_WAIT", "0")
    fd = os.open(real_root / "ultralytics", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        locked = cli("revert", "--target", str(site))
        assert locked.code == 2 and "locked by another program, held by pid" in locked.err
    finally:
        os.close(fd)
    assert cli("revert", "--target", str(real_root)).code == 0
    assert tree_hashes(real_root) == pristine
    assert (site / "ultralytics").is_symlink()
    shutil.rmtree(site)
