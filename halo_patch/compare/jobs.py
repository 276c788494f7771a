"""Start compare's in-target jobs, one process each, in the target's own Python, and follow them.

The in_target package is copied to <out>/.halo-compare/code/halo_compare_jobs and started with
`python -c LAUNCHER <code dir> <config.json>`. The environment: verify's (the target's root first on
PYTHONPATH when this Python would not import it: Ultralytics' DDP workers inherit it too), a
YOLO_CONFIG_DIR of the comparison's own (a copy of the user's settings, so trackers stay as set but the
user's file is never written), temp files under <out>/.halo-compare/tmp.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from enum import Enum
from pathlib import Path
from typing import Callable, Optional

from halo_patch.compare.manifest import STATE, read_json
from halo_patch.verify.interpreter import Interpreter, child_env

IN_TARGET = Path(__file__).resolve().parent / "in_target"
PACKAGE = "halo_compare_jobs"
LAUNCHER = f"import sys; sys.path.insert(0, sys.argv[1]); from {PACKAGE}.main import main; sys.exit(main(sys.argv[2]))"
POLL_S = 0.5


class Job(str, Enum):
    """What a process in the target's Python does (in_target/main.py dispatches on the value)."""

    PREFLIGHT = "preflight"
    TRAIN = "train"
    PLOTS = "plots"


class JobError(Exception):
    """A job that failed: its one-line reason and the log that holds the rest."""

    def __init__(self, message: str, log: Path) -> None:
        super().__init__(message)
        self.log = log


def state_dir(out: Path) -> Path:
    return out / STATE


def prepare(out: Path) -> None:
    """The code copy, the config dir (seeded with the user's settings once), the temp dir."""
    state = state_dir(out)
    code = state / "code"
    shutil.rmtree(code, ignore_errors=True)
    shutil.copytree(IN_TARGET, code / PACKAGE, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for sub in ("config", "tmp", "logs", "jobs", "records"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    settings = state / "config" / "settings.json"
    user = user_settings_file()
    if not settings.exists() and user is not None and user.is_file():
        shutil.copyfile(user, settings)


def user_settings_file() -> Optional[Path]:
    """Where Ultralytics keeps this user's settings (YOLO_CONFIG_DIR, else the platform's config dir)."""
    if os.environ.get("YOLO_CONFIG_DIR"):
        return Path(os.environ["YOLO_CONFIG_DIR"]) / "settings.json"
    home = Path.home()
    system = platform.system()
    if system == "Windows":
        base = Path(os.environ.get("APPDATA", home / "AppData" / "Roaming"))
    elif system == "Darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME", home / ".config"))
    return base / "Ultralytics" / "settings.json"


def job_env(interpreter: Interpreter, out: Path) -> dict[str, str]:
    state = state_dir(out)
    user_offline = os.environ.get("YOLO_OFFLINE")
    env = child_env(interpreter, state)
    if user_offline is None:  # verify forces offline; compare leaves downloads and trackers as the user has them
        env.pop("YOLO_OFFLINE", None)
    if "XDG_CACHE_HOME" in os.environ:
        env["XDG_CACHE_HOME"] = os.environ["XDG_CACHE_HOME"]
    else:
        env.pop("XDG_CACHE_HOME", None)
    env["YOLO_CONFIG_DIR"] = str(state / "config")
    env["MPLCONFIGDIR"] = str(state / "config" / "matplotlib")
    return env


def run_job(
    interpreter: Interpreter, out: Path, job: Job, job_id: str, config: dict, on_poll: Optional[Callable[[], None]] = None
) -> dict:
    """Run one job to its end (calling on_poll while it runs); its result, or JobError."""
    config = {**config, "job": job.value}
    state = state_dir(out)
    config_path, result_path = state / "jobs" / f"{job_id}.json", state / "jobs" / f"{job_id}.result.json"
    log_path = state / "logs" / f"{job_id}.log"
    result_path.unlink(missing_ok=True)
    config_path.write_text(json.dumps({**config, "result": str(result_path)}), encoding="utf-8")
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                [interpreter.python, "-c", LAUNCHER, str(state / "code"), str(config_path)],
                cwd=out, env=job_env(interpreter, out), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            raise JobError(f"cannot run {interpreter.python}: {exc.strerror or exc}", log_path) from None
        try:
            while proc.poll() is None:
                if on_poll is not None:
                    on_poll()
                time.sleep(POLL_S)
        finally:
            if proc.poll() is None:  # Ctrl-C or an error here: never leave a training running
                proc.kill()
                proc.wait()
    result = read_json(result_path)
    if not isinstance(result, dict):
        raise JobError(f"the {job.value} process ({interpreter.python}) exited with code {proc.returncode} and no result", log_path)
    if not result.get("ok"):
        raise JobError(str(result.get("error", "failed")), log_path)
    return result
