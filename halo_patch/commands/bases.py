"""`halo-patch bases`: the base model yamls the target offers for `apply --base`."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from halo_patch import json_report, report
from halo_patch.model_yaml import list_bases
from halo_patch.target import find_target


def run(target_path: Path | None, console: Console, json_path: Path | None = None) -> int:
    json_report.check_path(json_path)
    target = find_target(target_path)
    report.print_target(console, target)
    bases = list_bases(target)
    t = report.table(f"Bases for `apply --base NAME` ({len(bases)})", ["name", "family", "task", "layers", "default --after", "file"])
    for base in bases:
        rows = base.rows
        after = base.default_after
        t.add_row(
            base.name, base.family, base.task, str(len(rows)), f"{after} {rows[after][2]} (then {rows[after + 1][2]})",
            target.relative(base.path),
        )
    console.print(t)
    console.print("Any other model yaml works too: `apply --base path/to/your.yaml`.")
    json_report.write(json_path, json_report.bases_dict(target, bases))
    return 0
