"""The one plan type of both verbs: the change set the journal runs, and what the report shows."""

from __future__ import annotations

from dataclasses import dataclass

from halo_patch.journal import ChangeSet, FileEdit
from halo_patch.target import UltralyticsTarget


@dataclass(frozen=True)
class Refusal:
    """A file the run will not change as it stands (a hand edit of ours): shown as a diff, then refused."""

    rel: str
    diff_from: bytes | None  # the diff shown: from these bytes ...
    diff_to: bytes | None  # ... to these (None: the file would be deleted)
    why: str


@dataclass(frozen=True)
class Plan:
    """Everything a run does, frozen before the first write (pure: planning only reads)."""

    changes: ChangeSet  # the file edits in order and the state to leave: what the journal runs
    refused: tuple[Refusal, ...] = ()  # non-empty: the run must not start (`refusal` says why)
    refusal: str = ""  # the one-line error when `refused`
    notes: tuple[str, ...] = ()  # files kept, version/path mismatches
    findings: tuple = ()  # a hand-made install found (tutorial.Finding; with --adopt, taken over)
    models: tuple = ()  # the model yamls apply writes (model_yaml.YamlPlan), with their proof
    shown: tuple[FileEdit, ...] = ()  # the edits in the order the report lists them (default: as written)

    @property
    def target(self) -> UltralyticsTarget:
        return self.changes.target

    @property
    def edits(self) -> tuple[FileEdit, ...]:
        return self.changes.edits

    @property
    def rows(self) -> tuple[FileEdit, ...]:
        return self.shown or self.changes.edits

    @property
    def empty(self) -> bool:
        return not self.changes.edits
