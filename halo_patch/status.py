"""Compare a tree with what apply writes: each change applied, absent or drifted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from halo_patch import journal, plan, transforms, tutorial
from halo_patch.errors import AnchorError, HaloPatchError
from halo_patch.target import UltralyticsTarget
from halo_patch.transforms import SourceFile

APPLIED, ABSENT, DRIFTED = "applied", "absent", "drifted"


@dataclass(frozen=True)
class ChangeState:
    change: str  # what the change is, as users know it
    path: str  # relative to the target root
    state: str  # APPLIED, ABSENT or DRIFTED
    detail: str = ""


@dataclass(frozen=True)
class StatusReport:
    target: UltralyticsTarget
    changes: tuple[ChangeState, ...]
    has_manifest: bool
    findings: tuple[tutorial.Finding, ...] = ()  # a hand-made HaloAttention install (see halo_patch.tutorial)

    @property
    def hand_made_in_use(self) -> bool:
        return any(f.in_use for f in self.findings)

    @property
    def fully_applied(self) -> bool:
        return all(c.state == APPLIED for c in self.changes) and not self.hand_made_in_use

    @property
    def nothing_applied(self) -> bool:
        return all(c.state == ABSENT for c in self.changes)

    @property
    def missing(self) -> list[ChangeState]:
        return [c for c in self.changes if c.state != APPLIED]


def _parse(target: UltralyticsTarget, path: Path) -> SourceFile | AnchorError | None:
    """The parsed file, None when it is missing, or the error that stops it being read."""
    if not path.is_file():
        return None
    try:
        return SourceFile.parse(path.read_bytes().decode("utf-8", errors="replace"), plan.where(target, path))
    except AnchorError as exc:
        return exc


def _python_change(target, name: str, path: Path, src, predicate) -> ChangeState:
    rel = target.relative(path)
    if src is None:
        return ChangeState(name, rel, ABSENT, "file missing")
    if isinstance(src, AnchorError):
        return ChangeState(name, rel, ABSENT, str(src))
    try:
        present = predicate(src)
    except AnchorError as exc:
        return ChangeState(name, rel, ABSENT, str(exc))
    return ChangeState(name, rel, APPLIED if present else ABSENT)


def _file_change(target, name, path, expected: bytes | None) -> ChangeState:
    rel = target.relative(path)
    if not path.is_file():
        return ChangeState(name, rel, ABSENT, "file missing")
    if expected is not None and path.read_bytes() != expected:
        return ChangeState(name, rel, DRIFTED, "differs from what apply writes")
    return ChangeState(name, rel, APPLIED)


def check_status(target: UltralyticsTarget) -> StatusReport:
    """The state of every change apply makes (in the layout the tree has); files edited since apply
    are marked drifted; a hand-made install is listed."""
    try:  # the default base's yaml (the yaml planner: halo_patch.model_yaml)
        model = plan.plan_model_yaml(target)
        yaml_file, expected_yaml = model.path, model.text.encode()
    except HaloPatchError:
        yaml_file, expected_yaml = target.models11_dir / "yolo11-HaloAttention.yaml", None
    tasks = _parse(target, target.tasks_py)  # parsed once: libcst takes ~0.3 s on tasks.py
    tasks_src = tasks if isinstance(tasks, SourceFile) else None
    layout = plan.detect_layout(target, tasks_src)
    package = plan.class_package(layout)
    if layout == "modules":
        init = target.package_dir / "nn" / "modules" / "__init__.py"
        export = _python_change(target, "nn/modules export", init, _parse(target, init), transforms.has_modules_export)
    else:
        init = target.addmodules_dir / "__init__.py"
        export = _python_change(target, "Addmodules import", init, _parse(target, init), transforms.has_package_import)
    rows = [
        _file_change(target, "HaloAttention module", plan.module_path(target, layout), plan.module_template()),
        export,
        _python_change(target, "tasks.py import", target.tasks_py, tasks, lambda src: transforms.binds_class(src, package)),
        _python_change(target, "parse_model branch", target.tasks_py, tasks, transforms.has_branch),
        _file_change(target, "model yaml", yaml_file, expected_yaml),
    ]
    manifest = journal.load_manifest(target)
    if manifest is not None:
        rows = [_mark_drift(target, manifest, row) for row in rows]
    install = tutorial.find_tutorial_install(target, plan.module_template(), tasks_src)
    return StatusReport(target, tuple(rows), manifest is not None, install.findings)


def _mark_drift(target, manifest: journal.Manifest, row: ChangeState) -> ChangeState:
    entry = manifest.entry(row.path)
    path = target.root / row.path
    if row.state != APPLIED or entry is None or not path.is_file():
        return row
    if journal.sha256(path.read_bytes()) != entry.sha256_after:
        return ChangeState(row.change, row.path, DRIFTED, "file changed since apply")
    return row
