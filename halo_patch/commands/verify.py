"""`halo-patch verify`: prove, in the target's own interpreter, that the patched Ultralytics works.

The patch status is read here, without torch. Everything that needs torch and Ultralytics runs in a
subprocess of the Python that owns the target: halo_patch/verify_checks.py, copied into a temp dir,
reports each step as one JSON line. The temp dir is the subprocess's cwd, Ultralytics config dir,
dataset and runs dir; it is removed at the end, so verify writes nothing into the target.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Generator, Iterable, Iterator, Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from halo_patch import report
from halo_patch.errors import HaloPatchError
from halo_patch.tree_status import check_status
from halo_patch.target import UltralyticsTarget, find_target
from halo_patch.verify_env import Interpreter, check_temp_base, child_env, find_interpreter, make_workdir
from halo_patch.verify_report import print_table, print_tracebacks, verdict_line, write_json
from halo_patch.verify_steps import FAILED, PASSED, Options, Step, parse_options, plan_steps

CHECKS_SCRIPT = Path(__file__).resolve().parent.parent / "verify_checks.py"
CHECKS_SUPPORT = CHECKS_SCRIPT.with_name("verify_support.py")  # imported by the script


def run_checks(
    target: UltralyticsTarget, interpreter: Interpreter, options: Options, steps: list[Step], workdir: Path
) -> Iterator[tuple[str, Step]]:
    """Run the checks script; yield ("begin" | "end", step) as it reports. A crash fails the step it hit."""
    by_id = {s.id: s for s in steps}
    paths = {name: workdir / name for name in ("checks", "work", "data", "config", "tmp")}
    for p in paths.values():
        p.mkdir()
    script = paths["checks"] / "halo_verify_checks.py"  # with its helpers, alone in a dir: sys.path[0] shadows nothing
    shutil.copyfile(CHECKS_SCRIPT, script)
    shutil.copyfile(CHECKS_SUPPORT, paths["checks"] / CHECKS_SUPPORT.name)
    config = {
        "package_dir": str(target.package_dir.resolve()),
        "scales": list(options.scales),
        "imgsz": options.imgsz,
        "device": options.device,
        "train": options.train,
        "export": options.export,
        "workdir": str(paths["work"]),
        "datadir": str(paths["data"]),
        "steps": [s.id for s in steps if s.id != "status"],
    }
    log_path = workdir / "checks.log"  # the subprocess's stderr: everything torch and Ultralytics print
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                [interpreter.python, str(script), json.dumps(config)],
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


# ---------------------------------------------------------------- the command


def run(
    target_path: Optional[Path],
    scale: str,
    device: str,
    imgsz: int,
    train: bool,
    export: Optional[str],
    json_path: Optional[Path],
    quiet: bool,
    console: Console,
) -> int:
    options = parse_options(scale, device, imgsz, train, export)
    if json_path is not None and not json_path.parent.resolve().is_dir():
        raise HaloPatchError(f"--json {json_path}: no such directory {json_path.parent.resolve()}")
    check_temp_base()
    target = find_target(target_path)
    interpreter = find_interpreter(target)
    steps = plan_steps(options)
    if not quiet:
        report.print_target(console, target)
        console.print(f"Checks run in {interpreter.python} ({interpreter.reason}).", highlight=False)
    start = time.perf_counter()
    run_steps(target, interpreter, options, steps, console, quiet)
    seconds = time.perf_counter() - start
    failed = [s for s in steps if s.result == FAILED]
    code = 1 if failed else 0
    verdict = verdict_line(target, steps, failed)
    if not quiet:
        print_table(console, target, steps, seconds)
        print_tracebacks(console, failed)
        if interpreter.note:
            console.print(f"[yellow]note:[/] {interpreter.note}", highlight=False, soft_wrap=True)
    console.print(verdict, highlight=False, soft_wrap=True)
    if json_path is not None:
        write_json(json_path, target, interpreter, options, steps, code, verdict, seconds)
    return code


def run_steps(
    target: UltralyticsTarget, interpreter: Interpreter, options: Options, steps: list[Step], console: Console, quiet: bool
) -> None:
    """The status here, then, when the patch is complete, the rest in the subprocess; under a progress bar."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=quiet) as progress:
        task = progress.add_task(steps[0].label, total=len(steps))
        check_patch_status(target, steps[0])
        progress.advance(task)
        if steps[0].result != PASSED:
            for step in steps[1:]:
                step.detail = f"needs {steps[0].label}"
            return
        workdir = make_workdir()
        try:
            for event, step in run_checks(target, interpreter, options, steps, workdir):
                if event == "begin":
                    progress.update(task, description=step.label)
                else:
                    progress.advance(task)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def check_patch_status(target: UltralyticsTarget, step: Step) -> None:
    """Step 1, here and without torch: every change present and as apply wrote it."""
    start = time.perf_counter()
    status = check_status(target)
    step.seconds = round(time.perf_counter() - start, 3)
    step.data = {"changes": [{"change": c.change, "path": c.path, "state": c.state, "detail": c.detail} for c in status.changes]}
    if status.fully_applied:
        step.result, step.detail = PASSED, f"all {len(status.changes)} changes applied, none drifted"
    elif status.nothing_applied:
        step.result, step.detail = FAILED, f"HaloAttention is not applied to {target.package_dir}; run halo-patch apply"
    else:
        missing = "; ".join(f"{c.change} {c.state} in {c.path}" + (f" ({c.detail})" if c.detail else "") for c in status.missing)
        step.result = FAILED
        step.detail = f"HaloAttention is only partly applied to {target.package_dir}: {missing}; run halo-patch apply"


