"""Plan every file change of apply in memory: pure, testable, no writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from halo_patch import model_yaml, ownership, transforms, tutorial
from halo_patch.errors import AdoptError, AnchorError, HaloPatchError
from halo_patch.modules import DEFAULT as MODULE
from halo_patch.target import UltralyticsTarget
from halo_patch.transforms import SourceFile
from halo_patch.transforms.modules_export import add_modules_export
from halo_patch.transforms.user_imports import drop_package_imports, drop_tasks_imports
from halo_patch.transforms.source import decode_source, encode_source

PACKAGE_INIT = '"""Modules added to Ultralytics by halo-patch (`halo-patch revert` removes them)."""\n\n'
LAYOUTS = ("addmodules", "modules")


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
    findings: tuple[tutorial.Finding, ...] = ()  # a hand-made install found (and, with --adopt, taken over)
    models: tuple[model_yaml.YamlPlan, ...] = ()  # the model yamls apply writes (or finds written), with their proof

    @property
    def empty(self) -> bool:
        return not self.changes


def module_template() -> bytes:
    return MODULE.template_bytes()


def tree_newline(target: UltralyticsTarget) -> bytes:
    """The tree's line ending, as tasks.py has it: files apply creates follow it."""
    try:
        with open(target.tasks_py, "rb") as fh:
            first = fh.readline()
    except OSError:
        return b"\n"
    return b"\r\n" if first.endswith(b"\r\n") else b"\n"


def with_newline(data: bytes, newline: bytes) -> bytes:
    """`data` (written with \\n) with the tree's line ending."""
    return data if newline == b"\n" else data.replace(b"\n", newline)


def module_path(target: UltralyticsTarget, layout: str = "addmodules") -> Path:
    """Where the module file goes: nn/Addmodules/ (default) or nn/modules/ (`--layout modules`)."""
    return module_dir(target, layout) / f"{transforms.MODULE_STEM}.py"


def module_dir(target: UltralyticsTarget, layout: str) -> Path:
    return target.package_dir / "nn" / "modules" if layout == "modules" else target.addmodules_dir


def class_package(layout: str) -> str:
    """The package tasks.py imports HaloAttention from."""
    return transforms.MODULES_IMPORT if layout == "modules" else transforms.ADDMODULES


def detect_layout(target: UltralyticsTarget, tasks: SourceFile | None = None) -> str:
    """The layout a tree was patched with: "modules" when our module sits in nn/modules/ or tasks.py
    imports HaloAttention from ultralytics.nn.modules (a half-applied tree)."""
    in_modules = module_path(target, "modules").is_file() or (tasks is not None and transforms.binds_class(tasks, transforms.MODULES_IMPORT))
    return "modules" if in_modules else "addmodules"


def yaml_path(target: UltralyticsTarget, options: ApplyOptions = ApplyOptions()) -> Path:
    """Where apply writes the model yaml for `options` (see plan_model_yaml)."""
    return plan_model_yaml(target, options).path


def plan_model_yaml(target: UltralyticsTarget, options: ApplyOptions = ApplyOptions()) -> model_yaml.YamlPlan:
    """The model yaml for `options` (base, placements, args), proven against its base.

    A file of our name that halo-patch never wrote (a tutorial's yolo11-HaloAttention.yaml, no seal
    line) is kept: ours is then <stem>-HaloAttention-halo-patch.yaml (Ultralytics finds yamls by bare
    name, so the two must differ). A file we wrote and the user edited since is refused at apply."""
    model = model_yaml.plan_model_yaml(target, options.base, options.after, options.args)
    if any(not p.read_bytes().startswith(ownership.SEAL_PREFIX) for p in target.package_dir.rglob(model.path.name) if p.is_file()):
        model = model_yaml.plan_model_yaml(target, options.base, options.after, options.args, model_yaml.ADOPT_SUFFIX)
    return model


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def where(target: UltralyticsTarget, path: Path) -> str:
    """How a file is named in messages: its path and the Ultralytics version."""
    return f"{path} (Ultralytics {target.version})"


def new_tasks_source(
    target: UltralyticsTarget,
    source: str,
    layout: str = "addmodules",
    user_modules: frozenset[str] = frozenset(),
    parsed: SourceFile | None = None,
) -> tuple[str, bool]:
    """tasks.py with one import of our class and the parse_model branch, compiled to prove it is valid
    Python; and whether the source held neither of our edits (its backup is an original).
    `parsed`: `source` already parsed (libcst takes ~0.3 s on tasks.py)."""
    src = parsed if parsed is not None else SourceFile.parse(source, where(target, target.tasks_py))
    package = class_package(layout)
    pristine = not transforms.has_class_import(src, package) and not _has_our_branch(src)
    edited = transforms.add_branch(transforms.add_class_import(drop_tasks_imports(src, user_modules, package), package))
    if edited is src:  # nothing to change: skip codegen, the slowest step
        return source, pristine
    result = edited.code
    compile(result, str(target.tasks_py), "exec", dont_inherit=True)
    return result, pristine


def _has_our_branch(src: SourceFile) -> bool:
    try:
        found = transforms.find_halo_branch(src)
    except AnchorError:
        return False
    return found is not None and found.ours


def new_package_init(source: str | None, label: str, user_modules: frozenset[str] = frozenset()) -> str:
    """Addmodules/__init__.py with our import (created when missing), without imports of the user's module."""
    if source is None:
        return PACKAGE_INIT + transforms.PACKAGE_IMPORT
    src = drop_package_imports(SourceFile.parse(source, label), user_modules, keep_export=True)
    return transforms.add_package_import(src).code


def new_model_yaml(target: UltralyticsTarget, options: ApplyOptions = ApplyOptions()) -> str:
    return plan_model_yaml(target, options).text


def _plan_yaml_change(target: UltralyticsTarget, model: model_yaml.YamlPlan, newline: bytes = b"\n") -> FileChange | None:
    """The yaml as a change; a file of that name that is not exactly as halo-patch wrote it is refused.

    Each base has its own output file, so applying with another base adds a file; applying the same
    base with other --after/--args replaces the file only while it is exactly as halo-patch wrote it.
    """
    before = _read(model.path)
    after = with_newline(model.text.encode("utf-8"), newline)  # the tree's line endings
    if before == after:
        return None
    if before is not None and not ownership.is_sealed(before):
        raise AnchorError(
            f"{where(target, model.path)}: written by halo-patch but edited since; "
            "expected it as halo-patch wrote it: undo your edits or move the file away, then apply again"
        )
    clash = [p for p in target.package_dir.rglob(model.path.name) if p != model.path]
    if clash:
        raise AnchorError(
            f"{where(target, model.path)}: {target.relative(clash[0])} has the same name, and Ultralytics finds "
            "model yamls by name; expected a unique name: rename your base yaml"
        )
    what = f"model yaml, {MODULE.class_name} at layer {', '.join(str(i.index) for i in model.inserted)}"
    return FileChange(model.path, before, after, what, True)


def refuse_tutorial(target: UltralyticsTarget, install: tutorial.TutorialInstall) -> AdoptError:
    """The one-line refusal of apply (without --adopt) on a tree with a hand-made install."""
    first = install.modules[0].path if install.modules else target.root / install.findings[0].path
    return AdoptError(
        f"{first}: a {MODULE.class_name} installed by hand is already there (listed above); "
        f"run `halo-patch apply --adopt` to put halo-patch's {MODULE.class_name} in its place (your files are kept), "
        "or undo your edits first",
        install.findings,
    )


def check_adoptable(target: UltralyticsTarget, install: tutorial.TutorialInstall, layout: str) -> None:
    """Refuse (AdoptError) what --adopt cannot take over without breaking the user's tree."""
    ours = module_path(target, layout)
    for module in install.modules:
        if module.path == ours:
            raise AdoptError(
                f"{module.path}: your own {MODULE.class_name} sits where halo-patch writes its module; "
                "rename the file (and its import in Addmodules/__init__.py), then run apply --adopt again",
                install.findings,
            )
        if module.other_classes:
            raise AdoptError(
                f"{module.path}: also defines {', '.join(module.other_classes)}, which --adopt would stop importing "
                f"with your {MODULE.class_name}; move them to their own file (and import that), then run apply --adopt again",
                install.findings,
            )


def plan_apply(target: UltralyticsTarget, options: ApplyOptions = ApplyOptions()) -> Plan:
    """Every change apply would make to `target`; an empty plan means it is already applied.

    A hand-made HaloAttention install stops it (AdoptError) unless `options.adopt`: then the user's
    imports of their class go, an equivalent branch is reused, their files stay.
    """
    if options.layout not in LAYOUTS:
        raise HaloPatchError(f"--layout {options.layout!r}: expected one of {', '.join(LAYOUTS)}")
    model = plan_model_yaml(target, options)  # first: a wrong --base/--after fails before the slow parse of tasks.py
    tasks_before = _read(target.tasks_py)
    tasks_text, tasks_bom = decode_source(tasks_before, where(target, target.tasks_py))  # a BOM is kept
    tasks_src = SourceFile.parse(tasks_text, where(target, target.tasks_py))
    install = tutorial.find_tutorial_install(target, module_template(), tasks_src)
    if install.found and not options.adopt:
        raise refuse_tutorial(target, install)
    check_adoptable(target, install, options.layout)
    _refuse_other_layout(target, options.layout)
    user = install.user_modules
    new_tasks, tasks_pristine = new_tasks_source(target, tasks_text, options.layout, user, tasks_src)
    addmodules_init = target.addmodules_dir / "__init__.py"
    nl = tree_newline(target)  # files apply creates follow the tree's line endings
    wanted = [(module_path(target, options.layout), with_newline(module_template(), nl), f"{MODULE.class_name} module", True)]
    if options.layout == "modules":
        wanted.append(_modules_init_change(target))
        if user and addmodules_init.is_file():
            wanted.append(_addmodules_init_change(target, user, keep_export=False))
    else:
        path, after, what, pristine = _addmodules_init_change(target, user, keep_export=True)
        wanted.append((path, after if path.exists() else with_newline(after, nl), what, pristine))
    wanted.append((target.tasks_py, encode_source(new_tasks, tasks_bom), "import + parse_model branch", tasks_pristine))
    changes = []
    for path, after, what, pristine in wanted:
        before = tasks_before if path == target.tasks_py else _read(path)
        if before != after:
            changes.append(FileChange(path, before, after, what, pristine))
    yaml_change = _plan_yaml_change(target, model, nl)
    return Plan(target, tuple(changes) + ((yaml_change,) if yaml_change else ()), install.findings, (model,))


def _refuse_other_layout(target: UltralyticsTarget, layout: str) -> None:
    other = "addmodules" if layout == "modules" else "modules"
    path = module_path(target, other)
    if path.is_file() and path.read_bytes() == module_template():
        raise HaloPatchError(
            f"{path}: {MODULE.class_name} is applied with --layout {other}; run `halo-patch revert` first, then apply --layout {layout}"
        )


def _addmodules_init_change(target: UltralyticsTarget, user: frozenset[str], keep_export: bool):
    """Addmodules/__init__.py with our import (or without the user's, `keep_export` False); a BOM is kept."""
    path = target.addmodules_dir / "__init__.py"
    before = _read(path)
    label = where(target, path)
    text, bom = (None, False) if before is None else decode_source(before, label)
    if keep_export:
        after = new_package_init(text, label, user)
        pristine = text is None or not transforms.has_package_import(SourceFile.parse(text, label))
        return path, encode_source(after, bom), "Addmodules package import", pristine
    after = drop_package_imports(SourceFile.parse(text, label), user, keep_export=False).code
    return path, encode_source(after, bom), f"Addmodules: your {MODULE.class_name} no longer imported", True


def _modules_init_change(target: UltralyticsTarget):
    path = target.package_dir / "nn" / "modules" / "__init__.py"
    before = _read(path)
    if before is None:
        raise AnchorError(f"{where(target, path)}: missing; expected Ultralytics' nn/modules package")
    text, bom = decode_source(before, where(target, path))
    src = SourceFile.parse(text, where(target, path))
    pristine = not transforms.has_modules_export(src)
    return path, encode_source(add_modules_export(src).code, bom), "nn/modules export", pristine
