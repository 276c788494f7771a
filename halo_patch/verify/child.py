"""Run the in-target checks in the target's interpreter and follow what they report.

The `in_target` package is copied into the temp dir as `halo_verify_checks` and started with
`python -c LAUNCHER <dir> <config>`: only that dir is added to sys.path, so nothing of halo-patch
and no other module shadows what the target imports. The temp dir is the subprocess's cwd,
Ultralytics config dir, dataset and runs dir.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Generator, Iterable, Iterator, Optional

from halo_patch.target import UltralyticsTarget
from halo_patch.verify.interpreter import Interpreter, child_env
from halo_patch.verify.options import FAILED, Options, Step

IN_TARGET = Path(__file__).resolve().parent / "in_target"
PACKAGE = "halo_verify_checks"  # the copy's name in the temp dir
LAUNCHER = f"import sys; sys.path.insert(0, sys.argv[1]); from {PACKAGE}.main import main; sys.exit(main(sys.argv[2]))"


def copy_checks(dest: Path) -> None:
    """The in-target package, sources only, as `dest/halo_verify_checks`."""
    shutil.copytree(IN_TARGET, dest / PACKAGE, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def run_checks(
    target: UltralyticsTarget, interpreter: Interpreter, options: Options, steps: list[Step], workdir: Path
) -> Iterator[tuple[str, Step]]:
    """Run the checks; yield ("begin" | "end", step) as they report. A crash fails the step it hit."""
    by_id = {s.id: s for s in steps}
    paths = {name: workdir / name for name in ("checks", "work", "data", "config", "tmp")}
    for p in paths.values():
        p.mkdir()
    copy_checks(paths["checks"])
    config = {
        "package_dir": str(target.package_dir.resolve()),
        "module": {"class_name": options.module.class_name, "channels": options.module.channels.value},
        "imgsz": options.imgsz,
        "device": options.device,
        "export": options.export,
        "workdir": str(paths["work"]),
        "datadir": str(paths["data"]),
        "models": list({s.model.key: s.model.to_config() for s in steps if s.model is not None}.values()),
        "steps": [s.id for s in steps if s.id != "status"],
    }
    log_path = workdir / "checks.log"  # the subprocess's stderr: everything torch and Ultralytics print
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                [interpreter.python, "-c", LAUNCHER, str(paths["checks"]), json.dumps(config)],
                cwd=paths["work"],
                env=child_env(interpreter, workdir),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except OSError as exc:
            step = by_id["import"]
            step.result, step.detail = FAILED, f"cannot run {interpreter.python}: {exc.strerror or exc}"
            yield "end", step
            return
        try:
            unfinished = yield from _follow(proc.stdout, by_id)
            code = proc.wait()
        finally:
            if proc.poll() is None:  # Ctrl-C or an error here: never leave the checks running
                proc.kill()
                proc.wait()
    if unfinished is not None:  # the process died: a segfault, the OOM killer, a Python too old to parse it
        unfinished.result = FAILED
        unfinished.detail = f"the checks process ({interpreter.python}) exited with code {code} during this step"
        unfinished.error = _tail(log_path, 30)
        yield "end", unfinished


def _follow(lines: Iterable[str], by_id: dict[str, Step]) -> Generator[tuple[str, Step], None, Optional[Step]]:
    """Apply the protocol lines to the steps; return the step the process was in if it never said done."""
    current: Optional[Step] = None  # begun, not yet ended
    ended: set[str] = set()
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        step = by_id.get(event.get("step", ""))
        if event.get("event") == "done":
            return None
        if step is None:
            continue
        if event["event"] == "begin":
            current = step
            yield "begin", step
        elif event["event"] == "end":
            step.result, step.seconds = event["result"], event["seconds"]
            step.detail, step.data, step.error = event["detail"], event.get("data") or {}, event.get("error")
            if step.data.get("needs") in by_id:  # skipped after a failure: name the step as users see it
                step.detail = f"needs {by_id[step.data['needs']].label}"
            current = None
            ended.add(step.id)
            yield "end", step
    return current or next((s for s in by_id.values() if s.id != "status" and s.id not in ended), None)


def _tail(path: Path, lines: int) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    return "\n".join(text.splitlines()[-lines:])
