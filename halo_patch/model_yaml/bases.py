"""The base model yamls a target offers (`cfg/models/**.yaml`), and what `--base` names."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from halo_patch import ownership, safe_read
from halo_patch.errors import AnchorError, HaloPatchError
from halo_patch.model_yaml.graph import find_row_problem, find_source_problem
from halo_patch.modules import DEFAULT
from halo_patch.target import UltralyticsTarget

SUFFIX = DEFAULT.yaml_suffix  # `<stem>-<Class>.yaml`
ADOPT_SUFFIX = DEFAULT.adopt_suffix  # `apply --adopt`: the user's own <stem>-<Class>.yaml stays
POOLING = frozenset({"SPPF", "SPP", "SPPELAN"})
TASKS = {  # the output layer's module -> task
    "Detect": "detect", "v10Detect": "detect", "RTDETRDecoder": "detect", "WorldDetect": "detect (open vocab)",
    "YOLOEDetect": "detect (open vocab)", "Segment": "segment", "Segment26": "segment", "YOLOESegment": "segment (open vocab)",
    "YOLOESegment26": "segment (open vocab)", "Pose": "pose", "Pose26": "pose", "OBB": "obb", "OBB26": "obb",
    "Classify": "classify", "Depth": "depth", "SemanticSegment": "semantic segment",
}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class BaseYaml:
    """A model yaml apply can insert HaloAttention into."""

    name: str  # what --base takes: the file's stem for a target's own yaml, the path for a user's
    path: Path
    where: str  # how messages name the file
    model: dict[str, Any]
    backbone_rows: int
    own: bool  # shipped in the target's cfg/models/ (else the user's own file)

    @property
    def rows(self) -> list[list[Any]]:
        return list(self.model["backbone"]) + list(self.model.get("head") or [])

    @property
    def family(self) -> str:
        hit = re.match(r"(yoloe-v?\d+|yolov?\d+|rtdetr)", self.path.stem)
        return hit.group(1) if hit else self.path.stem

    @property
    def task(self) -> str:
        return TASKS.get(str(self.rows[-1][2]), str(self.rows[-1][2]))

    @property
    def default_after(self) -> int:
        """The last backbone row before the first spatial pyramid pooling row, else the last backbone row."""
        backbone = self.model["backbone"]
        pooling = [i for i, r in enumerate(backbone) if r[2] in POOLING]
        return pooling[0] - 1 if pooling and pooling[0] > 0 else len(backbone) - 1

    def output_name(self, suffix: str = SUFFIX) -> str:
        return f"{self.path.stem}{suffix}.yaml"


def models_dir(target: UltralyticsTarget) -> Path:
    return target.models_dir


def read_model(path: Path, where: str) -> dict[str, Any]:
    """A model yaml's data, checked to be `backbone:` (and `head:`) lists of well-formed rows."""
    try:  # a regular file of bounded size only: a FIFO or /dev/zero is refused, never read
        text = safe_read.read_regular(path, where, "an Ultralytics model yaml").decode("utf-8")
    except UnicodeDecodeError:
        raise AnchorError(f"{where}: not UTF-8 text; expected an Ultralytics model yaml") from None
    try:
        model = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise AnchorError(f"{where}: not valid YAML{at}; expected an Ultralytics model yaml") from None
    if not isinstance(model, dict) or not isinstance(model.get("backbone"), list) or not model["backbone"]:
        raise AnchorError(f"{where}: no `backbone:` list of layers; expected an Ultralytics model yaml")
    if not isinstance(model.get("head", []), list):
        raise AnchorError(f"{where}: `head:` is not a list of layers; expected an Ultralytics model yaml")
    rows = model["backbone"] + (model.get("head") or [])
    for i, row in enumerate(rows):
        problem = find_row_problem(row) or find_source_problem(i, row[0])
        if problem:
            raise AnchorError(f"{where}: layer {i} {problem}; expected an Ultralytics model yaml")
    return model


def _is_ours(path: Path) -> bool:
    return ownership.is_sealed(path.read_bytes(), path)


def own_yaml_paths(target: UltralyticsTarget) -> list[Path]:
    """The target's model yamls, halo-patch's own outputs left out."""
    root = models_dir(target)
    return sorted(p for p in root.rglob("*.yaml") if p.is_file() and not _is_ours(p))


def list_bases(target: UltralyticsTarget) -> list[BaseYaml]:
    """Every model yaml in the target's cfg/models/ that parses as a layer graph."""
    out = []
    for path in own_yaml_paths(target):
        try:
            out.append(_own_base(target, path))
        except AnchorError:
            continue
    return out


def _own_base(target: UltralyticsTarget, path: Path) -> BaseYaml:
    where = f"{path} (Ultralytics {target.version})"
    model = read_model(path, where)
    return BaseYaml(path.stem, path, where, model, len(model["backbone"]), own=True)


def is_path(spec: str) -> bool:
    return "/" in spec or "\\" in spec or spec.endswith((".yaml", ".yml"))


def resolve_base(target: UltralyticsTarget, spec: str, module_name: str | None = None) -> BaseYaml:
    """The base `--base` names: a yaml stem from the target's cfg/models/, or a path to any yaml.
    A bare file name that is not a file here (`yolo11-seg.yaml`) is taken as the name `yolo11-seg`.
    A yaml halo-patch wrote is a base only for another module (`module_name` not in its name): stacking."""
    bare = "/" not in spec and "\\" not in spec
    if is_path(spec) and bare and not Path(spec).expanduser().exists():
        spec = Path(spec).stem
    if is_path(spec):
        path = Path(spec).expanduser().resolve()
        inside = models_dir(target).resolve()
        stacks = module_name is not None and module_name not in path.stem.split("-")[1:]
        if path.is_file() and inside in path.parents and (stacks or not _is_ours(path)):
            return _own_base(target, path)
        model = read_model(path, str(path))
        if path.is_file() and _is_ours(path) and not stacks:
            raise HaloPatchError(f"{path}: written by halo-patch; pass the yaml it was made from as --base")
        return BaseYaml(str(path), path, str(path), model, len(model["backbone"]), own=False)
    paths = own_yaml_paths(target)
    matches = [p for p in paths if p.stem == spec]
    if len(matches) > 1:
        names = ", ".join(target.relative(p) for p in matches)
        raise HaloPatchError(f"--base {spec}: several yamls have that name ({names}); pass one of them as a path")
    if not matches:
        stems = sorted({p.stem for p in paths})
        if spec.endswith(SUFFIX) and spec[: -len(SUFFIX)] in stems:
            raise HaloPatchError(f"--base {spec}: a yaml halo-patch writes; pass the base it is made from: --base {spec[: -len(SUFFIX)]}")
        close = difflib.get_close_matches(spec, stems, n=5, cutoff=0.6)
        hint = f"close names: {', '.join(close)}" if close else "none is close"
        raise HaloPatchError(
            f"--base {spec}: no such model yaml in {models_dir(target)} (Ultralytics {target.version}); "
            f"{hint}; `halo-patch bases` lists them all"
        )
    return _own_base(target, matches[0])


def output_path(target: UltralyticsTarget, base: BaseYaml, suffix: str = SUFFIX) -> Path:
    """Where the yaml with HaloAttention goes: beside a target's own base, under cfg/models/custom/ for a user's."""
    folder = base.path.parent if base.own else target.custom_models_dir
    return folder / base.output_name(suffix)
