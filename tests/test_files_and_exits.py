"""Files keep what they were (links, mode, owner, BOM, line endings); odd input never gives a
traceback; exit codes mean what the README says (3 crash, 130 Ctrl-C, a closed pipe changes nothing)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import cli
from conftest import copy_installed, tree_hashes
from faults import armed

from halo_patch import journal


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    copy_installed(tmp_path / "tree")
    return tmp_path / "tree"


def _round_trip(tree: Path) -> None:
    pristine = tree_hashes(tree)
    applied = cli("apply", "--target", str(tree))
    assert applied.code == 0, applied.err
    assert cli("status", "--target", str(tree)).code == 0
    reverted = cli("revert", "--target", str(tree))
    assert reverted.code == 0, reverted.err
    assert tree_hashes(tree) == pristine


def test_symlinked_tasks_py_inside_the_tree_stays_a_link(tree: Path) -> None:
    tasks = tree / "ultralytics/nn/tasks.py"
    real = tree / "ultralytics/nn/tasks_real.py"
    tasks.rename(real)
    tasks.symlink_to("tasks_real.py")
    original = real.read_bytes()
    assert cli("apply", "--target", str(tree)).code == 0
    assert tasks.is_symlink() and os.readlink(tasks) == "tasks_real.py"
    assert b"elif m is HaloAttention:" in real.read_bytes()
    assert cli("revert", "--target", str(tree)).code == 0
    assert tasks.is_symlink() and real.read_bytes() == original


def test_symlinked_tasks_py_out_of_the_tree_is_refused(tree: Path, tmp_path: Path) -> None:
    tasks = tree / "ultralytics/nn/tasks.py"
    outside = tmp_path / "elsewhere_tasks.py"
    shutil.move(tasks, outside)
    tasks.symlink_to(outside)
    before = tree_hashes(tree), outside.read_bytes()
    result = cli("apply", "--target", str(tree))
    assert result.code == 2 and f"{tasks}: a symlink to {outside}, outside the package tree" in result.err
    assert (tree_hashes(tree), outside.read_bytes()) == before


def test_mode_is_kept_and_backups_keep_it(tree: Path) -> None:
    tasks = tree / "ultralytics/nn/tasks.py"
    tasks.chmod(0o640)
    original = tasks.read_bytes()
    assert cli("apply", "--target", str(tree)).code == 0
    assert stat.S_IMODE(tasks.stat().st_mode) == 0o640
    blob = tree / ".halo-patch/blobs" / journal.sha256(original)
    assert stat.S_IMODE(blob.stat().st_mode) == 0o640
    assert stat.S_IMODE((tree / "ultralytics/nn/Addmodules/halo_attention.py").stat().st_mode) == 0o640
    assert cli("revert", "--target", str(tree)).code == 0
    assert stat.S_IMODE(tasks.stat().st_mode) == 0o640 and tasks.read_bytes() == original


def test_written_files_keep_the_trees_owner_and_its_owner_can_run_it_again(tmp_path_factory) -> None:
    """As root on a tree owned by `nobody`: every file and dir apply writes belongs to nobody, and
    nobody can then revert (no lock file or state only root can touch). As a plain user: everything
    written is the user's, in the group of the dir it is in."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="halo_owner_"))
    try:
        root.chmod(0o755)
        copy_installed(root)
        as_root = os.geteuid() == 0
        owner = (65534, 65534) if as_root else (os.getuid(), os.stat(root).st_gid)
        if as_root:
            for p in [root, *root.rglob("*")]:
                os.chown(p, *owner, follow_symlinks=False)
        pristine = tree_hashes(root)
        assert cli("apply", "--target", str(root)).code == 0
        for p in [root, *root.rglob("*")]:
            assert (p.lstat().st_uid, p.lstat().st_gid) == owner, p
        prefix = [shutil.which("setpriv") or "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if as_root else []
        env = {**os.environ, "HOME": "/tmp", "COLUMNS": "200"}
        result = subprocess.run([*prefix, sys.executable, "-m", "halo_patch", "revert", "--target", str(root)],
                                capture_output=True, text=True, cwd="/", env=env)
        assert result.returncode == 0, result.stderr
        assert tree_hashes(root) == pristine
    finally:
        shutil.rmtree(root)


def test_bom_and_crlf_are_kept_and_new_files_follow_crlf(tree: Path) -> None:
    tasks = tree / "ultralytics/nn/tasks.py"
    tasks.write_bytes(b"\xef\xbb\xbf" + tasks.read_bytes().replace(b"\n", b"\r\n"))
    pristine = tree_hashes(tree)
    assert cli("apply", "--target", str(tree)).code == 0
    applied = tree_hashes(tree)
    patched = tasks.read_bytes()
    assert patched.startswith(b"\xef\xbb\xbf") and b"elif m is HaloAttention:  # halo-patch\r\n" in patched
    assert patched.count(b"\n") == patched.count(b"\r\n")
    for created in ("nn/Addmodules/halo_attention.py", "nn/Addmodules/__init__.py", "cfg/models/11/yolo11-HaloAttention.yaml"):
        data = (tree / "ultralytics" / created).read_bytes()
        assert data.count(b"\n") == data.count(b"\r\n") > 0, created  # new files follow the tree's line endings
    assert cli("status", "--target", str(tree)).code == 0
    assert cli("apply", "--target", str(tree)).code == 0 and tree_hashes(tree) == applied
    assert cli("revert", "--target", str(tree)).code == 0
    assert tree_hashes(tree) == pristine


def test_a_bom_in_an_existing_addmodules_init_and_modules_init_is_kept(tree: Path) -> None:
    """A user's own Addmodules/__init__.py (and nn/modules/__init__.py with --layout modules) saved
    with a UTF-8 BOM: apply's edit keeps the BOM, and revert gives back the file byte for byte."""
    init = tree / "ultralytics/nn/Addmodules/__init__.py"
    init.parent.mkdir()
    own = b"\xef\xbb\xbf# my modules\nimport os\n"
    init.write_bytes(own)
    pristine = tree_hashes(tree)
    assert cli("apply", "--target", str(tree)).code == 0
    assert init.read_bytes() == own + b"from .halo_attention import HaloAttention  # halo-patch\n"
    assert cli("revert", "--target", str(tree)).code == 0
    assert tree_hashes(tree) == pristine
    modules_init = tree / "ultralytics/nn/modules/__init__.py"
    modules_init.write_bytes(b"\xef\xbb\xbf" + modules_init.read_bytes())
    pristine = tree_hashes(tree)
    assert cli("apply", "--layout", "modules", "--target", str(tree)).code == 0
    patched = modules_init.read_bytes()
    assert patched.startswith(b"\xef\xbb\xbf") and not patched.startswith(b"\xef\xbb\xbf" * 2)
    assert b"from .halo_attention import HaloAttention  # halo-patch\n" in patched
    assert cli("revert", "--target", str(tree)).code == 0
    assert tree_hashes(tree) == pristine


def test_paths_with_rich_markup_are_printed_as_they_are(tmp_path: Path) -> None:
    tree = tmp_path / "we[/]ird [red]tree"
    copy_installed(tree)
    for verb in ("status", "apply", "status", "revert"):
        result = cli(verb, "--target", str(tree))
        assert result.code in (0, 1), result.err
        assert "Traceback" not in result.out + result.err
        assert "we[/]ird [red]tree" in result.out.replace("\n", "")
    assert "we[/]ird [red]none: no such directory" in cli("apply", "--target", str(tmp_path / "we[/]ird [red]none")).err


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"\xff\xfe not utf-8\n", "not UTF-8 text"), (b"import os\x00\n", "holds a NUL byte")],
    ids=["latin1", "nul"],
)
def test_unreadable_tasks_py_status_apply_and_revert_agree(tree: Path, data: bytes, message: str) -> None:
    """revert too: it cannot tell whether the file still imports what it would delete."""
    tasks = tree / "ultralytics/nn/tasks.py"
    tasks.write_bytes(tasks.read_bytes() + data)
    before = tree_hashes(tree)
    for verb in ("status", "apply", "revert"):
        result = cli(verb, "--target", str(tree))
        assert "Traceback" not in result.out + result.err
        assert result.code == 2 and f"{tasks} (Ultralytics 8." in result.err and message in result.err, (verb, result.err)
        assert result.err.count("\n") == 1, result.err
    assert tree_hashes(tree) == before


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("  - [-1, 1, SPPF, [1024, 5]] # 9", "  - ['-1', 1, SPPF, [1024, 5]] # 9"),
        ("  - [-1, 1, SPPF, [1024, 5]] # 9", "  - just a string # 9"),
        ("  - [-1, 1, SPPF, [1024, 5]] # 9", "  - [] # 9"),
        ("  - [-1, 1, SPPF, [1024, 5]] # 9", "  - &row [-1, 1, SPPF, [1024, 5]] # 9\n  - *row"),
    ],
    ids=["string-from", "string-row", "empty-row", "repeated-anchor"],
)
def test_odd_yolo11_yaml_rows_never_give_a_traceback(tree: Path, old: str, new: str) -> None:
    cfg = tree / "ultralytics/cfg/models/11/yolo11.yaml"
    text = cfg.read_text()
    assert old in text
    cfg.write_text(text.replace(old, new, 1))
    for verb in ("status", "apply", "status", "revert"):
        result = cli(verb, "--target", str(tree))
        assert "Traceback" not in result.out + result.err, (verb, result.err)
        assert result.code in (0, 1, 2), (verb, result.code)
        if result.code == 2:
            assert result.err.startswith(f"error: {cfg}") and result.err.count("\n") == 1, result.err


def test_ctrl_c_exits_130_rolled_back(tree: Path, monkeypatch) -> None:
    pristine = tree_hashes(tree)
    with armed("20:interrupt"):
        result = cli("apply", "--target", str(tree))
    assert result.code == 130 and result.err == "error: interrupted (Ctrl-C); the apply was rolled back, nothing changed\n"
    assert tree_hashes(tree) == pristine


def test_a_closed_stdout_does_not_change_applys_exit_code(tree: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "halo_patch", "apply", "--target", str(tree)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone, as with `| head -0`
    err = proc.stderr.read().decode()
    assert proc.wait() == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert cli("status", "--target", str(tree)).code == 0


@pytest.mark.parametrize("verb", ["status", "apply"])
def test_no_stdout_at_all_runs_as_usual(verb: str, tree: Path) -> None:
    """`halo-patch apply >&-`: stdout closed before the process starts; it runs, printing nowhere."""
    done = subprocess.run(["sh", "-c", '"$0" -m halo_patch "$1" --target "$2" >&-', sys.executable, verb, str(tree)],
                          capture_output=True, text=True)
    assert done.returncode == (1 if verb == "status" else 0), done.stderr
    assert done.stderr == ""
    assert cli("status", "--target", str(tree)).code == (1 if verb == "status" else 0)


def test_a_piped_dry_run_is_a_patch_git_applies(tmp_path: Path) -> None:
    """Piped, the diff is the exact patch text at any terminal width (long lines are not cut)."""
    from conftest import make_clone

    clone = make_clone("8.3.40", tmp_path / "clone")
    pristine = tree_hashes(clone)
    done = subprocess.run([sys.executable, "-m", "halo_patch", "apply", "--target", str(clone), "--dry-run"],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    patch = done.stdout[done.stdout.index("--- a/"):]
    (tmp_path / "d.patch").write_text(patch)
    assert tree_hashes(clone) == pristine
    checked = subprocess.run(["git", "apply", "--check", str(tmp_path / "d.patch")], cwd=clone, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr + patch[:2000]
