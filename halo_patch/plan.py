"""Plan every file change of apply in memory: pure, testable, no writes."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from halo_patch import model_yaml, ownership, transforms
from halo_patch.errors import AnchorError
from halo_patch.target import UltralyticsTarget
from halo_patch.transforms import SourceFile

MODULE_TEMPLATE = "halo_attention.py"
PACKAGE_INIT = '"""Modules added to Ultralytics by halo-patch (`halo-patch revert` removes them)."""\n\n'


@dataclass(frozen=True)
class ApplyOptions:
    """What the user asked apply for (CLI flags); recorded in the manifest so status/revert know it."""

    base: str = "yolo11"  # --base: a yaml name from the target's cfg/models/, or a path to the user's own yaml
    after: tuple[int, ...] = ()  # --after: insert after these layers; () = the default placement
    args: tuple[int, ...] = (2, 1)  # --args: block, halo[, dim_head, heads]
    layout: str = "addmodules"  # --layout: "addmodules" (nn/Addmodules/) or "modules" (nn/modules/, restricted loading)
    adopt: bool = False  # --adopt: take over a hand-made (tutorial) HaloAttention install


@dataclass(frozen=True)
class FileChange:
    """One file's new content; `before` is None when the file is created."""

    path: Path
    before: bytes | None
    after: bytes
    what: str  # one line for reports: "HaloAttention module", "parse_model branch + import", ...
    pristine: bool = True  # `before` holds none of our edits (False: a half-applied file)


@dataclass(frozen=True)
class Plan:
    target: UltralyticsTarget
    changes: tuple[FileChange, ...]
    models: tuple[model_yaml.YamlPlan, ...] = ()  # the model yamls apply writes (or finds written), with their proof

    @property
    def empty(self) -> bool:
        return not self.changes


def module_template() -> bytes:
    return files("halo_patch.templates").joinpath(MODULE_TEMPLATE).read_bytes()


def module_path(target: UltralyticsTarget) -> Path:
    return target.addmodules_dir / f"{transforms.MODULE_STEM}.py"


def yaml_path(target: UltralyticsTarget, options: ApplyOptions = ApplyOptions()) -> Path:
    """Where apply writes the model yaml for `options` (its base, and --adopt)."""
    return plan_model_yaml(target, options).path


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise AnchorError(f"{path}: not UTF-8 text; expected an Ultralytics source file") from None


def where(target: UltralyticsTarget, path: Path) -> str:
    """How a file is named in messages: its path and the Ultralytics version."""
    return f"{path} (Ultralytics {target.version})"


def new_tasks_source(target: UltralyticsTarget, source: str) -> tuple[str, bool]:
    """tasks.py with the import and the parse_model branch, compiled to prove it is valid Python;
    and whether the source had neither edit."""
    src = SourceFile.parse(source, where(target, target.tasks_py))
    with_import = transforms.add_class_import(src)
    edited = transforms.add_branch(with_import)
    if edited is src:  # both edits present: skip codegen, the slowest step
        return source, False
    result = edited.code
    compile(result, str(target.tasks_py), "exec", dont_inherit=True)
    return result, with_import is not src and edited is not with_import


def new_package_init(source: str | None, label: str) -> str:
    if source is None:
        return PACKAGE_INIT + transforms.PACKAGE_IMPORT
    return transforms.add_package_import(SourceFile.parse(source, label)).code


def plan_model_yaml(target: UltralyticsTarget, options: ApplyOptions = ApplyOptions()) -> model_yaml.YamlPlan:
    """The model yaml for `options` (base, placements, args), proven against its base. With --adopt, a
    file of that name the user made (the tutorial's yolo11-HaloAttention.yaml) is kept and ours gets
    the name <stem>-HaloAttention-halo-patch.yaml."""
    model = model_yaml.plan_model_yaml(target, options.base, options.after, options.args)
    if options.adopt and model.path.is_file() and not ownership.is_sealed(model.path.read_bytes()):
        model = model_yaml.plan_model_yaml(target, options.base, options.after, options.args, model_yaml.ADOPT_SUFFIX)
    return model


def new_model_yaml(target: UltralyticsTarget, options: ApplyOptions = ApplyOptions()) -> str:
    return plan_model_yaml(target, options).text


def _plan_yaml_change(target: UltralyticsTarget, model: model_yaml.YamlPlan) -> FileChange | None:
    """The yaml as a change; a file of that name apply did not write (or that was edited since) is refused.

    Each base has its own output file, so applying with another base adds a file; applying the same
    base with other --after/--args replaces the file only while it is exactly as halo-patch wrote it.
    """
    before = _read(model.path)
    after = model.text.encode("utf-8")
    if before == after:
        return None
    if before is not None and not ownership.is_sealed(before):
        raise AnchorError(
            f"{where(target, model.path)}: exists and was not written by halo-patch (or was edited since); "
            "expected no file there: move it away, or use `apply --adopt` for a tutorial install"
        )
    clash = [p for p in target.package_dir.rglob(model.path.name) if p != model.path]
    if clash:
        raise AnchorError(
            f"{where(target, model.path)}: {target.relative(clash[0])} has the same name, and Ultralytics finds "
            "model yamls by name; expected a unique name: rename your base yaml"
        )
    what = f"model yaml, HaloAttention at layer {', '.join(str(i.index) for i in model.inserted)}"
    return FileChange(model.path, before, after, what, True)


def plan_apply(target: UltralyticsTarget, options: ApplyOptions = ApplyOptions()) -> Plan:
    """Every change apply would make to `target`; an empty plan means it is already applied."""
    model = plan_model_yaml(target, options)  # first: a wrong --base/--after fails before the slow parse of tasks.py
    tasks_before = _read(target.tasks_py)
    init_path = target.addmodules_dir / "__init__.py"
    init_before = _read(init_path)
    new_tasks, tasks_pristine = new_tasks_source(target, _decode(tasks_before, target.tasks_py))
    wanted = [
        (module_path(target), module_template(), "HaloAttention module", True),
        (
            init_path,
            new_package_init(None if init_before is None else _decode(init_before, init_path), where(target, init_path)).encode(),
            "Addmodules package import",
            True,  # one edit: a file that needs it never had it
        ),
        (target.tasks_py, new_tasks.encode(), "import + parse_model branch", tasks_pristine),
    ]
    changes = []
    for path, after, what, pristine in wanted:
        before = tasks_before if path == target.tasks_py else init_before if path == init_path else _read(path)
        if before != after:
            changes.append(FileChange(path, before, after, what, pristine))
    yaml_change = _plan_yaml_change(target, model)
    return Plan(target, tuple(changes) + ((yaml_change,) if yaml_change else ()), (model,))
