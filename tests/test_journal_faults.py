"""Crash safety: stop apply and revert at every file operation they make, as an exception (disk
full) and as a real SIGKILL of the `halo-patch` process; after each, the tree is exactly pristine or
exactly applied, or status names the interruption and the next run finishes it; the final revert is
byte-exact with no stray file. One test case per fault point (`apply-07-kill`), the count pinned."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

import pytest
from cli_helpers import cli
from conftest import copy_installed, run_cli, tree_hashes
from faults import armed
from fork_server import ForkServer

from halo_patch.journal import transaction

OPS = {"apply": 26, "revert": 17}  # file operations of each verb: the README's "(26 + 17)"
HOWS = ("enospc", "kill")  # an injected ENOSPC in process; a real SIGKILL of a forked `halo-patch` process
POINTS = [(verb, k, how) for verb, n in OPS.items() for k in range(1, n + 1) for how in HOWS]
START = {"apply": "pristine", "revert": "applied"}


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every path under root: its sha256 ("dir" for a directory, "-> target" for a symlink) and mode."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            kind = "-> " + os.readlink(path)
        elif stat.S_ISDIR(st.st_mode):
            kind = "dir"
        else:
            kind = hashlib.sha256(path.read_bytes()).hexdigest()
        out[path.relative_to(root).as_posix()] = (kind, stat.S_IMODE(st.st_mode))
    return out


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """A pristine copy and the same copy applied, made at the path every case works at (the state
    records absolute paths); one set per xdist worker. `known` is what `work` holds when a case ended
    clean (so the next case starts by copying only the files that differ), None when unknown."""
    base = tmp_path_factory.mktemp("faults")
    pristine = base / "pristine"
    copy_installed(pristine)
    applied = base / "applied"
    work = base / "work"
    shutil.copytree(pristine, work)
    assert cli("apply", "--target", str(work)).code == 0
    shutil.copytree(work, applied, symlinks=True)
    shutil.rmtree(work)
    scratch = base / "warm"  # the fork server parses both versions of tasks.py once, for every child
    shutil.copytree(pristine, scratch)
    server = ForkServer(base / "runs")
    assert [server.warm(verb, "--target", str(scratch)) for verb in ("status", "apply", "status", "revert")] == [1, 0, 0, 0]
    shutil.rmtree(scratch)
    state = {
        "pristine": pristine, "applied": applied, "work": work, "server": server, "known": None,
        "snap": {"pristine": _snapshot(pristine), "applied": _snapshot(applied)},
        "package": {"pristine": tree_hashes(pristine / "ultralytics"), "applied": tree_hashes(applied / "ultralytics")},
    }
    yield state
    server.close()


def _reset(trees: dict, which: str) -> Path:
    """`work` made exactly `trees[which]` (content, modes, links): a fresh copy, or when the last case
    left it known, only the paths that differ."""
    work, known, target = trees["work"], trees["known"], trees["snap"][which]
    trees["known"] = None  # whatever happens next changes it
    if known is None:
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(trees[which], work, symlinks=True)
        return work
    current = trees["snap"][known]
    for rel in sorted(set(current) - set(target), reverse=True):
        path = work / rel
        shutil.rmtree(path) if current[rel][0] == "dir" else path.unlink()
    for rel, entry in target.items():
        if current.get(rel) != entry:
            source, path = trees[which] / rel, work / rel
            if entry[0] == "dir":
                path.mkdir(exist_ok=True)
                path.chmod(entry[1])
            else:
                shutil.copy2(source, path, follow_symlinks=False)
    return work


def _in_process(spec: str, *args: str, log: Path | None = None):
    """Run the CLI in this process with a fault point armed (the op counter starts from zero)."""
    with armed(spec, log):
        return cli(*args)


def _count_ops(trees: dict, verb: str, tmp_path: Path) -> int:
    work = _reset(trees, START[verb])
    log = tmp_path / f"{verb}.log"
    result = _in_process("", verb, "--target", str(work), log=log)
    assert result.code == 0, result.err
    return len(log.read_text().splitlines())


def test_the_fault_points_are_pinned(trees, tmp_path: Path) -> None:
    """apply and revert make 26 and 17 file operations; each is one enospc case and one kill case
    below, each asserting it ends clean: the README's `fault points: 86, clean: 86`."""
    counts = {verb: _count_ops(trees, verb, tmp_path) for verb in OPS}
    assert counts == OPS == {"apply": 26, "revert": 17}, counts  # the README's "(26 + 17)"
    print(f"fault points: {len(POINTS)}, clean: {len(POINTS)} (one case each)")
    assert len(POINTS) == len(set(POINTS)) == 2 * (26 + 17) == 86  # the README's `fault points: 86, clean: 86`


def _check_and_finish(trees: dict, verb: str, finish_with: str, stopped) -> None:
    """After a stopped run: classify the tree, let `finish_with` complete it, then revert; the end
    state is byte-exact pristine (contents, modes, no stray file)."""
    work = trees["work"]
    assert "Traceback" not in stopped.out + stopped.err, stopped.err
    package = tree_hashes(work / "ultralytics")
    status = cli("status", "--target", str(work))
    assert "Traceback" not in status.out + status.err
    exact = package in trees["package"].values()
    named = f"interrupted {verb}" in status.out
    assert exact or named, status.out
    finished = cli(finish_with, "--target", str(work))
    assert finished.code == 0, finished.err
    if finish_with == "apply":
        assert cli("status", "--target", str(work)).code == 0
        assert tree_hashes(work / "ultralytics") == trees["package"]["applied"]
    reverted = cli("revert", "--target", str(work))
    assert reverted.code == 0, reverted.err
    assert _snapshot(work) == trees["snap"]["pristine"]
    trees["known"] = "pristine"


@pytest.mark.parametrize(("verb", "k", "how"), POINTS, ids=[f"{verb}-{k:02d}-{how}" for verb, k, how in POINTS])
def test_a_fault_point_of_apply_or_revert_ends_clean(trees, verb: str, k: int, how: str) -> None:
    work = _reset(trees, START[verb])
    if how == "kill":
        result = trees["server"].run(f"{k}:kill", None, verb, "--target", str(work))
        assert result.returncode == -9, (verb, k, result.stderr)
        stopped = type("R", (), {"out": result.stdout, "err": result.stderr})()
    else:
        stopped = _in_process(f"{k}:enospc", verb, "--target", str(work))
        assert stopped.err.startswith("error: ") and stopped.err.count("\n") == 1, stopped.err
        if stopped.code == 2:  # failed before its last file: rolled back, re-hashed
            assert "No space left on device; rolled back, nothing changed" in stopped.err, stopped.err
            assert _snapshot(work) == trees["snap"][START[verb]], (verb, k)
        else:  # every file done, the state dir's bookkeeping failed: running again finishes it
            assert stopped.code == 4 and f"the {verb} is made but the state dir could not be updated" in stopped.err
    finish_with = ("apply", "revert")[k % 2]  # both verbs must be able to finish either run
    _check_and_finish(trees, verb, finish_with, stopped)


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
