"""Files halo-patch creates are recognisable without the state dir.

A generated text file (a model yaml) carries a seal: its first line names halo-patch and holds the
sha256 of the file's own path under `cfg/models/` and every byte after that line. `is_sealed_as` is
True only while the file is exactly as written and still where apply wrote it, so revert can delete
it without a manifest and never deletes a file a user edited, wrote, or saved as a copy elsewhere.
The previous release sealed the bytes alone (`is_sealed` still accepts that seal for a file the
manifest records, or to tell an unedited file apart from an edited one).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

SEAL_PREFIX = b"# halo-patch sha256:"


def seal_key(path: Path) -> str:
    """What a seal binds of a file's place: its path below `cfg/models/` (`11/yolo11-HaloAttention.yaml`)."""
    parts = path.parts
    at = max((i for i in range(len(parts) - 1) if parts[i : i + 2] == ("cfg", "models")), default=None)
    return "/".join(parts[at + 2 :]) if at is not None else path.name


def _digest(body: bytes, path: Path | None) -> str:
    return hashlib.sha256(body if path is None else seal_key(path).encode("utf-8") + b"\n" + body).hexdigest()


def seal(text: str, path: Path) -> str:
    """`text` with a first line that holds the sha256 of the file's place (`seal_key`) and `text` (as UTF-8)."""
    return f"{SEAL_PREFIX.decode()}{_digest(text.encode('utf-8'), path)}\n" + text


def _split(data: bytes) -> tuple[str, bytes] | None:
    first, sep, body = data.replace(b"\r\n", b"\n").partition(b"\n")
    if not sep or not first.startswith(SEAL_PREFIX):
        return None
    return first[len(SEAL_PREFIX):].decode("ascii", errors="replace"), body


def is_sealed_as(data: bytes, path: Path) -> bool:
    """True when `data` starts with a seal that matches the rest of its bytes and the file's place
    `path` (written with the tree's line endings: CRLF counts as LF): apply wrote it, there."""
    found = _split(data)
    return found is not None and found[0] == _digest(found[1], path)


def is_sealed(data: bytes, path: Path) -> bool:
    """`is_sealed_as`, or the previous release's seal (the bytes alone, any place): unedited since."""
    found = _split(data)
    return found is not None and found[0] in (_digest(found[1], path), _digest(found[1], None))


def carries_seal(data: bytes) -> bool:
    """True when `data` starts with a seal line, matching or not: apply wrote it, maybe edited since."""
    return data.startswith(SEAL_PREFIX)
