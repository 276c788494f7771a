"""What compare reads back from the runs: Ultralytics' results.csv of each run, and the per-run table rows."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

from halo_patch.compare.plan import Run

COST_COLUMNS = ("params", "GFLOPs", "latency_ms_batch1", "train_seconds")
HEADLINES = ("metrics/mAP50-95(M)", "metrics/mAP50-95(P)", "metrics/mAP50-95(B)", "metrics/accuracy_top1")


def read_results(path: Path) -> list[dict[str, float]]:
    """The rows of a run's results.csv, by header (older releases pad the names with spaces)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        rows = []
        for row in csv.DictReader(fh):
            parsed = {}
            for k, v in row.items():
                try:
                    parsed[k.strip()] = float(v)
                except (TypeError, ValueError):
                    continue
            rows.append(parsed)
        return rows


def train_seconds(rows: list[dict[str, float]]) -> float:
    """Seconds of training to the last epoch: results.csv's `time` restarts at 0 when a run is resumed,
    so the last time of each stretch is added up."""
    total, prev = 0.0, None
    for row in rows:
        t = row.get("time")
        if t is None:
            continue
        if prev is not None and t < prev:
            total += prev
        prev = t
    return total + (prev or 0.0)


def headline(metric_names: list[str]) -> str:
    """The metric the verdict is about: the mask / pose mAP50-95 where the task has one, else the box mAP50-95."""
    return next((m for m in HEADLINES if m in metric_names), metric_names[0] if metric_names else HEADLINES[2])


def run_row(run: Run, record: dict, rows: list[dict[str, float]], device: Optional[str]) -> dict:
    """One row of runs.csv: the final validation of best.pt with Ultralytics' column names, and the costs."""
    row: dict = {"run": run.name, "variant": run.model.label, "seed": run.seed, "model": run.model.model, "epochs": len(rows)}
    row.update(record["metrics"])
    row.update(
        {"params": record["params"], "GFLOPs": record["gflops"], "latency_ms_batch1": record["latency_ms"], "train_seconds": train_seconds(rows)}
    )
    row["device"] = device or "default"
    return row


def write_runs_csv(path: Path, rows: list[dict]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    tmp.replace(path)
