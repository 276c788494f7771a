"""State shared by the steps, their errors, and small helpers (standard library; torch lazily)."""

from __future__ import annotations

import math
from pathlib import Path


MODULE = {"class_name": "", "channels": "same"}  # the module verify checks: set from the config by main()


def channels_rule():
    """same | out | none: the module's channel rule (only `same` keeps the shape)."""
    return MODULE["channels"]


def class_name():
    """The class of the layers apply inserted (the module spec's, sent in the config)."""
    return MODULE["class_name"]


class CheckFailed(Exception):
    """A check that ran and found something wrong; the message is the one-line reason."""

    def __init__(self, message, data=None):
        super().__init__(message)
        self.data = data or {}


class Skipped(Exception):
    """A step that cannot run here (an optional package is missing); not a failure."""


class Model:
    """One model verify builds: a HaloAttention yaml apply wrote, at one scale (from the config)."""

    def __init__(self, spec):
        self.key = spec["key"]  # the step id suffix: "n", or "yolo11n-seg"
        self.name = spec["name"]  # what YOLO() is given: "yolo11n-seg-HaloAttention.yaml"
        self.yaml_file = spec["yaml_file"]  # the file's own name: "yolo11-seg-HaloAttention.yaml"
        self.yaml_path = Path(spec["yaml_path"]).resolve()
        self.plain = spec["plain"]  # the base model to compare with: "yolo11n-seg.yaml", or None
        self.task = spec["task"]  # as guessed from the yaml head: detect, segment, pose, obb, classify

    @property
    def plain_label(self):
        return self.plain[: -len(".yaml")] if self.plain else None


class Context:
    """What the steps share: the config, the device, and what earlier steps built or wrote."""

    def __init__(self, config):
        self.config = config
        MODULE.update(config["module"])  # {"class_name", "channels"}: what the inserted layers are
        self.package_dir = Path(config["package_dir"]).resolve()
        self.imgsz = int(config["imgsz"])
        self.image_size = (self.imgsz, max(32, self.imgsz * 3 // 4))  # (w, h) of the generated images: 4:3
        self.workdir = Path(config["workdir"])
        self.datadir = Path(config["datadir"])
        self.models = dict((m.key, m) for m in (Model(s) for s in config["models"]))
        self.device = None  # torch.device, set by the import step
        self.built = {}  # key -> YOLO built from the model's yaml
        self.trained = {}  # key -> Path of the trained checkpoint
        self.exported = {}  # key -> (Path of the .onnx, Path of the .pt it came from)
        self.data_yaml = None  # Path, made by the first train step

    def main_size(self, task):
        return main_size(task, self.imgsz)


def main_size(task, imgsz):
    """The square side a task is checked at: --imgsz; classification at most 224, its usual size."""
    return min(imgsz, 224) if task == "classify" else imgsz


def inside(path, root):
    """True when `path` (a file or dir) lies under the directory `root`, both resolved."""
    path, root = Path(path).resolve(), Path(root).resolve()
    return path == root or root in path.parents


def describe_copy(package_dir):
    """What kind of copy of ultralytics lives at `package_dir`, for the message that names it."""
    root = package_dir.parent
    if any(root.glob("ultralytics-*.dist-info")) or any(root.glob("ultralytics-*.egg-info")):
        return "a pip-installed copy"
    if (root / ".git").exists() or (root / "pyproject.toml").is_file() or (root / "setup.py").is_file():
        return "a clone or editable install"
    return "another copy"


def halo_layers(net, name):
    """[(index, module)] of every HaloAttention in a built model; CheckFailed when there is none."""
    found = [(i, m) for i, m in enumerate(net.model) if type(m).__name__ == class_name()]
    if not found:
        raise CheckFailed(
            f"{name} builds without a {class_name()} layer ({len(net.model)} layers); "
            "expected the row(s) apply inserted: rewrite the yaml with halo-patch apply"
        )
    return found


def layer_names(layers):
    """`layer 9` or `layers 7, 10`."""
    indices = [str(i) for i, _ in layers]
    return ("layer " if len(indices) == 1 else "layers ") + ", ".join(indices)


def tensors(output):
    """The tensors of a model output in order, looking into (nested) tuples and lists, not dicts."""
    import torch

    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (list, tuple)):
        return [t for part in output for t in tensors(part)]
    return []


def sizes(task, imgsz):
    """(h, w) pairs a task is run at.

    Detection heads: the main size, a 4:3 landscape, an odd P5 (imgsz + 32), the stride probe (256)
    and Ultralytics' FLOPs proxy (32). Classification: its main size, 4:3, and 32.
    """
    main = main_size(task, imgsz)
    rect = max(32, main * 3 // 4 // 32 * 32)
    if task == "classify":
        pairs = [(main, main), (rect, main), (32, 32)]
    else:
        pairs = [(main, main), (rect, main), (main + 32, main + 32), (256, 256), (32, 32)]
    return [s for i, s in enumerate(pairs) if s not in pairs[:i]]


def level(image_hw, feature_hw):
    """The pyramid level (P5 = stride 32) of a feature map of an image."""
    stride = max(image_hw[0] / feature_hw[0], image_hw[1] / feature_hw[1])
    return int(round(math.log2(stride)))


class ShapeHook:
    """Records the input and output shapes of a module's forward calls."""

    def __init__(self, module=None):
        """Hook `module`, or every HaloAttention in the process (predict wraps and fuses a copy)."""
        self.calls = []  # (input shape, output shape) per forward
        if module is not None:
            self._handle = module.register_forward_hook(self._record)
        else:
            from torch.nn.modules.module import register_module_forward_hook

            self._handle = register_module_forward_hook(self._record_halo)

    def _record(self, module, inputs, output):
        self.calls.append((tuple(inputs[0].shape), tuple(output.shape)))

    def _record_halo(self, module, inputs, output):
        if type(module).__name__ == class_name():
            self._record(module, inputs, output)

    def remove(self):
        self._handle.remove()


def first_output(y):
    """The predictions of a head in eval: `(y, raw)` in training code, `y` in export."""
    return y[0] if isinstance(y, (list, tuple)) else y


def first_line(exc):
    """`Type: first line of the message` of an exception."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def wh(shape):
    """`WxH` of an NCHW shape."""
    return f"{shape[-1]}x{shape[-2]}"


def save_checkpoint(yolo, path):
    """Save a YOLO model as a checkpoint file, the way `Model.save` does (it exists since 8.1)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    yolo.save(str(path))
    if not path.is_file():
        raise CheckFailed(f"Model.save did not write {path}")
    return path
