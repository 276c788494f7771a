"""Step `checkpoint`: the trained checkpoint saved again and loaded gives identical outputs."""

from __future__ import annotations

from .common import CheckFailed, first_output, halo_layers, save_checkpoint


def run(ctx, model):
    import torch
    from ultralytics import YOLO

    trained = ctx.trained[model.key]
    first = YOLO(str(trained))
    cls = type(halo_layers(first.model, model.name)[0][1])
    again = save_checkpoint(first, ctx.workdir / "roundtrip" / f"halo_{model.key}.pt")
    second = YOLO(str(again))
    halo_layers(second.model, model.name)
    x = torch.rand(1, 3, ctx.imgsz, ctx.imgsz, generator=torch.Generator().manual_seed(1)).to(ctx.device)
    outs = []
    for yolo in (first, second):
        net = yolo.model.to(ctx.device).float().eval()
        with torch.no_grad():
            outs.append(first_output(net(x)))
    diff = float((outs[0] - outs[1]).abs().max()) if outs[0].shape == outs[1].shape else float("inf")
    data = {"checkpoint": str(trained), "class": f"{cls.__module__}.{cls.__name__}", "max_abs_diff": diff}
    if diff != 0.0:
        raise CheckFailed(f"outputs after save -> load differ (max |diff| {diff:g})", data)
    return f"{trained.name} -> {again.name} -> load: identical outputs; pickled as {cls.__module__}", data
