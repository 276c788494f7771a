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
    state, done = checkpoint_state(last)
    mode = "fresh"
    if state == "finished":
        mode = "finished"
    elif state == "partial":
        mode = "resumed"
        trim_results(run_dir / "results.csv", done)
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
    """("missing" | "finished" (stripped at the end of training: epoch -1) | "partial" (epochs left), the
    number of epochs last.pt holds)."""
    if not last.is_file():
        return "missing", 0
    import torch

    try:
        try:
            ckpt = torch.load(str(last), map_location="cpu", weights_only=False)
        except TypeError:  # torch < 1.13 has no weights_only
            ckpt = torch.load(str(last), map_location="cpu")
    except Exception:  # a checkpoint cut short by the kill: start again
        return "missing", 0
    epoch = int(ckpt.get("epoch", -1))
    return ("finished", 0) if epoch == -1 else ("partial", epoch + 1)


def trim_results(path, epochs):
    """Keep the rows of results.csv that last.pt holds. The trainer writes a row before it saves last.pt,
    so a kill between the two leaves a row of an epoch the resume trains again (it would be counted twice)."""
    import csv

    if not path.is_file():
        return
    with open(str(path), newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and _epoch(r[0]) <= epochs]
    if len(kept) != len(rows):
        with open(str(path), "w", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerows(kept)


def _epoch(cell):
    try:
        return int(float(cell))
    except ValueError:
        return 0
