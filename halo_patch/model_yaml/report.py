"""How a planned model yaml is shown: where each HaloAttention goes, its channels, how to build it."""

from __future__ import annotations

from rich.console import Console

from halo_patch import report
from halo_patch.model_yaml.planner import YamlPlan
from halo_patch.target import UltralyticsTarget


def print_model_yaml(console: Console, target: UltralyticsTarget, model: YamlPlan) -> None:
    scales = [s for s, _ in model.inserted[0].channels]
    console.print(
        f"HaloAttention(c_in, {', '.join(map(str, model.args))}) in {target.relative(model.path)} "
        f"(from {model.base.path.name}, {model.base.task}):",
        highlight=False,
        soft_wrap=True,
    )
    t = report.table("", ["layer", "follows", "read by", *(f"c_in {s}" for s in scales)])
    for layer in model.inserted:
        readers = ", ".join(f"{j} {m}" for j, m in layer.readers)
        channels = ["?" if c is None else str(c) for _, c in layer.channels]
        t.add_row(str(layer.index), f"{layer.after} {layer.after_module}", readers, *channels)
    console.print(t)
    console.print(
        f"Graph proven: taking the inserted rows out gives back {model.base.path.name} layer for layer, edge for edge.",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"Build it with [bold]YOLO('{model.build}')[/] ({model.scale_note}).", highlight=False, soft_wrap=True)
