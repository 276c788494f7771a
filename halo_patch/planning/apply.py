"""Plan apply: every file it writes, in the order the journal writes them, and the manifest to leave.

The options stop here: `--adopt`, `--layout`, `--base`/`--after`/`--args` decide what the plan
holds; the journal only runs it. Created files are written before the files that import them, so
Ultralytics imports at every instant. Entries of an earlier manifest are carried only while their
file is still exactly as halo-patch wrote it.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from halo_patch import __version__, footprint, journal, tutorial
from halo_patch.errors import AnchorError, HaloPatchError
from halo_patch.journal import Action, ChangeSet, FileEdit, Manifest, ManifestEntry, Op
from halo_patch.journal.files import umask
from halo_patch.planning.layout import Layout, detect_layout, module_path, module_template, read_file, tree_newline, where, with_newline
from halo_patch.planning.options import ApplyOptions
from halo_patch.planning.plan import Plan, Refusal
from halo_patch.planning.sources import (
    FileChange,
    addmodules_init_change,
    check_adoptable,
    choose_model_yaml,
    modules_init_change,
    new_tasks_source,
    refuse_other_layout,
    refuse_tutorial,
    yaml_change,
)
from halo_patch.target import UltralyticsTarget
from halo_patch.transforms import SourceFile
from halo_patch.transforms.source import decode_source, encode_source


def plan_apply(target: UltralyticsTarget, options: ApplyOptions = ApplyOptions(), preview: bool = False) -> Plan:
    """Every change apply would make to `target`; an empty plan means it is already applied.

    A hand-made install stops it (AdoptError) unless `options.adopt`: then the user's imports of
    their class go, an equivalent branch is reused, their files stay. `preview` (--check, --dry-run):
    the state dir is not read and the plan holds no manifest (it is never committed)."""
    try:
        options = replace(options, layout=Layout(options.layout if options.layout is not None else detect_layout(target)))
    except ValueError:
        raise HaloPatchError(f"--layout {options.layout!r}: expected one of {', '.join(l.value for l in Layout)}") from None
    model = choose_model_yaml(target, options)  # first: a wrong --base/--after fails before the slow parse of tasks.py
    changes, findings = _file_changes(target, options, model)
    refused = () if options.adopt else _edited_created_files(target, changes)
    edits, manifest, dirs, originals = _edits(target, changes), None, (), ()
    if edits and not refused and not preview:
        manifest, dirs, originals = _manifest(target, changes, options.adopt)
    shown = tuple(edits)
    ordered = tuple(sorted(edits, key=lambda e: not e.created))  # creations first, stable
    refusal = ""
    if refused:
        names = ", ".join(r.rel for r in refused)
        refusal = (
            f"{names}: changed since halo-patch wrote it (diff above); apply would overwrite that edit: "
            "move the file aside, or run `halo-patch revert --force` to delete it, then apply"
        )
    return Plan(
        ChangeSet(target, Op.APPLY, ordered, manifest, dirs, originals), refused, refusal, (), findings, (model,), shown
    )


def _file_changes(target: UltralyticsTarget, options: ApplyOptions, model) -> tuple[list[FileChange], tuple]:
    tasks_before = read_file(target.tasks_py)
    tasks_text, tasks_bom = decode_source(tasks_before, where(target, target.tasks_py))  # a BOM is kept
    tasks_src = SourceFile.parse(tasks_text, where(target, target.tasks_py))
    spec = options.module
    install = tutorial.find_tutorial_install(target, module_template(spec), tasks_src, spec=spec)
    if install.found and not options.adopt:
        raise refuse_tutorial(target, install, spec)
    check_adoptable(target, install, options.layout, spec)
    refuse_other_layout(target, options.layout, spec)
    user = install.user_modules
    new_tasks, tasks_pristine = new_tasks_source(target, tasks_text, options.layout, user, tasks_src, spec)
    nl = tree_newline(target)  # files apply creates follow the tree's line endings
    wanted = [(module_path(target, options.layout, spec), with_newline(module_template(spec), nl), f"{spec.class_name} module", True)]
    if options.layout is Layout.MODULES:
        wanted.append(modules_init_change(target, spec))
        if user and target.addmodules_init.is_file():
            wanted.append(addmodules_init_change(target, user, False, spec))
    else:
        path, after, what, pristine = addmodules_init_change(target, user, True, spec)
        wanted.append((path, after if path.exists() else with_newline(after, nl), what, pristine))
    wanted.append((target.tasks_py, encode_source(new_tasks, tasks_bom), "import + parse_model branch", tasks_pristine))
    changes = []
    for path, after, what, pristine in wanted:
        before = tasks_before if path == target.tasks_py else read_file(path)
        if before != after:
            changes.append(FileChange(path, before, after, what, pristine))
    model_change = yaml_change(target, model, nl)
    return changes + ([model_change] if model_change else []), install.findings


def _edited_created_files(target: UltralyticsTarget, changes: list[FileChange]) -> tuple[Refusal, ...]:
    """Changes that would overwrite a file apply creates but which is not as apply wrote it (a
    user's edit, or their own file): apply refuses these rather than lose the edit."""
    out = []
    for change in changes:
        created = footprint.created_file_for(target, change.path)
        if change.before is not None and created is not None and not created.is_ours(change.path, change.before):
            out.append(Refusal(target.relative(change.path), change.after, change.before, "changed since halo-patch wrote it"))
    return tuple(out)


def new_file_mode(target: UltralyticsTarget) -> int:
    """Permission bits for files apply creates: tasks.py's, without execute bits."""
    try:
        return os.stat(target.tasks_py).st_mode & 0o666
    except OSError:
        return 0o666 & ~umask()


def _edits(target: UltralyticsTarget, changes: list[FileChange]) -> list[FileEdit]:
    mode = new_file_mode(target)
    return [
        FileEdit(c.path, target.relative(c.path), c.before, c.after, None if c.before is not None else mode, c.what)
        for c in changes
    ]


def _manifest(target: UltralyticsTarget, changes: list[FileChange], adopt: bool) -> tuple[Manifest, tuple[str, ...], tuple[bytes, ...]]:
    """The manifest after apply, the dirs it creates, and the originals to store."""
    old = journal.load_manifest(target)
    trusted = {
        rel: e for rel, e in journal.trusted_entries(target, old).items() if footprint.is_our_entry(target, target.root / rel, e.action)
    }
    mode = new_file_mode(target)
    entries, originals, dirs = {}, [], []
    for change in sorted(changes, key=lambda c: c.before is not None):
        rel = target.relative(change.path)
        dirs.extend(d for d in _missing_dirs(target, change.path) if d not in dirs)
        created = old.entry(rel) if old else None
        if change.before is None:
            entries[rel] = ManifestEntry(rel, Action.CREATED, None, journal.sha256(change.after), mode)
        elif created is not None and created.action is Action.CREATED and rel in trusted:  # another module's line added
            entries[rel] = ManifestEntry(rel, Action.CREATED, None, journal.sha256(change.after), created.mode)
        else:
            original = _original(target, change, old.entry(rel) if old else None, adopt)
            originals.append(original)
            entries[rel] = ManifestEntry(rel, Action.MODIFIED, journal.sha256(original), journal.sha256(change.after), _mode(change.path))
    for rel, entry in trusted.items():
        entries.setdefault(rel, entry)
    kept_dirs = [d for d in (old.created_dirs if old else ()) if (target.root / d).is_dir()]
    manifest = Manifest(
        halo_patch_version=__version__,
        ultralytics_version=target.version,
        package_dir=str(target.package_dir),
        created_dirs=tuple(dict.fromkeys([*kept_dirs, *dirs])),
        files=tuple(entries.values()),
    )
    return manifest, tuple(dirs), tuple(originals)


def _original(target: UltralyticsTarget, change: FileChange, old: ManifestEntry | None, adopt: bool) -> bytes:
    """The file as it was before any apply. An earlier apply's stored original is kept when the file
    differs from it only by our nodes (or when adopting: the hand-made install is the original);
    else `before`, with our nodes taken out when it holds some (a half-applied file)."""
    edit = footprint.python_edit_for(target, change.path)
    stored = journal.read_blob(target, old.sha256_before) if old is not None and old.action is Action.MODIFIED else None
    if stored is not None and edit is not None and (adopt or _strip(edit, stored) == _strip(edit, change.before)):
        return stored
    others = any(spec.is_user for spec in footprint.tree_specs(target))  # a module's lines are no original
    if (change.pristine and not others) or adopt or edit is None:
        return change.before
    return _strip(edit, change.before)


def _strip(edit: footprint.PythonEdit, data: bytes) -> bytes:
    try:
        return footprint.strip_ours(edit, data, str(edit.name))[0]
    except AnchorError:
        return data


def _missing_dirs(target: UltralyticsTarget, path: Path) -> list[str]:
    out = []
    for p in [path.parent, *path.parent.parents]:
        if p == target.root or os.path.lexists(p):
            break
        out.append(target.relative(p))
    return list(reversed(out))


def _mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o7777
