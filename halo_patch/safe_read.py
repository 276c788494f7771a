"""Reading what a user points us at, safely: regular files only, bounded in size, never hanging; and
Python sources checked for nesting too deep for the parsers before libcst sees them."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

from halo_patch.errors import AnchorError, HaloPatchError

MAX_YAML_BYTES = 4 * 1024 * 1024  # a model yaml is a few KiB; anything this big is not one
MAX_NESTING = 200  # a real Ultralytics source nests < 40 deep; libcst recurses per level (and crashes far deeper)


def read_regular(path: Path, what: str, limit: int = MAX_YAML_BYTES) -> bytes:
    """The bytes of `path` if it is a regular file of at most `limit` bytes; else one-line HaloPatchError.

    Opened non-blocking (a FIFO never hangs) and checked with fstat on the opened file (no race)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise HaloPatchError(f"{what} {path}: no such file; expected {_expected(limit)}") from None
    except OSError as exc:
        raise HaloPatchError(f"{what} {path}: cannot be read ({exc.strerror}); expected {_expected(limit)}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise HaloPatchError(f"{what} {path}: {_kind(st.st_mode)}, not a regular file; expected {_expected(limit)}")
        if st.st_size > limit:
            raise HaloPatchError(f"{what} {path}: {st.st_size} bytes; expected {_expected(limit)}")
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # it grew while we read it
            raise HaloPatchError(f"{what} {path}: more than {limit} bytes; expected {_expected(limit)}")
        return b"".join(chunks)
    except OSError as exc:
        raise HaloPatchError(f"{what} {path}: cannot be read ({exc.strerror}); expected {_expected(limit)}") from None
    finally:
        os.close(fd)


def _expected(limit: int) -> str:
    return f"a regular file of at most {limit // (1024 * 1024)} MiB"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
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
