"""A model yaml's layer graph, the remapping of `from` indices when rows are inserted, and the proof.

Rows are Ultralytics' `[from, repeats, module, args]`. `from` is absolute (>= 0) or relative (< 0,
counted back from the row itself; -1 on row 0 is the image). Inserting HaloAttention "after layer
N" puts the new layer at N + 1 reading N, and every layer that read N now reads the new layer: the
new layer sits on every edge out of N. Every other edge is unchanged, whatever form its index has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

From = Union[int, list]
IMAGE = -1  # the source of row 0's `-1`: the input image


@dataclass(frozen=True)
class Layer:
    """One row as a graph node: what it is, and the absolute indices of the layers it reads."""

    repeats: Any
    module: Any
    args: Any
    sources: tuple[int, ...]


def is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def find_row_problem(row: Any) -> str | None:
    """Why a row is not `[from, repeats, module, args]`, or None."""
    if not isinstance(row, list) or len(row) != 4:
        return "is not a [from, repeats, module, args] list"
    f = row[0]
    if not (is_index(f) or (isinstance(f, list) and f and all(is_index(x) for x in f))):
        return f"has `from` {f!r}; expected an integer or a list of integers"
    if not isinstance(row[2], str):
        return f"has module {row[2]!r}; expected a module name"
    return None


def resolve_index(i: int, f: int) -> int:
    """The absolute index row `i` reads through `f` (IMAGE for row 0's -1)."""
    return i + f if f < 0 else f


def read_sources(i: int, f: From) -> tuple[int, ...]:
    return tuple(resolve_index(i, x) for x in (f if isinstance(f, list) else [f]))


def find_source_problem(i: int, f: From) -> str | None:
    """Why row `i` cannot read `f` (a layer that does not come before it), or None."""
    for s in read_sources(i, f):
        if s >= i or (s < 0 and not (i == 0 and s == IMAGE)):
            return f"reads layer {s}, which does not come before it"
    return None


def read_layers(rows: list[list[Any]]) -> tuple[Layer, ...]:
    return tuple(Layer(r[1], r[2], r[3], read_sources(i, r[0])) for i, r in enumerate(rows))


@dataclass(frozen=True)
class Splice:
    """Where new rows go: `after` holds old layer indices, each gets one new layer right after it."""

    after: tuple[int, ...]  # sorted, distinct

    def position(self, old: int) -> int:
        """New index of old layer `old`."""
        return old if old == IMAGE else old + sum(1 for a in self.after if a < old)

    def inserted_index(self, a: int) -> int:
        """New index of the layer inserted after old layer `a`."""
        return self.position(a) + 1

    def output_of(self, old: int) -> int:
        """New index of what used to read old layer `old`: its HaloAttention when one follows it."""
        return self.inserted_index(old) if old in self.after else self.position(old)

    def remap_from(self, i: int, f: From) -> From:
        """Row `i`'s `from` in the new numbering, keeping its form (absolute stays absolute, relative relative)."""
        if isinstance(f, list):
            return [self.remap_from(i, x) for x in f]
        if f < 0:
            source = resolve_index(i, f)
            return f if source == IMAGE else self.output_of(source) - self.position(i)
        return self.output_of(f)

    def remap_rows(self, rows: list[list[Any]], new_row: list[Any]) -> list[list[Any]]:
        """All rows with `from` remapped and a copy of `new_row` after each insertion point."""
        out: list[list[Any]] = []
        for i, row in enumerate(rows):
            out.append([self.remap_from(i, row[0]), *row[1:]])
            if i in self.after:
                out.append(list(new_row))
        return out


def contract(new_rows: list[list[Any]], inserted: tuple[int, ...]) -> tuple[Layer, ...]:
    """The graph of `new_rows` with the rows at `inserted` taken out and their readers reconnected
    to what each read; indices renumbered. Equal to the base graph iff the splice kept every edge."""
    layers = read_layers(new_rows)
    taken = set(inserted)
    through = {k: layers[k].sources[0] for k in inserted}
    renumber: dict[int, int] = {IMAGE: IMAGE}
    for k in range(len(layers)):
        if k not in taken:
            renumber[k] = len(renumber) - 1
    def reconnect(s: int) -> int:
        while s in through:
            s = through[s]
        return renumber[s]
    return tuple(
        Layer(l.repeats, l.module, l.args, tuple(reconnect(s) for s in l.sources)) for k, l in enumerate(layers) if k not in taken
    )


def find_splice_problem(base_rows: list[list[Any]], new_rows: list[list[Any]], splice: Splice, new_row: list[Any]) -> str | None:
    """Why `new_rows` is not `base_rows` with `new_row` spliced in after each of `splice.after`, or None.

    Proof: (1) each inserted row is `new_row` and reads exactly the layer it follows; (2) no other row
    reads that layer any more; (3) taking the inserted rows out and reconnecting their readers gives
    back the base graph, node for node and edge for edge.
    """
    inserted = tuple(splice.inserted_index(a) for a in splice.after)
    layers = read_layers(new_rows)
    if len(new_rows) != len(base_rows) + len(inserted):
        return f"has {len(new_rows)} layers; expected {len(base_rows) + len(inserted)}"
    for a, k in zip(splice.after, inserted):
        if new_rows[k][1:] != new_row[1:] or layers[k].sources != (splice.position(a),):
            return f"layer {k} is not {new_row[2]} reading layer {splice.position(a)}"
        readers = [j for j, l in enumerate(layers) if splice.position(a) in l.sources and j != k]
        if readers:
            return f"layer {readers[0]} still reads layer {splice.position(a)}, bypassing {new_row[2]} at {k}"
    contracted = contract(new_rows, inserted)
    for j, (got, want) in enumerate(zip(contracted, read_layers(base_rows))):
        if got != want:
            return f"base layer {j} changed: {want} became {got}"
    return None
