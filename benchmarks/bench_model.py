"""Whole-model cost of HaloAttention in YOLO11n on this machine's CPU.

    python benchmarks/bench_model.py [--repeat 5]

Applies halo-patch to a copy of the installed Ultralytics in a temp dir, then, in a subprocess whose
`ultralytics` is that copy, times YOLO11n, YOLO11n-HaloAttention (the shipped module) and the same
model with layer 9 swapped for the widely copied module (benchmarks/blog_halo.py):
inference at 640x640 batch 1 (eval, no grad) and one training step at batch 8, 640x640
(forward, detection loss, backward, SGD step). Prints medians and the cost relative to YOLO11n.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def worker(repeat: int) -> None:
    import torch
    from ultralytics import YOLO
    from ultralytics.cfg import get_cfg
    from ultralytics.utils import DEFAULT_CFG

    sys.path.insert(0, str(HERE))
    from blog_halo import BlogHaloAttention

    torch.manual_seed(0)

    def build(name: str, blog: bool = False) -> torch.nn.Module:
        model = YOLO(name).model
        if blog:
            old = model.model[9]
            new = BlogHaloAttention(old.to_q.in_features, 2, 1)
            new.i, new.f, new.type, new.np = old.i, old.f, "BlogHaloAttention", sum(p.numel() for p in new.parameters())
            model.model[9] = new
        model.args = get_cfg(DEFAULT_CFG)
        return model

    def interleaved_medians(fns: list, warmup: int = 2, rounds: int = repeat) -> list[float]:
        """Median seconds of each fn, timed in rounds (one call of each per round) so that machine
        load and allocator warm-up hit every model alike."""
        for fn in fns:
            for _ in range(warmup):
                fn()
        times: list[list[float]] = [[] for _ in fns]
        for _ in range(rounds):
            for fn, bucket in zip(fns, times):
                start = time.perf_counter()
                fn()
                bucket.append(time.perf_counter() - start)
        return [statistics.median(t) for t in times]

    image = torch.rand(1, 3, 640, 640)
    batch = {
        "img": torch.rand(8, 3, 640, 640),
        "batch_idx": torch.arange(8).repeat_interleave(2).float(),
        "cls": torch.randint(0, 80, (16, 1)).float(),
        "bboxes": torch.rand(16, 4) * 0.4 + 0.3,
    }
    variants = [
        ("YOLO11n", "yolo11n.yaml", False),
        ("YOLO11n-HaloAttention (halo-patch)", "yolo11n-HaloAttention.yaml", False),
        ("YOLO11n-HaloAttention (blog module)", "yolo11n-HaloAttention.yaml", True),
    ]
    models = [build(name, blog) for _, name, blog in variants]

    def infer(model):
        def run() -> None:
            model.eval()
            with torch.no_grad():
                model(image)
        return run

    def train_step(model):
        opt = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9)

        def run() -> None:
            model.train()
            opt.zero_grad()
            loss, _ = model.loss(batch)
            loss.sum().backward()
            opt.step()
        return run

    t_inf = interleaved_medians([infer(m) for m in models], rounds=8 * repeat)  # cheap, and noisier
    t_train = interleaved_medians([train_step(m) for m in models], warmup=1)
    rows = [
        {"model": label, "params": sum(p.numel() for p in m.parameters()), "infer_s": ti, "train_s": tt}
        for (label, _, _), m, ti, tt in zip(variants, models, t_inf, t_train)
    ]
    print(json.dumps(rows))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.repeat)
        return
    source = Path(importlib.util.find_spec("ultralytics").origin).parent
    root = Path(tempfile.mkdtemp(prefix="halo_bench_"))
    try:
        shutil.copytree(source, root / "ultralytics", ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run([sys.executable, "-m", "halo_patch", "apply", "--target", str(root)], check=True, capture_output=True)
        env = {**os.environ, "PYTHONPATH": str(root), "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(root / "cfgdir")}
        out = subprocess.run(
            [sys.executable, __file__, "--worker", "--repeat", str(args.repeat)],
            check=True, capture_output=True, text=True, env=env, cwd=root,
        ).stdout
        rows = json.loads(out.strip().splitlines()[-1])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    import torch

    base = rows[0]
    print(
        f"Whole model on CPU ({torch.get_num_threads()} threads, torch {torch.__version__}); "
        f"median of {8 * args.repeat} inference and {args.repeat} training rounds, models interleaved"
    )
    print(f"{'model':<38}{'params':>10}{'infer 640 b1':>14}{'vs 11n':>8}{'train step b8':>15}{'vs 11n':>8}")
    for r in rows:
        di = 100 * (r["infer_s"] / base["infer_s"] - 1)
        dt = 100 * (r["train_s"] / base["train_s"] - 1)
        print(
            f"{r['model']:<38}{r['params'] / 1e6:>9.2f}M{r['infer_s'] * 1e3:>11.0f} ms{di:>+7.1f}%"
            f"{r['train_s'] * 1e3:>12.0f} ms{dt:>+7.1f}%"
        )


if __name__ == "__main__":
    main()
