"""A test-owned fork server for kill points: one interpreter with halo_patch imported (and, once
warmed, tasks.py parsed) forks a child per run; the child arms the fault points and runs the CLI's
`main()`, and a `kill` point really SIGKILLs that child. The server reports its exit status and
output. So a kill case costs a fork, not an interpreter start-up and the CLI's imports.

`python fork_server.py` reads one JSON request a line on stdin and answers one JSON line on stdout:
  {"run": [spec, log, args...], "out": dir}    -> {"returncode": -9 | int, "stdout": str, "stderr": str}
  {"warm": [args...]}                          -> {"returncode": int}  (the CLI in the server itself,
                                                   output dropped: fills its parse caches for the children)
The children never touch torch (halo_patch's apply/revert/status never import it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SERVER = Path(__file__).resolve()


def _exit_code(exc: SystemExit) -> int:
    """The status Python gives a process that ends with `exc`."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _main_in_this_process(args: list[str]) -> int:
    from halo_patch.cli import main

    sys.argv = ["halo-patch", *args]
    try:
        main()
    except SystemExit as exc:
        return _exit_code(exc)
    return 0


def _child(spec: str, log: str, args: list[str], out: Path) -> None:
    """In the forked child: output to files, fault points armed, the CLI run; never returns."""
    code = 1
    try:
        for fd, name in ((1, "stdout"), (2, "stderr")):
            os.dup2(os.open(out / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        from faults import Faults

        from halo_patch.journal import files

        files.checkpoint = Faults(spec, log or None)
        code = _main_in_this_process(args)
    except BaseException:  # noqa: BLE001 - reported as an interpreter would, exit 1
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _run(spec: str, log: str, args: list[str], out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _child(spec, log, args, out)
    _, status = os.waitpid(pid, 0)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return {"returncode": code, "stdout": (out / "stdout").read_text(), "stderr": (out / "stderr").read_text()}


def _warm(args: list[str]) -> dict:
    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        code = _main_in_this_process(args)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
    return {"returncode": code}


def serve() -> None:
    import halo_patch.cli  # noqa: F401 - imported once, shared by every child

    channel = os.fdopen(os.dup(1), "w")
    for line in sys.stdin:
        request = json.loads(line)
        if "warm" in request:
            answer = _warm(request["warm"])
        else:
            spec, log, *args = request["run"]
            answer = _run(spec, log, args, Path(request["out"]))
        channel.write(json.dumps(answer) + "\n")
        channel.flush()


class ForkServer:
    """The client: start the server once (a module fixture), run many CLI processes through it."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.runs = 0
        env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": os.pathsep.join([str(SERVER.parent), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen([sys.executable, str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def _ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the fork server died (exit {self.proc.poll()})"
        return json.loads(line)

    def warm(self, *args: str) -> int:
        return self._ask({"warm": list(args)})["returncode"]

    def run(self, spec: str, log: str | Path | None, *args: str) -> subprocess.CompletedProcess:
        """`halo-patch ARGS` as a forked process with fault points armed; a `kill` point SIGKILLs it (returncode -9)."""
        self.runs += 1
        answer = self._ask({"run": [spec, str(log or ""), *args], "out": str(self.scratch / f"run{self.runs}")})
        return subprocess.CompletedProcess(["halo-patch", *args], answer["returncode"], answer["stdout"], answer["stderr"])

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


if __name__ == "__main__":
    serve()
