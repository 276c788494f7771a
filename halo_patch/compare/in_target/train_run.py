"""Job `train`: one Ultralytics training run (or its resume), then the final validation of best.pt.

Fresh: YOLO(model) [.load(weights)] .train(**train_args, project=..., name=...). Interrupted (a last.pt with
epochs left): YOLO(last.pt).train(resume=True), Ultralytics' own resume. Finished (last.pt stripped by the
trainer): nothing trained again. A last.pt that cannot be read starts the run again from scratch.
"""

import shutil
from pathlib import Path

from .main import JobFailed


def run(config):
    from ultralytics import YOLO

    run_dir = Path(config["project"]) / config["name"]
    last = run_dir / "weights" / "last.pt"
    state = checkpoint_state(last)
    mode = "fresh"
    if state == "finished":
        mode = "finished"
    elif state == "partial":
        mode = "resumed"
        device = config["train_args"].get("device")
        YOLO(str(last)).train(resume=True, **({"device": device} if device is not None else {}))
    else:
        if run_dir.exists():  # killed before its first epoch ended: nothing to keep
            shutil.rmtree(run_dir)
        yolo = YOLO(config["model"])
        start = {}
        if config.get("weights"):  # Ultralytics' own transfer (by name and shape), recorded as `pretrained` in args.yaml
            yolo.load(config["weights"])
            start["pretrained"] = config["weights"]
        yolo.train(project=config["project"], name=config["name"], exist_ok=True, **start, **config["train_args"])
    best = run_dir / "weights" / "best.pt"
    if not best.is_file():
        best = last
    if not best.is_file():
        raise JobFailed("training wrote no checkpoint in {}".format(run_dir / "weights"))
    from .evaluate import evaluate

    result = evaluate(config, best)
    result.update(mode=mode, checkpoint=str(best))
    return result


def checkpoint_state(last):
    """"missing", "finished" (stripped at the end of training: epoch -1) or "partial" (epochs left)."""
    if not last.is_file():
        return "missing"
    import torch

    try:
        try:
            ckpt = torch.load(str(last), map_location="cpu", weights_only=False)
        except TypeError:  # torch < 1.13 has no weights_only
            ckpt = torch.load(str(last), map_location="cpu")
    except Exception:  # a checkpoint cut short by the kill: start again
        return "missing"
    return "finished" if int(ckpt.get("epoch", -1)) == -1 else "partial"
