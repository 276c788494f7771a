"""What verify runs: its validated options and the steps, in order, with their results."""

from __future__ import annotations

from halo_patch.modules import DEFAULT, ModuleSpec

from dataclasses import dataclass, field
from typing import Any, Optional

from halo_patch.errors import HaloPatchError
from halo_patch.verify.models import ModelSpec, parse_bases

SCALES = "nsmlx"
EXPORT_FORMATS = ("onnx",)
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass(frozen=True)
class Options:
    scales: tuple[str, ...]
    device: str
    imgsz: int
    train: bool
    export: Optional[str]
    bases: tuple[str, ...] = ()  # --base: only these bases' yamls; () = every yaml apply wrote
    module: ModuleSpec = DEFAULT  # --module: the module whose yamls are checked


@dataclass
class Step:
    """One line of the final table; filled in as the checks report."""

    id: str  # "kind" or "kind:model key" ("build:n", "build:yolo11n-seg"), as the checks know it
    label: str  # as users see it: "build n", "build yolo11n-seg"
    result: str = SKIPPED
    seconds: float = 0.0
    detail: str = "not run"
    data: dict[str, Any] = field(default_factory=dict)
    error: Optional[str] = None  # a traceback, or the end of the subprocess's log
    model: Optional[ModelSpec] = None  # the model a per-model step builds or runs


def parse_options(
    scale: str, device: str, imgsz: int, train: bool, export: Optional[str], base: Optional[str] = None
) -> Options:
    """Validated options; bad input is a HaloPatchError (exit 2) before anything runs."""
    scales: list[str] = []
    for letter in (s.strip().lower() for s in scale.split(",")):
        if len(letter) != 1 or letter not in SCALES:
            raise HaloPatchError(f"--scale {scale!r}: unknown scale {letter!r}; expected letters from n, s, m, l, x separated by commas")
        if letter not in scales:
            scales.append(letter)
    if imgsz < 32 or imgsz % 32:
        raise HaloPatchError(f"--imgsz {imgsz}: expected a positive multiple of 32 (the model's largest stride)")
    fmt = export.strip().lower() if export is not None else None
    if fmt is not None and fmt not in EXPORT_FORMATS:
        raise HaloPatchError(f"--export {export!r}: unsupported format; expected one of: {', '.join(EXPORT_FORMATS)}")
    if not device.strip():
        raise HaloPatchError("--device '': expected cpu, cuda:0, 0, 0,1 or mps")
    return Options(tuple(scales), device.strip(), imgsz, train, fmt, parse_bases(base))


def plan_steps(options: Options, models: list[ModelSpec]) -> list[Step]:
    """Every step in the order it runs: status here, the rest in the subprocess, model by model.

    --train and --export run for detection models (the generated dataset has boxes only).
    """
    steps = [Step("status", "patch status"), Step("import", "ultralytics import")]
    for m in models:
        kinds = [("build", "build"), ("forward", "forward"), ("train-step", "train step")]
        if options.train and m.task == "detect":
            kinds += [("train", "train"), ("predict", "predict"), ("checkpoint", "checkpoint")]
        if options.export and m.task == "detect":
            kinds += [("export", f"export {options.export}"), ("onnxruntime", "onnxruntime")]
        steps += [Step(f"{kind}:{m.key}", f"{label} {m.key}", model=m) for kind, label in kinds]
    return steps
