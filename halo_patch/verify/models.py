"""Which models verify builds: every HaloAttention yaml apply wrote, at each requested scale.

A yaml is apply's while it carries a matching ownership seal (halo_patch.ownership). Its model name
for a scale puts the scale letter after the leading `yolo<digits>` (`yolov8`, `yoloe-11`), as
Ultralytics reads it back: yolo11-seg-HaloAttention.yaml at scale n is built as
YOLO("yolo11n-seg-HaloAttention.yaml").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from halo_patch import ownership
from halo_patch.errors import HaloPatchError
from halo_patch.model_yaml import ADOPT_SUFFIX, SUFFIX, name_for_build
from halo_patch.target import UltralyticsTarget

SUFFIXES = (ADOPT_SUFFIX, SUFFIX)  # longest first; ADOPT_SUFFIX: `apply --adopt` beside a hand-made yaml
DEFAULT_BASE = "yolo11"  # plain `halo-patch apply`: cfg/models/11/yolo11-HaloAttention.yaml
_TASK_WORDS = (("detect", "detect"), ("semanticsegment", "semantic"), ("segment", "segment"), ("pose", "pose"), ("obb", "obb"), ("depth", "depth"))


@dataclass(frozen=True)
class ModelSpec:
    """One model to build: a yaml apply wrote, at one scale."""

    key: str  # step id suffix and row label: "n" for the default yolo11 yaml, else "yolo11n-seg"
    name: str  # what YOLO() is given: "yolo11n-seg-HaloAttention.yaml"
    yaml_path: Path  # the file apply wrote
    base: str  # "yolo11-seg"
    scale: Optional[str]  # None: the name cannot carry a scale (the yaml's own default is used)
    plain: Optional[str]  # the base model to compare with ("yolo11n-seg.yaml"), when the target has it
    task: str  # from the yaml's head: detect, segment, pose, obb, classify (or the head's own name)

    def to_config(self) -> dict[str, Any]:
        """As the checks in the target's interpreter receive it."""
        return {
            "key": self.key,
            "name": self.name,
            "yaml_file": self.yaml_path.name,
            "yaml_path": str(self.yaml_path),
            "plain": self.plain,
            "task": self.task,
        }


def models_dir(target: UltralyticsTarget) -> Path:
    return target.models_dir


def written_yamls(target: UltralyticsTarget) -> list[Path]:
    """Every `<base>-HaloAttention[-halo-patch].yaml` under cfg/models exactly as apply wrote it; the default first."""
    found = [
        p
        for p in models_dir(target).rglob("*.yaml")
        if p.is_file() and any(p.name.endswith(f"{s}.yaml") for s in SUFFIXES) and ownership.is_sealed_as(p.read_bytes(), p)
    ]
    return sorted(found, key=lambda p: (not is_default(target, p), p.relative_to(models_dir(target)).as_posix()))


def default_yaml(target: UltralyticsTarget) -> Path:
    return target.models11_dir / f"{DEFAULT_BASE}{SUFFIX}.yaml"


def is_default(target: UltralyticsTarget, path: Path) -> bool:
    """The yaml plain `halo-patch apply` writes (under either name)."""
    return path.parent == target.models11_dir and base_name(path) == DEFAULT_BASE


def base_name(path: Path) -> str:
    """yolo11-seg-HaloAttention.yaml (or yolo11-seg-HaloAttention-halo-patch.yaml) -> yolo11-seg."""
    stem = path.name[: -len(".yaml")]
    suffix = next((s for s in SUFFIXES if stem.endswith(s)), "")
    return stem[: len(stem) - len(suffix)]


def with_scale(file_name: str, scale: str) -> Optional[str]:
    """yolo11-seg.yaml -> yolo11n-seg.yaml (the name apply tells users to build); None when the name has
    no place for a scale letter (or holds one already): then the file is built by its own name."""
    name, _ = name_for_build(file_name, (scale,))
    return name if name != file_name else None


def guess_task(path: Path) -> str:
    """The task of a model yaml from its last head module, as Ultralytics guesses it (detect when unsure)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        module = str(data["head"][-1][2]).lower()
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, IndexError, TypeError):
        return "detect"  # the build step says what is wrong with the file
    if module in ("classify", "classifier", "cls", "fc"):
        return "classify"
    for word, task in _TASK_WORDS:  # in this order: "semanticsegment" before "segment"
        if word in module:
            return task
    return "detect"


def select(target: UltralyticsTarget, bases: tuple[str, ...]) -> list[Path]:
    """The yamls to check: those of `bases` (--base), or every one apply wrote.

    With none written and no --base, the default yaml's path: the patch-status step then says why.
    """
    written = written_yamls(target)
    if not bases:
        return written or [default_yaml(target)]
    by_base = {base_name(p): p for p in reversed(written)}  # the first of a name wins, as in the listing
    chosen = []
    for base in bases:
        if base not in by_base:
            raise HaloPatchError(_unknown_base(target, base, sorted(by_base)))
        if by_base[base] not in chosen:
            chosen.append(by_base[base])
    return chosen


def _unknown_base(target: UltralyticsTarget, base: str, known: list[str]) -> str:
    unsealed = sorted(models_dir(target).rglob(f"{base}{SUFFIX}.yaml"))
    if unsealed:
        return (
            f"{unsealed[0]}: not as halo-patch apply wrote it (edited since, or written by hand: no matching "
            f"halo-patch seal on its first line); verify builds only the yamls apply wrote: run halo-patch apply --base {base}"
        )
    found = ", ".join(known) or "none"
    return (
        f"--base {base}: apply wrote no {base}{SUFFIX}.yaml under {models_dir(target)} (it wrote: {found}); "
        f"run halo-patch apply --base {base} first"
    )


def plan_models(target: UltralyticsTarget, bases: tuple[str, ...], scales: tuple[str, ...], module=None) -> list[ModelSpec]:
    """Every model to build, yaml by yaml, scale by scale (`module`: a user module's yamls, `verify --module`)."""
    if module is not None and module.is_user:
        return _user_models(target, module, scales)
    specs: list[ModelSpec] = []
    for path in select(target, bases):
        base, task = base_name(path), guess_task(path) if path.is_file() else "detect"
        default = is_default(target, path)
        for scale in scales:
            name = with_scale(path.name, scale)
            if name is None:  # one model, at the scale its name or the yaml itself gives
                specs.append(ModelSpec(base, path.name, path, base, None, None, task))
                break
            plain = with_scale(f"{base}.yaml", scale) if (path.parent / f"{base}.yaml").is_file() else None
            key = scale if default else name[: -len(f"{path.name[len(base):]}")]
            specs.append(ModelSpec(key, name, path, base, scale, plain, task))
    return specs


def parse_bases(value: Optional[str]) -> tuple[str, ...]:
    """`--base yolo11-seg,yolo11-pose` -> ("yolo11-seg", "yolo11-pose"); a file name or path gives its base."""
    if value is None:
        return ()
    bases: list[str] = []
    for item in (v.strip() for v in value.split(",")):
        name = Path(item).name
        for ending in (".yaml", ".yml", ADOPT_SUFFIX[len(SUFFIX):], SUFFIX):
            name = name[: -len(ending)] if name.endswith(ending) else name
        if not name:
            raise HaloPatchError(f"--base {value!r}: empty name; expected base names such as yolo11-seg, comma-separated")
        if name not in bases:
            bases.append(name)
    return tuple(bases)


def _user_models(target: UltralyticsTarget, module, scales: tuple[str, ...]) -> list[ModelSpec]:
    """Every sealed yaml that builds a user module (stacked ones too), at each scale; built without a
    plain comparison (a replaced layer or another module changes the graph on purpose)."""
    from halo_patch import footprint

    paths = [p for p in footprint.model_yamls(target) if footprint.uses_module(p, module) and ownership.is_sealed(p.read_bytes(), p)]
    if not paths:
        raise HaloPatchError(f"--module {module.class_name}: apply wrote no yaml that builds it under {models_dir(target)}; run halo-patch apply --module first")
    specs: list[ModelSpec] = []
    for path in paths:
        task = guess_task(path)
        for scale in scales:
            name = with_scale(path.name, scale)
            if name is None:
                specs.append(ModelSpec(path.stem, path.name, path, path.stem, None, None, task))
                break
            specs.append(ModelSpec(name[: -len(".yaml")], name, path, path.stem, scale, None, task))
    return specs
