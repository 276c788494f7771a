"""How `weights` reports: one table (carried, new, not carried), the next command, the JSON file."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from halo_patch import report
from halo_patch.target import UltralyticsTarget

CONVERT = "convert"


def _span(pairs: list[tuple[int, int]]) -> str:
    """`9-22 -> 10-23` style runs of moved layers."""
    runs: list[list[int]] = []
    for i, j in pairs:
        if runs and i == runs[-1][1] + 1 and j - i == runs[-1][2]:
            runs[-1][1] = i
        else:
            runs.append([i, i, j - i])
    return ", ".join(f"{a}->{a + d}" if a == b else f"{a}-{b} -> {a + d}-{b + d}" for a, b, d in runs)


def _read_as(paths: list[str]) -> str:
    """`a.b (X, Y), c.d (X)`: the class paths of the source, module by module."""
    modules: dict[str, list[str]] = {}
    for path in paths:
        module, _, name = path.rpartition(".")
        modules.setdefault(module, []).append(name)
    return ", ".join(f"{m} ({', '.join(names)})" for m, names in modules.items()) or "no class path changed"


def next_command(out: Path, result: dict[str, Any], pythonpath: Path | None = None) -> str:
    """`yolo train model=OUT data=...` (SRC's data and imgsz when known), with the PYTHONPATH the target needs."""
    data = result.get("data")
    data = data if isinstance(data, str) and Path(data).is_file() else "YOUR_DATA.yaml"
    parts = [f"PYTHONPATH={pythonpath}"] if pythonpath is not None else []
    parts += ["yolo", "train", f"model={out}", f"data={data}"]
    if isinstance(result.get("imgsz"), int):
        parts.append(f"imgsz={result['imgsz']}")
    return " ".join(shlex.quote(p) for p in parts)


def print_report(
    console: Console, src: Path, out: Path, result: dict[str, Any], moved: list[tuple[int, int]], note: str | None,
    pythonpath: Path | None,
) -> None:
    names = ", ".join(result["names"].values())
    console.print(
        f"Carried {escape(str(src))} ({escape(result['source_yaml'])}, {result['nc']} classes: {escape(names)}) into "
        f"{escape(str(out))}, built as {escape(result['build'])} from {escape(result['yaml'])}.",
        highlight=False, soft_wrap=True,
    )
    t = report.table("", ["tensors", "count", "detail"])
    for column in t.columns:
        column.overflow = "fold"  # long paths and class paths wrap; nothing is cropped
    if result["mode"] == CONVERT:
        detail = f"same layers, as {result['installed']} classes: {_read_as(result['read_as'])}"
    else:
        detail = f"layer k to the layer k moved to: {_span(moved)}" if moved else "no layer moved"
    t.add_row("carried", f"{result['carried']} / {result['source_tensors']} in SRC", escape(detail))
    for row in result["new"]:
        t.add_row("new", str(row["tensors"]), escape(f"layer {row['layer']} {row['module']} ({row['values']:,} values), fresh"))
    if not result["new"]:
        t.add_row("new", "0", "")
    for row in result["not_carried"]:
        t.add_row("not carried", "1", escape(f"{row['key']}: {row['why']}"))
    if not result["not_carried"]:
        t.add_row("not carried", "0", "")
    console.print(t)
    console.print(f"Next: {escape(next_command(out, result, pythonpath))}", highlight=False, soft_wrap=True)
    if note:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)


def json_data(target: UltralyticsTarget, src: Path, out: Path, result: dict[str, Any], pythonpath: Path | None) -> dict:
    """The `--json` report: the table's facts and the command to run next."""
    return {
        "target": str(target.package_dir), "ultralytics": target.version, "source": str(src), "output": str(out),
        **result, "next": next_command(out, result, pythonpath),
    }
