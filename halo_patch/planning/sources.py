"""The new bytes of each file apply writes, computed in memory from the tree (pure: reads only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from halo_patch import model_yaml, ownership, transforms, tutorial
from halo_patch.errors import AdoptError, AnchorError, HaloPatchError
from halo_patch.marker import marked_source
from halo_patch.modules import DEFAULT as MODULE
from halo_patch.modules import ModuleSpec
from halo_patch.model_yaml.replace import plan_replace_yaml
from halo_patch.planning.layout import PACKAGE_INIT, Layout, class_package, star_binds, module_path, module_template, read_file, where, with_newline
from halo_patch.planning.options import ApplyOptions
from halo_patch.target import UltralyticsTarget
from halo_patch.transforms import SourceFile
from halo_patch.transforms.modules_export import add_modules_export
from halo_patch.transforms.source import decode_source, encode_source
from halo_patch.transforms.user_imports import drop_package_imports, drop_tasks_imports


@dataclass(frozen=True)
class FileChange:
    """One file's new content; `before` is None when the file is created."""

    path: Path
    before: bytes | None
    after: bytes
    what: str  # one line for reports: "HaloAttention module", "parse_model branch + import", ...
    pristine: bool = True  # `before` holds none of our edits (False: a half-applied file)


def choose_model_yaml(target: UltralyticsTarget, options: ApplyOptions = ApplyOptions()) -> model_yaml.YamlPlan:
    """The model yaml for `options` (base, placements, args), proven against its base.

    A file of our name that halo-patch never wrote (a tutorial's yolo11-HaloAttention.yaml, no seal
    line) is kept: ours is then <stem>-HaloAttention-halo-patch.yaml (Ultralytics finds yamls by bare
    name, so the two must differ). A file we wrote and the user edited since is refused at apply."""
    spec = options.module

    def plan(suffix: str | None = None) -> model_yaml.YamlPlan:
        if options.replace is not None:
            return plan_replace_yaml(target, options.base, options.replace, options.args, spec, suffix)
        return model_yaml.plan_model_yaml(target, options.base, options.after, options.args, suffix, spec)

    model = plan()
    if any(not p.read_bytes().startswith(ownership.SEAL_PREFIX) for p in target.package_dir.rglob(model.path.name) if p.is_file()):
        model = plan(spec.adopt_suffix)
    return model


def new_tasks_source(
    target: UltralyticsTarget,
    source: str,
    layout: Layout = Layout.ADDMODULES,
    user_modules: frozenset[str] = frozenset(),
    parsed: SourceFile | None = None,
    spec: ModuleSpec = MODULE,
) -> tuple[str, bool]:
    """tasks.py with one import of our class and the parse_model branch, compiled to prove it is valid
    Python; and whether the source held neither of our edits (its backup is an original).
    `parsed`: `source` already parsed (libcst takes ~0.3 s on tasks.py)."""
    src = parsed if parsed is not None else SourceFile.parse(source, where(target, target.tasks_py))
    package = class_package(layout)
    pristine = not transforms.has_class_import(src, package, spec) and not _has_our_branch(src, spec)
    star = star_binds(target, spec)
    edited = transforms.add_branch(transforms.add_class_import(drop_tasks_imports(src, user_modules, package, spec.class_name), package, spec, star), spec)
    if edited is src:  # nothing to change: skip codegen, the slowest step
        return source, pristine
    result = edited.code
    compile(result, str(target.tasks_py), "exec", dont_inherit=True)
    return result, pristine


def _has_our_branch(src: SourceFile, spec: ModuleSpec) -> bool:
    try:
        found = transforms.find_halo_branch(src, spec)
    except AnchorError:
        return False
    return found is not None and found.ours


def new_package_init(source: str | None, label: str, user_modules: frozenset[str] = frozenset(), spec: ModuleSpec = MODULE) -> str:
    """Addmodules/__init__.py with our import (created when missing), without imports of the user's module."""
    if source is None:
        return PACKAGE_INIT + marked_source(spec.package_import)
    src = drop_package_imports(SourceFile.parse(source, label), user_modules, keep_export=True, name=spec.class_name)
    return transforms.add_package_import(src, spec).code


def yaml_change(target: UltralyticsTarget, model: model_yaml.YamlPlan, newline: bytes = b"\n") -> FileChange | None:
    """The yaml as a change; a file of that name that is not exactly as halo-patch wrote it is refused.

    Each base has its own output file, so applying with another base adds a file; applying the same
    base with other --after/--args replaces the file only while it is exactly as halo-patch wrote it.
    """
    before = read_file(model.path)
    after = with_newline(model.text.encode("utf-8"), newline)  # the tree's line endings
    if before == after:
        return None
    if before is not None and not ownership.is_sealed(before, model.path):
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
    where_ = ", ".join(str(i.index) for i in model.inserted)
    what = f"model yaml, {model.module.class_name} {'in place of' if 'replaced' in model.inserted[0].after_module else 'at'} layer {where_}"
    return FileChange(model.path, before, after, what, True)


def refuse_tutorial(target: UltralyticsTarget, install: tutorial.TutorialInstall, spec: ModuleSpec = MODULE) -> AdoptError:
    """The one-line refusal of apply (without --adopt) on a tree with a hand-made install."""
    first = install.modules[0].path if install.modules else target.root / install.findings[0].path
    adopt = "--adopt" if not spec.is_user else f"--module ... --adopt"
    return AdoptError(
        f"{first}: a {spec.class_name} installed by hand is already there (listed above); "
        f"run `halo-patch apply {adopt}` to put halo-patch's {spec.class_name} in its place (your files are kept), "
        "or undo your edits first",
        install.findings,
    )


def check_adoptable(target: UltralyticsTarget, install: tutorial.TutorialInstall, layout: Layout, spec: ModuleSpec = MODULE) -> None:
    """Refuse (AdoptError) what --adopt cannot take over without breaking the user's tree."""
    ours = module_path(target, layout, spec)
    for module in install.modules:
        if module.path == ours:
            raise AdoptError(
                f"{module.path}: your own {spec.class_name} sits where halo-patch writes its module; "
                "rename the file (and its import in Addmodules/__init__.py), then run apply --adopt again",
                install.findings,
            )
        if module.other_classes:
            raise AdoptError(
                f"{module.path}: also defines {', '.join(module.other_classes)}, which --adopt would stop importing "
                f"with your {spec.class_name}; move them to their own file (and import that), then run apply --adopt again",
                install.findings,
            )


def refuse_other_layout(target: UltralyticsTarget, layout: Layout, spec: ModuleSpec = MODULE) -> None:
    other = Layout.ADDMODULES if layout is Layout.MODULES else Layout.MODULES
    path = module_path(target, other, spec)
    if path.is_file() and path.read_bytes().replace(b"\r\n", b"\n") == module_template(spec):
        raise HaloPatchError(
            f"{path}: {spec.class_name} is applied with --layout {other}; run `halo-patch revert` first, then apply --layout {layout}"
        )


def addmodules_init_change(target: UltralyticsTarget, user: frozenset[str], keep_export: bool, spec: ModuleSpec = MODULE):
    """Addmodules/__init__.py with our import (or without the user's, `keep_export` False); a BOM is kept."""
    path = target.addmodules_init
    before = read_file(path)
    label = where(target, path)
    text, bom = (None, False) if before is None else decode_source(before, label)
    if keep_export:
        after = new_package_init(text, label, user, spec)
        pristine = text is None or not transforms.has_package_import(SourceFile.parse(text, label), spec)
        return path, encode_source(after, bom), "Addmodules package import", pristine
    after = drop_package_imports(SourceFile.parse(text, label), user, keep_export=False, name=spec.class_name).code
    return path, encode_source(after, bom), f"Addmodules: your {spec.class_name} no longer imported", True


def modules_init_change(target: UltralyticsTarget, spec: ModuleSpec = MODULE):
    path = target.modules_init
    before = read_file(path)
    if before is None:
        raise AnchorError(f"{where(target, path)}: missing; expected Ultralytics' nn/modules package")
    text, bom = decode_source(before, where(target, path))
    src = SourceFile.parse(text, where(target, path))
    pristine = not transforms.has_modules_export(src, spec)
    return path, encode_source(add_modules_export(src, spec).code, bom), "nn/modules export", pristine

