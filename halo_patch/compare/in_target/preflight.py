"""Job `preflight`: build each model, run one real training step through Ultralytics' own trainer, time it.

The step uses the trainer's own dataloaders on the user's data, so a bad dataset, a model that does not
build or a batch that does not fit fails here, before any run starts. The timings turn into the estimate.
"""

import inspect
import shutil
import time
from pathlib import Path

from .main import JobFailed


def run(config):
    out = {}
    for spec in config["models"]:
        out[spec["label"]] = smoke(config, spec)
    return {"models": out}


def smoke(config, spec):
    import torch
    from ultralytics import YOLO

    start = time.perf_counter()
    yolo = YOLO(spec["model"])
    layers = [i for i, m in enumerate(yolo.model.model) if type(m).__name__ == config["module"]]
    if spec["variant"] and not layers:
        raise JobFailed("{} builds without a {} layer: it is not a variant of the base".format(spec["model"], config["module"]))
    workdir = Path(config["workdir"]) / spec["label"]
    args = dict(config["train_args"])
    if "," in str(args.get("device", "")):  # multi-GPU: the smoke step runs on the first device, without DDP
        args["device"] = str(args["device"]).split(",")[0].strip()
    args.update(model=spec["model"], data=config["data"], epochs=1, project=str(workdir.parent), name=workdir.name,
                exist_ok=True, plots=False, val=False)
    trainer = yolo._smart_load("trainer")(overrides=args)
    weights = None
    if spec.get("weights"):
        yolo.load(spec["weights"])
        weights = yolo.model
    trainer.model = trainer.get_model(cfg=yolo.model.yaml, weights=weights)
    if "world_size" in inspect.signature(trainer._setup_train).parameters:
        trainer._setup_train(world_size=1)
    else:
        trainer._setup_train()
    build = time.perf_counter() - start
    model, loader = trainer.model, trainer.train_loader
    model.train()
    times = []
    batches = iter(loader)
    for _ in range(min(2, len(loader))):
        t0 = time.perf_counter()
        batch = trainer.preprocess_batch(next(batches))
        loss, _ = model(batch)
        loss = loss.sum()
        if not bool(torch.isfinite(loss)):
            raise JobFailed("{}: the loss of the first batch is {}".format(spec["model"], float(loss)))
        loss.backward()
        trainer.optimizer.step()
        trainer.optimizer.zero_grad()
        sync(trainer.device)
        times.append(time.perf_counter() - t0)
    val_loader = getattr(trainer, "test_loader", None)
    val_batches, val_step = 0, 0.0
    if val_loader is not None and len(val_loader):
        model.eval()
        with torch.no_grad():
            t0 = time.perf_counter()
            batch = trainer.preprocess_batch(next(iter(val_loader)))
            model(batch["img"])
            sync(trainer.device)
            val_step = time.perf_counter() - t0
        val_batches = len(val_loader)
    shutil.rmtree(workdir, ignore_errors=True)
    return {
        "layers": layers,
        "params": sum(p.numel() for p in model.parameters()),
        "train_batches": len(loader),
        "train_step_s": min(times),
        "val_batches": val_batches,
        "val_step_s": val_step,
        "build_s": build,
    }


def sync(device):
    import torch

    if getattr(device, "type", "") == "cuda":
        torch.cuda.synchronize(device)
