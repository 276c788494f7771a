"""Benchmark the shipped HaloAttention against its projection floor and the widely copied module.

    python benchmarks/bench_module.py [--device cpu|cuda] [--dtype fp32|fp16|bf16] [--threads 2]
                                      [--channels 256 512] [--repeats 15] [--compare OLD.py]

Defaults: B=8, a 20x20 map (YOLO11 P5 at 640), block 2, halo 1, C=256, 2 CPU threads.

Modules, all with the same weights:

* ``halo-patch``: templates/halo_attention.py, the module that ``halo-patch apply`` installs;
* ``baseline``: benchmarks/blog_halo.py, a re-implementation of the widely copied module (its
  inverted mask included: the cost is the same either way);
* ``floor``: the three projections alone, which any implementation of the layer has to compute:
  ``p = x.permute(0, 2, 3, 1)``, then ``to_out(to_q(p))`` and ``to_kv(p)``; forward+backward
  computes the same gradients as the layer (input, the three weights, the output bias) from fixed
  random gradients of both outputs;
* ``compare`` (with ``--compare FILE``): the ``HaloAttention`` of another file, e.g. an older
  template, to measure a change in the same interleaved run.

For each module: forward time (``torch.no_grad``) and forward+backward time, min / median / max
over ``--repeats`` rounds after warm-up; every round runs every module once, in turn, so that load
on a shared machine hits all alike. The input requires grad (the layer sits mid-network). Ratios
use the same statistic of both modules (min/min, median/median). With ``--dtype fp16|bf16`` the
modules run under ``torch.autocast``. Peak memory of one step: on CUDA
``torch.cuda.max_memory_allocated``; on CPU the profiler's allocation events replayed in order
(largest tensor memory alive at once beyond what existed before the step). The machine's load
average before and after is printed, so that noise can be told from a result.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.profiler import ProfilerActivity, profile

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from blog_halo import BlogHaloAttention  # noqa: E402

DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
STATS = ("min", "median", "max")


def load_halo_class(path: Path) -> type:
    """The HaloAttention class of a template file, imported under its own module name."""
    spec = importlib.util.spec_from_file_location(f"halo_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.HaloAttention


class ProjectionFloor(nn.Module):
    """to_q, to_kv and to_out of ``layer`` applied to every pixel, nothing else."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        pixels = x.permute(0, 2, 3, 1)  # B, H, W, C
        q, kv = self.layer.to_q(pixels), self.layer.to_kv(pixels)
        return self.layer.to_out(q), kv  # to_out(q) stands in for to_out(attention output)


class Runner:
    """Runs steps on one device and dtype, synchronising CUDA around timings."""

    def __init__(self, device: torch.device, dtype: torch.dtype | None) -> None:
        self.device, self.dtype = device, dtype

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def forward_step(self, module: nn.Module, x: Tensor) -> Callable[[], None]:
        def step() -> None:
            with torch.no_grad(), self.autocast():
                module(x)

        return step

    def train_step(self, module: nn.Module, x: Tensor) -> Callable[[], None]:
        """One forward+backward step with fixed random output gradients (made once, outside the step)."""
        with torch.no_grad(), self.autocast():
            outputs = module(x)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        grads = [torch.randn(out.shape, device=out.device, dtype=out.dtype) for out in outputs]

        def step() -> None:
            module.zero_grad(set_to_none=True)
            x.grad = None
            with self.autocast():
                out = module(x)
            torch.autograd.backward(out if isinstance(out, tuple) else (out,), grads)

        return step

    def time_ms(self, steps: Dict[str, Callable[[], None]], repeats: int, warmup: int) -> Dict[str, List[float]]:
        """Wall time per step in ms, ``repeats`` rounds; every round runs each step once, in turn."""
        for _ in range(warmup):
            for step in steps.values():
                step()
        times: Dict[str, List[float]] = {name: [] for name in steps}
        for _ in range(repeats):
            for name, step in steps.items():
                self.sync()
                start = time.perf_counter()
                step()
                self.sync()
                times[name].append((time.perf_counter() - start) * 1e3)
        return times

    def peak_mib(self, step: Callable[[], None], module: nn.Module, x: Tensor) -> float:
        """Largest tensor memory alive during ``step`` beyond what existed before it, in MiB.

        Gradients of the previous step are dropped first, so the parameter and input gradients
        that the step allocates count towards its peak.
        """
        step()
        module.zero_grad(set_to_none=True)
        x.grad = None
        if self.device.type == "cuda":
            self.sync()
            before = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            step()
            self.sync()
            return (torch.cuda.max_memory_allocated(self.device) - before) / 2**20
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            step()
        alive = peak = 0
        for event in sorted(prof.events(), key=lambda event: event.time_range.start):
            alive += event.self_cpu_memory_usage
            peak = max(peak, alive)
        return peak / 2**20


def summary(values: Sequence[float]) -> Dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def bench_channels(channels: int, args: argparse.Namespace, runner: Runner) -> List[dict]:
    torch.manual_seed(0)
    ours = HaloAttentionClass(channels, args.block, args.halo)
    modules: Dict[str, nn.Module] = {"halo-patch": ours}
    if args.compare:
        other = load_halo_class(args.compare)(channels, args.block, args.halo)
        other.load_state_dict(ours.state_dict(), strict=True)
        modules["compare"] = other
    if not args.no_baseline:
        baseline = BlogHaloAttention(channels, args.block, args.halo)
        baseline.load_state_dict(ours.state_dict(), strict=True)
        modules["baseline"] = baseline
    modules["floor"] = ProjectionFloor(ours)
    for module in modules.values():
        module.to(runner.device)
    x = torch.randn(args.batch, channels, args.size, args.size, device=runner.device, requires_grad=True)

    forward = runner.time_ms({n: runner.forward_step(m, x) for n, m in modules.items()}, args.repeats, args.warmup)
    training = runner.time_ms({n: runner.train_step(m, x) for n, m in modules.items()}, args.repeats, args.warmup)
    rows = []
    for name, module in modules.items():
        rows.append({
            "C": channels, "module": name, "fwd": summary(forward[name]), "fwd_bwd": summary(training[name]),
            "peak_fwd_mib": runner.peak_mib(runner.forward_step(module, x), module, x),
            "peak_train_mib": runner.peak_mib(runner.train_step(module, x), module, x),
        })
    return rows


def print_table(rows: Sequence[dict]) -> None:
    by_key = {(r["C"], r["module"]): r for r in rows}
    header = (f"{'C':>4} {'module':<11} {'fwd ms min/med/max':>21} {'fwd+bwd ms min/med/max':>24} "
              f"{'peak fwd MiB':>13} {'peak train MiB':>15} {'fwd/floor min,med':>18} {'f+b/floor min,med':>18}")
    print(header)
    print("-" * len(header))
    for r in rows:
        floor = by_key[(r["C"], "floor")]
        fwd, fb = r["fwd"], r["fwd_bwd"]
        fwd_ratio = f"{fwd['min'] / floor['fwd']['min']:.2f}, {fwd['median'] / floor['fwd']['median']:.2f}"
        fb_ratio = f"{fb['min'] / floor['fwd_bwd']['min']:.2f}, {fb['median'] / floor['fwd_bwd']['median']:.2f}"
        print(f"{r['C']:>4} {r['module']:<11} {fwd['min']:>7.1f}/{fwd['median']:>6.1f}/{fwd['max']:>6.1f} "
              f"{fb['min']:>10.1f}/{fb['median']:>6.1f}/{fb['max']:>6.1f} {r['peak_fwd_mib']:>13.1f} "
              f"{r['peak_train_mib']:>15.1f} {fwd_ratio:>18} {fb_ratio:>18}")


def machine_line(args: argparse.Namespace, runner: Runner) -> str:
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    where = torch.cuda.get_device_name(runner.device) if runner.device.type == "cuda" else "CPU"
    return (f"{where}; {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}; "
            f"load average (1, 5, 15 min) {load}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32", help="fp16/bf16 run under autocast")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--channels", type=int, nargs="+", default=[256])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=20, help="feature map side (default 20: P5 at 640)")
    parser.add_argument("--block", type=int, default=2)
    parser.add_argument("--halo", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds (default 15, at least 15)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--compare", type=Path, help="another template file whose HaloAttention is timed too")
    parser.add_argument("--no-baseline", action="store_true", help="skip the (slow) widely copied module")
    parser.add_argument("--template", type=Path, default=HERE.parent / "templates" / "halo_attention.py",
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 15:
        parser.error("--repeats must be at least 15 (min/median/max need enough rounds)")
    global HaloAttentionClass
    HaloAttentionClass = load_halo_class(args.template)
    torch.set_num_threads(args.threads)
    runner = Runner(torch.device(args.device), DTYPES[args.dtype])
    print(f"torch {torch.__version__}, device {args.device}, {args.dtype}, B={args.batch}, "
          f"{args.size}x{args.size}, block {args.block}, halo {args.halo}; "
          f"min/median/max of {args.repeats} interleaved rounds after {args.warmup} warm-up rounds")
    print("before: " + machine_line(args, runner))
    rows = [row for channels in args.channels for row in bench_channels(channels, args, runner)]
    print("after:  " + machine_line(args, runner))
    print_table(rows)


HaloAttentionClass: type = nn.Module

if __name__ == "__main__":
    main()
