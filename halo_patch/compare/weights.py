"""--weights: the base starts from SRC.pt, each variant from SRC carried into it by `halo-patch weights`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from halo_patch.errors import HaloPatchError


def weights_command(src: Path, out: Path, yaml: str, target: Path) -> list[str]:
    """`halo-patch weights SRC -o OUT --yaml Y --target T`: Y as YOLO takes it (yolo11n-HaloAttention.yaml) or a path."""
    return [sys.executable, "-m", "halo_patch", "weights", str(src), "-o", str(out), "--yaml", yaml, "--target", str(target)]


def carry_weights(c, console: Console) -> dict[str, Path]:
    """label -> the checkpoint the model's runs start from (SRC itself for the base); carried once per comparison."""
    src = c.options.weights
    folder = c.out / ".halo-compare" / "weights" / c.settings["weights"]["sha256"][:16]
    folder.mkdir(parents=True, exist_ok=True)
    out = {c.matrix.base.label: src}
    for m in c.matrix.variants:
        dest = folder / f"{m.label}.pt"
        if not dest.is_file():
            console.print(f"Carrying {escape(str(src))} into {escape(m.label)} (halo-patch weights)", highlight=False)
            tmp = dest.with_name(f".{dest.name}.tmp.pt")
            proc = subprocess.run(weights_command(src, tmp, m.model, c.target.package_dir), capture_output=True, text=True)
            if proc.returncode != 0 or not tmp.is_file():
                last = _reason(proc.stderr) or _reason(proc.stdout) or f"exit {proc.returncode}"
                raise HaloPatchError(f"--weights {src}: halo-patch weights could not carry it into {m.model}: {last}")
            tmp.replace(dest)
        out[m.label] = dest
    return out


def _reason(text: str) -> str:
    """The last line of the command's output that says something (not a box border drawn around it)."""
    lines = [line.strip(" │╭╮╰╯─") for line in text.splitlines()]
    return next((line for line in reversed(lines) if any(ch.isalnum() for ch in line)), "")
