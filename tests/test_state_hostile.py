"""Tampered or foreign state dirs: nothing outside the package tree is ever read as a target, written
or deleted. A victim dir beside the tree is hashed before and after every hostile input."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import cli
from conftest import copy_installed, tree_hashes

STATE = ".halo-patch"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest(files: list, created_dirs: list | None = None, **extra) -> dict:
    return {
        "schema": 2,
        "halo_patch_version": "0.1.0",
        "ultralytics_version": "8.4.190",
        "package_dir": "/nowhere/ultralytics",
        "options": {},
        "created_dirs": created_dirs or [],
        "files": files,
        **extra,
    }


def _write_state(tree: Path, manifest: object, blobs: dict[str, bytes] | None = None, name: str = "manifest.json") -> None:
    state = tree / STATE
    (state / "blobs").mkdir(parents=True, exist_ok=True)
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (state / name).write_text(text)
    for digest, data in (blobs or {}).items():
        (state / "blobs" / digest).write_bytes(data)


def _created(path: object, after: str = "0" * 64, **extra) -> dict:
    return {"path": path, "action": "created", "sha256_before": None, "sha256_after": after, "mode": 0o644, **extra}


def _modified(path: str, blob: bytes, after: str) -> dict:
    return {"path": path, "action": "modified", "sha256_before": _sha(blob), "sha256_after": after, "mode": 0o644}


def case_relative_traversal(tree: Path, victim: Path) -> None:
    _write_state(tree, _manifest([_created("../victim")], ["../victim"]))


def case_traversal_inside_path(tree: Path, victim: Path) -> None:
    _write_state(tree, _manifest([_created("ultralytics/../../victim/data.txt")]))


def case_absolute(tree: Path, victim: Path) -> None:
    _write_state(tree, _manifest([_created(str(victim)), _created(str(victim / "data.txt"))]))


def case_symlink_out(tree: Path, victim: Path) -> None:
    (tree / "ultralytics/nn/evil").symlink_to(victim)
    data = (victim / "data.txt").read_bytes()
    _write_state(tree, _manifest([_created("ultralytics/nn/evil/data.txt", _sha(data))], ["ultralytics/nn/evil"]))


def case_symlinked_tasks_out(tree: Path, victim: Path) -> None:
    """A tasks.py that is a symlink to a file outside: apply refuses to write through it."""
    tasks = tree / "ultralytics/nn/tasks.py"
    shutil.move(tasks, victim / "tasks.py")
    tasks.symlink_to(victim / "tasks.py")


def case_modified_outside_with_blob(tree: Path, victim: Path) -> None:
    evil = b"owned\n"
    data = (victim / "data.txt").read_bytes()
    _write_state(tree, _manifest([_modified("../victim/data.txt", evil, _sha(data))]), {_sha(evil): evil})


def case_unknown_action(tree: Path, victim: Path) -> None:
    tasks = (tree / "ultralytics/nn/tasks.py").read_bytes()
    _write_state(tree, _manifest([{**_created("ultralytics/nn/tasks.py", _sha(tasks)), "action": "deleted??"}]))


def case_path_not_a_string(tree: Path, victim: Path) -> None:
    _write_state(tree, _manifest([_created(5)]))


def case_wrong_types(tree: Path, victim: Path) -> None:
    _write_state(tree, _manifest([{**_created("ultralytics/nn/x.py"), "mode": "rw", "sha256_after": "zz"}], files_extra=1))


def case_files_not_a_list(tree: Path, victim: Path) -> None:
    _write_state(tree, {**_manifest([]), "files": "ultralytics/nn/tasks.py"})


def case_bad_json(tree: Path, victim: Path) -> None:
    _write_state(tree, '{"schema": 2, "files": [')


def case_old_schema(tree: Path, victim: Path) -> None:
    _write_state(tree, {**_manifest([_created("../victim")]), "schema": 1})


def case_state_dir_symlink(tree: Path, victim: Path) -> None:
    (tree / STATE).symlink_to(victim)


def case_journal_traversal(tree: Path, victim: Path) -> None:
    data = (victim / "data.txt").read_bytes()
    journal = {"schema": 2, "op": "revert", "steps": [{"path": "../victim/data.txt", "from": _sha(data), "to": None, "mode": None}],
               "dirs": ["../victim"], "manifest": None}
    _write_state(tree, journal, name="journal.json")


def case_journal_absolute_write(tree: Path, victim: Path) -> None:
    evil = b"owned\n"
    data = (victim / "data.txt").read_bytes()
    journal = {"schema": 2, "op": "apply", "steps": [{"path": str(victim / "data.txt"), "from": _sha(data), "to": _sha(evil), "mode": 420}],
               "dirs": [], "manifest": None}
    _write_state(tree, journal, {_sha(evil): evil}, name="journal.json")


def case_truncated_blob(tree: Path, victim: Path) -> None:
    """A real apply, then its stored original cut short: revert works from the tree, never the blob."""
    assert cli("apply", "--target", str(tree)).code == 0
    for blob in (tree / STATE / "blobs").iterdir():
        blob.write_bytes(blob.read_bytes()[:100])


def case_manifest_shipped_in_clone(tree: Path, victim: Path) -> None:
    """A clone that ships `.halo-patch/` naming files of the clone itself as "created" (hashes match)."""
    (tree / "pyproject.toml").write_text('[project]\nname = "ultralytics"\n')
    init = tree / "ultralytics/__init__.py"
    tasks = tree / "ultralytics/nn/tasks.py"
    _write_state(tree, _manifest([_created("ultralytics/__init__.py", _sha(init.read_bytes())),
                                  _created("ultralytics/nn/tasks.py", _sha(tasks.read_bytes()))], ["ultralytics/nn"]))


CASES: list[Callable[[Path, Path], None]] = [
    case_relative_traversal,
    case_traversal_inside_path,
    case_absolute,
    case_symlink_out,
    case_symlinked_tasks_out,
    case_modified_outside_with_blob,
    case_unknown_action,
    case_path_not_a_string,
    case_wrong_types,
    case_files_not_a_list,
    case_bad_json,
    case_old_schema,
    case_state_dir_symlink,
    case_journal_traversal,
    case_journal_absolute_write,
    case_truncated_blob,
    case_manifest_shipped_in_clone,
]


@pytest.fixture(scope="module")
def pristine_copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile_src")
    copy_installed(root)
    return root


def _one_line_or_ok(result, verb: str) -> None:
    assert "Traceback" not in result.out + result.err, (verb, result.err)
    assert result.code in (0, 1, 2), (verb, result.code, result.err)
    if result.code == 2:
        assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err


def test_every_hostile_input_is_a_case() -> None:
    """Each hostile input below is one case asserting nothing outside is touched (the README's figure)."""
    print(f"hostile inputs: {len(CASES)}, nothing outside touched: {len(CASES)} (one case each)")
    assert len(CASES) == len({case.__name__ for case in CASES}) == 17  # README: `hostile inputs: 17, nothing outside touched: 17`


@pytest.mark.parametrize("case", CASES, ids=[case.__name__.removeprefix("case_") for case in CASES])
def test_hostile_state_never_touches_anything_outside(case: Callable[[Path, Path], None], pristine_copy: Path, tmp_path: Path) -> None:
    base = tmp_path / case.__name__
    tree, victim = base / "tree", base / "victim"
    shutil.copytree(pristine_copy, tree, symlinks=True)
    victim.mkdir()
    (victim / "data.txt").write_text("precious\n")
    (victim / "sub").mkdir()
    (victim / "sub" / "more.txt").write_text("more\n")
    case(tree, victim)
    outside = tree_hashes(victim)
    results = {verb: cli(*verb.split(), "--target", str(tree)) for verb in ("status", "apply", "revert", "revert --force")}
    for verb, result in results.items():
        _one_line_or_ok(result, verb)
    assert tree_hashes(victim) == outside, case.__name__
    assert not os.path.lexists(victim / "tasks.py") or (victim / "tasks.py").read_bytes() == (
        pristine_copy / "ultralytics/nn/tasks.py"
    ).read_bytes()


def test_a_hostile_entry_is_named_and_nothing_changes(pristine_copy: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(pristine_copy, tree)
    case_relative_traversal(tree, tmp_path / "victim")
    before = tree_hashes(tree)
    for verb in ("apply", "revert"):
        result = cli(verb, "--target", str(tree))
        assert result.code == 2
        assert result.err == (
            f"error: {tree / STATE / 'manifest.json'}: files[0]: '../victim' leaves the package tree; "
            f"expected a relative path inside ultralytics/; nothing changed: move {tree / STATE} aside to revert by recognition\n"
        )
        assert tree_hashes(tree) == before
    status = cli("status", "--target", str(tree))
    assert status.code == 1 and "state dir not trusted" in status.out


def test_unknown_action_does_not_delete_tasks_py(pristine_copy: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(pristine_copy, tree)
    case_unknown_action(tree, tmp_path)
    result = cli("revert", "--target", str(tree), "--force")
    assert result.code == 2 and "files[0]: action 'deleted??'; expected one of created, modified" in result.err
    assert (tree / "ultralytics/nn/tasks.py").read_bytes() == (pristine_copy / "ultralytics/nn/tasks.py").read_bytes()


def test_shipped_manifest_is_not_carried_and_revert_deletes_only_ours(pristine_copy: Path, tmp_path: Path) -> None:
    """apply -> revert on a clone with a foreign state dir: every clone file stays; ours go."""
    tree = tmp_path / "tree"
    shutil.copytree(pristine_copy, tree)
    case_manifest_shipped_in_clone(tree, tmp_path)
    package_before = tree_hashes(tree / "ultralytics")
    assert cli("apply", "--target", str(tree)).code == 0
    manifest = json.loads((tree / STATE / "manifest.json").read_text())
    assert "ultralytics/__init__.py" not in [f["path"] for f in manifest["files"]]
    for force in ([], ["--force"]):
        reverted = cli("revert", "--target", str(tree), *force)
        assert reverted.code == 0, reverted.err
    assert tree_hashes(tree / "ultralytics") == package_before
