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
    data = (victim / "data.txt").read_bytes()
    _write_state(tree, _manifest([{**_created("ultralytics/nn/tasks.py", _sha(tasks)), "action": "deleted??"},
                                  {**_created("../victim/data.txt", _sha(data)), "action": "deleted??"}]))


def case_path_not_a_string(tree: Path, victim: Path) -> None:
    _write_state(tree, _manifest([_created(["..", "victim", "data.txt"]), _created(5)]))


def case_wrong_types(tree: Path, victim: Path) -> None:
    data = (victim / "data.txt").read_bytes()
    _write_state(tree, _manifest([{**_created("ultralytics/nn/x.py"), "mode": "rw", "sha256_after": "zz"},
                                  _created("../victim/data.txt", _sha(data))], files_extra=1, created_dirs=str(victim)))


def case_files_not_a_list(tree: Path, victim: Path) -> None:
    _write_state(tree, {**_manifest([]), "files": "../victim/data.txt"})


def case_bad_json(tree: Path, victim: Path) -> None:
    _write_state(tree, '{"schema": 2, "created_dirs": ["../victim"], "files": [{"path": "../victim/data.txt", "action": "crea')


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
    """A real apply, then its stored original cut short and a blob that links out: revert works from the
    tree, never the blobs, and removes the link, not what it points to."""
    assert cli("apply", "--target", str(tree)).code == 0
    for blob in (tree / STATE / "blobs").iterdir():
        blob.write_bytes(blob.read_bytes()[:100])
    (tree / STATE / "blobs" / _sha((victim / "data.txt").read_bytes())).symlink_to(victim / "data.txt")


def case_manifest_shipped_in_clone(tree: Path, victim: Path) -> None:
    """A clone that ships `.halo-patch/` naming files of the clone itself as "created" (hashes match), and one
    as "modified" from an original whose blob is a link to a file outside."""
    (tree / "pyproject.toml").write_text('[project]\nname = "ultralytics"\n')
    init = tree / "ultralytics/__init__.py"
    tasks = tree / "ultralytics/nn/tasks.py"
    modules = tree / "ultralytics/nn/modules/__init__.py"
    data = (victim / "data.txt").read_bytes()
    _write_state(tree, _manifest([_created("ultralytics/__init__.py", _sha(init.read_bytes())),
                                  _created("ultralytics/nn/tasks.py", _sha(tasks.read_bytes())),
                                  _modified("ultralytics/nn/modules/__init__.py", data, _sha(modules.read_bytes()))],
                                 ["ultralytics/nn"]))
    (tree / STATE / "blobs" / _sha(data)).symlink_to(victim / "data.txt")


# Each case's exit codes for status, apply, revert, revert --force, and the tree's end state:
# REFUSED: every verb refuses the state (status 1: "not trusted"; the others one line, exit 2), the tree stays
# exactly as the case left it; CLEAN: the verbs work from the tree, and revert leaves the pristine package with
# no state dir.
REFUSED, CLEAN = "as the case left it", "pristine package, no state dir"
ALL_REFUSED = ((1, 2, 2, 2), REFUSED)
EXPECTED: dict[Callable[[Path, Path], None], tuple[tuple[int, int, int, int], str]] = {
    case_relative_traversal: ALL_REFUSED,
    case_traversal_inside_path: ALL_REFUSED,
    case_absolute: ALL_REFUSED,
    case_symlink_out: ALL_REFUSED,
    case_symlinked_tasks_out: ((1, 2, 0, 0), REFUSED),  # apply refuses to write through the link; nothing to revert
    case_modified_outside_with_blob: ALL_REFUSED,
    case_unknown_action: ALL_REFUSED,
    case_path_not_a_string: ALL_REFUSED,
    case_wrong_types: ALL_REFUSED,
    case_files_not_a_list: ALL_REFUSED,
    case_bad_json: ALL_REFUSED,
    case_old_schema: ALL_REFUSED,
    case_state_dir_symlink: ALL_REFUSED,
    case_journal_traversal: ALL_REFUSED,
    case_journal_absolute_write: ALL_REFUSED,
    case_truncated_blob: ((0, 0, 0, 0), CLEAN),  # applied; revert works from the tree
    case_manifest_shipped_in_clone: ((1, 0, 0, 0), CLEAN),  # the shipped state is not ours: apply, then revert
}
CASES = list(EXPECTED)
VERBS = ("status", "apply", "revert", "revert --force")


@pytest.fixture(scope="module")
def pristine_copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile_src")
    copy_installed(root)
    return root


def _victim(path: Path) -> Path:
    """A dir outside the tree the hostile input aims at."""
    (path / "sub").mkdir(parents=True)
    (path / "data.txt").write_text("precious\n")
    (path / "sub" / "more.txt").write_text("more\n")
    return path


def _one_line_or_ok(result, verb: str) -> None:
    assert "Traceback" not in result.out + result.err, (verb, result.err)
    assert result.code in (0, 1, 2), (verb, result.code, result.err)
    if result.code == 2:
        assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err


def test_every_hostile_input_is_a_case() -> None:
    """Each hostile input below is one case asserting nothing outside is touched (the README's figure)."""
    assert set(EXPECTED) == set(CASES)
    print(f"hostile inputs: {len(CASES)}, nothing outside touched: {len(CASES)} (one case each)")
    assert len(CASES) == len({case.__name__ for case in CASES}) == 17  # README: `hostile inputs: 17, nothing outside touched: 17`


@pytest.mark.parametrize("case", CASES, ids=[case.__name__.removeprefix("case_") for case in CASES])
def test_hostile_state_never_touches_anything_outside(case: Callable[[Path, Path], None], pristine_copy: Path, tmp_path: Path) -> None:
    package = tree_hashes(pristine_copy / "ultralytics")
    base = tmp_path / case.__name__
    tree, victim = base / "tree", base / "victim"
    shutil.copytree(pristine_copy, tree, symlinks=True)
    case(tree, _victim(victim))
    outside, set_up = tree_hashes(victim), tree_hashes(tree)
    state = tree / STATE  # where the hostile input is: the state dir, or a link in nn/
    places = [state, *(state.rglob("*") if state.is_dir() and not state.is_symlink() else ()), *(tree / "ultralytics/nn").iterdir()]
    named = [p for p in places if p.is_symlink() and str(victim) in os.readlink(p)]
    named += [p for p in places if p.suffix == ".json" and p.is_file() and "victim" in p.read_text()]
    assert named, f"{case.__name__}: the hostile input names no victim outside the tree"
    results = {verb: cli(*verb.split(), "--target", str(tree)) for verb in VERBS}
    for verb, result in results.items():
        _one_line_or_ok(result, verb)
        if result.code == 2:
            assert str(tree) in result.err, (case.__name__, verb, result.err)  # names the file it refuses
    codes, end = EXPECTED[case]
    assert tuple(r.code for r in results.values()) == codes, (case.__name__, {v: (r.code, r.err) for v, r in results.items()})
    if codes[0] == 1 and codes[1] == 2:
        assert "not trusted" in results["status"].out or "symlink" in results["status"].out, (case.__name__, results["status"].out)
    if end == REFUSED:
        assert tree_hashes(tree) == set_up, case.__name__
    else:
        assert tree_hashes(tree / "ultralytics") == package and not os.path.lexists(tree / STATE), case.__name__
    assert tree_hashes(victim) == outside, case.__name__
    assert not os.path.lexists(victim / "tasks.py") or (victim / "tasks.py").read_bytes() == (
        pristine_copy / "ultralytics/nn/tasks.py"
    ).read_bytes()


def test_a_hostile_entry_is_named_and_nothing_changes(pristine_copy: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(pristine_copy, tree)
    victim = _victim(tmp_path / "victim")
    case_relative_traversal(tree, victim)
    before, outside = tree_hashes(tree), tree_hashes(victim)
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
    assert tree_hashes(victim) == outside


def test_unknown_action_does_not_delete_tasks_py(pristine_copy: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(pristine_copy, tree)
    victim = _victim(tmp_path / "victim")
    case_unknown_action(tree, victim)
    before, outside = tree_hashes(tree), tree_hashes(victim)
    result = cli("revert", "--target", str(tree), "--force")
    assert result.code == 2 and "files[0]: action 'deleted??'; expected one of created, modified" in result.err
    assert (tree / "ultralytics/nn/tasks.py").read_bytes() == (pristine_copy / "ultralytics/nn/tasks.py").read_bytes()
    assert tree_hashes(tree) == before and tree_hashes(victim) == outside


def test_shipped_manifest_is_not_carried_and_revert_deletes_only_ours(pristine_copy: Path, tmp_path: Path) -> None:
    """apply -> revert on a clone with a foreign state dir: every clone file stays; ours go."""
    tree = tmp_path / "tree"
    shutil.copytree(pristine_copy, tree)
    victim = _victim(tmp_path / "victim")
    case_manifest_shipped_in_clone(tree, victim)
    package_before, outside = tree_hashes(tree / "ultralytics"), tree_hashes(victim)
    assert cli("apply", "--target", str(tree)).code == 0
    manifest = json.loads((tree / STATE / "manifest.json").read_text())
    assert "ultralytics/__init__.py" not in [f["path"] for f in manifest["files"]]
    for force in ([], ["--force"]):
        reverted = cli("revert", "--target", str(tree), *force)
        assert reverted.code == 0, reverted.err
    assert tree_hashes(tree / "ultralytics") == package_before
    assert tree_hashes(victim) == outside
