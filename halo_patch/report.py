"""How results are shown: target identity, diffs, tables. The CLI owns the one Console."""

from __future__ import annotations

import difflib

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from halo_patch.target import UltralyticsTarget


def print_target(console: Console, target: UltralyticsTarget) -> None:
    writable = "writable" if target.writable else "[red]read-only[/]"
    console.print(
        f"Ultralytics [bold]{target.version}[/] at [cyan]{target.package_dir}[/] ({target.kind}, {writable})",
        highlight=False,
    )


def unified_diff(rel: str, before: bytes | None, after: bytes | None) -> str:
    old = (before or b"").decode("utf-8", errors="replace").splitlines(keepends=True)
    new = (after or b"").decode("utf-8", errors="replace").splitlines(keepends=True)
    a = "/dev/null" if before is None else f"a/{rel}"
    b = "/dev/null" if after is None else f"b/{rel}"
    return "".join(difflib.unified_diff(old, new, a, b, n=3))


def print_diff(console: Console, rel: str, before: bytes | None, after: bytes | None) -> None:
    text = unified_diff(rel, before, after)
    if text:
        console.print(Syntax(text, "diff", theme="ansi_dark", background_color="default", word_wrap=False))


def line_counts(before: bytes | None, after: bytes | None) -> str:
    plus = minus = 0
    for line in unified_diff("x", before, after).splitlines()[2:]:
        plus += line.startswith("+")
        minus += line.startswith("-")
    return f"+{plus} -{minus}"


def table(title: str, columns: list[str]) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c)
    return t


def print_findings(console: Console, findings) -> None:
    """The pieces of a hand-made HaloAttention install (tutorial.Finding), one line each (never wrapped)."""
    if not findings:
        return
    console.print("[bold]HaloAttention installed by hand:[/]")
    for f in findings:
        state = "[red]in use[/]" if f.in_use else "kept  "
        console.print(f"  {state}  {f.what}  {escape(f.path)}: {escape(f.detail)}", soft_wrap=True, highlight=False)
