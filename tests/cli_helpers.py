"""Run the CLI in-process the way a user sees it (stdout, stderr, exit code)."""

from __future__ import annotations

from dataclasses import dataclass

from typer.testing import CliRunner

from halo_patch.cli import app


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
