"""Fault injection for the crash-safety tests, owned by the tests: nothing shipped reads a switch.

halo_patch.journal.files passes `checkpoint(label, path)` before every file operation, a function
that does nothing. `armed` (in this process) and `fork_server.ForkServer.run` (a real `halo-patch`
process forked from a test-owned server) replace it with a `Faults`, which counts the operations,
can log each one, and stops the chosen ones as asked:
`<k>:<raise|kill|enospc|interrupt>[,...]`.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from halo_patch.journal import files

class InjectedFault(RuntimeError):
    """Raised at a fault point chosen with `raise`."""


class Faults:
    """A replacement for files.checkpoint: count file operations, log them, stop the chosen ones."""

    def __init__(self, spec: str = "", log: str | Path | None = None) -> None:
        self.ops = 0
        self.log = log
        self.points = [(int(i), how) for i, _, how in (p.partition(":") for p in filter(None, spec.split(",")))]

    def __call__(self, label: str, path: Path) -> None:
        self.ops += 1
        if self.log:
            with open(self.log, "a", encoding="utf-8") as fh:
                fh.write(f"{self.ops} {label} {path}\n")
        for index, how in self.points:
            if index != self.ops:
                continue
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if how == "interrupt":
                raise KeyboardInterrupt
            if how == "enospc":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            raise InjectedFault(f"injected fault at file operation {self.ops} ({label} {path})")


@contextmanager
def armed(spec: str = "", log: str | Path | None = None) -> Iterator[Faults]:
    """Run the code inside with fault points armed (the operation count starts from zero)."""
    faults = Faults(spec, log)
    original = files.checkpoint
    files.checkpoint = faults
    try:
        yield faults
    finally:
        files.checkpoint = original

