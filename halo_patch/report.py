"""How results are shown: target identity, diffs, tables. The CLI owns the one Console."""

from __future__ import annotations

import difflib

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from halo_patch.target import UltralyticsTarget
from halo_patch.modules import DEFAULT as MODULE


def print_target(console: Console, target: UltralyticsTarget) -> None:
    writable = "writable" if target.writable else "[red]read-only[/]"
    console.print(
        f"Ultralytics [bold]{escape(target.version or '(uninstalled)')}[/] at [cyan]{escape(str(target.package_dir))}[/] "
        f"({target.kind}, {writable})",
        highlight=False,
    )
    if target.elsewhere:
        console.print(f"[yellow]note:[/] {escape(target.elsewhere)}", highlight=False)


def unified_diff(rel: str, before: bytes | None, after: bytes | None) -> str:
    old = (before or b"").decode("utf-8", errors="replace").splitlines(keepends=True)
    new = (after or b"").decode("utf-8", errors="replace").splitlines(keepends=True)
    a = "/dev/null" if before is None else f"a/{rel}"
    b = "/dev/null" if after is None else f"b/{rel}"
    return "".join(difflib.unified_diff(old, new, a, b, n=3))


_DIFF_STYLES = {"+": "green", "-": "red", "@": "cyan"}


def print_diff(console: Console, rel: str, before: bytes | None, after: bytes | None) -> None:
    """A unified diff, never wrapped or cropped: piped, the exact patch text (`git apply` takes it);
    on a terminal, coloured line by line (as Text: file contents are never read as markup)."""
    text = unified_diff(rel, before, after)
    if not text or console.quiet:
        return
    if not console.is_terminal:
        console.file.write(text if text.endswith("\n") else text + "\n")
        return
    for line in text.splitlines():
        console.print(Text(line, style=_DIFF_STYLES.get(line[:1], "")), soft_wrap=True, highlight=False)


def line_counts(before: bytes | None, after: bytes | None) -> str:
    plus = minus = 0
    for line in unified_diff("x", before, after).splitlines()[2:]:
        plus += line.startswith("+")
        minus += line.startswith("-")
    return f"+{plus} -{minus}"


def table(title: str, columns: list[str]) -> Table:
    """A table whose cells are never cropped (plain columns when piped or too narrow)."""
    from halo_patch.table_out import WholeTable

    t = WholeTable(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c)
    return t


def print_waiting(console: Console, target: UltralyticsTarget) -> None:
    console.print(f"[yellow]another halo-patch is running on {escape(str(target.package_dir))}; waiting for it to end[/]")


def print_recovered(console: Console, op: str | None, warning: str = "") -> None:
    if warning:
        console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True, highlight=False)
    if op is not None:
        console.print(f"[yellow]Finished the interrupted {op}[/] (from the journal in the state dir).")


def print_findings(console: Console, findings, name: str = MODULE.class_name) -> None:
    """The pieces of a hand-made HaloAttention install (tutorial.Finding), one line each (never wrapped)."""
    if not findings:
        return
    console.print(f"[bold]{escape(name)} installed by hand:[/]")
    for f in findings:
        state = "[red]in use[/]" if f.in_use else "kept  "
        console.print(f"  {state}  {f.what}  {escape(f.path)}: {escape(f.detail)}", soft_wrap=True, highlight=False)
