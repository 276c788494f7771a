"""The final validation of best.pt with Ultralytics' own validator, keeping the per-image statistics.

Also what the report needs besides accuracy: parameters, GFLOPs (Ultralytics' get_flops), batch-1 latency.
"""

import time
from pathlib import Path

LATENCY_WARMUP, LATENCY_RUNS = 3, 20


def evaluate(config, best):
    from ultralytics import YOLO

    yolo = YOLO(str(best))
    sink = []
    validator = keeping_validator(yolo._smart_load("validator"), sink)
    args = config["train_args"]
    device = first_device(args.get("device"))
    # the trainer's own final validation uses the run's arguments (conf, iou, max_det ... from --set): so does this one
    val_args = {k: v for k, v in args.items() if k not in ("epochs", "patience", "seed", "device")}
    val_args.update(plots=False, verbose=False, project=config["val_project"], name=config["name"], exist_ok=True)
    if device is not None:
        val_args["device"] = device
    metrics = yolo.val(validator=validator, **val_args)
    values = {k: float(v) for k, v in metrics.results_dict.items() if k != "fitness"}
    names = getattr(metrics, "names", None) or yolo.names
    return {
        "metrics": values,
        "per_class": per_class(metrics, names),
        "images": sink[0] if sink else [],
        "speed_ms": {k: float(v) for k, v in (getattr(metrics, "speed", None) or {}).items()},
        "params": int(sum(p.numel() for p in yolo.model.parameters())),
        "gflops": flops(yolo.model, args["imgsz"]),
        "latency_ms": latency(yolo.model, args["imgsz"], device),
    }


# the results the task's headline metric is about (Ultralytics' TASK2METRIC: mAP50-95(M) for segment, (P) for pose):
# the attribute of the task's metrics object, and the key of its true-positive matrix in the validation stats
TASK_RESULTS = (("seg", "tp_m"), ("pose", "tp_p"), ("box", "tp"))


def per_class(metrics, names):
    """AP per class with validation instances (ap_class_index), of the mask / pose results where the task has
    them, else the box results; classes without instances are left out, not filled with the overall mAP."""
    part = next((getattr(metrics, a) for a, _ in TASK_RESULTS if getattr(metrics, a, None) is not None), None)
    out = {}
    index = getattr(part, "ap_class_index", None)
    for i, c in enumerate(index if index is not None else []):
        out[str(names[int(c)])] = {"AP50-95": float(part.ap[i]), "AP50": float(part.ap50[i])}
    return out


def keeping_validator(base, sink):
    """A subclass of the task's validator that copies the per-image statistics before they are cleared."""

    class KeepStats(base):
        def get_stats(self, *a, **k):
            sink.append(per_image(self))
            return super().get_stats(*a, **k)

    return KeepStats


def per_image(validator):
    """[{"det": [[conf, cls, tp bit mask over the 10 IoU thresholds], ...], "gt": [cls, ...]}] in validation order;
    the masks / keypoints' matches (tp_m / tp_p) for segment and pose, so the bootstrap is about the headline metric."""
    stats = getattr(getattr(validator, "metrics", None), "stats", None)
    if not (isinstance(stats, dict) and "tp" in stats):
        stats = getattr(validator, "stats", None)  # older releases keep them on the validator
    if not (isinstance(stats, dict) and "tp" in stats):
        return []
    key = next(k for _, k in TASK_RESULTS if k in stats)  # mask / pose matches where the task has them
    images = []
    for tp, conf, pred_cls, target_cls in zip(stats[key], stats["conf"], stats["pred_cls"], stats["target_cls"]):
        tp, conf, pred_cls, target_cls = (to_list(x) for x in (tp, conf, pred_cls, target_cls))
        dets = [[float(c), int(k), sum(1 << j for j, hit in enumerate(row) if hit)] for c, k, row in zip(conf, pred_cls, tp)]
        images.append({"det": dets, "gt": [int(k) for k in target_cls]})
    return images


def to_list(x):
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return x.tolist() if hasattr(x, "tolist") else list(x)


def first_device(device):
    """The device validation and latency use: the first of a multi-GPU list."""
    if device is None:
        return None
    text = str(device).strip()
    return text.split(",")[0].strip() if "," in text else text


def flops(model, imgsz):
    try:
        from ultralytics.utils.torch_utils import get_flops

        return float(get_flops(model, imgsz))
    except Exception:  # Ultralytics itself reports 0.0 when thop cannot count
        return 0.0


def latency(model, imgsz, device):
    """Median milliseconds of one forward pass of a batch of one image at imgsz (fused, eval mode)."""
    import copy

    import torch
    from ultralytics.utils.torch_utils import select_device

    dev = select_device(device if device is not None else "", verbose=False)
    net = copy.deepcopy(model).float().to(dev).eval()
    if hasattr(net, "fuse"):
        net = net.fuse(verbose=False) if "verbose" in net.fuse.__code__.co_varnames else net.fuse()
    x = torch.zeros(1, 3, imgsz, imgsz, device=dev)
    times = []
    with torch.no_grad():
        for k in range(LATENCY_WARMUP + LATENCY_RUNS):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
            net(x)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            if k >= LATENCY_WARMUP:
                times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2]
