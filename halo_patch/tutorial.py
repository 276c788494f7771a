"""Recognise a HaloAttention installed by hand (the blog tutorial), by structure, without running it.

A tutorial install is any of: a module file in `nn/Addmodules/` (any name) defining `class
HaloAttention`, its import in `Addmodules/__init__.py`, an import in tasks.py that is not the line
apply writes, a parse_model branch in a form apply does not write (`m in {..., HaloAttention}`,
`m in (HaloAttention,)`, HaloAttention in the first `m in {...}` set or `base_modules`), a model yaml
under `cfg/models/` using HaloAttention that apply did not write. The copied tutorial module is also
recognised by shape: `masked_fill` with the unfolded padding mask not negated (inverted mask) and
`assert h % block == 0` (crashes on feature maps the block does not divide).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import libcst as cst
import yaml

from halo_patch import ownership
from halo_patch.errors import AnchorError
from halo_patch.modules import DEFAULT, ModuleSpec
from halo_patch.target import UltralyticsTarget
from halo_patch.transforms import ADDMODULES, CLASS_NAME, MODULE_STEM, MODULES_IMPORT, SourceFile
from halo_patch.transforms.parse_model_branch import HaloBranch, find_halo_branch
from halo_patch.transforms.source import ImportLine, import_lines
from halo_patch.transforms.tasks_import import TASKS_PACKAGE

MASK_DEFECT = "inverted padding mask (border blocks attend only to zero padding; attention never learns)"
ASSERT_DEFECT = "asserts H and W divisible by the block: crashes on other sizes (e.g. 640x480 images, P5 20x15)"


@dataclass(frozen=True)
class UserModule:
    """A file in Addmodules/ that defines its own HaloAttention class."""

    path: Path
    module: str  # its import path, e.g. ultralytics.nn.Addmodules.HaloAttention
    inverted_mask: bool
    divisibility_assert: bool
    other_classes: tuple[str, ...]  # top-level classes HaloAttention does not use (other modules in the file)

    @property
    def defects(self) -> tuple[str, ...]:
        return tuple(d for d, present in ((MASK_DEFECT, self.inverted_mask), (ASSERT_DEFECT, self.divisibility_assert)) if present)


@dataclass(frozen=True)
class Finding:
    """One piece of a hand-made install, as status and apply list it."""

    what: str
    path: str  # relative to the target root
    detail: str
    in_use: bool  # it puts the user's class to work (apply refuses without --adopt); else kept as it is


@dataclass(frozen=True)
class TutorialInstall:
    modules: tuple[UserModule, ...]
    findings: tuple[Finding, ...]

    @property
    def found(self) -> bool:
        """A hand-made HaloAttention is in use: apply refuses without --adopt."""
        return any(f.in_use for f in self.findings)

    @property
    def user_modules(self) -> frozenset[str]:
        return frozenset(m.module for m in self.modules)


def read_source(target: UltralyticsTarget, path: Path) -> SourceFile | None:
    """The parsed file, or None when it is missing, not UTF-8 or not Python (apply reports those itself)."""
    try:
        return SourceFile.parse(path.read_bytes().decode("utf-8"), f"{path} (Ultralytics {target.version})")
    except (OSError, UnicodeDecodeError, AnchorError):
        return None


def find_tutorial_install(
    target: UltralyticsTarget,
    template: bytes,
    tasks: SourceFile | None = None,
    created: frozenset[str] = frozenset(),
    spec: ModuleSpec = DEFAULT,
) -> TutorialInstall:
    """Every piece of a hand-made HaloAttention install in `target`; our own files (`template`, a yaml
    with our seal line, the files in `created`: tree-relative paths the manifest records) are not one.

    After `apply --adopt` the user's module file and yaml are still listed, as kept and not in use.
    """
    name = spec.class_name
    modules = tuple(_user_modules(target, template, spec))
    user = frozenset(m.module for m in modules)
    init = target.addmodules_init
    init_src = read_source(target, init) if init.is_file() else None
    init_lines = [l for l in import_lines(init_src, ADDMODULES) if l.module in user] if init_src is not None else []
    tasks = tasks if tasks is not None else read_source(target, target.tasks_py)
    tasks_lines = [l for l in import_lines(tasks, TASKS_PACKAGE) if _is_foreign_import(l, user, bool(init_lines), name)] if tasks else []
    imported = {l.module for l in init_lines + tasks_lines}
    findings = [
        Finding(f"{name} module", target.relative(m.path), _describe(m, m.module in imported, name), m.module in imported)
        for m in modules
    ]
    findings += [Finding("Addmodules import", target.relative(init), _render(init_src, l.index), True) for l in init_lines]
    findings += [Finding("tasks.py import", target.relative(target.tasks_py), _render(tasks, l.index), True) for l in tasks_lines]
    branch = _branch(tasks, spec) if tasks is not None else None
    if branch is not None and (not branch.marked or modules):  # our marked branch (edited or not) is no sign of a hand-made install
        verdict = "builds it as halo-patch does (reused)" if branch.equivalent else "builds it with other arguments than halo-patch's"
        findings.append(Finding("parse_model branch", target.relative(target.tasks_py), f"`{branch.header}` {verdict}", not branch.equivalent))
    findings += [Finding("model yaml", target.relative(p), f"uses {name}; kept as it is", False) for p in user_yamls(target, created, name)]
    return TutorialInstall(modules, tuple(findings))


def find_other_installs(
    target: UltralyticsTarget, tasks: SourceFile | None = None, created: frozenset[str] = frozenset()
) -> tuple[tuple[str, tuple[Finding, ...]], ...]:
    """Hand-made installs of modules other than the built-in one: every nn.Module class defined in a file
    of nn/Addmodules/ that halo-patch did not write and that parse_model's chain builds (a helper class
    is no module of its own), with the pieces found for it (as for HaloAttention)."""
    from halo_patch.modules.user import make_spec, read_sealed
    from halo_patch.modules.spec import Channels

    folder = target.addmodules_dir
    out = []
    for path in sorted(folder.glob("*.py")) if folder.is_dir() else ():
        if path.name == "__init__.py" or not path.is_file():
            continue
        data = path.read_bytes()
        if read_sealed(data, path.stem) is not None:
            continue
        src = read_source(target, path)
        for node in src.module.body if src is not None else ():
            if isinstance(node, cst.ClassDef) and node.name.value != CLASS_NAME and _subclasses_module(node):
                spec = make_spec(node.name.value, path.stem, Channels.SAME, b"")
                if tasks is None or _branch(tasks, spec) is None:
                    continue
                found = find_tutorial_install(target, b"", tasks, created, spec)
                if found.findings and not any(name == node.name.value for name, _ in out):
                    out.append((node.name.value, found.findings))
    return tuple(out)


def _subclasses_module(node: cst.ClassDef) -> bool:
    for base in node.bases:
        value = base.value
        if (isinstance(value, cst.Attribute) and value.attr.value == "Module") or (isinstance(value, cst.Name) and value.value == "Module"):
            return True
    return False


def _branch(tasks: SourceFile, spec: ModuleSpec = DEFAULT) -> HaloBranch | None:
    try:
        return find_halo_branch(tasks, spec)
    except AnchorError:
        return None  # no chain: apply names that error itself


def _is_foreign_import(line: ImportLine, user: frozenset[str], package_imports_user: bool, name: str = CLASS_NAME) -> bool:
    """An import in tasks.py that binds the user's HaloAttention, or one from a module halo-patch does not use."""
    if line.module in user:
        return True
    if line.module == ADDMODULES:  # brings the user's class only while the package imports it
        return package_imports_user and (line.names is None or name in line.names)
    return line.names is not None and name in line.names and line.module != MODULES_IMPORT


def _render(src: SourceFile, index: int) -> str:
    return src.module.code_for_node(src.module.body[index]).strip()


def _describe(module: UserModule, in_use: bool, name: str = CLASS_NAME) -> str:
    head = f"defines class {name}" + ("" if in_use else ", kept but no longer imported (its checkpoints still load)")
    if module.defects:
        head += "; the tutorial's module: " + "; ".join(module.defects)
    if module.other_classes:
        head += "; also defines " + ", ".join(module.other_classes)
    return head


def _user_modules(target: UltralyticsTarget, template: bytes, spec: ModuleSpec = DEFAULT):
    folder = target.addmodules_dir
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.py")):
        if path.name == "__init__.py" or (path.stem == spec.file_stem and path.read_bytes().replace(b"\r\n", b"\n") == template):  # ours, in a CRLF tree too
            continue
        src = read_source(target, path)
        if src is None:
            continue
        shape = module_shape(src, spec.class_name)
        if shape is not None:
            yield UserModule(path, f"{ADDMODULES}.{path.stem}", *shape)


def module_shape(src: SourceFile, name: str = CLASS_NAME) -> tuple[bool, bool, tuple[str, ...]] | None:
    """For a file defining `class HaloAttention`: (inverted mask, divisibility assert, the other top-level
    classes HaloAttention does not use); None when the file defines no such class."""
    classes = {s.name.value: s for s in src.module.body if isinstance(s, cst.ClassDef)}
    if name not in classes:
        return None
    shape = _ShapeVisitor()
    classes[name].visit(shape)
    others = tuple(n for n in classes if n != name and n not in shape.names and not n.startswith("_"))
    return shape.inverted_mask, shape.divisibility_assert, others


def user_yamls(target: UltralyticsTarget, created: frozenset[str] = frozenset(), name: str = CLASS_NAME) -> list[Path]:
    """Model yamls under cfg/models/ that use HaloAttention and that apply did not write: no seal line
    (an edited yaml of ours keeps it, its hash no longer matching) and not in `created`."""
    models = target.models_dir
    out = []
    for path in sorted(models.rglob("*.yaml")) if models.is_dir() else ():
        if not path.is_file():
            continue
        data = path.read_bytes()
        if name.encode() not in data or ownership.carries_seal(data):  # a yaml file, not Python: bytes are fine
            continue
        if target.relative(path) in created:
            continue
        if _uses_class(data, name):
            out.append(path)
    return out


def _uses_class(data: bytes, name: str = CLASS_NAME) -> bool:
    try:
        model = yaml.safe_load(data)
    except yaml.YAMLError:
        return False
    rows = [r for key in ("backbone", "head") for r in (model.get(key) or [] if isinstance(model, dict) else [])]
    return any(isinstance(r, list) and len(r) > 2 and str(r[2]).split(".")[-1] == name for r in rows)


class _ShapeVisitor(cst.CSTVisitor):
    """Collects, inside the class, the names it uses and the two shapes of the tutorial's defects."""

    def __init__(self) -> None:
        self.names: set[str] = set()  # every bare name used
        self.masked: set[str] = set()  # names passed un-negated as masked_fill's mask
        self.unfolded: set[str] = set()  # names assigned from an expression that calls unfold
        self.negated: set[str] = set()  # names assigned a negation (`~x`, `x.logical_not()`)
        self.divisibility_assert = False  # an `assert ... % ... == 0`

    @property
    def inverted_mask(self) -> bool:
        return bool(self.masked & self.unfolded - self.negated)

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in ("masked_fill", "masked_fill_") and node.args:
            if isinstance(node.args[0].value, cst.Name):
                self.masked.add(node.args[0].value.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        targets = {t.target.value for t in node.targets if isinstance(t.target, cst.Name)}
        calls = _CallNames()
        node.value.visit(calls)
        if "unfold" in calls.names:
            self.unfolded |= targets
        if isinstance(node.value, cst.UnaryOperation) and isinstance(node.value.operator, cst.BitInvert) or "logical_not" in calls.names:
            self.negated |= targets

    def visit_Assert(self, node: cst.Assert) -> None:
        finder = _ModuloZero()
        node.test.visit(finder)
        self.divisibility_assert |= finder.found


class _CallNames(cst.CSTVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()  # the last name of every called function (`F.unfold` -> unfold)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else None
        if name:
            self.names.add(name)


class _ModuloZero(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found = False  # a comparison `<a> % <b> == 0`

    def visit_Comparison(self, node: cst.Comparison) -> None:
        left = node.left
        if isinstance(left, cst.BinaryOperation) and isinstance(left.operator, cst.Modulo):
            self.found |= any(
                isinstance(c.operator, cst.Equal) and isinstance(c.comparator, cst.Integer) and c.comparator.value == "0"
                for c in node.comparisons
            )
