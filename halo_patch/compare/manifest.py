"""The manifest of a comparison's settings, and which runs are finished (checked against their files).

<out>/compare-manifest.json holds the settings every run shares. A second call with the same settings
trains nothing that is finished; other settings in the same --out are refused (exit 2), never mixed.
A run is finished when its record (<out>/.halo-compare/records/<run>.json) names the sha256 of the
checkpoint it evaluated and that file still has it: nothing is trusted that the files do not confirm.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

from halo_patch.errors import HaloPatchError

MANIFEST = "compare-manifest.json"
STATE = ".halo-compare"
FORMAT = 1


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json(path: Path, data: Any) -> None:
    """Atomically: a kill leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_json(path: Path) -> Optional[Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def check_manifest(out: Path, settings: dict) -> bool:
    """True when <out> already holds this comparison; False when <out> holds none; exit 2 for another one."""
    path = out / MANIFEST
    if not path.exists():
        return False
    old = read_json(path)
    if not isinstance(old, dict) or old.get("format") != FORMAT or not isinstance(old.get("settings"), dict):
        raise HaloPatchError(f"{path}: not a compare manifest this halo-patch wrote; choose another --out")
    changed = [k for k in sorted(set(old["settings"]) | set(settings)) if old["settings"].get(k) != settings.get(k)]
    if changed:
        detail = "; ".join(f"{k}: {_short(old['settings'].get(k))} -> {_short(settings.get(k))}" for k in changed)
        raise HaloPatchError(
            f"--out {out}: holds a comparison made with other settings ({detail}); choose another --out, or delete it to start again"
        )
    return True


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 200 else f"{len(text)} chars (sha256 {hashlib.sha256(text.encode()).hexdigest()[:12]})"


def save_manifest(out: Path, settings: dict) -> None:
    write_json(out / MANIFEST, {"format": FORMAT, "tool": "halo-patch compare", "settings": settings})


def record_path(out: Path, run_name: str) -> Path:
    return out / STATE / "records" / f"{run_name}.json"


def finished_record(out: Path, run_name: str) -> Optional[dict]:
    """The run's record when the checkpoint it evaluated is still there, byte for byte; else None."""
    record = read_json(record_path(out, run_name))
    if not isinstance(record, dict) or not isinstance(record.get("checkpoint"), str):
        return None
    ckpt = Path(record["checkpoint"])
    run_dir = out / "runs" / run_name
    if not ckpt.is_file() or run_dir.resolve() not in ckpt.resolve().parents:
        return None
    return record if sha256(ckpt) == record.get("checkpoint_sha256") else None
