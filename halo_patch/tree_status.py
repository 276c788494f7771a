"""Compare a tree with what apply writes: each change applied, absent or drifted, plus the state.

Recognition needs no state dir (our nodes and files are known), so a tree patched before its
`.halo-patch/` was deleted or damaged is still seen as patched; the state dir only adds whether a
run was interrupted and whether the tree changed (upgrade, reinstall) since apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from halo_patch import footprint, journal, ownership, tutorial
from halo_patch.planning import layout as plan
from halo_patch.planning.sources import choose_model_yaml
from halo_patch.errors import AnchorError, HaloPatchError, NotPythonError
from halo_patch.journal import Action
from halo_patch.target import Kind, UltralyticsTarget
from halo_patch.transforms import SourceFile



class State(str, Enum):
    """One change of apply's, as found in the tree."""

    APPLIED = "applied"
    ABSENT = "absent"
    DRIFTED = "drifted"  # there, but edited by hand since apply

    def __str__(self) -> str:
        return self.value


APPLIED, ABSENT, DRIFTED = State.APPLIED, State.ABSENT, State.DRIFTED


@dataclass(frozen=True)
class ChangeState:
    change: str  # what the change is, as users know it
    path: str  # relative to the target root
    state: State
    detail: str = ""


@dataclass(frozen=True)
class StatusReport:
    target: UltralyticsTarget
    changes: tuple[ChangeState, ...]
    interrupted: str | None = None  # "apply" or "revert" when a run was interrupted
    notes: tuple[str, ...] = ()  # state dir problems, version/path mismatches, pristine per RECORD
    state_trusted: bool = True  # False: the state dir holds something halo-patch did not write
    findings: tuple[tutorial.Finding, ...] = ()  # a hand-made HaloAttention install (see halo_patch.tutorial)
    others: tuple = ()  # (class name, findings): hand-made installs of other modules (not part of the verdict)

    @property
    def hand_made_in_use(self) -> bool:
        return any(f.in_use for f in self.findings)

    @property
    def fully_applied(self) -> bool:
        return (
            self.interrupted is None
            and self.state_trusted
            and all(c.state == APPLIED for c in self.changes)
            and not self.hand_made_in_use
        )

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
        return SourceFile.parse(footprint.decode_source(path.read_bytes(), plan.where(target, path))[0], plan.where(target, path))
    except AnchorError as exc:
        return exc


def _python_change(target, name: str, path: Path, src, predicate, remover, unchanged: frozenset = frozenset()) -> ChangeState:
    """Our node in a Python file: applied, absent, or drifted when it is there but edited by hand
    (a file still exactly as apply wrote it, `unchanged`, was not edited)."""
    rel = target.relative(path)
    if src is None:
        return ChangeState(name, rel, ABSENT, "file missing")
    if isinstance(src, AnchorError):
        return ChangeState(name, rel, ABSENT, str(src))
    try:
        present = predicate(src)
    except AnchorError as exc:
        return ChangeState(name, rel, ABSENT, str(exc))
    if rel not in unchanged and remover(src).edited:
        return ChangeState(name, rel, DRIFTED, "edited since apply; revert refuses it without --force")
    return ChangeState(name, rel, APPLIED if present else ABSENT)


def _file_change(target, name, path, expected: bytes | None) -> ChangeState:
    rel = target.relative(path)
    if not path.is_file():
        return ChangeState(name, rel, ABSENT, "file missing")
    if expected is not None and footprint.as_lf(path.read_bytes()) != expected:
        return ChangeState(name, rel, DRIFTED, "differs from what apply writes")
    return ChangeState(name, rel, APPLIED)


def is_module_row(change: ChangeState, spec) -> bool:
    """A row of a user module (`apply --module`): its file and nodes (named after it), and the yamls that build it."""
    if change.change == "model yaml":
        return footprint.uses_module(Path(change.path), spec)
    return change.change.startswith(f"{spec.class_name} ")


def check_status(target: UltralyticsTarget) -> StatusReport:
    """The state of every change apply makes (edited created files are drifted), and of the state dir.

    A tasks.py that apply cannot read (not UTF-8, a NUL byte) stops status the same way (exit 2)."""
    tasks = _parse(target, target.tasks_py)  # parsed once: libcst takes ~0.3 s on tasks.py
    if isinstance(tasks, AnchorError) and not isinstance(tasks, NotPythonError):
        raise tasks
    notes: list[str] = []
    manifest = pending = None
    trusted = True
    try:
        pending = journal.load_pending(target)
        manifest = journal.load_manifest(target)
    except HaloPatchError as exc:
        notes.append(f"state dir not trusted: {exc}")
        trusted = False
    unchanged = frozenset(journal.trusted_entries(target, manifest))  # exactly as apply wrote them
    if manifest is not None:  # files apply did not edit hold no edit of ours (an adopted install's lines)
        recorded = {e.path for e in manifest.files}
        python_files = [target.relative(edit.locate(target)) for edit in footprint.python_edits(target)]
        unchanged |= {rel for rel in python_files if rel not in recorded}
    tasks_src = tasks if isinstance(tasks, SourceFile) else None
    layout = plan.detect_layout(target, tasks_src)
    rows = [_file_change(target, f"{plan.MODULE.class_name} module", plan.module_path(target, layout), plan.module_template())]
    users = [s for s in footprint.tree_specs(target) if s.is_user]  # each module its own rows: `--module` installs
    rows += [_file_change(target, f"{s.class_name} module", plan.module_path(target, layout, s), plan.module_template(s)) for s in users]
    for edit in footprint.python_edits(target):  # every node of ours the table lists for this layout
        path = edit.locate(target)
        nodes = [n for n in edit.nodes if layout in n.layouts]
        src = (tasks if path == target.tasks_py else _parse(target, path)) if nodes else None
        for node in nodes:
            present = lambda s, node=node: node.present(s, layout, target)  # noqa: E731
            rows.append(_python_change(target, node.name, path, src, present, node.remove, unchanged))
    rows += _model_yaml_changes(target, manifest)
    if pending is not None:
        notes.append(
            f"interrupted {pending.op}: {pending.done(target)} of {len(pending.steps)} files done; "
            f"`halo-patch apply` or `halo-patch revert` finishes it"
        )
    if manifest is not None:
        notes.extend(_mismatches(target, manifest))
    elif any(r.state != ABSENT for r in rows) and not notes:
        notes.append(f"no state dir ({target.state_dir}): changes recognised by their content; `halo-patch revert` removes them")
    if target.kind is Kind.UNINSTALLED:
        notes.append(f"Ultralytics is uninstalled here; `halo-patch revert --target {target.root}` removes what halo-patch left")
    record = target.record_hashes().get(target.relative(target.tasks_py))
    if record is not None and record == journal.sha256(footprint.read_regular(target.tasks_py)):
        notes.append("tasks.py is the installed wheel's original (matches its RECORD)")
    created = frozenset(e.path for e in manifest.files if e.action is Action.CREATED) if manifest else frozenset()
    install = tutorial.find_tutorial_install(target, plan.module_template(), tasks_src, created)
    others = tutorial.find_other_installs(target, tasks_src, created)
    return StatusReport(
        target, tuple(rows), None if pending is None else pending.op, tuple(notes), trusted, install.findings, others
    )


def _model_yaml_changes(target: UltralyticsTarget, manifest: journal.Manifest | None) -> list[ChangeState]:
    """One row per model yaml apply wrote, whatever its base and placement: each one the manifest
    records, and each sealed one on disk (found without the state dir). A recorded yaml that lost
    its seal was edited; one that is gone is absent. Nothing written yet: the default base's row."""
    recorded = {e.path for e in manifest.files if e.action is Action.CREATED and e.path.endswith(".yaml")} if manifest else set()
    sealed = {target.relative(p) for p in footprint.model_yamls(target) if ownership.is_sealed_as(footprint.read_regular(p) or b"", p)}
    rows = []
    for rel in sorted(recorded | sealed):
        path = target.root / rel
        if not path.is_file():
            rows.append(ChangeState("model yaml", rel, ABSENT, "file missing"))
        elif rel in sealed:
            rows.append(ChangeState("model yaml", rel, APPLIED))
        else:
            rows.append(ChangeState("model yaml", rel, DRIFTED, "changed since apply"))
    if rows:
        return rows
    try:
        path = choose_model_yaml(target).path
    except HaloPatchError:
        path = target.models11_dir / f"yolo11{plan.MODULE.yaml_suffix}.yaml"
    return [ChangeState("model yaml", target.relative(path), ABSENT, "file missing")]


def _mismatches(target: UltralyticsTarget, manifest: journal.Manifest) -> list[str]:
    out = []
    if not target.version:  # `pip uninstall ultralytics` left our files and state behind
        out.append(
            f"applied to Ultralytics {manifest.ultralytics_version}, which is no longer installed here (uninstalled); "
            "`halo-patch revert` removes what halo-patch left"
        )
    elif manifest.ultralytics_version != target.version:
        out.append(f"applied to Ultralytics {manifest.ultralytics_version}, the tree is now {target.version} (upgraded or reinstalled)")
    if manifest.package_dir != str(target.package_dir):
        out.append(f"applied at {manifest.package_dir}, this tree is {target.package_dir} (moved or copied)")
    return out
