"""Issue 13, points 1-3: halo-patch changes only what it recognisably wrote.

1. Every line apply adds to a user's Python carries `# halo-patch`; revert by recognition takes out
   only marked lines, so a hand-made install is never changed (with or without state or --force),
   a recovered revert is not followed by a second pass, and only the yaml paths apply wrote go.
2. A state dir is acted on only where halo-patch recomputes it from the tree: a foreign stored
   original, a foreign journal step, a directory among the blobs, a symlinked directory on the way
   out of the tree: each is refused or ignored, and a victim outside the tree is hashed before/after.
3. `__all__` in Addmodules/__init__.py with a star import in tasks.py: apply binds the class by name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import cli
from conftest import copy_installed, tree_hashes
from fork_server import ForkServer
from tutorial_install import install_tutorial

from halo_patch.target import find_target
from halo_patch.verify.options import Step
from halo_patch.verify.runner import check_patch_status

MARK = "  # halo-patch"
STATE = ".halo-patch"
ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "YOLO_OFFLINE": "1"}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("issue13") / "tree"
    copy_installed(root)
    return root


@pytest.fixture
def tree(pristine: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "tree"
    shutil.copytree(pristine, dest, symlinks=True)
    return dest


def _victim(base: Path) -> Path:
    victim = base / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "data.txt").write_text("precious\n")
    (victim / "sub" / "more.txt").write_text("more\n")
    return victim


def _foreign_manifest(tree: Path, entries: list[dict], blobs: dict[str, bytes]) -> None:
    state = tree / STATE
    (state / "blobs").mkdir(parents=True, exist_ok=True)
    manifest = {"schema": 2, "halo_patch_version": "0.1.0", "ultralytics_version": "8.4.190",
                "package_dir": str(tree / "ultralytics"), "created_dirs": [], "files": entries}
    (state / "manifest.json").write_text(json.dumps(manifest))
    for digest, data in blobs.items():
        (state / "blobs" / digest).write_bytes(data)


def _no_traceback(result) -> None:
    assert "Traceback" not in result.out + result.err and result.code in (0, 1, 2), (result.code, result.err)
    if result.code == 2:
        assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err


# ---------------------------------------------------------------- 1. marks: a hand-made install is never ours


def test_revert_never_changes_a_hand_made_install(tree: Path) -> None:
    """The tutorial's `elif m is HaloAttention:` with halo-patch's own body, its import and module: revert
    (plain, --force, without state and with a shipped manifest) changes nothing and names what it leaves."""
    package = tree / "ultralytics"
    install_tutorial(package, form="is")
    tasks = package / "nn/tasks.py"
    before = tree_hashes(package)
    status = cli("status", "--target", str(tree))
    assert "installed by hand, not by halo-patch" in status.out
    evil = b"import os\nos.system('echo owned')\n"
    for shipped in (False, True):
        if shipped:  # a manifest naming tasks.py as modified, today's hash, someone else's file as original
            entry = {"path": "ultralytics/nn/tasks.py", "action": "modified", "sha256_before": _sha(evil),
                     "sha256_after": _sha(tasks.read_bytes()), "mode": 0o644}
            _foreign_manifest(tree, [entry], {_sha(evil): evil})
        for flags in ([], ["--force"]):
            result = cli("revert", "--target", str(tree), *flags)
            assert result.code == 0, result.err
            assert tree_hashes(package) == before, (shipped, flags)
            assert "Nothing of halo-patch's to take out: the HaloAttention installed by hand (listed above) is left as it is." in result.out
            assert "  kept    parse_model branch  ultralytics/nn/tasks.py: `elif m is HaloAttention:` builds it as halo-patch does (reused)" in result.out
            assert "  in use  HaloAttention module  ultralytics/nn/Addmodules/HaloAttention.py" in result.out
            if shipped and not flags:
                assert "ignored the stored original of ultralytics/nn/tasks.py" in result.out


# The revert after `apply --adopt` makes 14 file operations, the first its journal write: each is a kill
# point (README: `revert after adopt: 14 kill points from the journal write on, 14 clean`), one case each.
ADOPT_REVERT_OPS = 14
KILLS = list(range(1, ADOPT_REVERT_OPS + 1))


@pytest.fixture(scope="module")
def adopted(pristine: Path, tmp_path_factory) -> Iterator[dict]:
    """A tutorial install, the same tree after `apply --adopt`, and a fork server for the kills (per worker)."""
    base = tmp_path_factory.mktemp("adopted")
    tree = base / "tree"
    shutil.copytree(pristine, tree, symlinks=True)
    install_tutorial(tree / "ultralytics", form="is")
    tutorial = tree_hashes(tree)
    assert cli("apply", "--target", str(tree), "--adopt").code == 0
    warm = base / "warm"  # the server parses the adopted tasks.py once, for every child
    shutil.copytree(tree, warm, symlinks=True)
    server = ForkServer(base / "runs")
    assert server.warm("revert", "--target", str(warm)) == 0
    yield {"adopted": tree, "tutorial": tutorial, "server": server}
    server.close()


def test_a_revert_after_adopt_has_its_kill_points_pinned(adopted: dict, tmp_path: Path) -> None:
    """The revert (a real process) gives back the tutorial install; its file operations from the journal
    write on are the kill points below, each asserting it ends clean."""
    work = tmp_path / "tree"
    shutil.copytree(adopted["adopted"], work, symlinks=True)
    log = tmp_path / "ops.log"
    assert adopted["server"].run("", log, "revert", "--target", str(work)).returncode == 0
    assert tree_hashes(work) == adopted["tutorial"]
    ops = log.read_text().splitlines()
    first = next(i for i, line in enumerate(ops, 1) if "journal.json" in line)
    assert list(range(first, len(ops) + 1)) == KILLS
    print(f"revert after adopt: {len(KILLS)} kill points from the journal write on, {len(KILLS)} clean (one case each)")
    assert len(KILLS) == 14  # README: 14 kill points, 14 clean


@pytest.mark.parametrize("k", KILLS, ids=[f"kill-{k:02d}" for k in KILLS])
def test_a_revert_killed_after_adopt_then_revert_again_keeps_the_users_branch(adopted: dict, k: int, tmp_path: Path) -> None:
    """apply --adopt, a revert killed at file operation k (a real SIGKILL), then a plain revert: the
    tutorial install comes back byte for byte (recovery does the job, no second pass)."""
    work = tmp_path / f"k{k}"
    shutil.copytree(adopted["adopted"], work, symlinks=True)
    killed = adopted["server"].run(f"{k}:kill", None, "revert", "--target", str(work))
    assert killed.returncode == -9, (k, killed.stderr)
    again = cli("revert", "--target", str(work))
    assert again.code == 0, (k, again.err)
    assert tree_hashes(work) == adopted["tutorial"], k


def test_revert_deletes_only_the_yaml_paths_apply_wrote(tree: Path) -> None:
    """A user's unedited copy of the generated yaml under another `*-HaloAttention.yaml` name, or in
    another folder of cfg/models/, stays (with and without the state dir)."""
    package = tree / "ultralytics"
    pristine = tree_hashes(tree)
    for with_state in (True, False):
        assert cli("apply", "--target", str(tree)).code == 0
        written = package / "cfg/models/11/yolo11-HaloAttention.yaml"
        copies = [
            package / "cfg/models/11/mine-HaloAttention.yaml",
            package / "cfg/models/v8/yolo11-HaloAttention-halo-patch.yaml",
            package / "cfg/models/v8/yolo11-HaloAttention.yaml",  # the same name, another folder
        ]
        for copy in copies:
            shutil.copyfile(written, copy)
        if not with_state:
            shutil.rmtree(tree / STATE)
        result = cli("revert", "--target", str(tree))
        assert result.code == 0, result.err
        assert not written.exists()
        for copy in copies:
            assert copy.read_bytes().startswith(b"# halo-patch sha256:"), copy
            copy.unlink()
        assert tree_hashes(tree) == pristine, with_state


def test_an_install_by_the_previous_release_reverts_by_its_manifest(tree: Path) -> None:
    """Lines without marks and a yaml sealed without its name (how the previous release wrote them),
    recorded in a valid manifest: revert still gives back every byte, through the stored originals."""
    package = tree / "ultralytics"
    pristine = tree_hashes(tree)
    assert cli("apply", "--target", str(tree)).code == 0
    manifest_path = tree / STATE / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["files"]:
        path = tree / entry["path"]
        data = path.read_bytes()
        if path.suffix == ".py" and MARK.encode() in data:
            data = data.replace(MARK.encode(), b"")
        elif path.suffix == ".yaml":
            body = data.split(b"\n", 1)[1]
            data = b"# halo-patch sha256:" + _sha(body).encode() + b"\n" + body
        path.write_bytes(data)
        entry["sha256_after"] = _sha(data)
    manifest_path.write_text(json.dumps(manifest))
    assert b"# halo-patch\n" not in (package / "nn/tasks.py").read_bytes()
    result = cli("revert", "--target", str(tree))
    assert result.code == 0, result.err
    assert tree_hashes(tree) == pristine


# ---------------------------------------------------------------- 2. a state dir is acted on only when recomputed


def test_a_foreign_original_is_never_written_revert_falls_back_to_recognition(tree: Path, tmp_path: Path) -> None:
    """After a real apply, the stored original of tasks.py swapped for someone else's file (the
    manifest's hashes made to match): revert takes our marked lines out instead, and says so."""
    package = tree / "ultralytics"
    pristine = tree_hashes(tree)
    assert cli("apply", "--target", str(tree)).code == 0
    evil = b"import os\nos.system('echo owned')\n"
    manifest_path = tree / STATE / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["files"]:
        if entry["path"] == "ultralytics/nn/tasks.py":
            entry["sha256_before"] = _sha(evil)
    manifest_path.write_text(json.dumps(manifest))
    (tree / STATE / "blobs" / _sha(evil)).write_bytes(evil)
    result = cli("revert", "--target", str(tree))
    assert result.code == 0, result.err
    assert "note: ignored the stored original of ultralytics/nn/tasks.py" in result.out
    assert (package / "nn/tasks.py").read_bytes() != evil
    assert tree_hashes(tree) == pristine


@pytest.mark.parametrize("op", ["apply", "revert"])
def test_a_foreign_journal_step_is_ignored_with_a_warning(op: str, tree: Path) -> None:
    """journal.json of an "interrupted run" deleting ultralytics/__init__.py and writing another file
    over tasks.py: neither step is finished; one warning line; the run then does its own job."""
    package = tree / "ultralytics"
    init, tasks = package / "__init__.py", package / "nn/tasks.py"
    init_bytes, tasks_bytes = init.read_bytes(), tasks.read_bytes()
    evil = b"import os\nos.system('echo owned')\n"
    state = tree / STATE
    (state / "blobs").mkdir(parents=True)
    (state / "blobs" / _sha(evil)).write_bytes(evil)
    steps = [{"path": "ultralytics/__init__.py", "from": _sha(init_bytes), "to": None, "mode": None},
             {"path": "ultralytics/nn/tasks.py", "from": _sha(tasks_bytes), "to": _sha(evil), "mode": None}]
    (state / "journal.json").write_text(json.dumps({"schema": 2, "op": op, "steps": steps, "dirs": [], "manifest": None}))
    result = cli(op, "--target", str(tree))
    assert result.code == 0, result.err
    warning = [l for l in result.out.splitlines() if l.startswith("warning: ")]
    assert warning == [
        f"warning: ignored {state / 'journal.json'}: ultralytics/__init__.py: its step is not one halo-patch {op} makes "
        "from this tree; not a run halo-patch made here, so the tree is left as it is"
    ]
    assert init.read_bytes() == init_bytes
    assert tasks.read_bytes() != evil
    if op == "apply":
        assert cli("status", "--target", str(tree)).code == 0
        assert cli("revert", "--target", str(tree)).code == 0
    assert init.read_bytes() == init_bytes and tasks.read_bytes() == tasks_bytes


def test_a_directory_named_like_a_blob_does_not_wedge_the_tree(tree: Path) -> None:
    """Directories in blobs/ named like the sha256 of the files a revert stores: revert works (or
    refuses in one line), and every later command still works."""
    package = tree / "ultralytics"
    pristine = tree_hashes(package)
    assert cli("apply", "--target", str(tree)).code == 0
    blobs = tree / STATE / "blobs"
    for path in (package / "nn/tasks.py", package / "nn/Addmodules/__init__.py"):  # a stored copy turned into a dir
        blob = blobs / _sha(path.read_bytes())
        blob.unlink(missing_ok=True)
        blob.mkdir()
    (blobs / ("e" * 64)).mkdir()
    (blobs / ("e" * 64) / "keep.txt").write_text("not a blob\n")
    result = cli("revert", "--target", str(tree))
    _no_traceback(result)
    for verb in ("status", "revert", "apply", "revert"):
        later = cli(verb, "--target", str(tree))
        _no_traceback(later)
        assert later.code in (0, 1), (verb, later.err)
    assert tree_hashes(package) == pristine


def test_a_symlinked_directory_out_of_the_tree_is_refused_before_any_write(tree: Path, tmp_path: Path) -> None:
    """nn/Addmodules or cfg/models/custom a symlink to a directory outside: apply exits 2 with one line
    and writes nothing, in the tree or out of it; revert never deletes through such a link."""
    package = tree / "ultralytics"
    victim = _victim(tmp_path)
    os.symlink(victim, package / "nn/Addmodules")
    inside, outside = tree_hashes(tree), tree_hashes(victim)
    refused = cli("apply", "--target", str(tree))
    assert refused.code == 2 and refused.err.startswith(f"error: {package / 'nn/Addmodules'}/"), refused.err
    assert f"{package / 'nn/Addmodules'} leads to {victim.resolve()}, outside the package tree" in refused.err
    assert refused.err.count("\n") == 1
    assert tree_hashes(tree) == inside and tree_hashes(victim) == outside and not (tree / STATE).exists()

    (package / "nn/Addmodules").unlink()
    base = tmp_path / "mine.yaml"
    base.write_bytes((package / "cfg/models/11/yolo11.yaml").read_bytes())
    os.symlink(victim, package / "cfg/models/custom")
    inside = tree_hashes(tree)
    refused = cli("apply", "--target", str(tree), "--base", str(base))
    assert refused.code == 2 and "outside the package tree" in refused.err and refused.err.count("\n") == 1, refused.err
    assert tree_hashes(tree) == inside and tree_hashes(victim) == outside and not (tree / STATE).exists()
    (package / "cfg/models/custom").unlink()

    assert cli("apply", "--target", str(tree)).code == 0  # then the user moves Addmodules out and links it back
    moved = tmp_path / "victim2"
    shutil.move(package / "nn/Addmodules", moved)
    os.symlink(moved, package / "nn/Addmodules")
    outside, first_victim = tree_hashes(moved), tree_hashes(victim)
    for aside in (False, True):
        if aside:
            shutil.move(tree / STATE, tmp_path / "state-aside")
        result = cli("revert", "--target", str(tree))
        _no_traceback(result)
        if aside:  # by recognition: what lies behind the link is named and kept
            assert result.code == 0, result.err
            assert "note: kept ultralytics/nn/Addmodules/halo_attention.py: a directory on its way is a symlink out of the package tree" in result.out
        else:  # the manifest names files behind the link: refused, one line, nothing changed
            assert result.code == 2 and "goes through a symlink out of the package tree" in result.err, result.err
        assert tree_hashes(moved) == outside and tree_hashes(victim) == first_victim, aside
        assert (moved / "halo_attention.py").is_file() and (package / "nn/Addmodules").is_symlink()


# ---------------------------------------------------------------- 3. __all__ and a star import


def _star_tree(package: Path) -> None:
    """A common tutorial layout: Addmodules/__init__.py with `from .SPPELAN import *` and `__all__`;
    tasks.py importing the package with `*`."""
    pkg = package / "nn/Addmodules"
    pkg.mkdir()
    (pkg / "SPPELAN.py").write_text("import torch.nn as nn\n\n\nclass SPPELAN(nn.Module):\n    pass\n")
    (pkg / "__init__.py").write_text('from .SPPELAN import *\n__all__ = ["SPPELAN"]\n')
    tasks = package / "nn/tasks.py"
    text = tasks.read_text(encoding="utf-8")
    anchor = "from ultralytics.utils import"
    tasks.write_text(text.replace(anchor, "from ultralytics.nn.Addmodules import *\n" + anchor, 1), encoding="utf-8")


def test_all_in_addmodules_with_a_star_import_still_binds_the_class(tree: Path) -> None:
    package = tree / "ultralytics"
    _star_tree(package)
    pristine = tree_hashes(tree)
    applied = cli("apply", "--target", str(tree))
    assert applied.code == 0, applied.err
    tasks_lines = (package / "nn/tasks.py").read_text(encoding="utf-8").splitlines()
    assert "from ultralytics.nn.Addmodules import HaloAttention" + MARK in tasks_lines
    assert cli("status", "--target", str(tree)).code == 0
    out = subprocess.run(
        [sys.executable, "-c", "import ultralytics.nn.tasks as t; print(t.HaloAttention.__module__, t.SPPELAN.__module__)"],
        cwd=tree, env=ENV, capture_output=True, text=True,
    )
    assert out.stdout.splitlines()[-1:] == ["ultralytics.nn.Addmodules.halo_attention ultralytics.nn.Addmodules.SPPELAN"], out.stderr[-2000:]
    assert cli("revert", "--target", str(tree)).code == 0
    assert tree_hashes(tree) == pristine


def test_status_reads_the_binding_and_verify_never_advises_a_no_op(tree: Path) -> None:
    """The tree today's main left (our package import, no import in tasks.py, `__all__` without the
    class): status says the tasks.py import is absent, verify says apply, and apply does change it.
    A drifted branch: verify's advice is not apply (which would change nothing)."""
    package = tree / "ultralytics"
    _star_tree(package)
    assert cli("apply", "--target", str(tree)).code == 0
    tasks = package / "nn/tasks.py"
    ours = "from ultralytics.nn.Addmodules import HaloAttention" + MARK + "\n"
    tasks.write_text(tasks.read_text(encoding="utf-8").replace(ours, ""), encoding="utf-8")
    status = cli("status", "--target", str(tree))
    assert status.code == 1 and "HaloAttention is partially applied." in status.out
    assert [l for l in status.out.splitlines() if "tasks.py import" in l and "absent" in l], status.out
    step = Step("status", "patch status")
    check_patch_status(find_target(tree), step)
    assert step.detail.endswith("; run halo-patch apply"), step.detail
    again = cli("apply", "--target", str(tree))
    assert again.code == 0 and "already applied" not in again.out
    assert cli("status", "--target", str(tree)).code == 0

    text = tasks.read_text(encoding="utf-8")
    tasks.write_text(text.replace("            args = [c2, *args]" + MARK + "\n", "            args = [c2, *args, 5]" + MARK + "\n"), encoding="utf-8")
    step = Step("status", "patch status")
    check_patch_status(find_target(tree), step)
    assert step.detail.endswith("; apply keeps edits it did not make: run halo-patch revert --force, then halo-patch apply"), step.detail
    assert cli("revert", "--target", str(tree), "--force").code == 0
    assert cli("apply", "--target", str(tree)).code == 0
    assert cli("status", "--target", str(tree)).code == 0
