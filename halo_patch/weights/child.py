"""Run the in-target carry in the target's interpreter and follow what it reports.

As verify does: `in_target` is copied into the temp dir as `halo_weights_carry` and started with
`python -c LAUNCHER <dir> <config>`, only that dir added to sys.path, the temp dir as cwd, Ultralytics
config dir and TMPDIR. The checkpoint is written into the temp dir; `output` puts it in place.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

from halo_patch.errors import HaloPatchError
from halo_patch.verify.interpreter import Interpreter, child_env

IN_TARGET = Path(__file__).resolve().parent / "in_target"
PACKAGE = "halo_weights_carry"
LAUNCHER = f"import sys; sys.path.insert(0, sys.argv[1]); from {PACKAGE}.main import main; sys.exit(main(sys.argv[2]))"
STEPS = 4  # reading, building, carrying, writing: the progress events the carry sends


class CarryCrashed(RuntimeError):
    """The in-target process failed in a way it did not report: an error of halo-patch, shown as exit 3."""


def run_carry(interpreter: Interpreter, config: dict[str, Any], workdir: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    """The carry's report; HaloPatchError when it refused (nothing written)."""
    for name in ("code", "config", "tmp", "cache"):
        (workdir / name).mkdir()
    shutil.copytree(IN_TARGET, workdir / "code" / PACKAGE, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    log_path = workdir / "carry.log"
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                [interpreter.python, "-c", LAUNCHER, str(workdir / "code"), json.dumps(config)],
                cwd=workdir, env=child_env(interpreter, workdir), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=log, text=True, encoding="utf-8", errors="replace",
            )
        except OSError as exc:
            raise HaloPatchError(f"cannot run {interpreter.python}: {exc.strerror or exc}") from None
        try:
            outcome = _follow(proc.stdout, progress)
            code = proc.wait()
        finally:
            if proc.poll() is None:  # Ctrl-C or an error here: never leave it running
                proc.kill()
                proc.wait()
    if outcome is None or code != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] if log_path.is_file() else []
        raise CarryCrashed(f"the weights process ({interpreter.python}) exited with code {code}: {tail[0] if tail else 'no output'}")
    if outcome["event"] == "refused":
        raise HaloPatchError(outcome["message"])
    return outcome["report"]


def _follow(lines, progress: Callable[[str], None]) -> dict[str, Any] | None:
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "progress":
            progress(event["what"])
        elif event.get("event") in ("refused", "done"):
            return event
    return None
