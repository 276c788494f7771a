"""The one error family of halo-patch. Only the CLI turns these into exit codes."""

from __future__ import annotations


class HaloPatchError(Exception):
    """A user-facing failure: the message is one line that says what is wrong and what to do."""

    exit_code = 2


class TargetError(HaloPatchError):
    """The target is missing, is not an Ultralytics tree, or cannot be written."""


class AnchorError(HaloPatchError):
    """A structure that apply edits (parse_model, the `m in ...` chain, yolo11.yaml) is missing."""


class NotPythonError(AnchorError):
    """A source file apply edits does not parse as Python (status shows it; apply and revert stop)."""


class DriftError(HaloPatchError):
    """A file changed since apply; revert refuses without --force."""


class LockedError(HaloPatchError):
    """Another halo-patch run holds the lock on this target (and did not finish in time)."""


class StateError(HaloPatchError):
    """The state dir holds something halo-patch did not write (bad JSON, a path out of the tree, ...)."""


class ForeignJournal(StateError):
    """journal.json holds a step apply or revert does not make: the interrupted run is not finished."""


class ConflictError(HaloPatchError):
    """A file changed between planning and writing it (another program wrote it meanwhile)."""


class RollbackError(HaloPatchError):
    """A failed run could not undo every file; the message lists each one with the command to fix it."""

    exit_code = 4


class UnfinishedError(HaloPatchError):
    """Every file of a run changed, but the state dir could not be updated; running again finishes it."""

    exit_code = 4


class AdoptError(HaloPatchError):
    """A hand-made (tutorial) HaloAttention install that apply will not take over as it stands."""

    def __init__(self, message: str, findings: tuple = ()) -> None:
        super().__init__(message)
        self.findings = findings  # what was found (tutorial.Finding), shown above the error line
