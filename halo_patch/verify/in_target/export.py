"""Step `export`: the model (trained when --train ran) exported; the file lands in the temp dir."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from .common import CheckFailed, inside, save_checkpoint


def run(ctx, model):
    from ultralytics import YOLO

    fmt = ctx.config["export"]
    if fmt == "onnx" and importlib.util.find_spec("onnx") is None:
        raise CheckFailed(f"onnx is not installed in {sys.executable}; pip install onnx")
    source = ctx.trained.get(model.key)
    if source is None:  # no --train: export the freshly built model, saved into the temp dir first
        source = save_checkpoint(ctx.built[model.key], ctx.workdir / "export" / f"halo_{model.key}.pt")
    missing = [m for m in ("onnxslim", "onnxruntime") if importlib.util.find_spec(m) is None]
    simplify = not missing
    out = YOLO(str(source)).export(format=fmt, imgsz=ctx.imgsz, device=ctx.config["device"], simplify=simplify)
    out = Path(out) if out else None
    if out is None or not out.exists():
        raise CheckFailed(f"export returned {out}, not a file")
    if not inside(out, ctx.workdir):
        raise CheckFailed(f"export wrote {out}, outside verify's temp dir")
    ctx.exported[model.key] = (out, source)
    size = out.stat().st_size if out.is_file() else sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    note = "" if simplify else f" (not simplified: {' and '.join(missing)} not installed)"
    return f"{out.name}, {size / 1e6:.1f} MB at {ctx.imgsz}x{ctx.imgsz}{note}", {"file": out.name, "bytes": size}
