"""Files halo-patch creates are recognisable without the state dir.

A generated text file (a model yaml) carries a seal: its first line names halo-patch and holds the
sha256 of every byte after that line. `is_sealed` is True only while the file is exactly as written,
so revert can delete it without a manifest and never deletes a file a user edited or wrote.
"""

from __future__ import annotations

import hashlib

SEAL_PREFIX = b"# halo-patch sha256:"


def seal(text: str) -> str:
    """`text` with a first line that holds the sha256 of `text` (as UTF-8)."""
    body = text.encode("utf-8")
    return f"{SEAL_PREFIX.decode()}{hashlib.sha256(body).hexdigest()}\n" + text


def is_sealed(data: bytes) -> bool:
    """True when `data` starts with a seal that matches the rest of its bytes (written with the
    tree's line endings: CRLF counts as LF)."""
    first, sep, body = data.replace(b"\r\n", b"\n").partition(b"\n")
    if not sep or not first.startswith(SEAL_PREFIX):
        return False
    return first[len(SEAL_PREFIX):].decode("ascii", errors="replace") == hashlib.sha256(body).hexdigest()


def carries_seal(data: bytes) -> bool:
    """True when `data` starts with a seal line, matching or not: apply wrote it, maybe edited since."""
    return data.startswith(SEAL_PREFIX)
