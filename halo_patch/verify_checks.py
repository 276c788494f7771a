"""The checks of `halo-patch verify`, run inside the interpreter that owns the patched target.

Standalone on purpose: verify copies this file and verify_support.py into its temp dir and runs
it as a script with the Python of the target's environment, which need not have halo-patch
installed. It imports only the standard library, torch, numpy, PIL, ultralytics (and onnxruntime
when asked), and stays valid Python 3.8 like the oldest Ultralytics it meets.

Protocol. argv[1] is a JSON object:
    {"package_dir": ..., "scales": ["n"], "imgsz": 640, "device": "cpu", "train": false,
     "export": null | "onnx", "workdir": ..., "datadir": ..., "steps": ["import", "build:n", ...]}
The file descriptor that was stdout carries only protocol lines, one JSON object each:
    {"event": "begin", "step": "build:n"}
    {"event": "end", "step": "build:n", "result": "passed" | "failed" | "skipped",
     "seconds": 1.23, "detail": "one line", "data": {...}, "error": "traceback" | null}
    {"event": "done"}
Everything the libraries print is sent to stderr (fd 1 is pointed there before any import).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

from verify_support import (  # copied beside this script by verify
    CheckFailed,
    HALO_INDEX,
    ShapeHook,
    Skipped,
    describe_copy,
    eval_sizes,
    first_line,
    first_output,
    halo_layer,
    inside,
    save_checkpoint,
    wh,
)

# Channels into layer 9 (the output of backbone row 8, C3k2 1024 scaled by width and max_channels).
EXPECTED_CHANNELS = {"n": 256, "s": 512, "m": 512, "l": 512, "x": 768}
TRAIN_IMAGES, VAL_IMAGES, BATCH, EPOCHS = 8, 4, 4, 2
FLOPS_IMGSZ = 640  # GFLOPs are reported at 640, the size Ultralytics' own tables use
CLASSES = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 80, 220)}


# step kind -> the step kind (same scale) that must have passed first
NEEDS = {
    "build": "import",
    "forward": "build",
    "train-step": "build",
    "train": "build",
    "predict": "train",
    "checkpoint": "train",
    "export": "build",
    "onnxruntime": "export",
}


# ---------------------------------------------------------------- steps


class Checks:
    """The steps, sharing the models they build; `run(step_id)` is called in plan order."""

    def __init__(self, config):
        self.config = config
        self.package_dir = Path(config["package_dir"]).resolve()
        self.imgsz = int(config["imgsz"])
        self.image_size = (self.imgsz, max(32, self.imgsz * 3 // 4))  # (w, h) of the generated images: 4:3
        self.workdir = Path(config["workdir"])
        self.datadir = Path(config["datadir"])
        self.device = None  # torch.device, set by the import step
        self.models = {}  # scale -> YOLO built from yolo11{scale}-HaloAttention.yaml
        self.trained = {}  # scale -> Path of the trained checkpoint
        self.exported = {}  # scale -> (Path of the .onnx, Path of the .pt it came from)
        self.data_yaml = None  # Path, made by the first train step

    # ------------------------------------------------ import: the right copy of ultralytics

    def step_import(self):
        exe = sys.executable
        spec = importlib.util.find_spec("ultralytics")  # locate without running a wrong copy's __init__
        if spec is None or not spec.origin:
            raise CheckFailed(f"{exe} cannot import ultralytics; the target is {self.package_dir}")
        found = Path(spec.origin).resolve().parent
        if found != self.package_dir:
            raise CheckFailed(
                f"{exe} imports ultralytics from {found} ({describe_copy(found)}), not from the patched target "
                f"{self.package_dir}: training, DDP workers and exports started with this Python use that copy "
                f"(KeyError: 'HaloAttention' where it is not patched); patch that copy "
                f"(halo-patch apply --target {found}) or remove it from this environment",
                {"imported": str(found), "python": exe},
            )
        import torch

        import ultralytics
        from ultralytics.nn import tasks
        from ultralytics.utils.checks import check_yaml
        from ultralytics.utils.torch_utils import select_device

        self._keep_settings_here()
        for what, path in (("ultralytics", ultralytics.__file__), ("ultralytics.nn.tasks", tasks.__file__)):
            if not inside(path, self.package_dir):
                raise CheckFailed(f"{what} was imported from {path}, outside the target {self.package_dir}")
        cls = getattr(tasks, "HaloAttention", None)
        if cls is None:
            raise CheckFailed(f"{tasks.__file__} does not bind HaloAttention; run halo-patch apply")
        module_file = sys.modules[cls.__module__].__file__
        if not inside(module_file, self.package_dir):
            raise CheckFailed(f"HaloAttention was imported from {module_file}, outside the target {self.package_dir}")
        yaml_file = check_yaml("yolo11-HaloAttention.yaml")
        if not inside(yaml_file, self.package_dir):
            raise CheckFailed(f"yolo11-HaloAttention.yaml resolves to {yaml_file}, outside the target {self.package_dir}")
        try:
            self.device = select_device(self.config["device"], verbose=False)
        except Exception as exc:  # Ultralytics raises ValueError/AssertionError for devices it cannot use
            raise CheckFailed(f"device {self.config['device']!r} is not usable here: {first_line(exc)}") from None
        device_name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else self.device.type
        python = ".".join(map(str, sys.version_info[:3]))
        data = {
            "python": exe,
            "python_version": python,
            "torch": torch.__version__,
            "ultralytics": ultralytics.__version__,
            "ultralytics_file": ultralytics.__file__,
            "halo_attention_file": module_file,
            "model_yaml": str(yaml_file),
            "device": str(self.device),
            "device_name": device_name,
        }
        detail = f"ultralytics {ultralytics.__version__} from the target; python {python}, torch {torch.__version__}, {device_name}"
        return detail, data

    def _keep_settings_here(self):
        """Point Ultralytics' settings (already in our YOLO_CONFIG_DIR) at the temp dir as well."""
        from ultralytics.utils import SETTINGS

        wanted = {"datasets_dir": self.datadir, "weights_dir": self.workdir / "weights", "runs_dir": self.workdir / "runs"}
        SETTINGS.update({k: str(v) for k, v in wanted.items() if k in SETTINGS})

    # ------------------------------------------------ build: layer 9, channels, params, GFLOPs

    def step_build(self, scale):
        import torch
        from ultralytics import YOLO
        from ultralytics.utils.torch_utils import get_flops

        halo = YOLO(f"yolo11{scale}-HaloAttention.yaml", task="detect")
        plain = YOLO(f"yolo11{scale}.yaml", task="detect")
        net, ref = halo.model, plain.model
        layer = halo_layer(net)
        if len(net.model) != len(ref.model) + 1:
            raise CheckFailed(f"{len(net.model)} layers; expected {len(ref.model) + 1} (yolo11{scale} has {len(ref.model)})")
        hook = ShapeHook(layer)
        with torch.no_grad():  # 256 px: the stride probe the build itself has just run
            net.eval()(torch.zeros(1, 3, 256, 256))
        hook.remove()
        c_in, c_out = hook.calls[0][0][1], hook.calls[0][1][1]
        expected = EXPECTED_CHANNELS[scale]
        if c_in != expected or c_out != expected:
            raise CheckFailed(f"HaloAttention maps {c_in} -> {c_out} channels; expected {expected} -> {expected}")
        params = sum(p.numel() for p in net.parameters())
        plain_params = sum(p.numel() for p in ref.parameters())
        layer_params = sum(p.numel() for p in layer.parameters())
        gflops, plain_gflops = get_flops(net, FLOPS_IMGSZ), get_flops(ref, FLOPS_IMGSZ)
        data = {
            "layer": HALO_INDEX,
            "channels": c_in,
            "params": params,
            "halo_params": layer_params,
            "plain_params": plain_params,
            "gflops": round(gflops, 3),
            "plain_gflops": round(plain_gflops, 3),
            "gflops_imgsz": FLOPS_IMGSZ,
        }
        have_thop = importlib.util.find_spec("thop") is not None  # without it Ultralytics reports 0 GFLOPs
        if have_thop and gflops == 0:  # get_flops swallows every exception and returns 0
            raise CheckFailed("GFLOPs profiled as 0: the model fails on Ultralytics' 32 px profiling image", data)
        flops = f"{gflops:.2f} GFLOPs (yolo11{scale} {plain_gflops:.2f})" if have_thop else "GFLOPs not measured: thop not installed"
        self.models[scale] = halo
        detail = (
            f"layer {HALO_INDEX} HaloAttention {c_in} ch; {params / 1e6:.2f}M params (yolo11{scale} "
            f"{plain_params / 1e6:.2f}M), {flops} at {FLOPS_IMGSZ}"
        )
        return detail, data

    # ------------------------------------------------ forward: eval at five sizes

    def step_forward(self, scale):
        import torch

        net = self.models[scale].model.to(self.device).eval()
        layer = halo_layer(net)
        nc = net.model[-1].nc
        strides = [int(s) for s in net.stride]
        results = []
        for h, w in eval_sizes(self.imgsz):
            hook = ShapeHook(layer)
            try:
                with torch.no_grad():
                    y = first_output(net(torch.rand(1, 3, h, w, device=self.device)))
            except Exception as exc:
                raise CheckFailed(f"{w}x{h}: {first_line(exc)}") from exc
            finally:
                hook.remove()
            anchors = sum(math.ceil(h / s) * math.ceil(w / s) for s in strides)
            expected = (1, 4 + nc, anchors)
            halo_in, halo_out = hook.calls[0]
            results.append({"size": f"{w}x{h}", "output": list(y.shape), "p5": wh(halo_in)})
            if tuple(y.shape) != expected:
                raise CheckFailed(f"{w}x{h}: output {tuple(y.shape)}, expected {expected}", {"sizes": results})
            if halo_out != halo_in:
                raise CheckFailed(f"{w}x{h}: HaloAttention maps {halo_in} to {halo_out}; expected the same shape", {"sizes": results})
            if not bool(torch.isfinite(y).all()):
                raise CheckFailed(f"{w}x{h}: non-finite values in the output", {"sizes": results})
        detail = ", ".join(r["size"] for r in results) + " (WxH): outputs as expected; HaloAttention at P5 " + ", ".join(
            r["p5"] for r in results
        )
        return detail, {"sizes": results}

    # ------------------------------------------------ train step: loss, backward, gradients

    def step_train_step(self, scale):
        import torch
        from ultralytics.cfg import get_cfg
        from ultralytics.utils import DEFAULT_CFG

        net = self.models[scale].model.to(self.device)
        layer = halo_layer(net)
        net.args = get_cfg(DEFAULT_CFG)  # what the trainer sets: the loss reads its box/cls/dfl gains
        net.train()
        for p in net.parameters():
            p.requires_grad_(True)
        net.zero_grad(set_to_none=True)
        g = torch.Generator().manual_seed(0)
        bs = 2
        batch = {
            "img": torch.rand(bs, 3, self.imgsz, self.imgsz, generator=g).to(self.device),
            # two boxes per image, normalised xywh, classes 0 and 1
            "cls": torch.tensor([[0.0], [1.0], [0.0], [1.0]], device=self.device),
            "bboxes": torch.tensor(
                [[0.3, 0.3, 0.2, 0.3], [0.7, 0.6, 0.3, 0.2], [0.5, 0.5, 0.4, 0.4], [0.2, 0.8, 0.1, 0.15]], device=self.device
            ),
            "batch_idx": torch.tensor([0.0, 0.0, 1.0, 1.0], device=self.device),
        }
        loss = net.loss(batch)[0]
        loss = loss.sum() if isinstance(loss, torch.Tensor) else sum(loss)
        if not bool(torch.isfinite(loss)):
            raise CheckFailed(f"loss is {loss.item()}")
        loss.backward()
        params = list(layer.named_parameters())
        if not params:
            raise CheckFailed("HaloAttention has no parameters to train")
        zero = [n for n, p in params if p.grad is None or not bool(p.grad.abs().sum() > 0)]
        bad = [n for n, p in params if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
        data = {"loss": float(loss.item()), "params": [n for n, _ in params], "zero_grad": zero, "nonfinite_grad": bad}
        net.zero_grad(set_to_none=True)
        net.eval()
        if bad:
            raise CheckFailed(f"non-finite gradients on HaloAttention's {', '.join(bad)}", data)
        if zero:
            raise CheckFailed(
                f"zero gradient on HaloAttention's {', '.join(zero)} (of {len(params)} tensors): that part never learns", data
            )
        return f"loss {loss.item():.3f}; non-zero gradients on all {len(params)} HaloAttention tensors at {self.imgsz}x{self.imgsz}", data

    # ------------------------------------------------ train: a real model.train() with validation

    def _make_dataset(self):
        """Non-square images (imgsz x 3/4 imgsz) with solid rectangles in class colours, YOLO labels."""
        import random

        from PIL import Image, ImageDraw

        width, height = self.image_size
        rng = random.Random(0)
        names = list(CLASSES)
        for split, count in (("train", TRAIN_IMAGES), ("val", VAL_IMAGES)):
            images, labels = self.datadir / "images" / split, self.datadir / "labels" / split
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
        data_yaml = self.datadir / "data.yaml"
        lines = [f"path: {json.dumps(str(self.datadir))}", "train: images/train", "val: images/val", "names:"]
        lines += [f"  {i}: {n}" for i, n in enumerate(names)]
        data_yaml.write_text("\n".join(lines) + "\n")
        return data_yaml

    def step_train(self, scale):
        from ultralytics import YOLO

        if self.data_yaml is None:
            self.data_yaml = self._make_dataset()
        model = YOLO(f"yolo11{scale}-HaloAttention.yaml", task="detect")
        model.train(
            data=str(self.data_yaml),
            epochs=EPOCHS,
            imgsz=self.imgsz,
            batch=BATCH,
            workers=0,
            device=self.config["device"],
            plots=False,
            project=str(self.workdir / "runs"),
            name=f"train_{scale}",
            exist_ok=True,
            pretrained=False,
            val=True,
            seed=0,
            verbose=False,
        )
        trainer = model.trainer
        best, last = Path(trainer.best), Path(trainer.last)
        ckpt = best if best.is_file() else last
        if not ckpt.is_file():
            raise CheckFailed(f"training wrote no checkpoint ({best}, {last})")
        if not inside(ckpt, self.workdir):
            raise CheckFailed(f"the checkpoint went to {ckpt}, outside verify's temp dir")
        metrics = {k: float(v) for k, v in (getattr(trainer, "metrics", None) or {}).items()}
        val_keys = [k for k in metrics if k.startswith("metrics/") or k.startswith("val/")]
        if not val_keys:
            raise CheckFailed("training finished without validation metrics")
        bad = [k for k in val_keys if not math.isfinite(metrics[k])]
        if bad:
            raise CheckFailed(f"non-finite validation results: {', '.join(bad)}", {"metrics": metrics})
        halo_layer(model.model)  # Model.train reloads the saved checkpoint into model.model
        self.trained[scale] = ckpt
        epochs = int(getattr(trainer, "epoch", EPOCHS - 1)) + 1
        map50 = metrics.get("metrics/mAP50(B)", float("nan"))
        n_val = len(list((self.datadir / "images" / "val").glob("*.png")))
        size = "{}x{}".format(*self.image_size)
        detail = f"{epochs} epochs on {TRAIN_IMAGES} {size} images, validated on {n_val} (mAP50 {map50:.3f}); {ckpt.name} saved"
        return detail, {"epochs": epochs, "metrics": metrics, "checkpoint": str(ckpt)}

    # ------------------------------------------------ predict: one non-square image

    def step_predict(self, scale):
        from ultralytics import YOLO

        model = YOLO(str(self.trained[scale]))
        image = sorted((self.datadir / "images" / "val").glob("*.png"))[0]
        halo_layer(model.model)
        hook = ShapeHook()
        try:
            results = model.predict(source=str(image), imgsz=self.imgsz, device=self.config["device"], save=False, verbose=False)
        finally:
            hook.remove()
        if len(results) != 1:
            raise CheckFailed(f"predict returned {len(results)} results for one image")
        r = results[0]
        from PIL import Image

        with Image.open(image) as im:
            w, h = im.size
        if tuple(r.orig_shape) != (h, w) or r.boxes is None:
            raise CheckFailed(f"predict result for a {w}x{h} image has orig_shape {r.orig_shape} and boxes {r.boxes}")
        p5 = wh(hook.calls[0][0]) if hook.calls else "?"
        data = {"image": f"{w}x{h}", "boxes": len(r.boxes), "p5": p5}
        return f"{len(r.boxes)} boxes on a {w}x{h} image (HaloAttention at P5 {p5})", data

    # ------------------------------------------------ checkpoint: save -> load gives identical outputs

    def step_checkpoint(self, scale):
        import torch
        from ultralytics import YOLO

        first = YOLO(str(self.trained[scale]))
        cls = type(halo_layer(first.model))
        again = save_checkpoint(first, self.workdir / "roundtrip" / f"halo_{scale}.pt")
        second = YOLO(str(again))
        halo_layer(second.model)
        x = torch.rand(1, 3, self.imgsz, self.imgsz, generator=torch.Generator().manual_seed(1)).to(self.device)
        outs = []
        for model in (first, second):
            net = model.model.to(self.device).float().eval()
            with torch.no_grad():
                outs.append(first_output(net(x)))
        diff = float((outs[0] - outs[1]).abs().max()) if outs[0].shape == outs[1].shape else float("inf")
        data = {"checkpoint": str(self.trained[scale]), "class": f"{cls.__module__}.{cls.__name__}", "max_abs_diff": diff}
        if diff != 0.0:
            raise CheckFailed(f"outputs after save -> load differ (max |diff| {diff:g})", data)
        return f"{self.trained[scale].name} -> {again.name} -> load: identical outputs; pickled as {cls.__module__}", data

    # ------------------------------------------------ export: ONNX, then onnxruntime

    def step_export(self, scale):
        from ultralytics import YOLO

        fmt = self.config["export"]
        if fmt == "onnx" and importlib.util.find_spec("onnx") is None:
            raise CheckFailed(f"onnx is not installed in {sys.executable}; pip install onnx")
        source = self.trained.get(scale)
        if source is None:  # no --train: export the freshly built model, saved into the temp dir first
            source = save_checkpoint(self.models[scale], self.workdir / "export" / f"halo_{scale}.pt")
        simplify = importlib.util.find_spec("onnxslim") is not None and importlib.util.find_spec("onnxruntime") is not None
        out = YOLO(str(source)).export(format=fmt, imgsz=self.imgsz, device=self.config["device"], simplify=simplify)
        out = Path(out) if out else None
        if out is None or not out.exists():
            raise CheckFailed(f"export returned {out}, not a file")
        if not inside(out, self.workdir):
            raise CheckFailed(f"export wrote {out}, outside verify's temp dir")
        self.exported[scale] = (out, source)
        size = out.stat().st_size if out.is_file() else sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        note = "" if simplify else " (not simplified: onnxslim/onnxruntime not installed)"
        return f"{out.name}, {size / 1e6:.1f} MB at {self.imgsz}x{self.imgsz}{note}", {"file": out.name, "bytes": size}

    def step_onnxruntime(self, scale):
        try:
            import onnxruntime as ort
        except ImportError:
            raise Skipped("onnxruntime not installed") from None
        import numpy as np
        import torch
        from ultralytics import YOLO

        onnx_file, source = self.exported[scale]
        session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
        x = np.random.default_rng(2).random((1, 3, self.imgsz, self.imgsz), dtype=np.float32)
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        net = YOLO(str(source)).model.float().eval()
        with torch.no_grad():
            want = first_output(net(torch.from_numpy(x))).numpy()
        if got.shape != want.shape:
            raise CheckFailed(f"onnxruntime output {got.shape}, PyTorch {want.shape}")
        diff = float(np.abs(got - want).max())
        scale_ = max(1.0, float(np.abs(want).max()))
        data = {"output": list(got.shape), "max_abs_diff": diff, "ort": ort.__version__}
        if not diff <= 1e-3 * scale_:
            raise CheckFailed(f"onnxruntime and PyTorch outputs differ: max |diff| {diff:.3g} (values up to {scale_:.3g})", data)
        return f"onnxruntime {ort.__version__}: output {tuple(got.shape)} matches PyTorch (max |diff| {diff:.2g})", data

    # ------------------------------------------------ dispatch

    def run(self, step_id):
        kind, _, scale = step_id.partition(":")
        method = getattr(self, "step_" + kind.replace("-", "_"))
        return method(scale) if scale else method()


def main(argv):
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # whatever torch and Ultralytics print goes to stderr, never into the protocol
    config = json.loads(argv[1])
    checks = Checks(config)

    def emit(**event):
        proto.write(json.dumps(event) + "\n")

    passed = set()
    for step in config["steps"]:
        emit(event="begin", step=step)
        start = time.perf_counter()
        result, detail, data, error = "passed", "", {}, None
        kind, _, scale = step.partition(":")
        needed = NEEDS.get(kind)
        needed = None if needed is None else needed if needed == "import" else f"{needed}:{scale}"
        try:
            if needed is not None and needed not in passed:
                data = {"needs": needed}
                raise Skipped("needs " + needed)
            detail, data = checks.run(step)
        except CheckFailed as exc:
            result, detail, data = "failed", str(exc), exc.data
            cause = exc.__cause__  # the error inside the checked code, when there was one
            error = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__)) if cause else None
        except Skipped as exc:
            result, detail, data = "skipped", str(exc), data
        except Exception as exc:  # an error inside the checked code is a failed check, shown with its traceback
            result, detail, error = "failed", first_line(exc), traceback.format_exc()
        seconds = round(time.perf_counter() - start, 3)
        if result == "passed":
            passed.add(step)
        emit(event="end", step=step, result=result, seconds=seconds, detail=detail, data=data, error=error)
        sys.stderr.flush()
    emit(event="done")
    proto.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
