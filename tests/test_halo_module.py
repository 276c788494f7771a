"""The HaloAttention module that `halo-patch apply` installs (templates/halo_attention.py).

Checked against two references:

* the tutorial's own algorithm (benchmarks/blog_halo.py: unfold, project every window, ``rel_to_abs``
  relative logits) with its mask fixed, on the shapes it accepts, forward and gradients;
* a brute-force reference written here for every shape: for every query pixel its key window is
  gathered with python loops, relative-position logits are added and the softmax runs over the keys
  inside the image only.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path
from typing import Dict, Tuple

import sys

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from halo_patch.templates import halo_attention as halo_module
from halo_patch.templates.halo_attention import HaloAttention

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from blog_halo import BlogHaloAttention  # noqa: E402  (the tutorial's algorithm; needs einops)

TEMPLATE = Path(halo_module.__file__)
YOLO_SHAPES = [(1, 1), (8, 8), (20, 20), (20, 15), (21, 21), (40, 40)]  # P5 maps a YOLO11 meets


def make_layer(dim: int = 16, block: int = 2, halo: int = 1, heads: int = 2, dim_head: int = 8, seed: int = 0) -> HaloAttention:
    torch.manual_seed(seed)
    layer = HaloAttention(dim, block, halo, dim_head=dim_head, heads=heads)
    with torch.no_grad():  # non-trivial values everywhere, the output bias included
        for p in layer.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return layer


def key_pixel(y: int, x: int, wi: int, wj: int, block: int, halo: int) -> Tuple[int, int]:
    """Image position of window key (wi, wj) for the query at pixel (y, x)."""
    return (y // block) * block - halo + wi, (x // block) * block - halo + wj


def reference(layer: HaloAttention, x: torch.Tensor) -> Tuple[torch.Tensor, Dict[Tuple[int, int], torch.Tensor]]:
    """Brute force in float64: output (B, C, H, W) and, per query pixel, probabilities (B, heads, win, win)."""
    block, halo, heads, d = layer.block_size, layer.halo_size, layer.heads, layer.dim_head
    win, inner = block + 2 * halo, heads * d
    w = {name: t.detach().double() for name, t in layer.state_dict().items()}
    batch, _, height, width = x.shape
    pixels = x.detach().double().permute(0, 2, 3, 1)  # B, H, W, C
    q = (pixels @ w["to_q.weight"].t()).view(batch, height, width, heads, d) * d**-0.5
    kv = pixels @ w["to_kv.weight"].t()
    k = kv[..., :inner].reshape(batch, height, width, heads, d)
    v = kv[..., inner:].reshape(batch, height, width, heads, d)
    rel_h, rel_w = w["rel_pos_emb.rel_height"], w["rel_pos_emb.rel_width"]
    out = torch.zeros(batch, height, width, heads, d, dtype=torch.float64)
    probs = {}
    for y in range(height):
        for x_ in range(width):
            qi, qj = y % block, x_ % block
            logits = torch.full((batch, heads, win, win), float("-inf"), dtype=torch.float64)
            keys = []
            for wi in range(win):
                for wj in range(win):
                    ky, kx = key_pixel(y, x_, wi, wj, block, halo)
                    if 0 <= ky < height and 0 <= kx < width:
                        key = k[:, ky, kx] + rel_h[wi - qi + win - 1] + rel_w[wj - qj + win - 1]
                        logits[:, :, wi, wj] = (q[:, y, x_] * key).sum(-1)
                        keys.append((wi, wj, ky, kx))
            p = logits.flatten(2).softmax(-1).view(batch, heads, win, win)
            for wi, wj, ky, kx in keys:
                out[:, y, x_] += p[:, :, wi, wj, None] * v[:, ky, kx]
            probs[(y, x_)] = p
    result = out.reshape(batch, height, width, inner) @ w["to_out.weight"].t() + w["to_out.bias"]
    return result.permute(0, 3, 1, 2), probs


def gradients(layer: torch.nn.Module, x: torch.Tensor, grad_out: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """Output, and the gradients of the input and of every parameter for the output gradient ``grad_out``."""
    x = x.clone().requires_grad_(True)
    layer.zero_grad(set_to_none=True)
    out = layer(x)
    out.backward(grad_out)
    return out.detach(), {"input": x.grad, **{name: p.grad for name, p in layer.named_parameters()}}


def assert_close(got: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """Equal within 1e-5 of the larger of 1 and the expected tensor's largest entry."""
    error = (got - expected).abs().max().item()
    assert error <= 1e-5 * max(1.0, expected.abs().max().item()), f"{what}: max error {error:.2e}"


@pytest.mark.parametrize("block, halo, height, width", [
    (2, 1, 4, 6), (2, 1, 20, 20), (4, 2, 8, 12), (4, 1, 16, 8), (8, 3, 16, 8), (3, 2, 9, 6),
])
@pytest.mark.parametrize("heads, dim_head", [(2, 8), (3, 4)])
def test_equals_the_tutorial_module_with_its_mask_fixed(block: int, halo: int, height: int, width: int,
                                                         heads: int, dim_head: int) -> None:
    ours = make_layer(block=block, halo=halo, heads=heads, dim_head=dim_head, seed=block * 10 + halo)
    tutorial = BlogHaloAttention(16, block, halo, dim_head=dim_head, heads=heads, fix_mask=True)
    tutorial.load_state_dict(ours.state_dict(), strict=True)
    torch.manual_seed(1)
    x, grad_out = torch.randn(3, 16, height, width), torch.randn(3, 16, height, width)
    got, got_grads = gradients(ours, x, grad_out)
    expected, expected_grads = gradients(tutorial, x, grad_out)
    assert_close(got, expected, "output")
    assert got_grads.keys() == expected_grads.keys()
    for name, grad in expected_grads.items():
        assert_close(got_grads[name], grad, f"gradient of {name}")


def test_the_tutorial_module_as_shipped_differs() -> None:
    """The reference above is not vacuous: with its inverted mask the tutorial module computes something else."""
    ours = make_layer()
    tutorial = BlogHaloAttention(16, 2, 1, dim_head=8, heads=2)
    tutorial.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 16, 6, 6)
    with torch.no_grad():
        assert (ours(x) - tutorial(x)).abs().max().item() > 0.1


@pytest.mark.parametrize("block, halo", [(2, 1), (4, 2), (8, 3), (3, 0)])
@pytest.mark.parametrize("height, width", [(4, 4), (5, 7), (1, 1), (3, 8)])
def test_matches_brute_force_reference(block: int, halo: int, height: int, width: int) -> None:
    layer = make_layer(block=block, halo=halo)
    x = torch.randn(2, 16, height, width)
    expected, _ = reference(layer, x)
    with torch.no_grad():
        got = layer(x)
    assert got.shape == x.shape
    assert (got.double() - expected).abs().max().item() <= 1e-5
    with torch.no_grad():
        got64 = layer.double()(x.double())
    assert (got64 - expected).abs().max().item() <= 1e-12


@pytest.mark.parametrize("height, width", [(20, 15), (9, 6)])
def test_matches_reference_on_yolo_like_maps(height: int, width: int) -> None:
    layer = make_layer(dim=8, heads=2, dim_head=4)
    x = torch.randn(1, 8, height, width)
    expected, _ = reference(layer, x)
    with torch.no_grad():
        assert (layer(x).double() - expected).abs().max().item() <= 1e-5


def test_attention_weights_mask_the_border_and_are_not_uniform() -> None:
    block, halo = 2, 1
    layer = make_layer(block=block, halo=halo)
    height, width = 5, 7  # odd sizes: halo padding and bottom/right filler both appear
    x = torch.randn(2, 16, height, width) * 2
    with torch.no_grad():
        weights = layer.attention_weights(x)  # B, heads, L, b**2, win**2
    win, n_w = block + 2 * halo, -(-width // block)
    assert weights.shape == (2, 2, -(-height // block) * n_w, block * block, win * win)
    _, expected = reference(layer, x)
    interior = border = 0
    for (y, x_), p_ref in expected.items():
        row = weights[:, :, (y // block) * n_w + x_ // block, (y % block) * block + x_ % block].view(2, 2, win, win)
        assert torch.allclose(row.double(), p_ref, atol=1e-6)
        inside = torch.tensor([[0 <= ky < height and 0 <= kx < width
                                for ky, kx in (key_pixel(y, x_, wi, wj, block, halo) for wj in range(win))]
                               for wi in range(win)])
        assert torch.allclose(row.sum((-2, -1)), torch.ones(2, 2))
        if inside.all():
            interior += 1
            flat = row.flatten(2)
            assert (flat.max(-1).values - flat.min(-1).values).min().item() > 1e-3, "interior row is uniform"
        else:
            border += 1
            assert (row[..., ~inside] == 0).all(), "weight on a key outside the image"
            assert (row[..., inside] > 0).all()
    assert interior > 0 and border > 0


def test_every_parameter_learns() -> None:
    layer = make_layer(dim=16, block=2, halo=1)
    x = torch.randn(2, 16, 6, 5, requires_grad=True)
    (layer(x) * torch.randn(2, 16, 6, 5)).sum().backward()
    inner = layer.heads * layer.dim_head
    grads = {
        "to_q": layer.to_q.weight.grad,
        "to_kv keys": layer.to_kv.weight.grad[:inner],
        "to_kv values": layer.to_kv.weight.grad[inner:],
        "to_out": layer.to_out.weight.grad,
        "to_out bias": layer.to_out.bias.grad,
        "input": x.grad,
    }
    for name, grad in grads.items():
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    for name in ("rel_height", "rel_width"):
        grad = getattr(layer.rel_pos_emb, name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


@pytest.mark.parametrize("dim, block, halo, dim_head, heads", [(256, 2, 1, 64, 8), (48, 4, 2, 16, 3)])
def test_state_dict_layout_of_the_widely_used_module(dim: int, block: int, halo: int, dim_head: int, heads: int) -> None:
    inner, table = heads * dim_head, 2 * (block + 2 * halo) - 1
    expected = {
        "to_q.weight": (inner, dim),
        "to_kv.weight": (2 * inner, dim),
        "to_out.weight": (dim, inner),
        "to_out.bias": (dim,),
        "rel_pos_emb.rel_height": (table, dim_head),
        "rel_pos_emb.rel_width": (table, dim_head),
    }
    layer = HaloAttention(dim, block, halo, dim_head=dim_head, heads=heads)
    assert {name: tuple(t.shape) for name, t in layer.state_dict().items()} == expected
    layer.load_state_dict({name: torch.randn(shape) for name, shape in expected.items()}, strict=True)


def test_yaml_row_arguments_build_the_default_layer() -> None:
    layer = HaloAttention(256, *[2, 1])  # [-1, 1, HaloAttention, [2, 1]] after a 256-channel layer
    assert (layer.block_size, layer.halo_size, layer.heads, layer.dim_head) == (2, 1, 8, 64)


@pytest.mark.parametrize("height, width", YOLO_SHAPES)
def test_yolo_shapes(height: int, width: int) -> None:
    layer = HaloAttention(256, 2, 1).eval()
    small = make_layer(dim=32, heads=2, dim_head=16).eval()
    with torch.no_grad():
        for batch in (1, 2):
            x = torch.randn(batch, 256, height, width)
            y = layer(x)
            assert y.shape == x.shape and y.is_contiguous()
        x = torch.randn(32, 32, height, width)
        y = small(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
        for i in (0, 31):  # blocks of different images never mix
            assert torch.allclose(small(x[i : i + 1]), y[i : i + 1], atol=1e-5)


def test_training_step_on_a_non_divisible_map() -> None:
    layer = HaloAttention(64, 2, 1)
    x = torch.randn(4, 64, 21, 21, requires_grad=True)
    layer(x).square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters()) and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("window_bytes", [1, 3 * 8 * 16 * 16 * 4, 1 << 40])  # 1, 3 and all heads at a time
def test_cpu_head_groups_compute_the_same_as_all_heads_at_once(window_bytes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = make_layer(heads=8, dim_head=8, block=2, halo=1)
    x, grad_out = torch.randn(2, 16, 7, 9), torch.randn(2, 16, 7, 9)
    monkeypatch.setattr(halo_module, "CPU_WINDOW_BYTES", 1 << 40)
    expected, expected_grads = gradients(layer, x, grad_out)
    monkeypatch.setattr(halo_module, "CPU_WINDOW_BYTES", window_bytes)
    got, got_grads = gradients(layer, x, grad_out)
    assert_close(got, expected, "output")
    for name, grad in expected_grads.items():
        assert_close(got_grads[name], grad, f"gradient of {name}")


class CountOps(TorchDispatchMode):
    """Counts the aten ops a block of code dispatches."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        name = func.overloadpacket.__name__
        self.counts[name] = self.counts.get(name, 0) + 1
        return func(*args, **(kwargs or {}))


def test_off_the_cpu_all_heads_attend_in_one_product() -> None:
    """On an accelerator (here the meta device, which runs no maths) there is no per-head python loop."""
    layer = HaloAttention(256, 2, 1).to("meta")
    with CountOps() as ops, torch.no_grad():
        out = layer(torch.empty(16, 256, 20, 20, device="meta"))
    assert out.shape == (16, 256, 20, 20)
    assert ops.counts.get("baddbmm") == 1 and ops.counts.get("bmm") == 1 and ops.counts.get("index_select") == 2


def test_training_after_inference_mode_at_the_same_size() -> None:
    """Ultralytics validates under torch.inference_mode between training epochs, often at the same shape."""
    layer = make_layer(dim=16)
    x = torch.randn(2, 16, 6, 7)
    with torch.inference_mode():
        predicted = layer(x)
    x.requires_grad_(True)
    out = layer(x)
    out.sum().backward()
    assert torch.allclose(out.detach(), predicted) and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("height, width", [(1, 1), (20, 15), (21, 21)])
def test_autocast_has_no_nan(dtype: torch.dtype, height: int, width: int) -> None:
    layer = make_layer(dim=64, heads=4, dim_head=16)
    x = torch.randn(1, 64, height, width, requires_grad=True)  # one image: NaNs come from masking, not from the batch
    with torch.autocast("cpu", dtype=dtype):
        y = layer(x)
    assert y.dtype == dtype and torch.isfinite(y).all()
    y.float().sum().backward()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in layer.parameters())
    with torch.no_grad():
        full = layer(x)
    assert (y.float() - full).abs().max().item() < 0.1 * full.abs().max().item()


@pytest.mark.parametrize("opset", [17, 20])
def test_onnx_export_with_dynamic_size(opset: int, tmp_path: Path) -> None:
    """Exported as Ultralytics does (legacy exporter, then onnxslim), run at other sizes in onnxruntime."""
    import onnx
    import onnxruntime as ort
    import onnxslim

    layer = make_layer(dim=32, heads=2, dim_head=16).eval()
    path = tmp_path / f"halo{opset}.onnx"
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.onnx.export(layer, (torch.randn(2, 32, 8, 8),), str(path), dynamo=False, opset_version=opset,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": axes, "y": axes})
    assert not [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    sessions = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
                for m in (model, onnxslim.slim(model))]
    for shape in [(3, 32, 7, 5), (1, 32, 21, 21), (1, 32, 1, 1), (2, 32, 20, 15)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            expected = layer(x).numpy()
        for session in sessions:
            (got,) = session.run(None, {"x": x.numpy()})
            assert got.shape == expected.shape
            assert np.abs(got - expected).max() <= 1e-5


def test_jit_trace_generalises_to_other_sizes() -> None:
    layer = make_layer(dim=32, heads=2, dim_head=16).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = torch.jit.trace(layer, torch.randn(2, 32, 8, 8))
    assert not [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    for shape in [(3, 32, 7, 5), (1, 32, 1, 1), (1, 32, 21, 21)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            assert torch.allclose(traced(x), layer(x), atol=1e-6)


@pytest.mark.parametrize("args", [(0, 2, 1), (16, 0, 1), (16, 2, -1), (16, 2.0, 1), (16, 2, 1, 0), (16, 2, 1, 8, 0)])
def test_invalid_sizes_are_rejected(args: tuple) -> None:
    with pytest.raises(ValueError, match="HaloAttention"):
        HaloAttention(*args)


def test_wrong_input_channels_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"\(B, 16, H, W\)"):
        make_layer(dim=16)(torch.randn(1, 8, 4, 4))


def test_template_imports_only_torch() -> None:
    tree = ast.parse(TEMPLATE.read_text())
    roots = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    roots |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert roots <= {"__future__", "functools", "typing", "torch"}, roots
