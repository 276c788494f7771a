"""`halo-patch compare`: does HaloAttention help on this data? Paired seeds, a fair setup, an interval.

The verb only wires halo_patch.compare together: options checked (exit 2, nothing started), the runs
trained or kept, the report written and printed; `--json PATH` also writes it as JSON (`-`: only the
JSON, on stdout; the progress stays on stderr).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

from rich.console import Console

from halo_patch import json_report
from halo_patch import report as target_report
from halo_patch.compare import report, runner
from halo_patch.compare.options import parse_options


def run(
    target_path: Optional[Path], data: Path, model: Optional[str], variants: Optional[list[str]], weights: Optional[Path],
    seeds: int, epochs: int, imgsz: int, batch: int, device: Optional[str], out: Optional[Path], sets: Optional[list[str]],
    json_path: Optional[Path], console: Console,
) -> int:
    options = parse_options(data, model, variants, weights, seeds, epochs, imgsz, batch, device, out, sets)
    json_report.check_path(json_path)
    quiet = json_report.to_stdout(json_path)
    start = time.perf_counter()
    comparison = runner.prepare(options, target_path)
    talk = Console(stderr=True, highlight=False) if quiet else console
    target_report.print_target(talk, comparison.target)
    runner.execute(comparison, talk)
    doc = report.build(comparison)
    report.write(comparison, doc)
    if not quiet:
        report.print_report(console, comparison, doc, time.perf_counter() - start)
    if json_path is not None:
        json_report.emit(json_path, json.dumps(doc, indent=1) + "\n")  # the document compare.json holds
    return 0
