"""Run the CLI in-process the way a user sees it (stdout, stderr, exit code)."""

from __future__ import annotations

from dataclasses import dataclass

import typer.testing
from typer.main import get_command
from typer.testing import CliRunner

from halo_patch.cli import app

# Typer builds the click command from the functions' signatures (~0.1-0.3 s: it evaluates every
# annotation), and `CliRunner.invoke(app)` builds it again on every call. Built once, it serves all
# calls (a click command keeps no state between invocations); any other app is built as before.
COMMAND = get_command(app)
_build_command = typer.testing._get_command
typer.testing._get_command = lambda typer_app: COMMAND if typer_app is app else _build_command(typer_app)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """`env`: variables set (only) while the command runs, as a user's shell would export them."""
    r = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1", **(env or {})})
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return Result(r.exit_code, r.stdout, r.stderr)
