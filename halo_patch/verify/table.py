"""How verify reports: the verdict line, the final table, tracebacks and the --json file."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.text import Text

from halo_patch import __version__, report
from halo_patch.errors import HaloPatchError
from halo_patch.modules import DEFAULT
from halo_patch.target import UltralyticsTarget
from halo_patch.verify.interpreter import Interpreter
from halo_patch.verify.options import FAILED, PASSED, SKIPPED, Options, Step

TRACEBACK_LINES = 24  # of a failed step's traceback, printed under the table
_STYLE = {PASSED: "green", FAILED: "red", SKIPPED: "yellow"}


def verdict_line(target: UltralyticsTarget, steps: list[Step], failed: list[Step], name: str = DEFAULT.class_name) -> str:
    if failed:
        first = failed[0]
        more = f" (and {len(failed) - 1} more failed steps)" if len(failed) > 1 else ""
        return f"[red]verify failed[/] at {first.label}: {first.detail}{more}"
    skipped = [s for s in steps if s.result == SKIPPED]
    note = f" ({', '.join(f'{s.label} skipped: {s.detail}' for s in skipped)})" if skipped else ""
    env = next((s.data for s in steps if s.id == "import"), {})
    where = f" with python {env.get('python_version')}, torch {env.get('torch')} on {env.get('device_name')}" if env else ""
    return f"[green]verify passed[/]: {name} works in Ultralytics {target.version} at {target.package_dir}{where}{note}"


def print_tracebacks(console: Console, failed: list[Step]) -> None:
    for step in failed:
        if step.error:
            lines = step.error.rstrip().splitlines()
            shown = lines[-TRACEBACK_LINES:]
            cut = f" (last {len(shown)} of {len(lines)} lines; --json keeps all)" if len(shown) < len(lines) else ""
            console.print(f"[bold]{step.label}[/]{cut}:", highlight=False)
            console.print("\n".join(shown), markup=False, highlight=False, soft_wrap=True)


def print_table(console: Console, target: UltralyticsTarget, steps: list[Step], seconds: float) -> None:
    t = report.table(f"halo-patch verify: {target.package_dir} ({seconds:.1f} s)", ["step", "result", "time", "detail"])
    t.columns[0].no_wrap = True
    t.columns[-1].overflow = "fold"  # paths in full, never cut with an ellipsis
    for s in steps:
        t.add_row(s.label, f"[{_STYLE[s.result]}]{s.result}[/]", f"{s.seconds:.1f} s" if s.seconds else "", s.detail)
    console.print(t)


def write_json(
    path: Path,
    target: UltralyticsTarget,
    interpreter: Interpreter,
    options: Options,
    steps: list[Step],
    code: int,
    verdict: str,
    seconds: float,
) -> None:
    env = next((s.data for s in steps if s.id == "import" and s.result == PASSED), None)
    data = {
        "halo_patch": __version__,
        "passed": code == 0,
        "exit_code": code,
        "verdict": Text.from_markup(verdict).plain,
        "seconds": round(seconds, 3),
        "target": {"package_dir": str(target.package_dir), "kind": target.kind.value, "ultralytics": target.version},
        "interpreter": {
            "python": interpreter.python,
            "pythonpath": None if interpreter.pythonpath is None else str(interpreter.pythonpath),
            "reason": interpreter.reason,
            "note": interpreter.note,
        },
        "environment": env,
        "options": {
            "scales": list(options.scales),
            "device": options.device,
            "imgsz": options.imgsz,
            "train": options.train,
            "export": options.export,
            "bases": list(options.bases),
        },
        "steps": [
            {
                "id": s.id,
                "step": s.label,
                "scale": s.model.scale if s.model else None,
                "model": s.model.name if s.model else None,
                "yaml": str(s.model.yaml_path) if s.model else None,
                "result": s.result,
                "seconds": s.seconds,
                "detail": s.detail,
                "data": s.data,
                "error": s.error,
            }
            for s in steps
        ],
    }
    try:
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise HaloPatchError(f"{path}: cannot write the JSON report ({exc.strerror or exc})") from None
