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
import zipfile
from pathlib import Path

TARGETS = {"--help": 0.5, "apply": 1.5, "apply (no-op)": 1.5, "status": 1.5, "revert": 1.5}


def timed(args: list[str]) -> float:
    """Whole-process seconds of one command; a failed command stops the benchmark (a crash is not fast)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "halo_patch", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench_cli: `halo-patch {' '.join(args)}` exited {done.returncode}; not timing a failure:\n{done.stderr}")
    return seconds


def pristine_release(dest: Path) -> None:
    """The installed Ultralytics release as its wheel ships it (the environment's copy may be patched)."""
    init = Path(importlib.util.find_spec("ultralytics").origin)
    version = next(l.split("=")[1].strip().strip("\"'") for l in init.read_text().splitlines() if l.startswith("__version__"))
    cache = Path.home() / ".cache" / "halo-patch-tests"
    wheel = cache / f"ultralytics-{version}-py3-none-any.whl"
    if not wheel.is_file():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", f"ultralytics=={version}", "-d", str(cache)]
        subprocess.run(cmd, check=True)
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(dest, [n for n in zf.namelist() if n.startswith("ultralytics/")])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    root = Path(tempfile.mkdtemp(prefix="halo_bench_"))
    pristine_release(root)
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
