"""Files halo-patch creates are recognisable without the state dir.

A generated text file (a model yaml) carries a seal: its first line names halo-patch and holds the
sha256 of the file's own name and every byte after that line. `is_sealed_as` is True only while the
file is exactly as written and still has the name apply gave it, so revert can delete it without a
manifest and never deletes a file a user edited, wrote, or saved as a copy under another name.
The previous release sealed the bytes alone (`is_sealed` still accepts that seal for a file the
manifest records, or to tell an unedited file apart from an edited one).
"""

from __future__ import annotations

import hashlib

SEAL_PREFIX = b"# halo-patch sha256:"


def _digest(body: bytes, name: str | None) -> str:
    return hashlib.sha256(body if name is None else name.encode("utf-8") + b"\n" + body).hexdigest()


def seal(text: str, name: str) -> str:
    """`text` with a first line that holds the sha256 of the file name `name` and `text` (as UTF-8)."""
    return f"{SEAL_PREFIX.decode()}{_digest(text.encode('utf-8'), name)}\n" + text


def _split(data: bytes) -> tuple[str, bytes] | None:
    first, sep, body = data.replace(b"\r\n", b"\n").partition(b"\n")
    if not sep or not first.startswith(SEAL_PREFIX):
        return None
    return first[len(SEAL_PREFIX):].decode("ascii", errors="replace"), body


def is_sealed_as(data: bytes, name: str) -> bool:
    """True when `data` starts with a seal that matches the rest of its bytes and the file name
    `name` (written with the tree's line endings: CRLF counts as LF): apply wrote it, under that name."""
    found = _split(data)
    return found is not None and found[0] == _digest(found[1], name)


def is_sealed(data: bytes, name: str) -> bool:
    """`is_sealed_as`, or the previous release's seal (the bytes alone, any name): unedited since."""
    found = _split(data)
    return found is not None and found[0] in (_digest(found[1], name), _digest(found[1], None))


def carries_seal(data: bytes) -> bool:
    """True when `data` starts with a seal line, matching or not: apply wrote it, maybe edited since."""
    return data.startswith(SEAL_PREFIX)
