"""Reading what a user points us at, safely: regular files only, bounded in size, never hanging; and
Python sources checked for nesting too deep for the parsers before libcst sees them."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

from halo_patch.errors import AnchorError

MAX_YAML_BYTES = 4 * 1024 * 1024  # a model yaml is a few KiB; anything this big is not one
MAX_NESTING = 200  # a real Ultralytics source nests < 40 deep; libcst recurses per level (and crashes far deeper)


def read_regular(path: Path, label: str, expected: str, limit: int = MAX_YAML_BYTES) -> bytes:
    """The bytes of `path` if it is a regular file of at most `limit` bytes, else one-line AnchorError
    (`<label>: <what is wrong>; expected <expected>`). Opened non-blocking, so a FIFO never hangs, and
    checked with fstat on the opened file; never reads more than `limit` + 1 bytes (/dev/zero)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise AnchorError(f"{label}: no such file; expected {expected}") from None
    except IsADirectoryError:
        raise AnchorError(f"{label}: is a directory; expected {expected}") from None
    except OSError as exc:
        raise AnchorError(f"{label}: cannot be read ({exc.strerror}); expected {expected}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise AnchorError(f"{label}: is a directory; expected {expected}")
        if not stat.S_ISREG(st.st_mode):
            raise AnchorError(f"{label}: {_kind(st.st_mode)}, not a regular file; expected {expected}")
        too_big = f"{label}: larger than {limit // (1024 * 1024)} MiB; expected {expected}"
        if st.st_size > limit:
            raise AnchorError(too_big)
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # it grew while we read it
            raise AnchorError(too_big)
        return b"".join(chunks)
    except OSError as exc:
        raise AnchorError(f"{label}: cannot be read ({exc.strerror}); expected {expected}") from None
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def check_python_nesting(source: str, where: str) -> None:
    """AnchorError (one line, exit 2) when `source` nests deeper than the parsers can take.

    CPython's own parser refuses such input with an exception (never a crash); the depth of its tree
    is then measured without recursion. libcst is only called on what passes."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return  # libcst reports invalid Python with its line number
    except (MemoryError, RecursionError):
        raise AnchorError(f"{where}: Python nested too deeply to parse (more than {MAX_NESTING} levels); expected an Ultralytics source") from None
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            line = getattr(node, "lineno", None)
            at = f" at line {line}" if line is not None else ""
            raise AnchorError(f"{where}: Python nested more than {MAX_NESTING} levels deep{at}; expected an Ultralytics source")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
