"""Tables that never crop a cell: a file, a base name or a command is shown whole at any width.

Where every cell fits whole, the usual rich table. Narrower: piped, plain aligned columns (one row per
line, never wrapped or cut); on a terminal, one block per row, wrapped at the terminal's width."""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

_GAP = "  "


def _plain(cell: object) -> str:
    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        return Text.from_markup(cell).plain
    return str(cell)


class WholeTable(Table):
    """A rich Table that falls back to plain columns rather than crop or fold a cell."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.raw_rows: list[list[str]] = []

    def add_row(self, *renderables, **kwargs) -> None:  # noqa: ANN003 - rich's signature
        self.raw_rows.append([_plain(r) for r in renderables])
        super().add_row(*renderables, **kwargs)

    def headers(self) -> list[str]:
        return [_plain(c.header) for c in self.columns]

    def natural_width(self) -> int:
        """Width the boxed table needs to show every cell whole: cells + 2 padding + 1 border each, + 1."""
        widths = [max((cell_len(line) for row in [self.headers(), *self.raw_rows] for line in (row[i] if i < len(row) else "").splitlines() or [""]), default=0)
                  for i in range(len(self.columns))]
        return sum(widths) + 3 * len(widths) + 1

    def plain_lines(self) -> list[str]:
        rows = [self.headers(), *self.raw_rows]
        widths = [max(cell_len(r[i]) if i < len(r) else 0 for r in rows) for i in range(len(self.columns))]
        lines = [_plain(self.title)] if self.title else []
        for row in rows:
            cells = [(row[i] if i < len(row) else "") for i in range(len(widths))]
            padded = [c + " " * (w - cell_len(c)) for c, w in zip(cells, widths)]
            lines.append(_GAP.join(padded).rstrip())
        return lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        title_fits = not self.title or cell_len(_plain(self.title)) <= options.max_width
        if self.natural_width() <= options.max_width and title_fits:  # fits: every cell whole in the box
            yield from super().__rich_console__(console, options)
            return
        if console.is_terminal:  # too narrow for the boxed table: one block per row, wrapped, never cropped
            yield from (Text(line, overflow="fold") for line in self.record_lines())
            return
        for line in self.plain_lines():  # piped: raw segments, neither wrapped nor cropped
            yield Segment(line + "\n")

    def record_lines(self) -> list[str]:
        lines = [_plain(self.title)] if self.title else []
        headers = self.headers()
        for row in self.raw_rows:
            lines.append(row[0] if row else "")
            lines.extend(f"  {h}: {v}" for h, v in zip(headers[1:], row[1:]) if v)
        return lines
