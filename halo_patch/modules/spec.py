"""What halo-patch installs, said once: a `ModuleSpec` per module (start reading here).

A spec is the whole identity of one module: its class name, the file it is copied to, the template
it is copied from, how parse_model builds it (the branch apply writes and the hand-written forms
that do the same), the channel rule, the yaml row and its argument grammar, the suffix of the yaml
apply writes, and what verify checks of a built layer. Everything else of halo-patch reads a spec;
nothing else names a module. A second module is a template plus a spec (see `halo.py`), and each
installed spec is its own change set in one tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from importlib.resources import files
from typing import Any


class Channels(str, Enum):
    """How parse_model gives the module its channels (the branch apply writes)."""

    SAME = "same"  # attention-like: output = input width; `c2 = ch[f]; args = [c2, *args]`
    OUT = "out"  # conv-like: the first yaml arg is the output width, scaled; `args = [c1, c2, *args[1:]]`
    NONE = "none"  # the module needs no channels: args passed as they are


@dataclass(frozen=True)
class Arg:
    """One yaml argument of the module's row, as `--args` takes it."""

    name: str
    low: int
    high: int


@dataclass(frozen=True)
class ModuleSpec:
    """One module halo-patch installs into an Ultralytics tree."""

    class_name: str  # the class, as tasks.py and the yaml name it
    file_stem: str  # the module file apply writes: nn/Addmodules/<file_stem>.py (or nn/modules/)
    template: str  # its bytes: a resource of halo_patch.templates
    channels: Channels  # the channel rule (parse_model branch form, verify's channel check)
    branch_body: str  # the body apply writes under `elif m is <class_name>:` (unindented)
    equivalent_bodies: tuple[str, ...]  # hand-written bodies that build it the same way (reused by --adopt)
    args: tuple[Arg, ...]  # the row's arguments in order
    required_args: int  # how many of `args` must be given
    default_args: tuple[int, ...]  # `--args` when not given
    args_usage: str  # the grammar of `--args`, as an error message says it
    defaults_note: str = ""  # what the default yaml args mean, for --help
    source: bytes | None = None  # a user's module (`apply --module`): the installed file's bytes (header + source)

    # ---------------------------------------------------------------- names derived from the spec

    @property
    def yaml_suffix(self) -> str:
        """`<base stem><yaml_suffix>.yaml`: the yaml apply writes beside its base."""
        return f"-{self.class_name}"

    @property
    def adopt_suffix(self) -> str:
        """The yaml suffix when a hand-made `<stem>-<Class>.yaml` already has the plain name (`--adopt`)."""
        return f"-{self.class_name}-halo-patch"

    @property
    def branch_source(self) -> str:
        """The parse_model branch apply writes, as an `if` (placed as an `elif` in the chain)."""
        body = "".join(f"    {line}\n" for line in self.branch_body.splitlines())
        return f"if m is {self.class_name}:\n{body}"

    @property
    def package_import(self) -> str:
        """The line apply adds to the package that holds the module file."""
        return f"from .{self.file_stem} import {self.class_name}\n"

    def template_bytes(self) -> bytes:
        """The module file apply writes, as shipped (LF line endings); a user module's sealed copy."""
        if self.source is not None:
            return self.source
        return files("halo_patch.templates").joinpath(self.template).read_bytes()

    # ---------------------------------------------------------------- the yaml row

    @property
    def is_user(self) -> bool:
        """A module from a user's file (`apply --module`), not one shipped with halo-patch."""
        return self.source is not None

    def row(self, args: tuple[int, ...]) -> list[Any]:
        """The yaml row apply inserts: `[-1, 1, <class_name>, [args]]`."""
        return [-1, 1, self.class_name, list(args)]

    def format_row(self, args: tuple[int, ...]) -> str:
        return f"[-1, 1, {self.class_name}, [{', '.join(str(a) for a in args)}]]"

    def call(self, args: tuple[int, ...]) -> str:
        """How the layer is built, for reports: `HaloAttention(c_in, 2, 1)`."""
        lead = {Channels.SAME: ["c_in"], Channels.OUT: ["c_in"]}.get(self.channels, [])
        return f"{self.class_name}({', '.join([*lead, *(str(a) for a in args)])})"

    def parse_args(self, text: str) -> tuple[int, ...]:
        """`--args` text as integers within the grammar; ValueError (with `args_usage`) otherwise.
        A user module's args are yaml scalars (integers, numbers, true/false, names) without a grammar."""
        if self.is_user:
            return tuple(_scalar(a.strip()) for a in text.split(",")) if text.strip() else ()
        try:
            numbers = tuple(int(a) for a in text.split(","))
        except ValueError:
            raise ValueError(self.args_usage) from None
        if not self.required_args <= len(numbers) <= len(self.args):
            raise ValueError(self.args_usage)
        if any(not a.low <= n <= a.high for n, a in zip(numbers, self.args)):
            raise ValueError(self.args_usage)
        return numbers


def _scalar(text: str):
    """One `--args` item of a user module, as the yaml row will hold it."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text in ("True", "False", "true", "false"):
        return text.lower() == "true"
    if not text.isidentifier() and not text.replace(".", "").isidentifier():
        raise ValueError(f"expected numbers, true/false or names separated by commas (got {text!r})")
    return text
