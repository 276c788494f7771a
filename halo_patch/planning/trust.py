"""What of the state dir may be acted on: only what halo-patch recomputes from the tree now.

A `.halo-patch/` may come from elsewhere (committed in a clone, copied from another machine), so no
byte of it reaches the tree and no step of it is finished on its word alone:

- a stored original is put back only when it is the current file with our marked edits taken out,
  or a file that apply (this release, or the previous one that wrote no marks) turns into the
  current file;
- a created file is deleted or written only when its bytes are our own template or our sealed yaml;
- a journal step is finished only when it is one that apply or revert makes by those two rules.

Anything else is ignored with a one-line warning; revert then falls back to recognition.
"""

from __future__ import annotations

from pathlib import Path

from halo_patch import footprint, journal, tutorial
from halo_patch.errors import ForeignJournal, HaloPatchError
from halo_patch.journal import Op
from halo_patch.marker import unmarked
from halo_patch.modules import DEFAULT, ModuleSpec
from halo_patch.planning.layout import Layout, detect_layout, module_template, where
from halo_patch.planning.sources import new_package_init, new_tasks_source
from halo_patch.target import UltralyticsTarget
from halo_patch.transforms import SourceFile
from halo_patch.transforms.modules_export import add_modules_export
from halo_patch.transforms.source import decode_source, encode_source
from halo_patch.transforms.user_imports import drop_package_imports


def _stripped(edit: footprint.PythonEdit, data: bytes) -> bytes:
    return footprint.strip_ours(edit, data, edit.name)[0]


def _applied(target: UltralyticsTarget, path: Path, original: bytes, spec: ModuleSpec = DEFAULT) -> bytes | None:
    """What apply (of `spec`) writes over `original` at `path` (a Python file it edits), from the tree as it is."""
    label = where(target, path)
    text, bom = decode_source(original, label)
    layout = detect_layout(target)
    user = tutorial.find_tutorial_install(target, module_template(spec), spec=spec).user_modules
    if path == target.tasks_py:
        out = new_tasks_source(target, text, layout, user, spec=spec)[0]
    elif path == target.addmodules_init:
        if layout is Layout.ADDMODULES:
            out = new_package_init(text, label, user, spec)
        else:
            out = drop_package_imports(SourceFile.parse(text, label), user, keep_export=False, name=spec.class_name).code
    elif path == target.modules_init:
        out = add_modules_export(SourceFile.parse(text, label), spec).code
    else:
        return None
    return encode_source(out, bom)


def _without_marks(data: bytes, label: str) -> bytes:
    text, bom = decode_source(data, label)
    return encode_source(unmarked(SourceFile.parse(text, label).module).code, bom)


def is_our_original(target: UltralyticsTarget, path: Path, current: bytes, original: bytes) -> bool:
    """True when halo-patch itself computes `original` from `current` (a Python file it edits):
    `current` with our marked edits taken out, or a file apply turns into `current` (an adopted
    install's original; the previous release's unmarked edits)."""
    edit = footprint.python_edit_for(target, path)
    if edit is None:
        return False
    try:
        if _stripped(edit, current) == original:
            return True
        for spec in footprint.tree_specs(target):
            applied = _applied(target, path, original, spec)
            if applied is not None and (applied == current or _without_marks(applied, edit.name) == current):
                return True
        return False
    except HaloPatchError:
        return False


def is_earlier_created(target: UltralyticsTarget, path: Path, data: bytes) -> bool:
    """True when `data` is the Python file apply creates at `path` as the previous release wrote it (no marks)."""
    if path != target.addmodules_init:
        return False
    try:
        created = new_package_init(None, where(target, path)).encode("utf-8")
        return footprint.as_lf(data) == _without_marks(created, str(path))
    except HaloPatchError:
        return False


def is_our_step(target: UltralyticsTarget, op: Op, path: Path, current: bytes | None, after: bytes | None) -> bool:
    """True when bringing `path` from `current` to `after` (None: absent) is a step apply or revert makes."""
    if current == after:
        return True
    created = footprint.created_file_for(target, path)
    if created is not None:
        ours = created.was_ours or created.is_ours
        return all(data is None or ours(path, data) for data in (current, after))
    edit = footprint.python_edit_for(target, path)
    if edit is None:
        return False
    if current is None or after is None:  # apply creates, or revert deletes, only a file that was its stub
        data = after if current is None else current
        try:
            return edit.stub is not None and footprint.as_lf(_stripped(edit, data)) == edit.stub
        except HaloPatchError:
            return False
    upper, lower = (after, current) if op is Op.APPLY else (current, after)
    return is_our_original(target, path, upper, lower)


def finish_interrupted(target: UltralyticsTarget) -> tuple[Op | None, str]:
    """Finish an interrupted run from the journal when every pending step is one of ours; else leave
    the tree as it is. Returns the op finished (or None) and a one-line warning ('' when none)."""
    try:
        return journal.recover(target, check=lambda op, path, cur, new: is_our_step(target, op, path, cur, new)), ""
    except ForeignJournal as exc:
        return None, f"ignored {target.state_dir / 'journal.json'}: {exc}; not a run halo-patch made here, so the tree is left as it is"
