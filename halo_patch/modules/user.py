"""A user's module file (`apply --module FILE.py`) as a spec: checked, then sealed for the tree.

The installed copy is the user's source (LF) under one header line that names the class and the
channel rule and holds the sha256 of every byte after it:

    # halo-patch module SPPELAN channels=out sha256:<hex>

So an installed module is recognised, and its spec rebuilt, from the tree alone (`installed_specs`):
the header is trusted only while the hash matches the rest of the file, never from the state dir.
Reads files only: nothing here imports the user's file or the target's packages.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import libcst as cst

from halo_patch.errors import HaloPatchError
from halo_patch.modules.spec import Channels, ModuleSpec

HEADER = "# halo-patch module "
BUILTIN_ROOTS = frozenset({"torch", "ultralytics", "__future__"})

BODIES = {
    Channels.SAME: "c2 = ch[f]\nargs = [c2, *args]\n",
    Channels.OUT: "c1, c2 = ch[f], args[0]\nc2 = make_divisible(min(c2, max_channels) * width, 8)\nargs = [c1, c2, *args[1:]]\n",
    Channels.NONE: "c2 = ch[f]\n",
}
USAGE = {
    Channels.SAME: "the layer's own arguments after its input channels, comma-separated (may be empty)",
    Channels.OUT: "the output width first (an integer, scaled like Ultralytics' own blocks), then the other arguments",
    Channels.NONE: "the layer's arguments as the constructor takes them, comma-separated",
}


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def sealed_source(class_name: str, channels: Channels, source: bytes) -> bytes:
    """The installed copy: header line + the user's source with LF line endings."""
    body = source.replace(b"\r\n", b"\n")
    return f"{HEADER}{class_name} channels={channels.value} sha256:{_digest(body)}\n".encode() + body


def make_spec(class_name: str, file_stem: str, channels: Channels, installed: bytes) -> ModuleSpec:
    body = BODIES[channels]
    return ModuleSpec(
        class_name=class_name,
        file_stem=file_stem,
        template="",
        channels=channels,
        branch_body=body,
        equivalent_bodies=(body,),
        args=(),
        required_args=0,
        default_args=(),
        args_usage=f"expected {USAGE[channels]}",
        source=installed,
    )


def read_sealed(data: bytes, file_stem: str) -> ModuleSpec | None:
    """The spec of an installed copy whose header matches its bytes; None for anything else."""
    first, sep, body = data.replace(b"\r\n", b"\n").partition(b"\n")
    if not sep or not first.startswith(HEADER.encode()):
        return None
    parts = first[len(HEADER):].decode("ascii", errors="replace").split(" ")
    if len(parts) != 3 or not parts[0].isidentifier() or not parts[2].startswith("sha256:"):
        return None
    try:
        channels = Channels(parts[1].removeprefix("channels="))
    except ValueError:
        return None
    if not parts[1].startswith("channels=") or parts[2].removeprefix("sha256:") != _digest(body):
        return None
    return make_spec(parts[0], file_stem, channels, first + b"\n" + body)


def installed_specs(folders: list[Path]) -> tuple[ModuleSpec, ...]:
    """Every sealed user module in `folders` (nn/Addmodules/, nn/modules/), by file name."""
    out = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.py")):
            try:
                head = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
            except OSError:
                continue
            spec = read_sealed(head, path.stem)
            if spec is not None and all(s.class_name != spec.class_name for s in out):
                out.append(spec)
    return tuple(out)


# ---------------------------------------------------------------- checking a user's file


@dataclass(frozen=True)
class Loaded:
    spec: ModuleSpec
    chosen: str  # how the channel rule was chosen, for the report


def load_module_file(path: Path, class_name: str | None, channels: str | None, site_dirs: list[Path], taken: dict[str, str]) -> Loaded:
    """The user's file as a spec, or HaloPatchError (one line) naming what is wrong. `site_dirs`: where
    the target's packages are; `taken`: class names that already exist in the tree -> where."""
    label = f"--module {path}"
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise HaloPatchError(f"{label}: cannot be read ({getattr(exc, 'strerror', None) or exc}); expected a UTF-8 Python file") from None
    if path.suffix != ".py" or not path.stem.isidentifier():
        raise HaloPatchError(f"{label}: expected a Python file named like a module (letters, digits, _; ending .py)")
    try:
        module = cst.parse_module(text)
        compile(text, str(path), "exec", dont_inherit=True)
    except (cst.ParserSyntaxError, SyntaxError, ValueError) as exc:
        line = getattr(exc, "raw_line", None) or getattr(exc, "lineno", None) or "?"
        raise HaloPatchError(f"{label}: does not parse as Python (line {line}); expected the tutorial's module file") from None
    classes = {s.name.value: s for s in module.body if isinstance(s, cst.ClassDef)}
    modules = [n for n, c in classes.items() if _is_nn_module(c)]
    if class_name is None:
        if len(modules) != 1:
            found = ", ".join(modules) or "none"
            raise HaloPatchError(f"{label}: expected exactly one top-level nn.Module subclass (found: {found}); name one with --class")
        class_name = modules[0]
    elif class_name not in classes:
        raise HaloPatchError(f"{label}: defines no top-level class {class_name} (classes: {', '.join(classes) or 'none'}); expected --class to name one")
    missing = _missing_imports(module, site_dirs)
    if missing:
        raise HaloPatchError(f"{label}: imports {', '.join(missing)}, not installed in the target's environment; install them there or drop the import")
    if class_name in taken:
        raise HaloPatchError(f"{label}: class {class_name} clashes with {taken[class_name]}; rename the class (and --class)")
    rule, chosen = _channel_rule(classes[class_name], channels, label)
    spec = make_spec(class_name, path.stem, rule, sealed_source(class_name, rule, text.encode("utf-8")))
    return Loaded(spec, chosen)


def _is_nn_module(node: cst.ClassDef) -> bool:
    for base in node.bases:
        value = base.value
        name = value.attr.value if isinstance(value, cst.Attribute) else value.value if isinstance(value, cst.Name) else ""
        if name == "Module":
            return True
    return False


def _channel_rule(node: cst.ClassDef, given: str | None, label: str) -> tuple[Channels, str]:
    if given is not None:
        try:
            return Channels(given), f"--channels {given}"
        except ValueError:
            raise HaloPatchError(f"--channels {given!r}: expected one of same, out, none") from None
    init = next((s for s in node.body.body if isinstance(s, cst.FunctionDef) and s.name.value == "__init__"), None)
    if init is None:
        raise HaloPatchError(f"{label}: {node.name.value} has no __init__ to read its channels from; expected --channels same|out|none")
    names = [p.name.value for p in init.params.params]
    params = names[1:] if names and names[0] == "self" else names
    required = [p.name.value for p in init.params.params[len(names) - len(params):] if p.default is None]
    shown = f"{node.name.value}({', '.join(params)})"
    if params[:2] == ["c1", "c2"]:
        return Channels.OUT, f"{shown}: input and output channels -> out"
    channelish = {"c1", "c", "ch", "dim", "channels", "in_channels", "inp", "in_planes", "channel", "in_ch", "c_in"}
    if required and required[0] in channelish and not any(p in ("c2", "out_channels", "c_out", "oup", "out_ch") for p in params):
        return Channels.SAME, f"{shown}: one channel argument -> same"
    if not required:
        return Channels.NONE, f"{shown}: no required argument -> none"
    raise HaloPatchError(f"{label}: cannot tell the channel rule of {shown}; expected --channels same|out|none")


def _missing_imports(module: cst.Module, site_dirs: list[Path]) -> list[str]:
    roots: list[str] = []

    class Imports(cst.CSTVisitor):
        def visit_Import(self, node: cst.Import) -> None:
            for alias in node.names:
                roots.append(_dotted(alias.name).split(".")[0])

        def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
            if not node.relative and node.module is not None:  # relative: inside ultralytics.nn
                roots.append(_dotted(node.module).split(".")[0])

    module.visit(Imports())
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    out = []
    for root in dict.fromkeys(roots):
        if root in BUILTIN_ROOTS or root in stdlib or root in sys.builtin_module_names:
            continue
        if not any(_provides(d, root) for d in site_dirs):
            out.append(root)
    return out


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return node.value if isinstance(node, cst.Name) else ""


def _provides(folder: Path, root: str) -> bool:
    """`root` importable from `folder` (a package dir, a module file or an extension), found without importing."""
    if (folder / root).is_dir() or (folder / f"{root}.py").is_file():
        return True
    try:
        return any(name.startswith(f"{root}.") and name.endswith((".so", ".pyd")) for name in os.listdir(folder))
    except OSError:
        return False
