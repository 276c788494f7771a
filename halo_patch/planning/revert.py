"""Plan a revert from what is recognisably ours in the tree now (pure: reads only).

Revert never copies a stored original over the current file blindly: it takes our nodes out of the
current tasks.py by CST (so a user's own edits, or a newer release after an upgrade, stay byte for
byte), and deletes only files whose bytes are still what apply wrote. The manifest only sharpens
that: where a file is still exactly what apply wrote, its stored original is put back.
"""

from __future__ import annotations

import os
from pathlib import Path

from dataclasses import replace

from halo_patch import footprint, journal, transforms, tutorial
from halo_patch.modules import DEFAULT, ModuleSpec
from halo_patch.errors import AnchorError
from halo_patch.journal import Action, ChangeSet, FileEdit, Manifest, Op
from halo_patch.planning import trust
from halo_patch.planning.plan import Plan, Refusal
from halo_patch.target import Kind, UltralyticsTarget
from halo_patch.transforms import SourceFile
from halo_patch.transforms.source import decode_source


def _label(target: UltralyticsTarget, path: Path) -> str:
    return f"{path} (Ultralytics {target.version or 'uninstalled'})"


def plan_revert(target: UltralyticsTarget, force: bool, only: ModuleSpec | None = None) -> Plan:
    """Every file revert changes, from the tree as it is now and the validated state (pure: reads only).

    `only` (`revert --module NAME`): that module's nodes, file and the yamls that build it go; every
    byte of the other modules stays, and the manifest is kept for them."""
    specs = footprint.tree_specs(target)
    others = tuple(s for s in specs if only is not None and s != only and _present(target, s))
    planner = _Planner(target, journal.load_manifest(target), force, restore=not others)
    edits = footprint.python_edits(target, (only,) if only is not None else specs)
    for edit in reversed(edits):  # tasks.py first: it imports the files revert deletes
        planner.take_out_nodes(edit)
    created = footprint.created_files(target, (only,) if only is not None else specs)
    if only is not None:
        created = [c for c in created if c.name == f"{only.class_name} module"]
        yaml_row = next(c for c in footprint.CREATED_FILES if c.locate is footprint.model_yamls)
        for path in footprint.model_yamls(target, specs):
            if footprint.uses_module(path, only):
                planner.delete_if_ours(path, yaml_row, by_manifest=True)
    for row in created:
        for path in row.locate(target):
            planner.delete_if_ours(path, row, by_manifest=True)
    for entry in planner.recorded.values():  # named by the manifest outside the table: only when recognisably ours
        if entry.action is Action.CREATED:
            path = target.root / entry.path
            row = footprint.created_file_for(target, path)
            if row is not None and (only is None or row in created):
                planner.delete_if_ours(path, row, by_manifest=False)
    return planner.result(kept_manifest=bool(others), spec=only or DEFAULT)


def _present(target: UltralyticsTarget, spec: ModuleSpec) -> bool:
    """The module's file is in the tree as apply writes it (a module still installed)."""
    return any(path.is_file() and footprint.as_lf(path.read_bytes()) == spec.template_bytes() for path in footprint.module_file_row(spec).locate(target))


class _Planner:
    """Collects a revert's steps, report rows, refusals and notes while it walks the tables."""

    def __init__(self, target: UltralyticsTarget, manifest: Manifest | None, force: bool, restore: bool = True) -> None:
        self.target = target  # the tree
        self.manifest = manifest  # validated state, or None
        self.force = force  # --force: edited nodes and files of ours go too
        self.trusted = {  # manifest entries whose file is still exactly what apply wrote
            rel: e
            for rel, e in journal.trusted_entries(target, manifest).items()
            if footprint.is_our_entry(target, target.root / rel, e.action) and (restore or e.action is Action.CREATED)
        }  # another module stays (`revert --module`): no stored original is put back, our nodes go by CST
        self.recorded = {e.path: e for e in manifest.files} if manifest else {}  # every entry, trusted or not
        self.record = target.record_hashes()  # the installed wheel's RECORD hashes
        self.steps: list[FileEdit] = []
        self.refused: list[Refusal] = []
        self.notes: list[str] = []
        self.seen: set[str] = set()  # files already planned

    def _step(self, path: Path, before: bytes, after: bytes | None, row: str) -> None:
        rel = self.target.relative(path)
        self.steps.append(FileEdit(path, rel, before, after, why=row))
        self.seen.add(rel)

    def take_out_nodes(self, edit: footprint.PythonEdit) -> None:
        """A Python file apply edits: our nodes out by CST; the stored original when it is unchanged."""
        target, path = self.target, edit.locate(self.target)
        rel = target.relative(path)
        data = footprint.read_regular(path)
        if data is None and path.is_file():
            raise AnchorError(
                f"{_label(target, path)}: cannot be read; expected a readable Ultralytics source file "
                "(it may still import the files revert deletes, so nothing changed)"
            )
        if data is None or self.record.get(rel) == journal.sha256(data):
            return  # absent, or exactly the installed wheel's file
        if self.manifest is not None and rel not in self.recorded:
            return  # apply did not edit it: what looks like ours was there before (an adopted install)
        if not footprint.is_inside(target, path):
            self.notes.append(f"kept {rel}: a symlink out of the package tree")
            return
        entry = self.trusted.get(rel)
        if entry is not None and entry.action is Action.MODIFIED:  # exactly as apply wrote it: the stored original
            original = journal.read_blob(target, entry.sha256_before)
            if original is not None and trust.is_our_original(target, path, data, original):
                self._step(path, data, original, "restored")
                return
            self.notes.append(
                f"ignored the stored original of {rel} in {target.state_dir}: not the file halo-patch computes from "
                "this tree (a state dir from elsewhere?); only what is recognisably ours is taken out"
            )
        if entry is not None and entry.action is Action.CREATED and trust.is_earlier_created(target, path, data):
            self._step(path, data, None, "deleted")  # apply created it exactly so (the previous release: no marks)
            return
        try:
            stripped, removal = footprint.strip_ours(edit, data, _label(target, path), self.force)
        except AnchorError as exc:  # it may still import the files revert deletes: take nothing out
            raise AnchorError(
                f"{exc}; revert must take our imports out of it before deleting what they import, "
                "so nothing changed; fix the file (or put back its original), then re-run revert"
            ) from None
        if removal.edited and not self.force:
            forced = footprint.strip_ours(edit, data, _label(target, path), True)[0]
            names = ", ".join(dict.fromkeys(removal.edited))
            self.refused.append(Refusal(rel, data, forced, f"our {names} changed since apply"))
            return
        if stripped == data:
            return
        if edit.stub is not None and footprint.as_lf(stripped) == edit.stub:
            self._step(path, data, None, "deleted")
        else:
            self._step(path, data, stripped, "our lines removed")

    def delete_if_ours(self, path: Path, created: footprint.CreatedFile, by_manifest: bool) -> None:
        """A file apply creates: deleted while its bytes are ours (or, for a file the manifest records
        exactly as written, what the previous release wrote); an edited one (the manifest says apply
        created it) is refused, or deleted with --force; anything else is kept."""
        rel = self.target.relative(path)
        if rel in self.seen or not os.path.lexists(path):
            return
        self.seen.add(rel)
        if path.is_symlink() or not path.is_file():
            self.notes.append(f"kept {rel}: not a regular file, so not one halo-patch wrote")
            return
        if not footprint.is_inside(self.target, path):
            self.notes.append(f"kept {rel}: a directory on its way is a symlink out of the package tree")
            return
        if self._still_imported(path):
            self.notes.append(f"kept {rel}: {self.target.relative(path.parent / '__init__.py')} still imports it, by a line without halo-patch's mark")
            return
        data = path.read_bytes()
        entry = self.recorded.get(rel) if by_manifest else None
        earlier = rel in self.trusted and created.was_ours is not None and created.was_ours(path, data)
        if created.is_ours(path, data) or earlier:
            self._step(path, data, None, "deleted")
        elif entry is not None and entry.action is Action.CREATED:
            if self.force:
                self._step(path, data, None, "deleted (edited, --force)")
            else:
                self.refused.append(Refusal(rel, data, None, "changed since apply created it"))
        else:
            self.notes.append(f"kept {rel}: not as halo-patch writes it")

    def _still_imported(self, path: Path) -> bool:
        """Whether the package beside a module file still imports it once this revert's edits are made
        (a line that is not ours): deleting the file would break `import ultralytics`."""
        if path.suffix != ".py":
            return False
        init = path.parent / "__init__.py"
        rel = self.target.relative(init)
        step = next((s for s in self.steps if s.rel == rel), None)
        planned = step.after if step is not None else footprint.read_regular(init)
        if planned is None:
            return False
        try:
            text = decode_source(planned, rel)[0]
            src = SourceFile.parse(text, rel)
            return any(transforms.has_package_import(src, s) for s in footprint.tree_specs(self.target) if s.file_stem == path.stem)
        except AnchorError:
            return False

    def result(self, kept_manifest: bool = False, spec: ModuleSpec = DEFAULT) -> Plan:
        target = self.target
        dirs = [target.relative(d) for d in footprint.owned_dirs(target)]
        dirs += [d for d in (self.manifest.created_dirs if self.manifest else ()) if d not in dirs]
        if target.kind is Kind.UNINSTALLED:  # pip left these dirs only because our files were in them
            for s in self.steps:
                dirs += [target.relative(p) for p in s.path.parents if target.package_dir in [p, *p.parents]]
        notes = self.notes + (_state_mismatches(target, self.manifest) if self.manifest else [])
        refusal = ""
        if self.refused:
            names = "; ".join(f"{r.rel}: {r.why}" for r in self.refused)
            refusal = f"{names} (diff above: what --force would take out); nothing changed; re-run with --force to remove our changes anyway"
        manifest = self._kept_manifest() if kept_manifest else None
        changes = ChangeSet(target, Op.REVERT, tuple(self.steps), manifest, tuple(dict.fromkeys(dirs)))
        findings = () if self.steps else tutorial.find_tutorial_install(target, spec.template_bytes(), spec=spec).findings
        return Plan(changes, tuple(self.refused), refusal, tuple(notes), findings)


    def _kept_manifest(self) -> Manifest | None:
        """The manifest left for the modules that stay: deleted files out, edited ones as revert leaves them."""
        if self.manifest is None:
            return None
        after = {s.rel: s.after for s in self.steps}
        files = []
        for e in self.manifest.files:
            if e.path not in after:
                files.append(e)
            elif after[e.path] is not None:  # a file of ours that keeps the other modules' lines
                files.append(replace(e, sha256_after=journal.sha256(after[e.path])))
        return replace(self.manifest, files=tuple(files))


def _state_mismatches(target: UltralyticsTarget, manifest: Manifest) -> list[str]:
    out = []
    if target.version and manifest.ultralytics_version != target.version:
        out.append(
            f"the state records Ultralytics {manifest.ultralytics_version}, the tree is {target.version} "
            "(upgraded or reinstalled): only what is still recognisably ours is taken out"
        )
    if manifest.package_dir != str(target.package_dir):
        out.append(f"the state records {manifest.package_dir}, this tree is {target.package_dir} (moved or copied)")
    return out

