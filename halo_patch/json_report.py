"""`--json PATH` for status, bases, apply, revert, weights and compare (verify has its own): the same facts
as the tables, for scripts and CI. PATH `-` writes the report to stdout instead of the tables."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from halo_patch import __version__
from halo_patch.errors import HaloPatchError
from halo_patch.target import UltralyticsTarget

STDOUT = "-"


def check_path(json_path: Path | None) -> None:
    """Refuse a --json file in a directory that does not exist before anything runs (exit 2)."""
    if json_path is not None and str(json_path) != STDOUT and not json_path.parent.resolve().is_dir():
        raise HaloPatchError(f"--json {json_path}: no such directory {json_path.parent.resolve()}")


def to_stdout(json_path: Path | None) -> bool:
    return json_path is not None and str(json_path) == STDOUT


def target_dict(target: UltralyticsTarget) -> dict:
    return {
        "package_dir": str(target.package_dir),
        "root": str(target.root),
        "kind": str(target.kind),
        "ultralytics": target.version,
        "writable": target.writable,
        "elsewhere": target.elsewhere or None,
    }


def write(json_path: Path | None, data: dict) -> None:
    """Write the report, stamped with halo-patch's version (see `emit`)."""
    if json_path is not None:
        emit(json_path, json.dumps({"halo_patch": __version__, **data}, indent=2) + "\n")


def emit(json_path: Path, text: str) -> None:
    """Write a JSON text to the file, or to stdout for `-`; a failure to write it is one line on stderr,
    never a changed exit code (the work it reports is done)."""
    try:
        if to_stdout(json_path):
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            json_path.write_text(text, encoding="utf-8")
    except (OSError, ValueError) as exc:
        try:
            sys.stderr.write(f"warning: --json {json_path}: cannot write the report ({getattr(exc, 'strerror', None) or exc})\n")
        except (OSError, ValueError):
            pass


def status_dict(status, verdict: str, code: int) -> dict:
    return {
        "target": target_dict(status.target),
        "verdict": verdict,
        "fully_applied": status.fully_applied,
        "interrupted": status.interrupted,
        "state_trusted": status.state_trusted,
        "changes": [{"change": c.change, "file": c.path, "state": str(c.state), "detail": c.detail} for c in status.changes],
        "notes": list(status.notes),
        "hand_made": [{"what": f.what, "file": f.path, "in_use": f.in_use, "detail": f.detail} for f in status.findings],
        "exit_code": code,
    }


def bases_dict(target: UltralyticsTarget, bases) -> dict:
    out = []
    for base in bases:
        rows, after = base.rows, base.default_after
        out.append({
            "name": base.name,
            "family": base.family,
            "task": base.task,
            "layers": len(rows),
            "default_after": after,
            "default_after_module": str(rows[after][2]),
            "file": target.relative(base.path),
        })
    return {"target": target_dict(target), "bases": out, "exit_code": 0}


def apply_dict(target: UltralyticsTarget, plan, result: str, code: int) -> dict:
    """`result`: applied, already applied, would change (--check) or dry run."""
    from halo_patch import report

    return {
        "target": target_dict(target),
        "result": result,
        "changes": [
            {
                "change": e.why,
                "file": e.rel,
                "action": "create" if e.created else "modify",
                "lines": report.line_counts(e.before, e.after),
            }
            for e in plan.rows
        ],
        "models": [
            {
                "file": target.relative(m.path),
                "base": m.base.name,
                "build": m.build,
                "scale_note": m.scale_note,
                "args": list(m.args),
                "layers": [layer.index for layer in m.inserted],
            }
            for m in plan.models
        ],
        "exit_code": code,
    }


def revert_dict(target: UltralyticsTarget, plan, result: str) -> dict:
    """`result`: reverted or nothing to revert; each file with what revert did to it."""
    return {
        "target": target_dict(target),
        "result": result,
        "files": [{"file": e.rel, "action": e.why} for e in plan.rows],
        "notes": list(plan.notes),
        "exit_code": 0,
    }
