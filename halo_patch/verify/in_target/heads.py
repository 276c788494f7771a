"""What each task's head returns in eval, and the check of one output against it.

Detect, segment, pose and obb heads return predictions of shape (B, 4 + nc + extra, anchors)
(extra: mask coefficients, keypoints, angle), or (B, max_det, 6 + extra) for end-to-end heads;
segment adds mask prototypes at stride 4. Classify returns (B, nc) probabilities.
"""

from __future__ import annotations

import math

from .common import CheckFailed, tensors

TASKS = ("detect", "segment", "pose", "obb", "classify")

def channel_parts(net, task):
    """[(what, channels)] of a prediction row: box, class, then the task's own channels."""
    head = net.model[-1]
    if task == "classify":
        return [("class", int(head.linear.out_features))]
    parts = [("box", 4), ("class", int(head.nc))]
    if task == "segment":
        parts.append(("mask coefficient", int(head.nm)))
    elif task == "pose":
        k = tuple(int(v) for v in head.kpt_shape)
        parts.append((f"keypoint ({k[0]}x{k[1]})", k[0] * k[1]))
    elif task == "obb":
        parts.append(("angle", int(getattr(head, "ne", 1))))
    return parts


def describe_channels(parts):
    """`116 = 4 box + 80 class + 32 mask coefficient channels`."""
    return f"{sum(n for _, n in parts)} = " + " + ".join(f"{n} {what}" for what, n in parts) + " channels"


def anchor_count(net, h, w):
    return sum(math.ceil(h / s) * math.ceil(w / s) for s in (int(v) for v in net.stride))


def is_end_to_end(net):
    return bool(getattr(net.model[-1], "end2end", False))


def check_output(net, task, y, h, w):
    """Shapes of one eval output for an input of h x w; CheckFailed when they are not what the head promises."""
    import torch

    if task not in TASKS:
        raise CheckFailed(f"verify has no output check for {task} models; it checks {', '.join(TASKS)}")
    outs = tensors(y)
    if not outs:
        raise CheckFailed(f"{w}x{h}: the model returned no tensor ({type(y).__name__})")
    if not all(bool(torch.isfinite(t).all()) for t in outs):
        raise CheckFailed(f"{w}x{h}: non-finite values in the output")
    pred = outs[0]
    parts = channel_parts(net, task)
    if task == "classify":
        expected = (1, parts[0][1])
        if tuple(pred.shape) != expected:
            raise CheckFailed(f"{w}x{h}: output {tuple(pred.shape)}, expected {expected} class probabilities")
        total = float(pred.sum())
        if abs(total - 1.0) > 1e-3:
            raise CheckFailed(f"{w}x{h}: class probabilities sum to {total:.4f}, expected 1")
        return {"output": list(pred.shape)}
    anchors = anchor_count(net, h, w)
    extra = sum(n for _, n in parts[2:])
    if is_end_to_end(net):
        expected = (1, min(int(net.model[-1].max_det), anchors), 6 + extra)
        what = f"{expected[1]} detections of 6 (box, score, class) + {extra} channels"
    else:
        expected = (1, 4 + parts[1][1] + extra, anchors)
        what = f"{describe_channels(parts)} at {anchors} anchors"
    if tuple(pred.shape) != expected:
        raise CheckFailed(f"{w}x{h}: output {tuple(pred.shape)}, expected {expected}: {what}")
    result = {"output": list(pred.shape), "anchors": anchors}
    if task == "segment":
        result["proto"] = list(check_proto(net, outs[1:], h, w))
    return result


def check_proto(net, outs, h, w):
    """The mask prototypes: nm maps at stride 4 (twice the P3 map)."""
    nm = int(net.model[-1].nm)
    expected = (1, nm, 2 * math.ceil(h / 8), 2 * math.ceil(w / 8))
    protos = [tuple(t.shape) for t in outs if t.dim() == 4 and t.shape[1] == nm]
    if expected not in protos:
        found = ", ".join(str(p) for p in protos) or "none"
        raise CheckFailed(f"{w}x{h}: mask prototypes {found}, expected {expected}")
    return expected
