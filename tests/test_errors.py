"""Bad input: one clear line naming the file and what was expected, exit 2, nothing changed on disk."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cli_helpers import cli
from conftest import copy_installed, tree_hashes


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the installed Ultralytics; returns the folder that holds the package."""
    copy_installed(tmp_path / "tree")
    return tmp_path / "tree"


def assert_error(result, *fragments: str) -> None:
    assert result.code == 2
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err + result.out
    for fragment in fragments:
        assert fragment in result.err, result.err


@pytest.mark.parametrize("verb", ["apply", "revert", "status"])
def test_missing_target(verb: str, tmp_path: Path) -> None:
    assert_error(cli(verb, "--target", str(tmp_path / "nope")), f"{tmp_path / 'nope'}: no such directory")


@pytest.mark.parametrize("verb", ["apply", "revert", "status"])
def test_not_an_ultralytics_tree(verb: str, tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hello")
    before = tree_hashes(tmp_path)
    result = cli(verb, "--target", str(tmp_path))
    assert_error(result, f"{tmp_path}: not an Ultralytics tree; expected {tmp_path}/ultralytics/nn/tasks.py")
    assert tree_hashes(tmp_path) == before


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("nn/tasks.py", "def parse_model(", "def parse_model_renamed("), "no module-level `def parse_model(d, ch, verbose=True)`"),
        (("nn/tasks.py", "        if m in base_modules:", "        if m not in base_modules:"), "expected one `if m in ...:` chain in parse_model's loop, found 0"),
        (("nn/tasks.py", "        else:\n            c2 = ch[f]\n", "        elif m is None:\n            c2 = ch[f]\n"), "has no final `else:`"),
        (("nn/tasks.py", "from ultralytics.nn.modules import (", "from ultralytics.nn.modules.block import ("), "no top-level `from ultralytics.nn.modules import (...)`"),
        (("nn/tasks.py", "def parse_model(", "def parse_model(:"), "not valid Python"),
        (("cfg/models/11/yolo11.yaml", "backbone:", "spine:"), "no `backbone:` list of layers; expected an Ultralytics model yaml"),
    ],
    ids=["no-parse-model", "no-chain", "no-final-else", "no-modules-import", "syntax-error", "bad-yaml"],
)
def test_missing_anchor_names_it_and_the_version(tree: Path, edit, message: str) -> None:
    rel, old, new = edit
    _edit(tree / "ultralytics" / rel, old, new)
    before = tree_hashes(tree)
    result = cli("apply", "--target", str(tree))
    assert_error(result, str(tree / "ultralytics" / rel), "(Ultralytics 8.", message)
    assert tree_hashes(tree) == before


def test_missing_yolo11_yaml(tree: Path) -> None:
    (tree / "ultralytics/cfg/models/11/yolo11.yaml").unlink()
    before = tree_hashes(tree)
    assert_error(cli("apply", "--target", str(tree)), "--base yolo11: no such model yaml in", "(Ultralytics 8.", "close names: yoloe-11, yolo12, yolo11-seg")
    assert tree_hashes(tree) == before


def test_failed_write_rolls_back_everything(tree: Path) -> None:
    """The last file cannot be written (a directory stands in its place): nothing else stays changed."""
    (tree / "ultralytics/cfg/models/11/yolo11-HaloAttention.yaml").mkdir()
    before = tree_hashes(tree)
    result = cli("apply", "--target", str(tree))
    assert_error(result, "yolo11-HaloAttention.yaml", "rolled back, nothing changed")
    assert tree_hashes(tree) == before


def test_lock_stops_a_second_run(tree: Path, monkeypatch) -> None:
    """The lock is flock on the package dir itself: a run that cannot get it within
    HALO_PATCH_LOCK_WAIT seconds names the holder (pid, user, command) and changes nothing."""
    import fcntl
    import os

    monkeypatch.setenv("HALO_PATCH_LOCK_WAIT", "0")
    before = tree_hashes(tree)
    fd = os.open(tree / "ultralytics", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for verb in ("apply", "revert"):
            assert_error(cli(verb, "--target", str(tree)), "locked by another program, held by pid", f"pid {os.getpid()} (user ")
    finally:
        os.close(fd)
    assert tree_hashes(tree) == before


@pytest.mark.parametrize("value", ["abc", "", "-1", "nan"])
def test_bad_lock_wait_is_a_user_error(tree: Path, monkeypatch, value: str) -> None:
    """A HALO_PATCH_LOCK_WAIT that is not a number of seconds: one line, exit 2, nothing changed."""
    import fcntl

    monkeypatch.setenv("HALO_PATCH_LOCK_WAIT", value)
    before = tree_hashes(tree)
    for verb in ("apply", "revert"):
        assert_error(cli(verb, "--target", str(tree)), f"HALO_PATCH_LOCK_WAIT={value!r}: expected a number of seconds")
    fd = os.open(tree / "ultralytics", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the reviewer's case: the wait is read while another run holds the lock
        assert_error(cli("apply", "--target", str(tree)), f"HALO_PATCH_LOCK_WAIT={value!r}: expected a number of seconds")
    finally:
        os.close(fd)
    assert tree_hashes(tree) == before


def test_dry_run_prints_a_diff_and_writes_nothing(tree: Path) -> None:
    before = tree_hashes(tree)
    result = cli("apply", "--target", str(tree), "--dry-run")
    assert result.code == 0
    assert "+++ b/ultralytics/nn/tasks.py" in result.out and "+        elif m is HaloAttention:" in result.out
    assert "--- /dev/null" in result.out and "+++ b/ultralytics/cfg/models/11/yolo11-HaloAttention.yaml" in result.out
    assert tree_hashes(tree) == before


def test_revert_keeps_a_users_own_edits_to_tasks_py(tree: Path) -> None:
    """Lines a user added beside ours stay byte for byte; only our nodes go."""
    tasks = tree / "ultralytics/nn/tasks.py"
    original = tasks.read_text(encoding="utf-8")
    assert cli("apply", "--target", str(tree)).code == 0
    tasks.write_text("# my header\n" + tasks.read_text(encoding="utf-8") + "# my own edit\n", encoding="utf-8")
    status = cli("status", "--target", str(tree))
    assert status.code == 0 and "fully applied" in status.out
    reverted = cli("revert", "--target", str(tree))
    assert reverted.code == 0, reverted.err
    assert "our lines removed" in reverted.out
    assert tasks.read_text(encoding="utf-8") == "# my header\n" + original + "# my own edit\n"
    assert not (tree / "ultralytics/nn/Addmodules").exists() and not (tree / ".halo-patch").exists()


def test_revert_refuses_when_our_branch_was_edited_then_force_removes_it(tree: Path) -> None:
    pristine = tree_hashes(tree)
    assert cli("apply", "--target", str(tree)).code == 0
    tasks = tree / "ultralytics/nn/tasks.py"
    _edit(tasks, "            args = [c2, *args]  # halo-patch\n", "            args = [c2, *args, 7]  # mine\n")
    drifted = tree_hashes(tree)

    status = cli("status", "--target", str(tree))
    assert status.code == 1 and "drifted" in status.out and "edited since apply" in status.out
    refused = cli("revert", "--target", str(tree))
    assert_error(refused, "ultralytics/nn/tasks.py: our parse_model branch changed since apply", "--force")
    assert "-            args = [c2, *args, 7]  # mine" in refused.out
    assert tree_hashes(tree) == drifted

    forced = cli("revert", "--target", str(tree), "--force")
    assert forced.code == 0, forced.err
    assert tree_hashes(tree) == pristine


def test_existing_addmodules_package_is_kept(tree: Path) -> None:
    """People add other blog modules to Addmodules: apply adds one line, revert takes only that out."""
    pkg = tree / "ultralytics/nn/Addmodules"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .CBAM import CBAM\n")
    (pkg / "CBAM.py").write_text("class CBAM:\n    pass\n")
    pristine = tree_hashes(tree)
    assert cli("apply", "--target", str(tree)).code == 0
    assert (pkg / "__init__.py").read_text() == "from .CBAM import CBAM\nfrom .halo_attention import HaloAttention  # halo-patch\n"
    assert (pkg / "CBAM.py").is_file()
    assert cli("revert", "--target", str(tree)).code == 0
    assert tree_hashes(tree) == pristine


def test_half_applied_tree_is_reported_and_completed(tree: Path) -> None:
    """`pip install --force-reinstall ultralytics` puts tasks.py back but leaves the added files."""
    tasks = tree / "ultralytics/nn/tasks.py"
    original = tasks.read_bytes()
    pristine = tree_hashes(tree)
    assert cli("apply", "--target", str(tree)).code == 0
    tasks.write_bytes(original)

    status = cli("status", "--target", str(tree))
    assert status.code == 1 and "partially applied" in status.out
    assert [l.split("│")[1].strip() for l in status.out.splitlines() if "absent" in l] == ["tasks.py import", "parse_model branch"]
    assert cli("apply", "--target", str(tree), "--check").code == 1
    assert cli("apply", "--target", str(tree)).code == 0
    assert cli("status", "--target", str(tree)).code == 0
    assert cli("revert", "--target", str(tree)).code == 0
    assert tree_hashes(tree) == pristine


def test_read_only_tree(tmp_path: Path) -> None:
    """A tree this user cannot write: refused before any write. The tree is made read-only; root
    ignores file modes, so as root the CLI runs without the capabilities that let it (CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH, CAP_FOWNER): same user, same interpreter, so it passes for root and non-root."""
    import os
    import shutil
    import subprocess
    import sys

    root = tmp_path / "tree"
    copy_installed(root)
    before = tree_hashes(root)
    prefix = []
    if os.geteuid() == 0:
        prefix = [shutil.which("setpriv") or "setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
    try:
        for p in [root, *root.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)
        result = subprocess.run(
            [*prefix, sys.executable, "-m", "halo_patch", "apply", "--target", str(root)],
            capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "COLUMNS": "200"},
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr == f"error: {root}/ultralytics: not writable by this user; run with permission to write there\n"
        assert "read-only" in result.stdout
        assert tree_hashes(root) == before
    finally:
        for p in [root, *root.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_reapply_after_a_hand_edit_keeps_the_original_backup(tree: Path) -> None:
    """Branch removed by hand, import kept: re-apply completes it; revert still gives the original."""
    pristine = tree_hashes(tree)
    assert cli("apply", "--target", str(tree)).code == 0
    tasks = tree / "ultralytics/nn/tasks.py"
    _edit(tasks, "        elif m is HaloAttention:  # halo-patch\n            c2 = ch[f]  # halo-patch\n            args = [c2, *args]  # halo-patch\n", "")
    status = cli("status", "--target", str(tree))
    assert status.code == 1 and "partially applied" in status.out
    assert cli("apply", "--target", str(tree)).code == 0
    assert cli("status", "--target", str(tree)).code == 0
    assert cli("revert", "--target", str(tree)).code == 0
    assert tree_hashes(tree) == pristine


def _imports_tasks(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree), "YOLO_OFFLINE": "1"}
    code = "import ultralytics.nn.tasks as t; print(t.HaloAttention.__module__)"
    return subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda b: b"# -*- coding: latin-1 -*-\n" + b + b"# caf\xe9\n", "ultralytics/nn/tasks.py (Ultralytics 8."),
        (lambda b: b + b"\ndef f(:\n", "ultralytics/nn/tasks.py (Ultralytics 8."),
    ],
    ids=["latin-1", "syntax-error"],
)
def test_revert_refuses_a_tasks_py_it_cannot_parse(tree: Path, edit, message: str) -> None:
    """tasks.py still imports our module but cannot be parsed: revert (with or without --force) exits 2
    naming the file and what it expected, and deletes nothing that tasks.py imports."""
    assert cli("apply", "--target", str(tree)).code == 0
    tasks = tree / "ultralytics/nn/tasks.py"
    tasks.write_bytes(edit(tasks.read_bytes()))
    before = tree_hashes(tree)
    for flags in ((), ("--force",)):
        result = cli("revert", "--target", str(tree), *flags)
        assert_error(result, message, "expected an Ultralytics source", "nothing changed; fix the file")
        assert tree_hashes(tree) == before


def test_revert_refusal_keeps_a_latin1_tasks_py_importable_then_reverts_once_fixed(tree: Path) -> None:
    """The reviewer's case: a PEP 263 latin-1 tasks.py keeps importing after the refused revert; once
    the user re-saves it as UTF-8, revert takes our lines out and keeps theirs."""
    tasks = tree / "ultralytics/nn/tasks.py"
    original = tasks.read_bytes()
    assert cli("apply", "--target", str(tree)).code == 0
    applied = tasks.read_bytes()
    tasks.write_bytes(b"# -*- coding: latin-1 -*-\n" + applied + b"# caf\xe9\n")
    assert_error(cli("revert", "--target", str(tree)), "ultralytics/nn/tasks.py", "not UTF-8 text")
    imported = _imports_tasks(tree)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.splitlines()[-1] == "ultralytics.nn.Addmodules.halo_attention"  # after any first-run settings notice
    tasks.write_bytes(applied + "# caf\u00e9\n".encode())
    result = cli("revert", "--target", str(tree))
    assert result.code == 0, result.err
    assert tasks.read_bytes() == original + "# caf\u00e9\n".encode()
    assert not (tree / "ultralytics/nn/Addmodules").exists()
