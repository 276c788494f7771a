"""Derive yolo11-HaloAttention.yaml from the target's own yolo11.yaml (data in, text out)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import yaml

from halo_patch.errors import AnchorError

SOURCE_NAME = "yolo11.yaml"
OUTPUT_NAME = "yolo11-HaloAttention.yaml"  # one file: the scale letter comes from the requested name


@dataclass(frozen=True)
class RowTemplate:
    """The row to insert and where: after backbone row `after`, so it becomes layer `after + 1`."""

    after: int
    row: list[Any]

    @classmethod
    def load(cls) -> RowTemplate:
        data = yaml.safe_load(files("halo_patch.templates").joinpath("halo_row.yaml").read_text(encoding="utf-8"))
        return cls(after=int(data["insert_after_backbone_row"]), row=list(data["row"]))


def shift_from(value: Any, insert_at: int) -> Any:
    """A row's `from` after a row is inserted at `insert_at`.

    Absolute indices at or past the insertion point move by one; relative ones (-1, ...) stay, so
    the row after the new one now reads the new layer's output.
    """
    if isinstance(value, list):
        return [shift_from(v, insert_at) for v in value]
    return value + 1 if value >= insert_at else value


def insert_row(model: dict[str, Any], template: RowTemplate) -> dict[str, Any]:
    """A copy of a YOLO model dict with the template row inserted and every `from` kept pointing right."""
    backbone, head = model["backbone"], model["head"]
    insert_at = template.after + 1
    shifted = [
        [shift_from(row[0], insert_at), *row[1:]] for row in backbone + head
    ]
    rows = shifted[:insert_at] + [list(template.row)] + shifted[insert_at:]
    n_backbone = len(backbone) + 1
    return {**model, "backbone": rows[:n_backbone], "head": rows[n_backbone:]}


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip().removesuffix("\n...")


def render(model: dict[str, Any], header: list[str]) -> str:
    """YAML text in Ultralytics' own layout: flow-style rows, each with its layer index."""
    lines = [f"# {h}" for h in header] + [""]
    index = 0
    for key, value in model.items():
        if key in ("backbone", "head"):
            lines.append(f"{key}:")
            for row in value:
                lines.append(f"  - {_flow(row)} # {index}")
                index += 1
        elif isinstance(value, dict):
            lines.append(f"{key}:")
            lines.extend(f"  {k}: {_flow(v)}" for k, v in value.items())
        else:
            lines.append(f"{key}: {_flow(value)}")
    return "\n".join(lines) + "\n"


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_rows(model: dict[str, Any], where: str) -> None:
    """Every row is `[from, repeats, module, args]` with integer `from` (or a list of them)."""
    for part in ("backbone", "head"):
        for i, row in enumerate(model[part]):
            ok = isinstance(row, list) and len(row) == 4 and isinstance(row[2], str) and isinstance(row[3], list)
            frm = row[0] if ok else None
            if not ok or not (_is_index(frm) or (isinstance(frm, list) and frm and all(_is_index(f) for f in frm))):
                raise AnchorError(f"{where}: {part} row {i} is {row!r}; expected [from, repeats, module, args] with integer from")


def derive(source_text: str, where: str, header: list[str]) -> str:
    """yolo11-HaloAttention.yaml text from yolo11.yaml text; checked by loading it back."""
    try:
        model = yaml.safe_load(source_text)
    except yaml.YAMLError:
        raise AnchorError(f"{where}: not valid YAML; expected Ultralytics' yolo11.yaml") from None
    template = RowTemplate.load()
    if not isinstance(model, dict) or not isinstance(model.get("backbone"), list) or not isinstance(model.get("head"), list):
        raise AnchorError(f"{where}: no `backbone:` and `head:` lists; expected Ultralytics' yolo11.yaml")
    _check_rows(model, where)
    if len(model["backbone"]) <= template.after:
        raise AnchorError(f"{where}: backbone has {len(model['backbone'])} rows; expected a row {template.after} to insert after")
    new_model = insert_row(model, template)
    text = render(new_model, header)
    if yaml.safe_load(text) != new_model:  # the renderer must not change any value
        raise AnchorError(f"{where}: could not render {OUTPUT_NAME} faithfully")
    return text
