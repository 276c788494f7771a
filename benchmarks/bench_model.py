"""Whole-model cost of HaloAttention in YOLO11n.

    python benchmarks/bench_model.py [--device cpu|cuda] [--dtype fp32|fp16|bf16] [--threads 2]
                                     [--train-batch 16] [--rounds 15] [--train-rounds 5] [--blog]
                                     [--compare OLD.py]

Applies halo-patch to a copy of the installed Ultralytics in a temp dir, then, in a subprocess whose
``ultralytics`` is that copy, times YOLO11n and YOLO11n-HaloAttention (the shipped module), and with
``--blog`` the same model with layer 9 swapped for the widely copied module (benchmarks/blog_halo.py),
with ``--compare FILE`` for the ``HaloAttention`` of another template file (same weights):

* inference at 640x640, batch 1 (eval, no grad), ``--rounds`` rounds;
* one training step at 640x640, batch ``--train-batch`` (forward, detection loss, backward, SGD
  step), ``--train-rounds`` rounds;

models interleaved in every round, min / median / max per model. Besides the whole-model times
(and their excess over YOLO11n) it reports, measured inside the HaloAttention model in the same
rounds: the layer's own time (forward hooks; in training also its backward, from the gradient
reaching its output to the gradient of its input) and the time of its three projections alone
(to_q, to_kv, to_out on every pixel of the layer's actual input, with the same gradients), each as
a share of the YOLO11n step. ``--dtype fp16|bf16`` runs everything under ``torch.autocast``.
"""

from __future__ import annotations

import argparse
import contextlib
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
DTYPES = ("fp32", "fp16", "bf16")


def worker(args: argparse.Namespace) -> None:
    import torch
    from ultralytics import YOLO
    from ultralytics.cfg import get_cfg
    from ultralytics.utils import DEFAULT_CFG

    sys.path.insert(0, str(HERE))
    from bench_module import ProjectionFloor, load_halo_class
    from blog_halo import BlogHaloAttention

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    dtype = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]

    def autocast():
        return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def build(name: str, swap: str = "") -> torch.nn.Module:
        model = YOLO(name).model
        if swap:
            old = model.model[9]
            cls = BlogHaloAttention if swap == "blog" else load_halo_class(Path(swap))
            new = cls(old.to_q.in_features, 2, 1)
            new.load_state_dict(old.state_dict(), strict=True)
            new.i, new.f, new.type, new.np = old.i, old.f, f"{cls.__name__} ({swap})", old.np
            model.model[9] = new
        model.args = get_cfg(DEFAULT_CFG)
        return model.to(device)

    variants = [("YOLO11n", "yolo11n.yaml", ""), ("YOLO11n-HaloAttention (halo-patch)", "yolo11n-HaloAttention.yaml", "")]
    if args.compare:
        variants.append((f"  same, {args.compare.name}", "yolo11n-HaloAttention.yaml", str(args.compare.resolve())))
    if args.blog:
        variants.append(("YOLO11n-HaloAttention (blog module)", "yolo11n-HaloAttention.yaml", "blog"))
    models = [build(name, swap) for _, name, swap in variants]
    layer = models[1].model[9]
    assert type(layer).__name__ == "HaloAttention", type(layer).__name__

    class LayerClock:
        """Seconds spent in ``layer`` during one step: its forward, and in training its backward."""

        def __init__(self) -> None:
            self.seconds, self.input = 0.0, None
            layer.register_forward_pre_hook(self.pre)
            layer.register_forward_hook(self.post)

        def stamp(self) -> float:
            sync()
            return time.perf_counter()

        def pre(self, module, inputs) -> None:
            self.input = inputs[0].detach()
            self.start = self.stamp()

        def post(self, module, inputs, output) -> None:
            self.seconds += self.stamp() - self.start
            if output.requires_grad and inputs[0].requires_grad:
                output.register_hook(self.backward_start)
                inputs[0].register_hook(self.backward_end)

        def backward_start(self, grad):
            self.back = self.stamp()

        def backward_end(self, grad):
            self.seconds += self.stamp() - self.back

    clock = LayerClock()
    floor = ProjectionFloor(layer)

    image = torch.rand(1, 3, 640, 640, device=device)
    n = args.train_batch
    batch = {
        "img": torch.rand(n, 3, 640, 640, device=device),
        "batch_idx": torch.arange(n, device=device).repeat_interleave(2).float(),
        "cls": torch.randint(0, 80, (2 * n, 1), device=device).float(),
        "bboxes": torch.rand(2 * n, 4, device=device) * 0.4 + 0.3,
    }

    def infer(model):
        def run() -> None:
            model.eval()
            with torch.no_grad(), autocast():
                model(image)
        return run

    def train_step(model):
        opt = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9)

        def run() -> None:
            model.train()
            opt.zero_grad()
            with autocast():
                loss, _ = model.loss(batch)
            loss.sum().backward()
            opt.step()
        return run

    def floor_infer() -> None:
        with torch.no_grad(), autocast():
            floor(clock.input)

    def floor_train() -> None:
        x = clock.input.clone().requires_grad_(True)
        with autocast():
            outputs = floor(x)
        torch.autograd.backward(outputs, [torch.ones_like(out) for out in outputs])

    def rounds(fns: list, count: int, warmup: int) -> tuple[list[list[float]], list[float], list[float]]:
        """Seconds per call of each fn, a layer time and a projections time per round of model 1."""
        for _ in range(warmup):
            for fn in fns:
                fn()
        times: list[list[float]] = [[] for _ in fns]
        layer_s, floor_s = [], []
        for _ in range(count):
            for i, (fn, bucket) in enumerate(zip(fns, times)):
                clock.seconds = 0.0
                sync()
                start = time.perf_counter()
                fn()
                sync()
                bucket.append(time.perf_counter() - start)
                if i == 1:
                    layer_s.append(clock.seconds)
                    start = time.perf_counter()
                    (floor_train if models[1].training else floor_infer)()
                    sync()
                    floor_s.append(time.perf_counter() - start)
        return times, layer_s, floor_s

    loads = [os.getloadavg()]
    infer_s = rounds([infer(m) for m in models], args.rounds, warmup=3)
    loads.append(os.getloadavg())
    train_s = rounds([train_step(m) for m in models], args.train_rounds, warmup=1)
    loads.append(os.getloadavg())
    print(json.dumps({
        "models": [label for label, _, _ in variants],
        "params": [sum(p.numel() for p in m.parameters()) for m in models],
        "infer": infer_s, "train": train_s, "loads": loads, "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
        "torch": torch.__version__,
    }))


def stats(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def report(data: dict, args: argparse.Namespace) -> None:
    loads = " -> ".join("/".join(f"{v:.2f}" for v in load) for load in data["loads"])
    print(f"{data['device']}, {os.cpu_count()} CPUs, torch threads {data['threads']}, torch {data['torch']}, "
          f"{args.dtype}; load average (1/5/15 min) start -> after inference -> after training: {loads}")
    for kind, title, rounds in (("infer", "inference 640x640, batch 1", args.rounds),
                                ("train", f"training step 640x640, batch {args.train_batch}", args.train_rounds)):
        times, layer_s, floor_s = data[kind]
        base = stats(times[0])
        print(f"\n{title}: min / median / max of {rounds} interleaved rounds, ms")
        print(f"{'model':<38}{'params':>9}{'min':>9}{'median':>9}{'max':>9}{'vs 11n (min, med)':>20}")
        for label, params, t in zip(data["models"], data["params"], times):
            s = stats(t)
            excess = f"{100 * (s[0] / base[0] - 1):+.1f}%, {100 * (s[1] / base[1] - 1):+.1f}%"
            print(f"{label:<38}{params / 1e6:>8.2f}M{s[0] * 1e3:>9.1f}{s[1] * 1e3:>9.1f}{s[2] * 1e3:>9.1f}{excess:>20}")
        lay, flo = stats(layer_s), stats(floor_s)
        print(f"{'  HaloAttention layer alone (in model)':<47}{lay[0] * 1e3:>9.1f}{lay[1] * 1e3:>9.1f}{lay[2] * 1e3:>9.1f}"
              f"{100 * lay[0] / base[0]:>+10.1f}%, {100 * lay[1] / base[1]:+.1f}%")
        print(f"{'  its three projections alone':<47}{flo[0] * 1e3:>9.1f}{flo[1] * 1e3:>9.1f}{flo[2] * 1e3:>9.1f}"
              f"{100 * flo[0] / base[0]:>+10.1f}%, {100 * flo[1] / base[1]:+.1f}%")
        print(f"  layer / projections: {lay[0] / flo[0]:.2f} (min), {lay[1] / flo[1]:.2f} (median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--dtype", choices=DTYPES, default="fp32", help="fp16/bf16 run under autocast")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--train-batch", type=int, default=16, help="training batch (default 16)")
    parser.add_argument("--rounds", type=int, default=15, help="inference rounds (default 15)")
    parser.add_argument("--train-rounds", type=int, default=5, help="training rounds (default 5; slow on a CPU)")
    parser.add_argument("--blog", action="store_true", help="also time the widely copied module in the model")
    parser.add_argument("--compare", type=Path, help="also time layer 9 as the HaloAttention of this template file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    source = Path(importlib.util.find_spec("ultralytics").origin).parent
    root = Path(tempfile.mkdtemp(prefix="halo_bench_"))
    try:
        shutil.copytree(source, root / "ultralytics", ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run([sys.executable, "-m", "halo_patch", "apply", "--target", str(root)], check=True, capture_output=True)
        env = {**os.environ, "PYTHONPATH": str(root), "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(root / "cfgdir")}
        passed = ["--device", args.device, "--dtype", args.dtype, "--threads", str(args.threads),
                  "--train-batch", str(args.train_batch), "--rounds", str(args.rounds),
                  "--train-rounds", str(args.train_rounds), *(["--blog"] if args.blog else []),
                  *(["--compare", str(args.compare.resolve())] if args.compare else [])]
        out = subprocess.run([sys.executable, __file__, "--worker", *passed], check=True, stdout=subprocess.PIPE,
                             text=True, env=env, cwd=root).stdout
        data = json.loads(out.strip().splitlines()[-1])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report(data, args)


if __name__ == "__main__":
    main()
