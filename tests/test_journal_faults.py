"""Crash safety: stop apply and revert at every file operation they make, as an exception (disk
full) and as a real SIGKILL of the `halo-patch` process; after each, the tree is exactly pristine or
exactly applied, or status names the interruption and the next run finishes it; the final revert is
byte-exact with no stray file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_helpers import cli
from conftest import copy_installed, run_cli, tree_hashes
from faults import armed, run_cli_with_faults

from halo_patch.journal import transaction


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    """A pristine copy and the same copy applied (both at one path, so state paths match)."""
    base = tmp_path_factory.mktemp("faults")
    pristine = base / "pristine"
    copy_installed(pristine)
    applied = base / "applied"
    work = base / "work"
    shutil.copytree(pristine, work)
    assert cli("apply", "--target", str(work)).code == 0
    shutil.copytree(work, applied, symlinks=True)
    shutil.rmtree(work)
    return {"pristine": pristine, "applied": applied, "work": work}


def _reset(trees: dict[str, Path], which: str) -> Path:
    work = trees["work"]
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(trees[which], work, symlinks=True)
    return work


def _count_ops(trees: dict[str, Path], verb: str, tmp_path: Path) -> int:
    work = _reset(trees, "pristine" if verb == "apply" else "applied")
    log = tmp_path / f"{verb}.log"
    result = _in_process("", verb, "--target", str(work), log=log)
    assert result.code == 0, result.err
    return len(log.read_text().splitlines())


def _in_process(spec: str, *args: str, log: Path | None = None):
    """Run the CLI in this process with a fault point armed (the op counter starts from zero)."""
    with armed(spec, log):
        return cli(*args)


def _check_and_finish(trees: dict[str, Path], verb: str, finish_with: str, stopped) -> bool:
    """After a stopped run: classify the tree, let `finish_with` complete it, then revert; True when
    the end state is byte-exact pristine."""
    work = trees["work"]
    assert "Traceback" not in stopped.out + stopped.err, stopped.err
    package = tree_hashes(work / "ultralytics")
    status = cli("status", "--target", str(work))
    assert "Traceback" not in status.out + status.err
    exact = package in (tree_hashes(trees["pristine"] / "ultralytics"), tree_hashes(trees["applied"] / "ultralytics"))
    named = f"interrupted {verb}" in status.out
    assert exact or named, status.out
    finished = cli(finish_with, "--target", str(work))
    assert finished.code == 0, finished.err
    if finish_with == "apply":
        assert cli("status", "--target", str(work)).code == 0
        assert tree_hashes(work / "ultralytics") == tree_hashes(trees["applied"] / "ultralytics")
    reverted = cli("revert", "--target", str(work))
    assert reverted.code == 0, reverted.err
    return tree_hashes(work) == tree_hashes(trees["pristine"])


def test_every_fault_point_of_apply_and_revert_ends_clean(trees, tmp_path: Path) -> None:
    counts = {verb: _count_ops(trees, verb, tmp_path) for verb in ("apply", "revert")}
    assert counts == {"apply": 26, "revert": 17}, counts  # the README's "(26 + 17)"
    points = clean = 0
    for verb, n in counts.items():
        for k in range(1, n + 1):
            for how in ("enospc", "kill"):
                work = _reset(trees, "pristine" if verb == "apply" else "applied")
                if how == "kill":
                    result = run_cli_with_faults(f"{k}:kill", None, verb, "--target", str(work))
                    assert result.returncode == -9, (verb, k, result.stderr)
                    stopped = type("R", (), {"out": result.stdout, "err": result.stderr})()
                else:
                    stopped = _in_process(f"{k}:enospc", verb, "--target", str(work))
                    assert stopped.err.startswith("error: ") and stopped.err.count("\n") == 1, stopped.err
                    if stopped.code == 2:  # failed before its last file: rolled back, re-hashed
                        assert "No space left on device; rolled back, nothing changed" in stopped.err, stopped.err
                        expected = trees["pristine" if verb == "apply" else "applied"]
                        assert tree_hashes(work) == tree_hashes(expected), (verb, k)
                    else:  # every file done, the state dir's bookkeeping failed: running again finishes it
                        assert stopped.code == 4 and f"the {verb} is made but the state dir could not be updated" in stopped.err
                finish_with = ("apply", "revert")[k % 2]  # both verbs must be able to finish either run
                points += 1
                clean += _check_and_finish(trees, verb, finish_with, stopped)
    print(f"fault points: {points}, clean: {clean}")
    assert (points, clean) == (86, 86)  # the README's `fault points: 86, clean: 86`


def test_a_failing_undo_is_reported_with_the_command_that_fixes_it(trees) -> None:
    """Apply fails at tasks.py (op 23) and the first undo fails too (ENOSPC): every other undo is
    still made, the file left over is named with its fix, and nothing claims "nothing changed"."""
    log = Path(trees["work"].parent / "ops.log")
    work = _reset(trees, "pristine")
    _in_process("", "apply", "--target", str(work), log=log)
    ops = log.read_text().splitlines()
    fail_at = next(int(line.split()[0]) for line in ops if line.split()[1] == "replace" and line.endswith("nn/tasks.py"))
    yaml_path = work / "ultralytics/cfg/models/11/yolo11-HaloAttention.yaml"

    work = _reset(trees, "pristine")
    result = _in_process(f"{fail_at}:enospc,{fail_at + 1}:enospc", "apply", "--target", str(work))
    assert result.code == 4, result.err
    assert result.err.startswith("error: ") and result.err.count("\n") == 1
    assert "nothing changed" not in result.err
    assert f"{yaml_path} (No space left on device): fix with `rm -f {yaml_path}`" in result.err
    assert "rollback could not restore 1 file(s)" in result.err
    assert yaml_path.exists()
    assert not (work / "ultralytics/nn/Addmodules/halo_attention.py").exists()  # the other undos were made
    assert (work / "ultralytics/nn/tasks.py").read_bytes() == (trees["pristine"] / "ultralytics/nn/tasks.py").read_bytes()

    status = cli("status", "--target", str(work))
    assert status.code == 1 and "interrupted apply" in status.out
    assert cli("revert", "--target", str(work)).code == 0
    assert tree_hashes(work) == tree_hashes(trees["pristine"])


def test_an_unexpected_error_exits_3_with_a_saved_traceback(trees) -> None:
    work = _reset(trees, "pristine")
    result = _in_process("20:raise", "apply", "--target", str(work))
    assert result.code == 3
    assert result.err.startswith("error: unexpected InjectedFault: injected fault at file operation 20")
    saved = Path(result.err.rstrip().rsplit(" ", 1)[-1])
    assert "Traceback" in saved.read_text() and "Traceback" not in result.err
    saved.unlink()
    assert tree_hashes(work) == tree_hashes(trees["pristine"])


def test_an_edit_saved_between_plan_and_write_is_never_lost(trees, monkeypatch) -> None:
    """An editor saves tasks.py after apply planned it (here: right after the journal is written):
    the hash check just before the replace stops apply, everything is rolled back, the edit stays."""
    work = _reset(trees, "pristine")
    tasks = work / "ultralytics/nn/tasks.py"
    edited = tasks.read_bytes() + b"# saved by an editor meanwhile\n"
    prepare = transaction._prepare

    def prepare_then_edit(*args, **kwargs):
        prepare(*args, **kwargs)
        tasks.write_bytes(edited)

    monkeypatch.setattr(transaction, "_prepare", prepare_then_edit)
    result = cli("apply", "--target", str(work))
    assert result.code == 2
    assert result.err == f"error: {tasks}: changed while halo-patch was running (not what the apply planned from); run apply again\n"
    assert tasks.read_bytes() == edited
    assert not (work / "ultralytics/nn/Addmodules").exists() and not (work / ".halo-patch").exists()


def test_test_switches_left_in_the_environment_change_nothing(trees, tmp_path: Path) -> None:
    """HALO_PATCH_FAULT / HALO_PATCH_FAULT_LOG left exported after a test run (older versions read
    them): the installed CLI neither stops nor writes the log; apply is made as usual."""
    work = _reset(trees, "pristine")
    log = tmp_path / "user-file.txt"
    result = run_cli("apply", "--target", str(work), env={"HALO_PATCH_FAULT": "1:kill,2:raise", "HALO_PATCH_FAULT_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    assert not log.exists()
    assert tree_hashes(work / "ultralytics") == tree_hashes(trees["applied"] / "ultralytics")
    shipped = Path(transaction.__file__).resolve().parents[1]
    assert not [p for p in shipped.rglob("*.py") if "HALO_PATCH_FAULT" in p.read_text(encoding="utf-8")]
