"""What a Ctrl-C left behind, in words that are true: the journal tells this module where a run is,
and the CLI's error boundary asks it for the line to print."""

from __future__ import annotations

from enum import Enum


class Phase(Enum):
    NOTHING = "nothing"  # no file of the tree written yet (planning, verify, printing a preview)
    RECOVERED = "recovered"  # an earlier interrupted run was finished; nothing else written
    WRITING = "writing"  # between the first and the last tree file (or inside a rollback)
    ROLLED_BACK = "rolled back"  # every file back as it was
    MADE = "made"  # every tree file written; the state dir's bookkeeping not finished
    DONE = "done"  # the run is complete (interrupted while printing)


_now: dict = {"phase": Phase.NOTHING, "op": ""}


def reset() -> None:
    _now.update(phase=Phase.NOTHING, op="")


def enter(phase: Phase, op: str) -> None:
    _now.update(phase=phase, op=op)


def _result(op: str) -> str:
    from halo_patch.modules import DEFAULT

    return f"{DEFAULT.class_name} is applied" if op == "apply" else f"{DEFAULT.class_name} is taken out"


def message() -> str:
    """The line after `error:` for a Ctrl-C, true to where the run was."""
    phase, op = _now["phase"], _now["op"]
    if phase is Phase.RECOVERED:
        return f"interrupted (Ctrl-C); the earlier interrupted {op} was finished first ({_result(op)}); nothing else changed"
    if phase is Phase.WRITING:
        return (
            f"interrupted (Ctrl-C) while the {op} was changing files; the journal in the state dir records it: "
            f"`halo-patch status` shows where it stopped, `halo-patch {op}` finishes it"
        )
    if phase is Phase.ROLLED_BACK:
        return f"interrupted (Ctrl-C); the {op} was rolled back, nothing changed"
    if phase is Phase.MADE:
        return (
            f"interrupted (Ctrl-C) after the {op} wrote every file: {_result(op)}; "
            f"run `halo-patch {op}` again to finish the state dir's bookkeeping"
        )
    if phase is Phase.DONE:
        return f"interrupted (Ctrl-C) after the {op} finished: {_result(op)}"
    return "interrupted (Ctrl-C); nothing changed"
