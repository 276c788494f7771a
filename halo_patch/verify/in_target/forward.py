"""Step `forward`: eval passes at square and non-square sizes; each output shaped as its head promises."""

from __future__ import annotations

from .common import CheckFailed, ShapeHook, channels_rule, class_name, first_line, halo_layers, level, sizes, wh
from .heads import channel_parts, check_output, describe_channels, is_end_to_end


def run(ctx, model):
    import torch

    net = ctx.built[model.key].model.to(ctx.device).eval()
    task = ctx.built[model.key].task
    layers = halo_layers(net, model.name)
    results, levels = [], []
    for h, w in sizes(task, ctx.imgsz):
        hooks = [ShapeHook(m) for _, m in layers]
        try:
            with torch.no_grad():
                y = net(torch.rand(1, 3, h, w, device=ctx.device))
        except Exception as exc:
            raise CheckFailed(f"{w}x{h}: {first_line(exc)}") from exc
        finally:
            for hook in hooks:
                hook.remove()
        result = {"size": f"{w}x{h}", "halo": [wh(hook.calls[0][0]) for hook in hooks]}
        result["p5"] = result["halo"][0]  # the first HaloAttention's input, as in earlier reports
        results.append(result)
        levels = levels or [level((h, w), hook.calls[0][0][-2:]) for hook in hooks]  # at the main size
        for (i, _), hook in zip(layers, hooks):
            halo_in, halo_out = hook.calls[0]
            if halo_out != halo_in and channels_rule() == "same":
                raise CheckFailed(f"{w}x{h}: {class_name()} {i} maps {halo_in} to {halo_out}; expected the same shape", {"sizes": results})
        try:
            result.update(check_output(net, task, y, h, w))
        except CheckFailed as exc:
            exc.data = {"sizes": results}
            raise
    return describe(net, task, layers, levels, results), {"task": task, "sizes": results}


def describe(net, task, layers, levels, results):
    """The sizes, what the outputs hold (for tasks beyond detect), and where HaloAttention ran."""
    sizes_text = ", ".join(r["size"] for r in results) + " (WxH): "
    if task == "detect" and not is_end_to_end(net):
        what = "outputs as expected"
    elif task == "classify":
        what = f"{channel_parts(net, task)[0][1]} class probabilities summing to 1"
    elif is_end_to_end(net):
        shape = results[0]["output"]
        what = f"outputs {', '.join(str(r['output'][1]) for r in results)} detections x {shape[2]} = 6 (box, score, class)"
        what += "".join(f" + {n} {part}" for part, n in channel_parts(net, task)[2:])
    else:
        what = f"outputs {describe_channels(channel_parts(net, task))} x {', '.join(str(r['anchors']) for r in results)} anchors"
    if task == "segment":
        nm = results[0]["proto"][1]
        what += f"; mask prototypes {nm} x " + ", ".join(f"{r['proto'][3]}x{r['proto'][2]}" for r in results)
    where = []
    for k, ((i, _), p) in enumerate(zip(layers, levels)):
        at = ", ".join(r["halo"][k] for r in results)
        where.append(f"at P{p} {at}" if len(layers) == 1 else f"layer {i} at P{p} {at}")
    return sizes_text + what + f"; {class_name()} " + "; ".join(where)
