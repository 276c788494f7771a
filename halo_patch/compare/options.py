"""compare's validated options: bad input is one HaloPatchError (exit 2) before anything starts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from halo_patch.errors import HaloPatchError

# Train arguments compare sets itself (the same for every run) or per run: --set may not change them.
OWN_KEYS = {
    "data": "--data", "epochs": "--epochs", "imgsz": "--imgsz", "batch": "--batch", "seed": "--seeds",
    "device": "--device", "model": "--model/--variant", "pretrained": "--weights", "project": "--out",
    "name": "--out", "exist_ok": "--out", "resume": "a second call of the same command",
}
_KEY = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Options:
    data: Path
    model: Optional[str]  # None: the default base
    variants: tuple[str, ...]  # (): every variant apply wrote
    weights: Optional[Path]
    seeds: int
    epochs: int
    imgsz: int
    batch: int
    device: Optional[str]
    out: Optional[Path]  # None: runs/compare/<data stem>
    overrides: tuple[tuple[str, object], ...]  # --set, in order

    @property
    def out_dir(self) -> Path:
        return (self.out if self.out is not None else Path("runs") / "compare" / self.data.stem).resolve()


def parse_options(
    data: Path, model: Optional[str], variants: Optional[list[str]], weights: Optional[Path], seeds: int, epochs: int,
    imgsz: int, batch: int, device: Optional[str], out: Optional[Path], sets: Optional[list[str]],
) -> Options:
    if not data.is_file():
        raise HaloPatchError(f"--data {data}: no such file; expected the dataset's yaml (path:, train:, val:, names:)")
    if seeds < 1:
        raise HaloPatchError(f"--seeds {seeds}: expected a number of seeds of at least 1 (2 or more for an interval)")
    if epochs < 1:
        raise HaloPatchError(f"--epochs {epochs}: expected a number of epochs of at least 1")
    if imgsz < 32 or imgsz % 32:
        raise HaloPatchError(f"--imgsz {imgsz}: expected a positive multiple of 32 (the model's largest stride)")
    if batch < 1:
        raise HaloPatchError(f"--batch {batch}: expected an explicit batch size of at least 1 (auto batch would differ between models)")
    if weights is not None and not weights.is_file():
        raise HaloPatchError(f"--weights {weights}: no such file; expected an Ultralytics .pt checkpoint")
    if device is not None and not device.strip():
        raise HaloPatchError("--device '': expected cpu, 0, 0,1 or mps")
    if out is not None and out.exists() and not out.is_dir():
        raise HaloPatchError(f"--out {out}: a file, not a directory")
    for name in [model, *(variants or [])]:
        if name is not None and not name.strip():
            raise HaloPatchError("--model/--variant '': expected a model yaml name or path")
    return Options(
        data.resolve(), model, tuple(dict.fromkeys(variants or [])), weights.resolve() if weights else None, seeds, epochs,
        imgsz, batch, device.strip() if device else None, out, tuple(parse_sets(sets or [])),
    )


def parse_sets(sets: list[str]) -> list[tuple[str, object]]:
    """`--set workers=0 --set cos_lr=true` -> [("workers", 0), ("cos_lr", True)] (values read as YAML scalars)."""
    parsed: dict[str, object] = {}
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise HaloPatchError(f"--set {item!r}: expected KEY=VALUE with a train argument name (workers=0, cos_lr=true)")
        if key in ("patience", "time"):
            raise HaloPatchError(f"--set {item!r}: compare allows no early stopping and no time budget: every run trains all its epochs")
        if key in OWN_KEYS:
            raise HaloPatchError(f"--set {item!r}: {key} is set by {OWN_KEYS[key]}, the same for every run")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        if isinstance(value, (dict, list)):
            raise HaloPatchError(f"--set {item!r}: expected a single value, not a YAML {type(value).__name__}")
        parsed[key] = value
    return list(parsed.items())


def check_set_keys(overrides: tuple[tuple[str, object], ...], default_cfg: Path) -> None:
    """--set keys must be arguments the target's Ultralytics knows (its cfg/default.yaml, read as text)."""
    try:
        known = yaml.safe_load(default_cfg.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return  # an unreadable default.yaml: Ultralytics itself will say what it does not know
    if not isinstance(known, dict):
        return
    for key, value in overrides:
        if key not in known:
            raise HaloPatchError(f"--set {key}={value}: {key} is not a train argument of Ultralytics (not in {default_cfg})")
