"""Helpers of verify's checks script (verify_checks.py): errors, shape hooks, small formatters.

Copied beside verify_checks.py into verify's temp dir and imported from there, so like it this file
imports only the standard library (torch lazily) and stays valid Python 3.8.
"""

from __future__ import annotations

from pathlib import Path

HALO_INDEX = 9  # the row apply inserts: after backbone row 8


class CheckFailed(Exception):
    """A check that ran and found something wrong; the message is the one-line reason."""

    def __init__(self, message, data=None):
        super().__init__(message)
        self.data = data or {}


class Skipped(Exception):
    """A step that cannot run here (an optional package is missing); not a failure."""


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


def halo_layer(net):
    layer = net.model[HALO_INDEX] if len(net.model) > HALO_INDEX else None
    if layer is None or type(layer).__name__ != "HaloAttention":
        found = [i for i, m in enumerate(net.model) if type(m).__name__ == "HaloAttention"]
        where = f"found at {found}" if found else "not in the model"
        raise CheckFailed(f"layer {HALO_INDEX} is {type(layer).__name__}, not HaloAttention ({where})")
    return layer


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
        if type(module).__name__ == "HaloAttention":
            self._record(module, inputs, output)

    def remove(self):
        self._handle.remove()


def first_output(y):
    """The decoded predictions of a Detect head in eval: `(y, raw)` in training code, `y` in export."""
    return y[0] if isinstance(y, (list, tuple)) else y


def first_line(exc):
    """`Type: first line of the message` of an exception."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def wh(shape):
    """`WxH` of an NCHW shape."""
    return f"{shape[-1]}x{shape[-2]}"


def eval_sizes(imgsz):
    """(h, w) pairs: the main size, a 4:3 landscape, an odd P5 (imgsz + 32), the stride probe, the FLOPs proxy."""
    rect = max(32, imgsz * 3 // 4 // 32 * 32)
    sizes = [(imgsz, imgsz), (rect, imgsz), (imgsz + 32, imgsz + 32), (256, 256), (32, 32)]
    return [s for i, s in enumerate(sizes) if s not in sizes[:i]]


def save_checkpoint(yolo, path):
    """Save a YOLO model as a checkpoint file, the way `Model.save` does (it exists since 8.1)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    yolo.save(str(path))
    if not path.is_file():
        raise CheckFailed(f"Model.save did not write {path}")
    return path
