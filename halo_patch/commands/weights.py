"""`halo-patch weights`: carry a checkpoint's tensors into the HaloAttention model apply wrote.

Wires halo_patch.weights together: paths checked and the yaml chosen here (exit 2 before anything
runs), the carry runs in the target's own Python, the checkpoint is put in place, the table printed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from halo_patch import json_report, report
from halo_patch.errors import HaloPatchError
from halo_patch.target import find_target
from halo_patch.transforms import CLASS_NAME
from halo_patch.verify.interpreter import check_temp_base, find_interpreter, make_workdir
from halo_patch.weights.child import STEPS, run_carry
from halo_patch.weights.output import check_source, place, plan_output
from halo_patch.weights.table import json_data, print_report
from halo_patch.weights.yamls import find_candidates, resolve_yaml


def run(
    src: Path,
    out: Optional[Path],
    yaml_spec: Optional[str],
    target_path: Optional[Path],
    force: bool,
    json_path: Optional[Path],
    console: Console,
) -> int:
    source = check_source(src)
    output = plan_output(src, out, force)
    json_report.check_path(json_path)
    if json_report.to_stdout(json_path):  # stdout holds only the report; the rest goes to stderr
        console = Console(stderr=True, highlight=False)
    check_temp_base()
    target = find_target(target_path)
    chosen, scale = (0, None) if yaml_spec else (None, None)
    if yaml_spec:
        cand, scale = resolve_yaml(target, yaml_spec)
        candidates = [cand]
    else:
        candidates = find_candidates(target)
        if not candidates:
            raise HaloPatchError(
                f"{target.package_dir}: halo-patch apply wrote no HaloAttention yaml here; run `halo-patch apply` "
                "(with --base for another model) first"
            )
    interpreter = find_interpreter(target)
    report.print_target(console, target)
    config = {
        "source": str(source), "class_name": CLASS_NAME, "chosen": chosen, "scale": scale,
        "package_dir": str(target.package_dir), "candidates": [c.to_config() for c in candidates],
    }
    workdir = make_workdir()
    try:
        config["output"] = str(workdir / "out.pt")
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("starting the target's Python", total=STEPS)
            result = run_carry(interpreter, config, workdir, lambda what: progress.update(task, description=what, advance=1))
        place(workdir / "out.pt", output, force)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    cand = next(c for c in candidates if c.shown == result["yaml"])
    moved = [(i, j) for i, j in enumerate(cand.index_map) if i != j] if result["mode"] != "convert" else []
    pythonpath = interpreter.pythonpath if interpreter.note else None  # only when this Python would import another copy
    if not json_report.to_stdout(json_path):
        print_report(console, source, output, result, moved, interpreter.note, pythonpath)
    json_report.write(json_path, json_data(target, source, output, result, pythonpath))
    return 0
