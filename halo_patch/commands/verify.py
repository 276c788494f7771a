"""`halo-patch verify`: prove, in the target's own Python, that the patched Ultralytics works.

The verb only wires halo_patch.verify together: options and models are planned here (exit 2 on a
bad flag, before anything runs), the steps run (halo_patch.verify.runner), the table and verdict
are printed. verify writes nothing into the target: all it makes lives in a temp dir it removes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from rich.console import Console

from dataclasses import replace

from halo_patch import report
from halo_patch.planning.user_module import find_spec, tree_specs
from halo_patch.errors import HaloPatchError
from halo_patch.target import find_target
from halo_patch.verify.interpreter import check_temp_base, find_interpreter
from halo_patch.verify.models import plan_models
from halo_patch.verify.options import FAILED, parse_options, plan_steps
from halo_patch.verify.runner import run_steps
from halo_patch.verify.table import print_table, print_tracebacks, verdict_line, write_json


def run(
    target_path: Optional[Path],
    scale: str,
    device: str,
    imgsz: int,
    train: bool,
    export: Optional[str],
    json_path: Optional[Path],
    quiet: bool,
    base: Optional[str],
    console: Console,
    module: Optional[str] = None,
) -> int:
    options = parse_options(scale, device, imgsz, train, export, base)
    if json_path is not None and not json_path.parent.resolve().is_dir():
        raise HaloPatchError(f"--json {json_path}: no such directory {json_path.parent.resolve()}")
    check_temp_base()
    target = find_target(target_path)
    if module is not None:
        spec = find_spec(target, module)
        if spec is None:
            names = ", ".join(s.class_name for s in tree_specs(target))
            raise HaloPatchError(f"--module {module}: no such module in {target.package_dir}; expected one of {names}")
        if options.bases:
            raise HaloPatchError("--module: expected without --base (every yaml that builds the module is checked)")
        options = replace(options, module=spec)
    steps = plan_steps(options, plan_models(target, options.bases, options.scales, options.module))
    interpreter = find_interpreter(target)
    if not quiet:
        report.print_target(console, target)
        console.print(f"Checks run in {interpreter.python} ({interpreter.reason}).", highlight=False)
    start = time.perf_counter()
    run_steps(target, interpreter, options, steps, console, quiet)
    seconds = time.perf_counter() - start
    failed = [s for s in steps if s.result == FAILED]
    code = 1 if failed else 0
    verdict = verdict_line(target, steps, failed, options.module.class_name)
    if not quiet:
        print_table(console, target, steps, seconds)
        print_tracebacks(console, failed)
        if interpreter.note:
            console.print(f"[yellow]note:[/] {interpreter.note}", highlight=False, soft_wrap=True)
    console.print(verdict, highlight=False, soft_wrap=True)
    if json_path is not None:
        write_json(json_path, target, interpreter, options, steps, code, verdict, seconds)
    return code
