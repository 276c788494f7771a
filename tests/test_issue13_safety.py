"""Issue 13, points 4-6: the copy the user runs is the one patched, output that survives pipes and
narrow screens, hostile inputs that must not crash, hang or leave anything behind."""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from cli_helpers import cli
from conftest import copy_installed, installed_package_dir, make_clone, make_site_packages, run_cli, tree_hashes
from test_lifecycle import pip_uninstall

from halo_patch.journal import state, transaction

YAML = "ultralytics/cfg/models/11/yolo11-HaloAttention.yaml"


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COLUMNS", "PYTHONSAFEPATH")}
    return {**env, **extra}


def _python_here(cwd: Path, env: dict) -> Path:
    """Where `python` started in `cwd` finds ultralytics: Python's own search, independent of halo-patch."""
    code = "import importlib.util; print(importlib.util.find_spec('ultralytics').origin)"
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return Path(out.stdout.strip()).parent.resolve()


def _console_script() -> Path:
    script = Path(sys.executable).parent / "halo-patch"
    assert script.is_file(), f"{script}: the console script is installed with halo_patch"
    return script


def _first_line(text: str) -> str:
    return text.splitlines()[0]


# ---------------------------------------------------------------- 4. the copy python would import


def test_default_target_is_the_copy_python_started_here_imports(tmp_path: Path) -> None:
    """In a clone root, the console script and `python -m halo_patch` both target the clone (as
    `python train.py` there would import it), call it a clone, and name the copy imported elsewhere."""
    clone = make_clone("8.4.150", tmp_path / "clone")
    env = _env(COLUMNS="300")
    expected = _python_here(clone, env)
    assert expected == (clone / "ultralytics").resolve()
    elsewhere = _python_here(tmp_path, env)
    assert elsewhere == installed_package_dir().resolve() != expected
    for argv in ([str(_console_script())], [sys.executable, "-m", "halo_patch"]):
        r = subprocess.run([*argv, "status"], cwd=clone, env=env, capture_output=True, text=True)
        assert r.returncode == 1, r.stderr
        assert _first_line(r.stdout) == f"Ultralytics 8.4.150 at {expected} (clone, writable)"
        assert (
            f"note: python started in another directory imports {elsewhere} instead; "
            f"`--target {elsewhere.parent}` patches that copy"
        ) in r.stdout
    # PYTHONPATH comes before the environment, from any directory
    env = _env(COLUMNS="300", PYTHONPATH=str(clone))
    assert _python_here(tmp_path, env) == expected
    r = subprocess.run([str(_console_script()), "bases", "--json", "-"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["target"]["package_dir"] == str(expected)


def _fake_venv(venv: Path, clone: Path, style: str) -> None:
    """A venv whose ultralytics is an editable install of `clone`: setuptools' finder, or an old .pth line."""
    site = venv / "lib" / "python3.11" / "site-packages"
    (site / "ultralytics-8.4.150.dist-info").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\n")
    if style == "finder":
        module = "__editable___ultralytics_8_4_150_finder"
        (site / f"{module}.py").write_text(
            f"import sys\nMAPPING: dict[str, str] = {{'ultralytics': {str(clone / 'ultralytics')!r}}}\n"
            "NAMESPACES: dict[str, list[str]] = {}\n"
            "def install():\n    pass\n"
        )
        (site / "__editable__.ultralytics-8.4.150.pth").write_text(f"import {module}; {module}.install()\n")
    else:
        (site / "ultralytics.pth").write_text(f"{clone}\n")


@pytest.mark.parametrize("style", ["finder", "pth"])
def test_target_at_a_venv_follows_its_editable_install(tmp_path: Path, style: str) -> None:
    clone = make_clone("8.4.150", tmp_path / "clone")
    _fake_venv(tmp_path / "venv", clone, style)
    r = cli("status", "--target", str(tmp_path / "venv"))
    assert r.code == 1, r.err
    assert _first_line(r.out) == f"Ultralytics 8.4.150 at {(clone / 'ultralytics').resolve()} (editable install, writable)"


# ---------------------------------------------------------------- 5. output


def _tokens(out: str) -> set[str]:
    return set(out.split())


def test_piped_output_never_crops_a_name_or_a_file(tmp_path: Path) -> None:
    """bases, status and apply's yaml report piped at 80 and 40 columns: every base name and file whole."""
    package = copy_installed(tmp_path / "tree")
    models = package / "cfg" / "models"
    names = set()
    for p in models.rglob("*.yaml"):
        data = yaml.safe_load(p.read_text())
        if isinstance(data, dict) and isinstance(data.get("backbone"), list):
            names.add(p.stem)
    assert len(names) == 66  # the installed release (README: all 66 base names)
    for columns in ("80", "40"):
        r = run_cli("bases", "--target", str(tmp_path / "tree"), env={"COLUMNS": columns})
        assert r.returncode == 0, r.stderr
        assert "…" not in r.stdout and "..." not in r.stdout
        assert names <= _tokens(r.stdout), sorted(names - _tokens(r.stdout))
        assert {f"ultralytics/{p.relative_to(package).as_posix()}" for p in models.rglob("*.yaml") if p.stem in names} <= _tokens(r.stdout)
    r = run_cli("apply", "--target", str(tmp_path / "tree"), env={"COLUMNS": "40"})
    assert r.returncode == 0, r.stderr
    assert "…" not in r.stdout
    assert {YAML, "ultralytics/nn/tasks.py", "ultralytics/nn/Addmodules/halo_attention.py", f"{package}"} <= _tokens(r.stdout)
    r = run_cli("status", "--target", str(tmp_path / "tree"), env={"COLUMNS": "40"})
    assert r.returncode == 0, r.stderr
    assert "…" not in r.stdout and {YAML, "ultralytics/nn/Addmodules/__init__.py", str(package)} <= _tokens(r.stdout)


def test_json_reports_of_status_bases_and_apply(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    package = copy_installed(root)
    report = tmp_path / "apply.json"
    r = cli("apply", "--target", str(root), "--base", "yolo11-seg", "--json", str(report))
    assert r.code == 0, r.err
    applied = json.loads(report.read_text())
    assert applied["result"] == "applied" and applied["exit_code"] == 0
    assert applied["target"]["package_dir"] == str(package)
    for change in applied["changes"]:
        assert (root / change["file"]).is_file()
    seg = "ultralytics/cfg/models/11/yolo11-seg-HaloAttention.yaml"
    assert {c["file"] for c in applied["changes"]} >= {seg, "ultralytics/nn/tasks.py"}
    model = next(m for m in applied["models"] if m["file"] == seg)
    assert model["build"] == "yolo11n-seg-HaloAttention.yaml" and model["base"] == "yolo11-seg"
    layers = [i for i, row in enumerate(_rows(root / seg)) if row[2] == "HaloAttention"]
    assert model["layers"] == layers
    again = cli("apply", "--target", str(root), "--base", "yolo11-seg", "--json", "-")
    assert again.code == 0 and json.loads(again.out)["result"] == "already applied"
    status = cli("status", "--target", str(root), "--json", "-")
    data = json.loads(status.out)  # only the report on stdout
    assert status.code == 0 and data["exit_code"] == 0 and data["verdict"] == "fully applied"
    assert {c["file"] for c in data["changes"]} >= {seg, "ultralytics/nn/tasks.py"}
    assert {c["state"] for c in data["changes"]} == {"applied"}
    bases = cli("bases", "--target", str(root), "--json", "-")
    listed = {b["name"]: b for b in json.loads(bases.out)["bases"]}
    assert listed["yolo11"]["file"] == "ultralytics/cfg/models/11/yolo11.yaml" and listed["yolo11"]["layers"] == len(_rows(package / "cfg/models/11/yolo11.yaml"))
    assert "yolo11-seg-HaloAttention" not in listed
    assert cli("status", "--target", str(root), "--json", str(tmp_path / "no" / "x.json")).code == 2
    reverted = cli("revert", "--target", str(root), "--json", "-")
    data = json.loads(reverted.out)
    assert reverted.code == 0 and data["result"] == "reverted"
    assert {f["file"] for f in data["files"]} >= {seg, "ultralytics/nn/tasks.py"} and not (root / seg).exists()
    assert json.loads(cli("revert", "--target", str(root), "--json", "-").out)["result"] == "nothing to revert"


def _rows(path: Path) -> list:
    data = yaml.safe_load(path.read_text())
    return data["backbone"] + data["head"]


def _build(tree: Path, name: str) -> subprocess.CompletedProcess:
    code = f"from ultralytics import YOLO; m = YOLO({name!r}); print('built', type(m.model).__name__)"
    env = _env(PYTHONPATH=str(tree), YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(tree.parent / "cfgdir"))
    return subprocess.run([sys.executable, "-c", code], cwd=tree.parent, env=env, capture_output=True, text=True)


def test_yaml_warning_only_where_the_printed_call_fails(tmp_path: Path) -> None:
    """A `v8s` folder: YOLO('yolo11n-HaloAttention.yaml') builds, so no warning. A `[1]` folder: the
    call fails (Ultralytics globs the package path), and the warning says so and what builds instead."""
    quiet = tmp_path / "yolo_v8s_project"
    copy_installed(quiet)
    r = cli("apply", "--target", str(quiet))
    assert r.code == 0 and "warning:" not in r.out + r.err
    assert "built DetectionModel" in _build(quiet, "yolo11n-HaloAttention.yaml").stdout

    globby = tmp_path / "run[1]"
    package = copy_installed(globby)
    r = cli("apply", "--target", str(globby))
    full = package / "cfg" / "models" / "11" / "yolo11n-HaloAttention.yaml"
    assert r.code == 0
    text = r.out.replace("\n", " ")
    assert (
        f"warning: YOLO('yolo11n-HaloAttention.yaml') will not find its file here: Ultralytics looks a yaml name up with "
        f"glob('{package}/**/...'), and [ ] in that path are glob pattern characters; build it by its full path, "
        f"YOLO('{full}'), or move the tree"
    ) in text
    failed = _build(globby, "yolo11n-HaloAttention.yaml")
    assert failed.returncode != 0 and "does not exist" in failed.stderr
    assert "built DetectionModel" in _build(globby, str(full)).stdout


def test_ctrl_c_messages_say_what_is_true(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "tree"
    copy_installed(root)
    pristine = tree_hashes(root)

    def interrupt(*_a, **_k):
        raise KeyboardInterrupt

    # after the last tree file was written: the tree is applied, the state dir is behind
    real_json = transaction._write_json

    def manifest_interrupted(target, name, data):
        if name == state.MANIFEST:
            raise KeyboardInterrupt
        return real_json(target, name, data)

    with monkeypatch.context() as m:
        m.setattr(transaction, "_write_json", manifest_interrupted)
        r = cli("apply", "--target", str(root))
    assert r.code == 130 and "rolled back" not in r.err
    assert r.err == (
        "error: interrupted (Ctrl-C) after the apply wrote every file: HaloAttention is applied; "
        "run `halo-patch apply` again to finish the state dir's bookkeeping\n"
    )
    assert "interrupted apply" in cli("status", "--target", str(root)).out
    assert cli("apply", "--target", str(root)).code == 0 and cli("status", "--target", str(root)).code == 0
    # in the middle of the revert: rolled back, and it is
    applied = tree_hashes(root)
    with monkeypatch.context() as m:
        calls = []
        real = transaction.atomic_write

        def second_write_interrupted(*a, **k):
            calls.append(a[0])
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real(*a, **k)

        m.setattr(transaction, "atomic_write", second_write_interrupted)
        r = cli("revert", "--target", str(root))
    assert r.code == 130 and r.err == "error: interrupted (Ctrl-C); the revert was rolled back, nothing changed\n"
    assert tree_hashes(root) == applied
    assert cli("revert", "--target", str(root)).code == 0 and tree_hashes(root) == pristine
    # during verify (which writes nothing into the tree), or before anything is written
    from halo_patch.commands import verify as verify_cmd

    monkeypatch.setattr(verify_cmd, "run_steps", interrupt)
    r = cli("verify", "--target", str(root))
    assert r.code == 130 and r.err == "error: interrupted (Ctrl-C); nothing changed\n"


def test_status_after_pip_uninstall_says_uninstalled(tmp_path: Path) -> None:
    make_site_packages("8.4.190", tmp_path / "site")
    assert cli("apply", "--target", str(tmp_path / "site")).code == 0
    pip_uninstall(tmp_path / "site")
    r = cli("status", "--target", str(tmp_path / "site"))
    assert "the tree is now  (" not in r.out and "upgraded or reinstalled" not in r.out
    assert "applied to Ultralytics 8.4.190, which is no longer installed here (uninstalled)" in r.out.replace("\n", " ")


def test_help_has_no_bool_placeholder_and_a_true_after_default() -> None:
    for argv in ([], ["apply"], ["revert"], ["status"], ["bases"], ["verify"], ["weights"], ["compare"]):
        text = cli(*argv, "--help").out
        assert "<bool>" not in text and "--help" in text
    text = " ".join(cli("apply", "--help").out.split())
    assert "before SPPF" not in text and "default --after" in text


# ---------------------------------------------------------------- 6. hostile inputs


def test_deeply_nested_tasks_py_is_one_error_line(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    package = copy_installed(root)
    tasks = package / "nn" / "tasks.py"
    tasks.write_text(tasks.read_text() + "\nDEEP = 1" + " + 1" * 100_000 + "\n")
    before = tree_hashes(root)
    for verb in ("status", "apply", "revert"):
        r = subprocess.run([sys.executable, "-m", "halo_patch", verb, "--target", str(root)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, (verb, r.returncode, r.stderr[-300:])
        assert r.stderr.startswith(f"error: {tasks} (Ultralytics ") and r.stderr.count("\n") == 1, r.stderr
        assert "nested too deeply to parse" in r.stderr
    assert tree_hashes(root) == before


def test_base_fifo_and_dev_zero_fail_fast_before_the_lock(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    copy_installed(root)
    fifo = tmp_path / "base.yaml"
    os.mkfifo(fifo)
    before = tree_hashes(root)
    fd = os.open(root / "ultralytics", os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held: a run that took the lock first would report it instead
    try:
        for base, what in ((str(fifo), "a FIFO (named pipe), not a regular file"), ("/dev/zero", "a character device, not a regular file")):
            start = time.monotonic()
            r = subprocess.run(
                [sys.executable, "-m", "halo_patch", "apply", "--target", str(root), "--base", base],
                capture_output=True, text=True, timeout=60, env=_env(HALO_PATCH_LOCK_WAIT="30"),
            )
            assert time.monotonic() - start < 25
            assert r.returncode == 2 and r.stderr == f"error: {base}: {what}; expected an Ultralytics model yaml\n"
    finally:
        os.close(fd)
    assert tree_hashes(root) == before


@pytest.mark.parametrize("how", ["ascii", "full"])
def test_unprintable_stdout_never_fails_a_finished_change(tmp_path: Path, how: str) -> None:
    """PYTHONIOENCODING=ascii with a non-ASCII path, or stdout on a full disk (/dev/full): apply
    makes every change and exits 0; status still answers."""
    root = tmp_path / "träd"
    copy_installed(root)
    env = _env(PYTHONIOENCODING="ascii") if how == "ascii" else _env()
    out = open(os.devnull if how == "ascii" else "/dev/full", "w")  # noqa: SIM115
    with out:
        r = subprocess.run([sys.executable, "-m", "halo_patch", "apply", "--target", str(root)], env=env,
                           stdout=subprocess.PIPE if how == "ascii" else out, stderr=subprocess.PIPE, text=True)
        assert r.returncode == 0, r.stderr
        assert (root / YAML).is_file()
        r = subprocess.run([sys.executable, "-m", "halo_patch", "status", "--target", str(root)], env=env,
                           stdout=subprocess.PIPE if how == "ascii" else out, stderr=subprocess.PIPE, text=True)
    assert r.returncode == 0, r.stderr
    if how == "ascii":
        assert "HaloAttention is fully applied." in r.stdout


def test_every_run_sweeps_its_temp_files(tmp_path: Path) -> None:
    """Temp files a cut-short run left (a second Ctrl-C inside a rollback) go with the next run, even
    one that has nothing to do; files of other names stay."""
    root = tmp_path / "tree"
    package = copy_installed(root)
    pristine = tree_hashes(root)
    left = [package / "nn" / ".tasks.py.halo-tmp", package / "cfg" / "models" / "11" / ".yolo11-HaloAttention.yaml.halo-tmp"]
    kept = package / "nn" / ".tasks.py.user-backup"
    for path in left:
        path.write_text("half written")
    kept.write_text("mine")
    r = cli("revert", "--target", str(root))
    assert r.code == 0 and "nothing to revert" in r.out
    assert not any(p.exists() for p in left) and kept.read_text() == "mine"
    kept.unlink()
    assert tree_hashes(root) == pristine
    (package / "nn" / ".tasks.py.halo-tmp").write_text("half written")
    assert cli("apply", "--target", str(root)).code == 0
    assert not (package / "nn" / ".tasks.py.halo-tmp").exists()


def test_lock_held_by_another_program_names_its_pid(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    copy_installed(root)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, os, sys, time
            fd = os.open({str(root / 'ultralytics')!r}, os.O_RDONLY | os.O_DIRECTORY)
            fcntl.flock(fd, fcntl.LOCK_EX)
            print('locked', flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        r = run_cli("apply", "--target", str(root), env={"HALO_PATCH_LOCK_WAIT": "0"})
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert re.search(rf"locked by another program, held by pid {holder.pid} \(user \S+: {re.escape(sys.executable)} -c ", r.stderr), r.stderr
    assert "waited 0 s ($HALO_PATCH_LOCK_WAIT)" in r.stderr


def test_verify_export_names_exactly_the_missing_module(patched_installed: Path, tmp_path: Path) -> None:
    """Only onnxslim missing (hidden from the target's Python by a sitecustomize): the export row
    names onnxslim alone, never `onnxslim/onnxruntime`."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['onnxslim'] = None  # find_spec -> None, import fails\n")
    report = tmp_path / "verify.json"
    r = run_cli("verify", "--target", str(patched_installed.parent), "--export", "onnx", "--imgsz", "64", "--json", str(report),
                env={"PYTHONPATH": str(hide)})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    export = next(s for s in json.loads(report.read_text())["steps"] if s["id"] == "export:n")
    assert export["detail"].endswith("(not simplified: onnxslim not installed)"), export["detail"]
