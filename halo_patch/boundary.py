"""The CLI's one error boundary and its consoles (used by halo_patch.cli only).

A project error (HaloPatchError) is one red line on stderr and its exit code (2, or 4 for an
incomplete rollback); anything else is exit 3 with the traceback saved to a file; Ctrl-C is 130 with
a message that says what is true. stdout survives a closed pipe and an encoding that cannot print.
"""

from __future__ import annotations

from typing import Callable

import typer

from halo_patch import __version__

EXIT_CRASH = 3  # an unexpected error: one line on stderr naming the saved traceback file
EXIT_INTERRUPTED = 130  # Ctrl-C: the message says what is true (nothing changed, rolled back, or made)


class _PipeSafeStream:
    """stdout that stops writing once the reader has gone (`| head`): a closed pipe must not change
    the exit code of a command that has already done its work."""

    def __init__(self, stream) -> None:
        self._stream = stream  # the real stdout
        self._closed = False  # True after the first EPIPE

    def write(self, text: str) -> int:
        if not self._closed:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._gone()
            except UnicodeEncodeError:  # PYTHONIOENCODING=ascii: print what the stream can, never fail
                self.write(text.encode(self.encoding, errors="replace").decode(self.encoding, errors="replace"))
            except (OSError, ValueError):  # stdout unwritable (EIO, closed): the work is done, printing is not
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self._closed:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._gone()

    def _gone(self) -> None:
        import os
        import sys

        self._closed = True
        try:  # later writes (and the interpreter's own flush at exit) go nowhere
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass

    def isatty(self) -> bool:
        try:
            return not self._closed and self._stream.isatty()
        except (OSError, ValueError):  # a closed stream
            return False

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"


def _console(stderr: bool = False):
    import sys

    from rich.console import Console

    stream = _PipeSafeStream(sys.stderr if stderr else sys.stdout)
    # Piped output is plain and never wrapped: a long path stays one line, as a script reads it.
    return Console(file=stream, highlight=False, soft_wrap=not stream.isatty())


def _save_traceback() -> str:
    """Write the current exception's traceback to a new file in the temp dir; return its path."""
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="halo-patch-crash-", suffix=".txt")
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write(f"halo-patch {__version__}\n")
        traceback.print_exc(file=fh)
    return path


def run(func: Callable[..., int], *args: object, quiet: bool = False) -> None:
    """Call a command; the one error boundary: project errors are one line on stderr and their code
    (2, or 4 for an incomplete rollback); anything else is exit 3 with a saved traceback; Ctrl-C 130."""
    from rich.markup import escape

    from halo_patch.errors import HaloPatchError

    from halo_patch import interrupts

    interrupts.reset()
    console = _console()
    if quiet:
        console.quiet = True
    try:
        code = func(*args, console)
    except HaloPatchError as exc:
        _console(stderr=True).print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        _console(stderr=True).print(f"[red]error:[/] {escape(interrupts.message())}", soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:  # noqa: BLE001 - the boundary: a crash is reported, never shown as exit 1
        path = _save_traceback()
        line = f"unexpected {type(exc).__name__}: {exc}; please report it with the traceback saved in {path}"
        _console(stderr=True).print(f"[red]error:[/] {escape(line)}", soft_wrap=True)
        raise typer.Exit(EXIT_CRASH) from None
    raise typer.Exit(code)
