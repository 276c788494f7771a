"""Find the Ultralytics tree to patch, without importing it."""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from halo_patch import interpreter_search
from halo_patch.errors import TargetError

PACKAGE = "ultralytics"
STATE_DIR_NAME = ".halo-patch"


class Kind(str, Enum):
    """What kind of copy of Ultralytics a target is."""

    CLONE = "clone"
    EDITABLE = "editable install"
    SITE_PACKAGES = "site-packages"
    DIRECTORY = "directory"
    UNINSTALLED = "uninstalled"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class UltralyticsTarget:
    """One copy of the `ultralytics` package and the folder that holds it: every path of the tree
    that halo-patch reads or writes is a property here."""

    package_dir: Path  # .../ultralytics, the importable package, symlinks resolved
    kind: Kind
    version: str  # __version__ read as text from ultralytics/__init__.py ("" when uninstalled)
    elsewhere: str = ""  # default target only: the other copy `python` imports outside this directory, and how to pick it

    @property
    def root(self) -> Path:
        """The folder holding the package: the clone root or site-packages."""
        return self.package_dir.parent

    @property
    def tasks_py(self) -> Path:
        return self.nn_dir / "tasks.py"

    @property
    def nn_dir(self) -> Path:
        return self.package_dir / "nn"

    @property
    def addmodules_dir(self) -> Path:
        """nn/Addmodules/: the tutorial layout's package of added modules (default --layout)."""
        return self.nn_dir / "Addmodules"

    @property
    def addmodules_init(self) -> Path:
        return self.addmodules_dir / "__init__.py"

    @property
    def modules_dir(self) -> Path:
        """nn/modules/: Ultralytics' own modules package (--layout modules)."""
        return self.nn_dir / "modules"

    @property
    def modules_init(self) -> Path:
        return self.modules_dir / "__init__.py"

    @property
    def models_dir(self) -> Path:
        """cfg/models/: the model yamls (bases, and the yamls apply writes beside them)."""
        return self.package_dir / "cfg" / "models"

    @property
    def custom_models_dir(self) -> Path:
        """cfg/models/custom/: where the yaml made from a user's own base file goes."""
        return self.models_dir / "custom"

    @property
    def models11_dir(self) -> Path:
        return self.models_dir / "11"

    @property
    def state_dir(self) -> Path:
        """Manifest and backups: beside the package, never inside its globbed tree."""
        return self.root / STATE_DIR_NAME

    @property
    def writable(self) -> bool:
        dirs = [self.root, self.nn_dir, self.models11_dir]
        return all(os.access(d, os.W_OK) for d in dirs if d.exists()) and (
            not self.tasks_py.exists() or os.access(self.tasks_py, os.W_OK)
        )

    def record_hashes(self) -> dict[str, str]:
        """sha256 (hex) of each file the installed wheel's RECORD lists, by path relative to the root."""
        import base64
        import csv

        out: dict[str, str] = {}
        for record in sorted(self.root.glob(f"{PACKAGE}-*.dist-info/RECORD")):
            try:
                rows = list(csv.reader(record.read_text(encoding="utf-8").splitlines()))
            except (OSError, UnicodeDecodeError, csv.Error):
                continue
            for row in rows:
                if len(row) >= 2 and row[1].startswith("sha256="):
                    digest = row[1][len("sha256=") :]
                    try:
                        out[row[0]] = base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4)).hex()
                    except ValueError:
                        continue
        return out

    def relative(self, path: Path) -> str:
        """A path as shown to users and stored in the manifest: relative to the root."""
        return path.relative_to(self.root).as_posix()


def find_target(path: Path | None, leftovers: bool = False) -> UltralyticsTarget:
    """The tree at `path` (clone root, package dir or site-packages), or the one Python would import.

    With `leftovers`, a folder whose Ultralytics was uninstalled but which still holds halo-patch's
    state dir or files is a target too (kind "uninstalled"), so revert can clean it up."""
    if path is not None and leftovers:
        gone = _uninstalled_at(path)
        if gone is not None:
            return gone
    package_dir = _package_dir_at(path) if path is not None else _package_dir_on_sys_path()
    kind = _kind_of(package_dir)
    if path is not None and kind is Kind.CLONE and interpreter_search.installed_in(path.expanduser().resolve()) == package_dir:
        kind = Kind.EDITABLE  # --target at a venv (or its site-packages) whose ultralytics is this clone
    note = _elsewhere(package_dir) if path is None else ""
    return UltralyticsTarget(package_dir=package_dir, kind=kind, version=read_version(package_dir), elsewhere=note)


def _elsewhere(package_dir: Path) -> str:
    """When `python` started elsewhere imports another copy: which, and the --target that picks it."""
    other = interpreter_search.environment_package()
    if other is None or other == package_dir:
        return ""
    return (
        f"python started in another directory imports {other} instead; "
        f"`--target {other.parent}` patches that copy"
    )


def _uninstalled_at(path: Path) -> UltralyticsTarget | None:
    """`path` (site-packages or clone root) after `pip uninstall ultralytics`: a state dir or an
    `ultralytics/` folder without tasks.py or __init__.py."""
    path = path.expanduser().resolve()
    package = path / PACKAGE
    if not path.is_dir() or (package / "nn" / "tasks.py").is_file() or (package / "__init__.py").is_file():
        return None
    if (path / STATE_DIR_NAME).is_dir() or package.is_dir():
        return UltralyticsTarget(package_dir=package, kind=Kind.UNINSTALLED, version="")
    return None


def require_writable(target: UltralyticsTarget) -> None:
    if not target.writable:
        raise TargetError(f"{target.package_dir}: not writable by this user; run with permission to write there")


def read_version(package_dir: Path) -> str:
    """`__version__` from ultralytics/__init__.py, parsed as text (the package is never imported)."""
    init = package_dir / "__init__.py"
    try:
        tree = ast.parse(init.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise TargetError(f"{init}: cannot read the Ultralytics version ({exc.__class__.__name__})") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return node.value.value
    raise TargetError(f"{init}: no __version__ = \"...\" line; expected an Ultralytics package")


def _package_dir_at(path: Path) -> Path:
    path = path.expanduser().resolve()
    if not path.exists():
        raise TargetError(f"{path}: no such directory; expected an Ultralytics clone, package or site-packages dir")
    if not path.is_dir():
        raise TargetError(f"{path}: not a directory; expected an Ultralytics clone, package or site-packages dir")
    for candidate in (path / PACKAGE, path):
        if (candidate / "nn" / "tasks.py").is_file() and (candidate / "__init__.py").is_file():
            return candidate.resolve()  # a symlinked `ultralytics` entry and its real path: one tree, one state
    installed = interpreter_search.installed_in(path)  # a venv or site-packages: follow it (to a clone, when editable)
    if installed is not None:
        return installed
    raise TargetError(
        f"{path}: not an Ultralytics tree; expected {path / PACKAGE / 'nn' / 'tasks.py'} or {path / 'nn' / 'tasks.py'}"
    )


def _package_dir_on_sys_path() -> Path:
    """The copy `python` started in the current directory imports (located, never imported)."""
    found = interpreter_search.here_package()
    if found is None:
        raise TargetError("ultralytics is not importable from this Python; pass --target PATH or pip install ultralytics")
    return _package_dir_at(found)


def _kind_of(package_dir: Path) -> Kind:
    root = package_dir.parent
    is_project = (root / ".git").exists() or (root / "pyproject.toml").is_file() or (root / "setup.py").is_file()
    if is_project:  # an editable install: this environment imports it from any directory
        return Kind.EDITABLE if interpreter_search.environment_package() == package_dir else Kind.CLONE
    if any(root.glob(f"{PACKAGE}-*.dist-info")) or root.name in {"site-packages", "dist-packages"}:
        return Kind.SITE_PACKAGES
    return Kind.DIRECTORY
