"""The run matrix: which models (the base and its variants), which seeds, in which order, named how.

Pure planning from the options and the target's files; nothing is written and nothing imports torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from halo_patch.compare.options import Options
from halo_patch.errors import HaloPatchError
from halo_patch.target import UltralyticsTarget
from halo_patch.verify.models import base_name, guess_task, models_dir, with_scale, written_yamls

DEFAULT_SCALE = "n"
_UNIFY = re.compile(r"(\d+)([nslmx])(.+)?$")  # how Ultralytics maps yolo11n-x.yaml to the file yolo11-x.yaml


@dataclass(frozen=True)
class ModelChoice:
    label: str  # row label and run-name prefix: "yolo11n", "yolo11n-HaloAttention"
    model: str  # what YOLO() is given: a name Ultralytics finds in the target, or an absolute path
    yaml_path: Path  # the file it builds from
    variant: bool  # False: the base every variant is compared with


@dataclass(frozen=True)
class Run:
    model: ModelChoice
    seed: int

    @property
    def name(self) -> str:
        """The run's Ultralytics dir name under <out>/runs, and its id in runs.csv."""
        return f"{self.model.label}-seed{self.seed}"


@dataclass(frozen=True)
class Matrix:
    base: ModelChoice
    variants: tuple[ModelChoice, ...]
    seeds: tuple[int, ...]

    @property
    def models(self) -> tuple[ModelChoice, ...]:
        return (self.base, *self.variants)

    @property
    def runs(self) -> tuple[Run, ...]:
        """Seed by seed, base first: a stopped comparison keeps whole pairs."""
        return tuple(Run(m, s) for s in self.seeds for m in self.models)


def plan_matrix(target: UltralyticsTarget, options: Options) -> Matrix:
    written = written_yamls(target)
    task = guess_task(written[0]) if written else None
    if options.model is not None:
        base = resolve(target, options.model, "--model", variant=False)
    elif written:
        name = f"{base_name(written[0])}.yaml"
        scaled = with_scale(name, DEFAULT_SCALE) or name
        base = resolve(target, scaled, "--model", variant=False)
    else:
        raise HaloPatchError(
            f"{models_dir(target)}: apply wrote no HaloAttention yaml here; run halo-patch apply first, or name --model and --variant"
        )
    if options.variants:
        variants = [resolve(target, v, "--variant", variant=True) for v in options.variants]
    else:
        same = [p for p in written if guess_task(p) == task]
        variants = [resolve(target, with_scale(p.name, DEFAULT_SCALE) or p.name, "--variant", variant=True) for p in same]
    if not variants:
        raise HaloPatchError(f"{models_dir(target)}: apply wrote no HaloAttention yaml here; run halo-patch apply first, or name --variant")
    return Matrix(base, tuple(unique_labels([base, *variants])[1:]), tuple(range(options.seeds)))


def resolve(target: UltralyticsTarget, name: str, option: str, variant: bool) -> ModelChoice:
    """A model yaml by path, or by the name Ultralytics looks up in the target's cfg/models."""
    path = Path(name).expanduser()
    if path.suffix not in (".yaml", ".yml"):
        raise HaloPatchError(f"{option} {name}: expected a model yaml (.yaml), a file or a name from the target's cfg/models")
    if path.is_file():
        resolved = path.resolve()
        return ModelChoice(path.stem, str(resolved), resolved, variant)
    if path.name == name:  # a bare name: Ultralytics finds it (scale letter taken out) under cfg/models
        found = find_in_target(target, name)
        if found is not None:
            return ModelChoice(path.stem, name, found, variant)
    raise HaloPatchError(f"{option} {name}: no such file, and no {unify(name)} under {models_dir(target)}")


def find_in_target(target: UltralyticsTarget, name: str) -> Optional[Path]:
    for candidate in dict.fromkeys((name, unify(name))):
        hits = sorted(models_dir(target).rglob(candidate))
        if hits:
            return hits[0]
    return None


def unify(name: str) -> str:
    return _UNIFY.sub(r"\1\3", name)


def unique_labels(models: list[ModelChoice]) -> list[ModelChoice]:
    """Two models with the same file stem get -2, -3 ... so every run dir has its own name."""
    seen: dict[str, int] = {}
    out = []
    for m in models:
        n = seen.get(m.label, 0) + 1
        seen[m.label] = n
        out.append(m if n == 1 else ModelChoice(f"{m.label}-{n}", m.model, m.yaml_path, m.variant))
    return out
