"""What compare prints while it trains: the estimate before the first run, then run, epoch, elapsed, remaining."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from halo_patch.compare.results import read_results



def duration(seconds: float) -> str:
    s = int(round(seconds))
    h, m, s = s // 3600, s % 3600 // 60, s % 60
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class Progress:
    def __init__(self, console: Console, epochs: int, runs: int) -> None:
        self.console, self.epochs, self.runs = console, epochs, runs
        self.started = time.perf_counter()
        self.estimates: list[float] = []  # seconds per run still to train, in order
        self.actual: list[float] = []  # seconds the finished runs took
        self.k, self.name, self.run_start, self.rows, self.first_row = 0, "", 0.0, 0, 0

    def say(self, text: str) -> None:
        self.console.print(escape(text), highlight=False, soft_wrap=True)

    def estimate(self, preflight: dict, todo: list) -> None:
        models = preflight["models"]
        # every run pays the process start and imports the preflight paid once
        overhead = max(0.0, preflight["wall_s"] - sum(m["build_s"] + 2 * m["train_step_s"] + m["val_step_s"] for m in models.values()))
        per_model = {}
        for label, m in models.items():
            epoch = m["train_batches"] * m["train_step_s"] + m["val_batches"] * m["val_step_s"]
            per_model[label] = overhead + 2 * m["build_s"] + self.epochs * epoch + m["val_batches"] * m["val_step_s"] * 2
        self.estimates = [per_model[r.model.label] for r in todo]
        steps = "; ".join(
            f"{label}: {m['train_step_s']:.2f} s per training batch x {m['train_batches']} batches per epoch"
            for label, m in models.items()
        )
        self.say(f"Estimate: {len(todo)} runs of {self.epochs} epochs, about {duration(sum(self.estimates))} ({steps})")

    def begin(self, k: int, name: str, resuming: bool) -> None:
        self.k, self.name, self.run_start = k, name, time.perf_counter()
        self.rows = self.first_row = -1
        what = "resuming (Ultralytics resume from last.pt)" if resuming else "training"
        self.say(f"run {k + 1}/{self.runs} {name}: {what}")

    def poll(self, results_csv: Path) -> None:
        rows = len(read_results(results_csv))
        if self.rows < 0:
            self.rows = self.first_row = rows
            return
        if rows == self.rows:
            return
        self.rows = rows
        now = time.perf_counter()
        per_epoch = (now - self.run_start) / max(1, rows - self.first_row)
        left = per_epoch * max(0, self.epochs - rows) + self.scale() * sum(self.estimates[self.k + 1:])
        self.say(
            f"run {self.k + 1}/{self.runs} {self.name}: epoch {rows}/{self.epochs}, "
            f"elapsed {duration(now - self.started)}, remaining ~{duration(left)}"
        )

    def end(self, k: int, name: str, results_csv: Path) -> None:
        took = time.perf_counter() - self.run_start
        self.actual.append(took)
        left = self.scale() * sum(self.estimates[k + 1:])
        self.say(f"run {k + 1}/{self.runs} {name}: done in {duration(took)}, elapsed {duration(time.perf_counter() - self.started)}, remaining ~{duration(left)}")

    def scale(self) -> float:
        """Actual / estimated time of the runs finished so far (1 before the first)."""
        if not self.actual:
            return 1.0
        est = sum(self.estimates[: len(self.actual)])
        return sum(self.actual) / est if est > 0 else 1.0
