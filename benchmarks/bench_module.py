"""Benchmark the shipped HaloAttention against the widely copied module and the projection floor.

For B=8, a 20x20 map (YOLO11 P5 at 640), block 2, halo 1 and C in (256, 512, 768) it measures

* forward time (``torch.no_grad``) and forward+backward time: median of N runs after warm-up,
  the three modules interleaved in every round so that drift on a shared machine hits all alike;
  the input requires grad (the layer sits mid-network) and the backward pass gets a fixed
  random output gradient;
* peak tensor memory of one forward+backward step and of one no-grad forward: the PyTorch
  profiler records every allocation and free per op (``profile_memory=True``); replaying them in
  time order gives the largest amount of tensor memory alive at once, at op granularity, on top of
  what existed before the step (parameters, input, output gradient);

for three modules with the same weights:

* ``ours``: templates/halo_attention.py, the module that ``halo-patch apply`` installs;
* ``baseline``: benchmarks/blog_halo.py, a re-implementation of the widely copied module (its
  inverted mask included: the cost is the same either way);
* ``floor``: the three projections alone (to_q, to_kv and to_out on every pixel), which any
  implementation of the layer has to compute.

Run: ``python benchmarks/bench_module.py [--quick] [--threads 2] [--channels 256 512 768]``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "templates"))

from blog_halo import BlogHaloAttention  # noqa: E402
from halo_attention import HaloAttention  # noqa: E402


class ProjectionFloor(nn.Module):
    """to_q, to_kv and to_out of ``layer`` applied to every pixel, nothing else."""

    def __init__(self, layer: HaloAttention) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        pixels = x.permute(0, 2, 3, 1)  # B, H, W, C
        q, kv = self.layer.to_q(pixels), self.layer.to_kv(pixels)
        return self.layer.to_out(q), kv  # to_out(q) stands in for to_out(attention output)


def forward_step(module: nn.Module, x: Tensor) -> Callable[[], None]:
    def step() -> None:
        with torch.no_grad():
            module(x)

    return step


def train_step(module: nn.Module, x: Tensor) -> Callable[[], None]:
    """One forward+backward step with fixed random output gradients (made once, outside the step)."""
    with torch.no_grad():
        outputs = module(x)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    grads = [torch.randn_like(out) for out in outputs]

    def step() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        out = module(x)
        torch.autograd.backward(out if isinstance(out, tuple) else (out,), grads)

    return step


def median_ms(steps: Dict[str, Callable[[], None]], repeats: int, warmup: int) -> Dict[str, float]:
    """Median wall time per step in ms; every round runs each step once, in turn."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


def peak_mib(step: Callable[[], None], module: nn.Module, x: Tensor) -> float:
    """Largest tensor memory alive during ``step`` beyond what existed before it, in MiB.

    Gradients of the previous step are dropped before the profiled run, so the parameter and input
    gradients that the step allocates count towards its peak.
    """
    step()
    module.zero_grad(set_to_none=True)
    x.grad = None
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted(prof.events(), key=lambda event: event.time_range.start)
    alive = peak = 0
    for event in events:
        alive += event.self_cpu_memory_usage
        peak = max(peak, alive)
    return peak / 2**20


def bench_channels(channels: int, args: argparse.Namespace) -> List[Dict[str, float]]:
    torch.manual_seed(0)
    ours = HaloAttention(channels, args.block, args.halo)
    baseline = BlogHaloAttention(channels, args.block, args.halo)
    baseline.load_state_dict(ours.state_dict(), strict=True)
    modules = {"ours": ours, "baseline": baseline, "floor": ProjectionFloor(ours)}
    x = torch.randn(args.batch, channels, args.size, args.size, requires_grad=True)

    forward = median_ms({n: forward_step(m, x) for n, m in modules.items()}, args.repeats, args.warmup)
    training = median_ms({n: train_step(m, x) for n, m in modules.items()}, args.repeats, args.warmup)
    rows = []
    for name, module in modules.items():
        rows.append({
            "C": channels, "module": name, "fwd_ms": forward[name], "fwd_bwd_ms": training[name],
            "peak_fwd_mib": peak_mib(forward_step(module, x), module, x),
            "peak_train_mib": peak_mib(train_step(module, x), module, x),
        })
    return rows


def print_table(rows: Sequence[Dict[str, float]]) -> None:
    by_key = {(r["C"], r["module"]): r for r in rows}
    header = (f"{'C':>4} {'module':<9} {'fwd ms':>8} {'fwd+bwd ms':>11} {'peak fwd MiB':>13} "
              f"{'peak train MiB':>15} {'fwd/base':>9} {'f+b/base':>9} {'fwd/floor':>10} {'f+b/floor':>10}")
    print(header)
    print("-" * len(header))
    for r in rows:
        base, floor = by_key[(r["C"], "baseline")], by_key[(r["C"], "floor")]
        print(f"{r['C']:>4} {r['module']:<9} {r['fwd_ms']:>8.1f} {r['fwd_bwd_ms']:>11.1f} {r['peak_fwd_mib']:>13.1f} "
              f"{r['peak_train_mib']:>15.1f} {r['fwd_ms'] / base['fwd_ms']:>9.2f} "
              f"{r['fwd_bwd_ms'] / base['fwd_bwd_ms']:>9.2f} {r['fwd_ms'] / floor['fwd_ms']:>10.2f} "
              f"{r['fwd_bwd_ms'] / floor['fwd_bwd_ms']:>10.2f}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (5 instead of 25)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--channels", type=int, nargs="+", default=[256, 512, 768])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=20, help="feature map side (default 20: P5 at 640)")
    parser.add_argument("--block", type=int, default=2)
    parser.add_argument("--halo", type=int, default=1)
    args = parser.parse_args(argv)
    args.repeats, args.warmup = (5, 2) if args.quick else (25, 5)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, B={args.batch}, {args.size}x{args.size}, "
          f"block {args.block}, halo {args.halo}; median of {args.repeats} runs after {args.warmup} warm-up rounds")
    rows = [row for channels in args.channels for row in bench_channels(channels, args)]
    print_table(rows)


if __name__ == "__main__":
    main()
