"""Step `onnxruntime`: the exported file run by onnxruntime matches PyTorch."""

from __future__ import annotations

from .common import CheckFailed, Skipped, first_output


def run(ctx, model):
    try:
        import onnxruntime as ort
    except ImportError:
        raise Skipped("onnxruntime not installed") from None
    import numpy as np
    import torch
    from ultralytics import YOLO

    onnx_file, source = ctx.exported[model.key]
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(2).random((1, 3, ctx.imgsz, ctx.imgsz), dtype=np.float32)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    net = YOLO(str(source)).model.float().eval()
    with torch.no_grad():
        want = first_output(net(torch.from_numpy(x))).numpy()
    if got.shape != want.shape:
        raise CheckFailed(f"onnxruntime output {got.shape}, PyTorch {want.shape}")
    diff = float(np.abs(got - want).max())
    scale = max(1.0, float(np.abs(want).max()))
    data = {"output": list(got.shape), "max_abs_diff": diff, "ort": ort.__version__}
    if not diff <= 1e-3 * scale:
        raise CheckFailed(f"onnxruntime and PyTorch outputs differ: max |diff| {diff:.3g} (values up to {scale:.3g})", data)
    return f"onnxruntime {ort.__version__}: output {tuple(got.shape)} matches PyTorch (max |diff| {diff:.2g})", data
