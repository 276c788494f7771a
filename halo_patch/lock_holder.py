"""Who holds the `flock` on a tree: the pid, its user and command, read from /proc (Linux).

Any user who can read the package dir can lock it, so a message that only says "another halo-patch
is running" may be untrue; this names the holder where the system lets us see it."""

from __future__ import annotations

import os
from pathlib import Path


def holders(path: Path) -> list[int]:
    """Pids holding a FLOCK on `path`'s inode, per /proc/locks (empty when unknown or not Linux)."""
    try:
        st = os.stat(path)
        lines = Path("/proc/locks").read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return []
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    pids = []
    for line in lines:
        parts = line.split()
        if "->" in parts or len(parts) < 6 or parts[1] != "FLOCK":
            continue  # a waiter, or another kind of lock
        try:
            major, minor, inode = parts[5].split(":")
            key = (int(major, 16), int(minor, 16), int(inode))
            pid = int(parts[4])
        except ValueError:
            continue
        if key == want and pid > 0:
            pids.append(pid)
    return list(dict.fromkeys(pids))


def describe_pid(pid: int) -> str:
    """`pid 123 (user alice: python -m halo_patch apply)`, with what /proc shows of it."""
    proc = Path("/proc") / str(pid)
    user = command = ""
    try:
        uid = next(int(line.split()[1]) for line in (proc / "status").read_text().splitlines() if line.startswith("Uid:"))
        try:
            import pwd

            user = pwd.getpwuid(uid).pw_name
        except (KeyError, ImportError):
            user = f"uid {uid}"
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    try:
        command = " ".join((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", errors="replace").split())  # one line
    except OSError:
        pass
    details = ": ".join(x for x in (f"user {user}" if user else "", command) if x)
    return f"pid {pid} ({details})" if details else f"pid {pid}"


def describe(path: Path) -> str:
    """Who holds the lock on `path`, in words, for a message."""
    pids = holders(path)
    if not pids:
        return "held by a process not listed in /proc/locks (hidden from this user, or it has just let go)"
    return "held by " + ", ".join(describe_pid(p) for p in pids)
