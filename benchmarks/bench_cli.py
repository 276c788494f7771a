"""Whole-process wall time of `halo-patch --help`, apply, status and revert (targets: 0.5 s / 1.5 s).

    python benchmarks/bench_cli.py [--repeat 5]

Runs on a copy of the installed Ultralytics in a temp dir; prints a table of medians.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"--help": 0.5, "apply": 1.5, "apply (no-op)": 1.5, "status": 1.5, "revert": 1.5}


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "halo_patch", *args], check=False, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    source = Path(importlib.util.find_spec("ultralytics").origin).parent
    root = Path(tempfile.mkdtemp(prefix="halo_bench_"))
    shutil.copytree(source, root / "ultralytics", ignore=shutil.ignore_patterns("__pycache__"))
    t = ["--target", str(root)]
    times: dict[str, list[float]] = {k: [] for k in TARGETS}
    try:
        for _ in range(repeat):
            times["--help"].append(timed(["--help"]))
            times["apply"].append(timed(["apply", *t]))
            times["apply (no-op)"].append(timed(["apply", *t]))
            times["status"].append(timed(["status", *t]))
            times["revert"].append(timed(["revert", *t]))
    finally:
        shutil.rmtree(root)
    print(f"halo-patch CLI, whole process, median of {repeat} (python {sys.version.split()[0]})")
    print(f"{'command':<16}{'median s':>10}{'max s':>10}{'target s':>10}  ok")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<16}{med:>10.2f}{max(values):>10.2f}{TARGETS[name]:>10.1f}  {'yes' if med < TARGETS[name] else 'NO'}")


if __name__ == "__main__":
    main()
