"""One lock per real tree: `flock` on the package dir itself."""

from __future__ import annotations

import fcntl
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from halo_patch import lock_holder
from halo_patch.errors import HaloPatchError, LockedError
from halo_patch.journal import tempfiles
from halo_patch.target import UltralyticsTarget

LOCK_WAIT_ENV = "HALO_PATCH_LOCK_WAIT"  # seconds to wait for another run on the same tree (default 120)


def lock_wait() -> float:
    """Seconds to wait for the lock: $HALO_PATCH_LOCK_WAIT (a finite number >= 0), else 120."""
    raw = os.environ.get(LOCK_WAIT_ENV)
    if raw is None:
        return 120.0
    try:
        wait = float(raw)
    except ValueError:
        wait = math.nan
    if not math.isfinite(wait) or wait < 0:
        raise HaloPatchError(f"{LOCK_WAIT_ENV}={raw!r}: expected a number of seconds (0 or more)")
    return wait


@contextmanager
def locked(target: UltralyticsTarget, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the tree's lock: `flock` on the package dir itself (its real inode: a symlinked entry and
    the real path share it; nothing in $TMPDIR for others to pre-create). Waits up to
    $HALO_PATCH_LOCK_WAIT seconds (default 120) for another run, then LockedError."""
    wait = lock_wait()
    where = target.package_dir if target.package_dir.is_dir() else target.root
    fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None and wait > 0:
                on_wait()
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockedError(
                            f"{target.package_dir}: locked by another program, {lock_holder.describe(where)}; "
                            f"waited {wait:g} s (${LOCK_WAIT_ENV}); try again when it ends"
                        ) from None
                    time.sleep(0.05)
        tempfiles.sweep(target)  # what an earlier run cut short left behind
        try:
            yield
        finally:
            tempfiles.sweep(target)  # and what this one leaves, even after a second Ctrl-C
    finally:
        os.close(fd)
