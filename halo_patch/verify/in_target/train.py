"""Step `train`: a real `model.train()` of 2 epochs with validation on a generated 4:3 dataset (detect)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from .common import CheckFailed, halo_layers, inside

TRAIN_IMAGES, VAL_IMAGES, BATCH, EPOCHS = 8, 4, 4, 2
CLASSES = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 80, 220)}


def run(ctx, model):
    from ultralytics import YOLO

    if ctx.data_yaml is None:
        ctx.data_yaml = make_dataset(ctx.datadir, ctx.image_size)
    yolo = YOLO(model.name)
    yolo.train(
        data=str(ctx.data_yaml),
        epochs=EPOCHS,
        imgsz=ctx.imgsz,
        batch=BATCH,
        workers=0,
        device=ctx.config["device"],
        plots=False,
        project=str(ctx.workdir / "runs"),
        name=f"train_{model.key}",
        exist_ok=True,
        pretrained=False,
        val=True,
        seed=0,
        verbose=False,
    )
    trainer = yolo.trainer
    best, last = Path(trainer.best), Path(trainer.last)
    ckpt = best if best.is_file() else last
    if not ckpt.is_file():
        raise CheckFailed(f"training wrote no checkpoint ({best}, {last})")
    if not inside(ckpt, ctx.workdir):
        raise CheckFailed(f"the checkpoint went to {ckpt}, outside verify's temp dir")
    metrics = {k: float(v) for k, v in (getattr(trainer, "metrics", None) or {}).items()}
    val_keys = [k for k in metrics if k.startswith("metrics/") or k.startswith("val/")]
    if not val_keys:
        raise CheckFailed("training finished without validation metrics")
    bad = [k for k in val_keys if not math.isfinite(metrics[k])]
    if bad:
        raise CheckFailed(f"non-finite validation results: {', '.join(bad)}", {"metrics": metrics})
    halo_layers(yolo.model, model.name)  # Model.train reloads the saved checkpoint into model.model
    ctx.trained[model.key] = ckpt
    epochs = int(getattr(trainer, "epoch", EPOCHS - 1)) + 1
    map50 = metrics.get("metrics/mAP50(B)", float("nan"))
    n_val = len(list((ctx.datadir / "images" / "val").glob("*.png")))
    size = "{}x{}".format(*ctx.image_size)
    detail = f"{epochs} epochs on {TRAIN_IMAGES} {size} images, validated on {n_val} (mAP50 {map50:.3f}); {ckpt.name} saved"
    return detail, {"epochs": epochs, "metrics": metrics, "checkpoint": str(ckpt)}


def make_dataset(datadir, image_size):
    """Non-square images (w x h) with solid rectangles in class colours, YOLO labels; the data yaml."""
    import random

    from PIL import Image, ImageDraw

    width, height = image_size
    rng = random.Random(0)
    names = list(CLASSES)
    for split, count in (("train", TRAIN_IMAGES), ("val", VAL_IMAGES)):
        images, labels = datadir / "images" / split, datadir / "labels" / split
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        for k in range(count):
            im = Image.new("RGB", (width, height), (128, 128, 128))
            draw = ImageDraw.Draw(im)
            rows = []
            for _ in range(rng.randint(1, 3)):
                c = rng.randrange(len(names))
                bw, bh = rng.uniform(0.15, 0.45) * width, rng.uniform(0.15, 0.45) * height
                x0, y0 = rng.uniform(0, width - bw), rng.uniform(0, height - bh)
                draw.rectangle([round(x0), round(y0), round(x0 + bw) - 1, round(y0 + bh) - 1], fill=CLASSES[names[c]])
                cx, cy = (round(x0) + round(x0 + bw)) / 2 / width, (round(y0) + round(y0 + bh)) / 2 / height
                w, h = (round(x0 + bw) - round(x0)) / width, (round(y0 + bh) - round(y0)) / height
                rows.append(f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
            im.save(images / f"{split}_{k}.png")
            (labels / f"{split}_{k}.txt").write_text("\n".join(rows) + "\n")
    data_yaml = datadir / "data.yaml"
    lines = [f"path: {json.dumps(str(datadir))}", "train: images/train", "val: images/val", "names:"]
    lines += [f"  {i}: {n}" for i, n in enumerate(names)]
    data_yaml.write_text("\n".join(lines) + "\n")
    return data_yaml
