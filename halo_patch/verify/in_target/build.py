"""Step `build`: the yaml builds; its HaloAttention layers, channels, params and GFLOPs.

With the base model at hand (yolo11n-seg.yaml for yolo11n-seg-HaloAttention.yaml) the built graph
is compared with it layer by layer: every other layer gives the same output shape as the base
model's layer it came from, so the inserted rows and the shifted `from` indices are right.
"""

from __future__ import annotations

import importlib.util

from .common import CheckFailed, channels_rule, class_name, halo_layers, layer_names, main_size, tensors

FLOPS_IMGSZ = 640  # GFLOPs are reported at 640, the size Ultralytics' own tables use (224 for classify)


def run(ctx, model):
    from ultralytics import YOLO

    halo = YOLO(model.name)
    net = halo.model
    layers = halo_layers(net, model.name)
    task = halo.task
    if task != model.task:
        raise CheckFailed(f"{model.name} builds a {task} model; its head says {model.task}")
    probe = 256 if task != "classify" else main_size(task, ctx.imgsz)  # 256: the stride probe the build has just run
    shapes = output_shapes(net, probe)
    channels = []
    for i, layer in layers:
        source = i - 1 if layer.f == -1 else layer.f  # HaloAttention reads one input
        c_in, c_out = shapes[source][0][1], shapes[i][0][1]
        if c_in != c_out and channels_rule() == "same":
            raise CheckFailed(f"{class_name()} at layer {i} maps {c_in} -> {c_out} channels; expected {c_in} -> {c_in}")
        channels.append(c_in)
    flops_size = FLOPS_IMGSZ if task != "classify" else main_size(task, 640)
    data = {
        "task": task,
        "model": model.name,
        "layer": layers[0][0],
        "channels": channels[0],
        "layers": [{"index": i, "channels": c} for (i, _), c in zip(layers, channels)],
        "params": sum(p.numel() for p in net.parameters()),
        "halo_params": sum(p.numel() for _, m in layers for p in m.parameters()),
        "gflops": round(gflops(net, flops_size), 3),
        "gflops_imgsz": flops_size,
        "plain": model.plain,
    }
    if model.plain:
        plain = YOLO(model.plain).model
        compare_graphs(net, plain, [i for i, _ in layers], shapes, output_shapes(plain, probe), model)
        data["plain_params"] = sum(p.numel() for p in plain.parameters())
        data["plain_gflops"] = round(gflops(plain, flops_size), 3)
    have_thop = importlib.util.find_spec("thop") is not None  # without it Ultralytics reports 0 GFLOPs
    if have_thop and data["gflops"] == 0:  # get_flops swallows every exception and returns 0
        raise CheckFailed("GFLOPs profiled as 0: the model fails on Ultralytics' 32 px profiling image", data)
    ctx.built[model.key] = halo
    return describe(model, layers, channels, data, have_thop), data


def describe(model, layers, channels, data, have_thop):
    """`layer 9 HaloAttention 256 ch; 3.15M params (yolo11n 2.62M), 7.11 GFLOPs (yolo11n 6.67) at 640`."""
    plain = model.plain_label
    params = f"{data['params'] / 1e6:.2f}M params"
    if plain:
        params += f" ({plain} {data['plain_params'] / 1e6:.2f}M)"
    if have_thop:
        flops = f"{data['gflops']:.2f} GFLOPs" + (f" ({plain} {data['plain_gflops']:.2f})" if plain else "")
    else:
        flops = "GFLOPs not measured: thop not installed"
    where = f"{layer_names(layers)} {class_name()} {', '.join(str(c) for c in channels)} ch"
    return f"{where}; {params}, {flops} at {data['gflops_imgsz']}"


def gflops(net, imgsz):
    from ultralytics.utils.torch_utils import get_flops

    return get_flops(net, imgsz)


def output_shapes(net, size):
    """Per layer: the shapes of the tensors it returns, for one zero image of size x size in eval."""
    import torch

    shapes = {}
    handles = [
        layer.register_forward_hook(lambda m, i, o, k=k: shapes.__setitem__(k, [tuple(t.shape) for t in tensors(o)]))
        for k, layer in enumerate(net.model)
    ]
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    return shapes


def compare_graphs(net, plain, inserted, shapes, plain_shapes, model):
    """The built graph is the base graph with the HaloAttention rows spliced in, shape for shape."""
    if len(net.model) != len(plain.model) + len(inserted):
        raise CheckFailed(
            f"{len(net.model)} layers; expected {len(plain.model) + len(inserted)} "
            f"({model.plain_label} has {len(plain.model)}, plus {len(inserted)} {class_name()})"
        )
    for k in range(len(net.model)):
        if k in inserted:
            continue
        j = k - sum(1 for i in inserted if i < k)
        if shapes.get(k) != plain_shapes.get(j):
            raise CheckFailed(
                f"layer {k} ({type(net.model[k]).__name__}) outputs {_shapes(shapes.get(k))}; layer {j} of {model.plain_label}, "
                f"the same layer before {class_name()} was inserted, outputs {_shapes(plain_shapes.get(j))}: "
                "a `from` index points wrong"
            )


def _shapes(shapes):
    """`(1, 448, 16, 16)`, or several joined with `, `."""
    return ", ".join(str(s) for s in shapes or []) or "nothing"
