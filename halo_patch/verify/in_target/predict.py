"""Step `predict`: the trained checkpoint predicts on one non-square image."""

from __future__ import annotations

from .common import CheckFailed, ShapeHook, class_name, halo_layers, wh


def run(ctx, model):
    from PIL import Image
    from ultralytics import YOLO

    yolo = YOLO(str(ctx.trained[model.key]))
    image = sorted((ctx.datadir / "images" / "val").glob("*.png"))[0]
    halo_layers(yolo.model, model.name)
    hook = ShapeHook()  # predict fuses and wraps a copy of the model: hook every HaloAttention
    try:
        results = yolo.predict(source=str(image), imgsz=ctx.imgsz, device=ctx.config["device"], save=False, verbose=False)
    finally:
        hook.remove()
    if len(results) != 1:
        raise CheckFailed(f"predict returned {len(results)} results for one image")
    r = results[0]
    with Image.open(image) as im:
        w, h = im.size
    if tuple(r.orig_shape) != (h, w) or r.boxes is None:
        raise CheckFailed(f"predict result for a {w}x{h} image has orig_shape {r.orig_shape} and boxes {r.boxes}")
    p5 = wh(hook.calls[0][0]) if hook.calls else "?"
    data = {"image": f"{w}x{h}", "boxes": len(r.boxes), "p5": p5}
    return f"{len(r.boxes)} boxes on a {w}x{h} image ({class_name()} at P5 {p5})", data
