"""`halo-patch compare`: does HaloAttention help on this data? Paired seeds, a fair setup, an interval.

The verb only wires halo_patch.compare together: options checked (exit 2, nothing started), the runs
trained or kept, the report written and printed (or, with --json, the report as JSON on stdout).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

from rich.console import Console

from halo_patch import report as target_report
from halo_patch.compare import report, runner
from halo_patch.compare.options import parse_options


def run(
    target_path: Optional[Path], data: Path, model: Optional[str], variants: Optional[list[str]], weights: Optional[Path],
    seeds: int, epochs: int, imgsz: int, batch: int, device: Optional[str], out: Optional[Path], sets: Optional[list[str]],
    as_json: bool, console: Console,
) -> int:
    options = parse_options(data, model, variants, weights, seeds, epochs, imgsz, batch, device, out, sets)
    start = time.perf_counter()
    comparison = runner.prepare(options, target_path)
    talk = Console(stderr=True, highlight=False) if as_json else console
    target_report.print_target(talk, comparison.target)
    runner.execute(comparison, talk)
    doc = report.build(comparison)
    report.write(comparison, doc)
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
    else:
        report.print_report(console, comparison, doc, time.perf_counter() - start)
    return 0
