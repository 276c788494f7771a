"""Where verify's checks run: the Python that owns the target, its environment, a safe temp dir.

Imports neither torch nor Ultralytics: it only locates interpreters and packages.
"""

from __future__ import annotations

import importlib.util
import os
import re
import site
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from halo_patch.errors import HaloPatchError
from halo_patch.target import Kind, UltralyticsTarget

# Ultralytics maps `yolo11n.yaml` to `yolo11.yaml` with re.sub(r"(\d+)([nslmx])(.+)?$", ...) on the whole
# path, so a temp dir whose name holds a digit followed by a scale letter breaks the scale lookup.
SCALE_TRAP = re.compile(r"\d[nslmx]")


@dataclass(frozen=True)
class Interpreter:
    """The Python that owns the target, and what goes first on its PYTHONPATH."""

    python: str
    pythonpath: Optional[Path]
    reason: str
    note: Optional[str] = None  # what users must know to get the same import outside verify


def find_interpreter(target: UltralyticsTarget) -> Interpreter:
    """The Python that imports this target in real use.

    site-packages of this Python: this Python. site-packages of another environment
    (<prefix>/lib/pythonX.Y/site-packages): <prefix>/bin/python, which imports what that environment
    imports. Anything else (a clone, a copied package): this Python with the target's root first on
    PYTHONPATH.
    """
    root = target.root.resolve()
    if target.kind is Kind.SITE_PACKAGES:
        if root in _own_site_dirs():
            return Interpreter(sys.executable, None, "this Python, whose site-packages holds the target")
        python = _environment_python(root)
        if python is not None:
            return Interpreter(str(python), None, f"the Python of the environment that holds {root}")
    return Interpreter(sys.executable, root, f"this Python with {root} first on PYTHONPATH", _path_note(target, root))


def _path_note(target: UltralyticsTarget, root: Path) -> Optional[str]:
    """Where this Python imports ultralytics from without verify's PYTHONPATH, when that is not the target."""
    spec = importlib.util.find_spec("ultralytics")  # locates the package; does not run it
    found = Path(spec.origin).resolve().parent if spec is not None and spec.origin else None
    if found == target.package_dir.resolve():
        return None
    imports = f"imports ultralytics from {found}" if found else "cannot import ultralytics"
    install = f" (or pip install -e {root})" if target.kind is Kind.CLONE else ""
    return (
        f"without PYTHONPATH={root}, this Python {imports}: start training with that PYTHONPATH{install}, "
        "or your runs and DDP workers will not use the patched copy"
    )


def _own_site_dirs() -> set[Path]:
    dirs = [*site.getsitepackages(), site.getusersitepackages()] if hasattr(site, "getsitepackages") else []
    dirs += [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    return {Path(d).resolve() for d in dirs if d}


def _environment_python(site_dir: Path) -> Optional[Path]:
    """<prefix>/bin/python for <prefix>/lib/pythonX.Y/site-packages (Scripts/python.exe on Windows)."""
    lib = site_dir.parent
    candidates: list[Path] = []
    if lib.name.startswith("python") and lib.parent.name in ("lib", "lib64"):
        prefix = lib.parent.parent
        candidates = [prefix / "bin" / name for name in ("python", "python3", lib.name)]
    elif lib.name.lower() == "lib":
        candidates = [lib.parent / "Scripts" / "python.exe", lib.parent / "python.exe"]
    return next((p for p in candidates if p.is_file() and os.access(p, os.X_OK)), None)


def check_temp_base() -> None:
    base = tempfile.gettempdir()
    if SCALE_TRAP.search(base):
        raise HaloPatchError(
            f"{base}: the temp dir path holds a digit followed by n/s/m/l/x, which Ultralytics reads as a "
            "model scale; set TMPDIR to another directory"
        )


def make_workdir() -> Path:
    """A fresh temp dir whose path Ultralytics cannot mistake for a model scale."""
    check_temp_base()
    base = tempfile.gettempdir()
    for _ in range(100):
        path = Path(tempfile.mkdtemp(prefix="halo_verify_"))
        if not SCALE_TRAP.search(str(path)):
            return path
        path.rmdir()
    raise HaloPatchError(f"{base}: could not make a temp dir without a digit+scale letter in its name")


def child_env(interpreter: Interpreter, workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Ultralytics treats a set PYTEST_CURRENT_TEST as "running its own tests" and changes default paths.
    env.pop("PYTEST_CURRENT_TEST", None)
    if interpreter.pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(interpreter.pythonpath), env.get("PYTHONPATH", "")) if p)
    config, tmp = workdir / "config", str(workdir / "tmp")
    env.update(
        YOLO_CONFIG_DIR=str(config),  # settings.json, fonts, DDP scripts: all inside the temp dir
        MPLCONFIGDIR=str(config / "matplotlib"),
        XDG_CACHE_HOME=str(workdir / "cache"),  # onnxruntime writes ~/.cache/Microsoft/... otherwise
        TMPDIR=tmp,  # temp files of torch, onnx and Ultralytics go away with the temp dir too
        TEMP=tmp,
        TMP=tmp,
        YOLO_OFFLINE="1",  # verify needs no network: it makes its own data and never downloads weights
        YOLO_AUTOINSTALL="false",  # never pip-install into the user's environment
        PYTHONDONTWRITEBYTECODE="1",  # no __pycache__ inside the target
        PYTHONUNBUFFERED="1",
    )
    return env
