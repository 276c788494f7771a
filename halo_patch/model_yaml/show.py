"""How a planned model yaml is shown: where each HaloAttention goes, its channels, how to build it."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from halo_patch import report
from halo_patch.model_yaml.planner import YamlPlan
from halo_patch.target import UltralyticsTarget


def print_model_yaml(console: Console, target: UltralyticsTarget, model: YamlPlan) -> None:
    """Every name and note comes from the user's files and paths: escaped, so it prints as it is."""
    scales = [s for s, _ in model.inserted[0].channels]
    base_name = escape(model.base.path.name)
    console.print(
        f"{escape(model.module.call(model.args))} in {escape(str(target.relative(model.path)))} "
        f"(from {base_name}, {escape(model.base.task)}):",
        highlight=False,
        soft_wrap=True,
    )
    t = report.table("", ["layer", "follows", "read by", *(f"c_in {escape(s)}" for s in scales)])
    for layer in model.inserted:
        readers = ", ".join(f"{j} {m}" for j, m in layer.readers)
        channels = ["?" if c is None else str(c) for _, c in layer.channels]
        t.add_row(str(layer.index), escape(f"{layer.after} {layer.after_module}"), escape(readers), *channels)
    console.print(t)
    replaced = model.inserted[0].after_module.endswith("(replaced)")
    proof = (
        f"every `from` and edge as in {base_name}; only layer {model.inserted[0].index}'s module and args changed."
        if replaced
        else f"taking the inserted rows out gives back {base_name} layer for layer, edge for edge."
    )
    console.print(
        f"Graph proven: {proof}",
        highlight=False,
        soft_wrap=True,
    )
    build = escape(f"YOLO('{model.build}')")
    console.print(f"Build it with [bold]{build}[/] ({escape(model.scale_note)}).", highlight=False, soft_wrap=True)
