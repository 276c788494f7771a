"""One lock per real tree: concurrent runs on one tree serialise (losers wait, or say another
halo-patch is running), and the end state equals one clean run."""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cli_helpers import cli
from conftest import copy_installed, tree_hashes

ROUNDS = 10
RUNS = 8
HELPER = Path(__file__).with_name("burst_cli.py")

Burst = Callable[[list[str], Path], list[subprocess.CompletedProcess]]


@pytest.fixture
def burst() -> Iterator[Burst]:
    """Run one burst: RUNS real processes, each one `halo-patch VERB --target TREE`, released together.

    tests/burst_cli.py forks them from one interpreter that has imported the CLI (one start-up per
    test, not one per run); each child is its own OS process running `halo_patch.cli.main()`, racing
    on the tree's real flock and files, with its own stdout, stderr and exit code."""
    helper = subprocess.Popen(
        [sys.executable, str(HELPER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )

    def run(verbs: list[str], target: Path, warm: bool = False) -> list[subprocess.CompletedProcess]:
        if warm:  # the helper runs these itself, one after another, to fill its parse memo (on a tree of ours)
            for verb in verbs:
                helper.stdin.write(json.dumps({"warm": [verb, "--target", str(target)]}) + "\n")
                helper.stdin.flush()
                assert json.loads(helper.stdout.readline()) == {"code": 0}, verb
            return []
        request = {"argvs": [[verb, "--target", str(target)] for verb in verbs], "env": {"COLUMNS": "200"}}
        helper.stdin.write(json.dumps(request) + "\n")
        helper.stdin.flush()
        ready, _, _ = select.select([helper.stdout], [], [], 600)
        assert ready, f"no answer from {HELPER.name} in 600 s"
        line = helper.stdout.readline()
        assert line, f"{HELPER.name} ended (exit {helper.wait()})"
        results = json.loads(line)
        assert len(results) == len(verbs)
        pids = {r["pid"] for r in results}
        assert len(pids) == len(verbs) and helper.pid not in pids and os.getpid() not in pids  # one process each
        return [subprocess.CompletedProcess([verb], r["code"], r["stdout"], r["stderr"]) for verb, r in zip(verbs, results)]

    try:
        yield run
    finally:
        helper.stdin.close()
        assert helper.wait(timeout=60) == 0


def _assert_orderly(results: list[subprocess.CompletedProcess]) -> bool:
    """No traceback; a run that failed was refused the lock. True when the runs met (one waited or was refused)."""
    met = False
    for r in results:
        met |= "waiting for it to end" in r.stdout + r.stderr or r.returncode != 0
        assert "Traceback" not in r.stdout + r.stderr, r.stderr
        if r.returncode != 0:
            assert r.returncode == 2 and "locked by another program, held by" in r.stderr, r.stderr
    return met


def test_concurrent_applies_reverts_and_mixed_bursts(tmp_path: Path, burst: Burst) -> None:
    reference = tmp_path / "reference"
    copy_installed(reference)
    burst(["apply", "status", "revert", "apply", "revert", "apply"], reference, warm=True)  # every text a run meets, parsed once
    applied = tree_hashes(reference / "ultralytics")
    tree = tmp_path / "tree"
    copy_installed(tree)
    pristine = tree_hashes(tree)
    pristine_package = tree_hashes(tree / "ultralytics")
    exact = met = 0
    for _ in range(ROUNDS):
        met += _assert_orderly(burst(["apply"] * RUNS, tree))
        assert tree_hashes(tree / "ultralytics") == applied
        assert (tree / ".halo-patch/manifest.json").is_file() and not (tree / ".halo-patch/journal.json").exists()
        met += _assert_orderly(burst(["revert"] * RUNS, tree))
        assert tree_hashes(tree) == pristine
        mixed = burst(["apply", "revert"] * (RUNS // 2), tree)
        met += _assert_orderly(mixed)
        assert tree_hashes(tree / "ultralytics") in (applied, pristine_package)  # whichever ran last won, cleanly
        assert cli("revert", "--target", str(tree)).code == 0
        exact += tree_hashes(tree) == pristine
    print(f"concurrency rounds: {ROUNDS} x ({RUNS} applies, {RUNS} reverts, {RUNS} mixed), byte-exact after each: {exact}, bursts where runs met on the lock: {met}")
    assert exact == ROUNDS
    assert met == 3 * ROUNDS  # every burst raced: the runs were released together, not one after another


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
