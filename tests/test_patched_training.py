"""A YOLO user's real run on the patched copy: 1 epoch at 640 on 640x480 images, then predict.

Validation batches of 640x480 images are rectangular (672x512, P5 21x16): the widely copied module asserts
divisibility by the block and crashes exactly there; the shipped module must not.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from warm_python import WarmPython

SCRIPT = r"""
import json, sys
from pathlib import Path
import numpy as np
from PIL import Image
from ultralytics import YOLO

root = Path(sys.argv[1])
rng = np.random.default_rng(0)
for split, count in (("train", 2), ("val", 2)):  # one batch each
    (root / "images" / split).mkdir(parents=True)
    (root / "labels" / split).mkdir(parents=True)
    for k in range(count):
        img = np.full((480, 640, 3), 114, np.uint8)  # H=480, W=640
        labels = []
        for _ in range(2):
            w, h = rng.integers(80, 200, 2)
            x, y = rng.integers(0, 640 - w), rng.integers(0, 480 - h)
            img[y:y + h, x:x + w] = (200, 40, 40)
            labels.append(f"0 {(x + w / 2) / 640:.6f} {(y + h / 2) / 480:.6f} {w / 640:.6f} {h / 480:.6f}")
        Image.fromarray(img).save(root / "images" / split / f"{k}.jpg")
        (root / "labels" / split / f"{k}.txt").write_text("\n".join(labels) + "\n")
(root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: box\n")

seen = {}
def on_val_end(validator):
    ds = validator.dataloader.dataset
    seen["rect"] = bool(ds.rect)
    seen["shapes"] = sorted({tuple(int(v) for v in s) for s in ds.batch_shapes})

model = YOLO("yolo11n-HaloAttention.yaml")
model.add_callback("on_val_end", on_val_end)
model.train(data=str(root / "data.yaml"), epochs=1, imgsz=640, batch=2, workers=0, device="cpu",
            plots=False, project=str(root / "runs"), name="train", exist_ok=True, amp=False, verbose=False)
pred = model.predict(str(root / "images" / "val" / "0.jpg"), imgsz=640, device="cpu", verbose=False)
print(json.dumps({"val": seen, "layer9": type(model.model.model[9]).__name__,
                  "pred_orig_shape": list(pred[0].orig_shape), "best": (root / "runs/train/weights/best.pt").is_file()}))
"""


def test_one_epoch_at_640_on_640x480_images_then_predict(patched_installed: Path, tmp_path: Path, warm_python: WarmPython) -> None:
    env = {**os.environ, "PYTHONPATH": str(patched_installed.parent), "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp_path)}
    env.pop("PYTEST_CURRENT_TEST", None)
    data = tmp_path / "data"
    result = warm_python.run(SCRIPT, cwd=tmp_path, env=env, argv=(str(data),), timeout=1200)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # Ultralytics pads rectangular val batches by half a stride: 640x480 -> 672x512, so P5 is 21x16,
    # and 21 is not a multiple of the block size 2.
    assert report["val"] == {"rect": True, "shapes": [[512, 672]]}
    assert report["layer9"] == "HaloAttention"
    assert report["pred_orig_shape"] == [480, 640]
    assert report["best"] is True
