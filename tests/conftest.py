"""Real Ultralytics trees for the tests: releases from PyPI (cached) and the installed copy."""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

# Ultralytics cannot reach its hub from CI machines: no version checks, no downloads.
os.environ.setdefault("YOLO_OFFLINE", "1")
# Ultralytics writes its settings file on first use: never the user's, and one dir per test process
# (pytest-xdist workers would race on one settings.json).
_CONFIG_DIR = tempfile.mkdtemp(prefix="halo-patch-tests-yolo-config-")
atexit.register(shutil.rmtree, _CONFIG_DIR, True)
os.environ["YOLO_CONFIG_DIR"] = _CONFIG_DIR

# Releases that cover every shape the patch meets (see shared notes / README "Tested releases").
RELEASES = {
    "8.3.0": "first YOLO11 release, set-literal chain",
    "8.3.40": "set-literal chain",
    "8.3.70": "frozenset `base_modules` chain",
    "8.3.100": "adds YOLO12",
    "8.4.0": "adds YOLO26",
    "8.4.70": "restricted-loading guard first in the loop",
    "8.4.110": "`from __future__ import annotations` at the top",
    "8.4.150": "`if m is SPPF and ...` after the chain",
    "8.4.190": "newest at the time of writing",
}

CACHE = Path(os.environ.get("HALO_PATCH_TEST_CACHE", Path.home() / ".cache" / "halo-patch-tests"))


def installed_package_dir() -> Path:
    spec = importlib.util.find_spec("ultralytics")
    assert spec is not None and spec.origin, "ultralytics must be installed for the tests"
    return Path(spec.origin).parent


def fetch_wheel(version: str) -> Path:
    """`pip download --no-deps ultralytics==X`, cached between runs."""
    wheel = CACHE / f"ultralytics-{version}-py3-none-any.whl"
    if wheel.is_file():
        return wheel
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".download.lock", "w") as lock:  # parallel test workers: one download, never a half-written wheel
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not wheel.is_file():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q", f"ultralytics=={version}", "-d", str(CACHE)],
                check=True,
            )
    return wheel


def make_clone(version: str, dest: Path) -> Path:
    """A tree laid out like a git clone: pyproject.toml, tests/, ultralytics/, under git."""
    dest.mkdir(parents=True)
    with zipfile.ZipFile(fetch_wheel(version)) as zf:
        zf.extractall(dest, [n for n in zf.namelist() if ".dist-info/" not in n])
    (dest / "pyproject.toml").write_text(f'[project]\nname = "ultralytics"\nversion = "{version}"\n')
    subprocess.run(["git", "init", "-q", str(dest)], check=True)
    return dest


def make_site_packages(version: str, dest: Path) -> Path:
    """A tree laid out like site-packages: ultralytics/ beside its dist-info; returns the package dir."""
    dest.mkdir(parents=True)
    with zipfile.ZipFile(fetch_wheel(version)) as zf:
        zf.extractall(dest, [n for n in zf.namelist() if n.startswith("ultralytics/") or ".dist-info/" in n])
    return dest / "ultralytics"


def read_version(package: Path) -> str:
    """`__version__` of an ultralytics package dir, read as text (never imported here)."""
    import ast

    init = package / "__init__.py"
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return node.value.value
    raise AssertionError(f"{init}: no __version__")


def installed_version() -> str:
    """`__version__` of the environment's ultralytics, read as text (never imported here)."""
    return read_version(installed_package_dir())


def copy_installed(dest: Path) -> Path:
    """The installed Ultralytics release, pristine, as a package dir under dest.

    Taken from the release's own wheel, never from the environment's copy: the README's main command
    patches the environment's ultralytics, and the tests must pass before and after it.
    """
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(fetch_wheel(installed_version())) as zf:
        zf.extractall(dest, [n for n in zf.namelist() if n.startswith("ultralytics/")])
    return dest / "ultralytics"


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under root (plus every directory, as an empty marker)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def seal_matches(data: bytes, path: Path) -> bool:
    """The README's seal, recomputed here: a first line `# halo-patch sha256:<hex>` holding the sha256 of the
    file's path under cfg/models/, a newline, and every byte after that line (CRLF read as LF)."""
    first, _, rest = data.replace(b"\r\n", b"\n").partition(b"\n")
    parts = path.parts
    at = max(i for i in range(len(parts) - 1) if parts[i : i + 2] == ("cfg", "models"))
    where = "/".join(parts[at + 2 :]).encode("utf-8")
    return first == b"# halo-patch sha256:" + hashlib.sha256(where + b"\n" + rest).hexdigest().encode("ascii")


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real console entry point in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "halo_patch", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


@pytest.fixture(scope="session")
def patched_installed(tmp_path_factory) -> Path:
    """A copy of the installed Ultralytics with HaloAttention applied; returns its package dir."""
    root = tmp_path_factory.mktemp("patched_installed", numbered=False)
    package = copy_installed(root)
    result = run_cli("apply", "--target", str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    return package


# The longest files first: each file runs whole on one worker (`--dist loadfile`), and a long file
# started last would leave the other worker idle at the end of the run.
LONGEST_FIRST = ("test_weights.py", "test_compare.py", "test_compare_weights.py", "test_verify_families.py",
                 "test_model_yaml_families.py", "test_journal_faults.py", "test_verify.py")


def pytest_collection_modifyitems(items: list) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))  # stable: the others keep their order


@pytest.fixture(scope="session")
def trained_sources(tmp_path_factory) -> dict:
    """Checkpoints Ultralytics' trainer made (det_n, det_s, seg_n, seg_s; the tutorial's saved model), trained once
    per session in one process (tests/trained.py); test_weights and test_compare_weights share it."""
    from trained import train_sources

    # Under pytest-xdist every worker has its own basetemp below the run's one: the first worker to ask
    # trains, the others wait on the lock and read what it made (the tests only read these files).
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    done = shared / "trained_sources.json"
    with open(shared / "trained_sources.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            made = train_sources(shared / "trained_sources")
            done.write_text(json.dumps(made, default=str), encoding="utf-8")
    made = json.loads(done.read_text(encoding="utf-8"))
    paths = {k: Path(v) for k, v in made.items() if k in ("tree", "work", "data")}
    return {**made, **paths, "src": {k: Path(v) for k, v in made["src"].items()}}


@pytest.fixture(scope="session")
def warm_python(tmp_path_factory):
    """Fresh `python -c` processes for torch work in test trees, forked from one that has torch imported."""
    from warm_python import WarmPython

    server = WarmPython(tmp_path_factory.mktemp("warm_python"))
    yield server
    server.close()
