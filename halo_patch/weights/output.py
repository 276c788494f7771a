"""Where the new checkpoint goes: checked before any work, put in place in one rename."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from halo_patch.errors import HaloPatchError
from halo_patch.model_yaml import SUFFIX

ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6
PICKLE_MAGIC = b"\x80"  # the legacy format starts with a pickle protocol byte


def check_source(src: Path) -> Path:
    """SRC as an absolute path, a readable file."""
    path = src.expanduser()
    if not path.exists():
        raise HaloPatchError(f"{src}: no such file; expected an Ultralytics .pt checkpoint (yolo11n.pt, best.pt)")
    if not path.is_file():
        raise HaloPatchError(f"{src}: not a file; expected an Ultralytics .pt checkpoint (yolo11n.pt, best.pt)")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise HaloPatchError(f"{src}: cannot be read ({exc.strerror or exc}); expected an Ultralytics .pt checkpoint") from None
    if head[:4] != ZIP_MAGIC and head[:1] != PICKLE_MAGIC:
        raise HaloPatchError(f"{src}: not a PyTorch checkpoint (neither torch's zip format nor a pickle); expected an Ultralytics .pt file")
    return path.resolve()


def plan_output(src: Path, out: Optional[Path], force: bool) -> Path:
    """OUT as an absolute path: `<stem of SRC>-HaloAttention.pt` here by default; an existing one only with --force."""
    path = (out.expanduser() if out is not None else Path(f"{src.stem}{SUFFIX}.pt")).absolute()
    if path.suffix != ".pt":
        raise HaloPatchError(f"-o {out}: expected a file name ending in .pt (Ultralytics loads only .pt checkpoints)")
    if not path.parent.is_dir():
        raise HaloPatchError(f"-o {path}: no such directory {path.parent}")
    if path.is_dir():
        raise HaloPatchError(f"-o {path}: is a directory; expected a .pt file name")
    if path.exists() and not force:
        raise HaloPatchError(f"{path}: already exists; pass --force to replace it, or -o another file")
    return path


def place(made: Path, out: Path, force: bool) -> None:
    """Move the checkpoint made in the temp dir to `out`: copied beside it, then renamed over it in one step."""
    if out.exists() and not force:
        raise HaloPatchError(f"{out}: appeared while the checkpoint was made; pass --force to replace it")
    fd, staged = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        shutil.copyfile(made, staged)
        os.replace(staged, out)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise
