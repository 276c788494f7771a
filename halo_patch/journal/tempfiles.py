"""Every locked run sweeps its own temp files (`.<name>.halo-tmp`), when it takes the lock and when it
lets go of it, so a run cut short (a second Ctrl-C inside a rollback, a kill) leaves none behind for long."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

from halo_patch.journal.files import TMP_SUFFIX
from halo_patch.journal.state import BLOBS
from halo_patch.target import UltralyticsTarget


def our_dirs(target: UltralyticsTarget) -> list[Path]:
    """The dirs halo-patch writes into: the state dir, nn/ and its layout dirs, cfg/models/ and below."""
    out = [target.state_dir, target.state_dir / BLOBS, target.nn_dir, target.addmodules_dir, target.modules_dir]
    models = target.models_dir
    if models.is_dir() and not models.is_symlink():
        for here, dirs, _ in os.walk(models):  # never follows a symlinked dir
            out.append(Path(here))
    return out


def leftovers(target: UltralyticsTarget) -> list[Path]:
    """Temp files of ours in those dirs: regular files or links named `.<name>.halo-tmp`."""
    suffix = TMP_SUFFIX
    found = []
    for d in dict.fromkeys(our_dirs(target)):
        if d.is_symlink() or not d.is_dir():
            continue
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            path = d / name
            if name.startswith(".") and name.endswith(suffix) and len(name) > len(suffix) + 1:
                if path.is_symlink() or (path.is_file()):
                    found.append(path)
    return found


def sweep(target: UltralyticsTarget) -> None:
    """Delete our temp files (the caller holds the tree's lock). A Ctrl-C while sweeping waits for it."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        for path in leftovers(target):
            try:
                os.unlink(path)  # the link itself, never what it points to
            except OSError:
                pass
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
