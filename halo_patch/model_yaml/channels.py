"""Output channels of every layer of a model yaml at each scale, computed the way parse_model does,
from the yaml alone (no torch): width multiple and max_channels cap per scale."""

from __future__ import annotations

import ast
import math
from typing import Any, Optional

from halo_patch.model_yaml.graph import is_index
from halo_patch.modules import SPECS, Channels

# Layers whose first argument is their output width, scaled by the width multiple (parse_model's
# `base_modules`, every release from 8.3.0 on). Classify keeps its first argument (nc) unscaled.
WIDTH_SCALED = frozenset(
    {
        "Conv", "ConvTranspose", "GhostConv", "Bottleneck", "GhostBottleneck", "SPP", "SPPF", "C2fPSA", "C2PSA",
        "DWConv", "Focus", "BottleneckCSP", "C1", "C2", "C2f", "C3k2", "RepNCSPELAN4", "ELAN1", "ADown", "AConv",
        "SPPELAN", "C2fAttn", "C3", "C3TR", "C3Ghost", "nn.ConvTranspose2d", "DWConvTranspose2d", "C3x", "RepC3",
        "PSA", "SCDown", "C2fCIB", "A2C2f", "MixConv2d", "CrossConv",
    }
)
FIRST_ARG = frozenset({"CBLinear", "TorchVision", "Index"})  # output width = args[0], unscaled
SECOND_ARG = frozenset({"HGStem", "HGBlock"})  # output width = args[1]
# parse_model's branches that leave `c2` as the previous row set it (heads, AIFI, BatchNorm2d, ...).
KEEPS_PREVIOUS = frozenset(
    {
        "AIFI", "nn.BatchNorm2d", "Detect", "WorldDetect", "YOLOEDetect", "Segment", "Segment26", "YOLOESegment",
        "YOLOESegment26", "Pose", "Pose26", "OBB", "OBB26", "Depth", "SemanticSegment", "v10Detect",
        "ImagePoolingAttn", "RTDETRDecoder", "LRPCHead",
    }
)
# parse_model's final `else: c2 = ch[f]`: layers that keep their input width.
SAME_AS_INPUT = frozenset(s.class_name for s in SPECS if s.channels is Channels.SAME) | frozenset(
    {"nn.Upsample", "nn.Identity", "nn.ZeroPad2d", "Silence", "nn.Dropout", "nn.ReLU", "nn.SiLU", "nn.MaxPool2d",
     "nn.AvgPool2d", "nn.AdaptiveAvgPool2d"}
)


def list_known_modules() -> frozenset[str]:
    return WIDTH_SCALED | FIRST_ARG | SECOND_ARG | KEEPS_PREVIOUS | SAME_AS_INPUT | {"Classify", "Concat", "CBFuse", "ResNetLayer"}


def make_divisible(x: float, divisor: int = 8) -> int:
    return math.ceil(x / divisor) * divisor


def read_scales(model: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """{scale: (width multiple, max_channels)}; one entry "-" for a yaml without `scales:`."""
    scales = model.get("scales")
    if isinstance(scales, dict) and scales:
        return {str(k): (float(v[1]), float(v[2])) for k, v in scales.items()}
    return {"-": (float(model.get("width_multiple", 1.0)), math.inf)}


def _value(a: Any, model: dict[str, Any]) -> Any:
    """An argument as parse_model sees it: `nc` and other names resolved, strings literal-evaluated."""
    if isinstance(a, str):
        if a == "nc":
            return model.get("nc")
        try:
            return ast.literal_eval(a)
        except (ValueError, SyntaxError):
            return a
    return a


def compute_output_channels(model: dict[str, Any], rows: list[list[Any]], scale: str) -> list[Optional[int]]:
    """Each row's output channels at `scale` (None where a layer's rule is not known)."""
    width, max_channels = read_scales(model)[scale]
    ch: list[Optional[int]] = []
    c2: Optional[int] = 3  # the image
    for i, (f, _n, m, args) in enumerate(rows):
        args = [_value(a, model) for a in (args or [])]
        def read(x: int) -> Optional[int]:
            if i == 0:
                return 3
            return ch[x] if -len(ch) <= x < len(ch) else None
        single = read(f) if is_index(f) else None
        first = args[0] if args and is_index(args[0]) else None
        if m in WIDTH_SCALED:
            c2 = None if first is None else make_divisible(min(first, max_channels) * width, 8)
        elif m == "Classify":
            c2 = first
        elif m == "Concat":
            parts = [read(x) for x in (f if isinstance(f, list) else [f])]
            c2 = None if None in parts else sum(parts)  # type: ignore[arg-type]
        elif m == "CBFuse":
            c2 = read(f[-1]) if isinstance(f, list) else single
        elif m in FIRST_ARG:
            c2 = first
        elif m in SECOND_ARG:
            c2 = args[1] if len(args) > 1 and is_index(args[1]) else None
        elif m == "ResNetLayer":
            c2 = None if len(args) < 4 or not is_index(args[1]) else args[1] if args[3] else args[1] * 4
        elif m in KEEPS_PREVIOUS:
            pass
        elif m in SAME_AS_INPUT:
            c2 = single
        else:
            c2 = None  # a layer parse_model may treat specially: unknown here
        ch.append(c2)
    return ch
