"""Run verify's steps: the patch status here (no torch), then the rest in the target's interpreter."""

from __future__ import annotations

import shutil
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dataclasses import replace

from halo_patch.tree_status import ABSENT, DRIFTED, StatusReport, check_status, is_module_row
from halo_patch.modules import DEFAULT, ModuleSpec
from halo_patch.target import UltralyticsTarget
from halo_patch.verify.child import run_checks
from halo_patch.verify.interpreter import Interpreter, make_workdir
from halo_patch.verify.options import FAILED, PASSED, Options, Step


def run_steps(
    target: UltralyticsTarget, interpreter: Interpreter, options: Options, steps: list[Step], console: Console, quiet: bool
) -> None:
    """The status here, then, when the patch is complete, the rest in the subprocess; under a progress bar."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=quiet) as progress:
        task = progress.add_task(steps[0].label, total=len(steps))
        check_patch_status(target, steps[0], options.module)
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


def check_patch_status(target: UltralyticsTarget, step: Step, module: ModuleSpec = DEFAULT) -> None:
    """Step 1, here and without torch: every change present and as apply wrote it (a user module's own rows)."""
    start = time.perf_counter()
    status = check_status(target)
    if module.is_user:
        status = replace(status, changes=tuple(c for c in status.changes if is_module_row(c, module)))
    step.seconds = round(time.perf_counter() - start, 3)
    step.data = {"changes": [{"change": c.change, "path": c.path, "state": c.state, "detail": c.detail} for c in status.changes]}
    if status.fully_applied:
        step.result, step.detail = PASSED, f"all {len(status.changes)} changes applied, none drifted"
    elif status.nothing_applied and not status.hand_made_in_use:
        step.result, step.detail = FAILED, f"{module.class_name} is not applied to {target.package_dir}; run halo-patch apply"
    else:
        missing = "; ".join(f"{c.change} {c.state} in {c.path}" + (f" ({c.detail})" if c.detail else "") for c in status.missing)
        missing = missing or "; ".join(status.notes)  # every change there, but an interrupted run or an untrusted state dir
        step.result = FAILED
        step.detail = f"{module.class_name} is only partly applied to {target.package_dir}: {missing}; {advice(status)}"


def advice(status: StatusReport) -> str:
    """The command that changes what is wrong; never one that would find nothing to do (a loop)."""
    if status.hand_made_in_use:
        return "run halo-patch apply --adopt (a hand-made install is in use)"
    if status.interrupted:
        return f"run halo-patch apply to finish the interrupted {status.interrupted}"
    if any(c.state == DRIFTED for c in status.changes):
        return "apply keeps edits it did not make: run halo-patch revert --force, then halo-patch apply"
    if any(c.state == ABSENT for c in status.changes):
        return "run halo-patch apply"
    return "run halo-patch status for what is wrong (the state dir is not trusted: move it aside, then halo-patch apply)"
