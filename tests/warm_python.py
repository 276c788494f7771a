"""Python code run against a test tree in a fresh process, without paying torch's import each time.

One server process per pytest process imports torch and the other tree-independent libraries
Ultralytics imports (about 5 s of CPU); each job is a fork of it that imports the tree's ultralytics
itself, as `python -c CODE` with PYTHONPATH=<tree> would. Nothing of Ultralytics (and nothing a
tutorial module brings, such as einops) is loaded in the server, so a job sees only what its own
tree imports; the server runs no torch op, so no thread pool exists when it forks.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

SERVER = r'''
import io, json, os, sys, traceback
import numpy, torch, torchvision, cv2, PIL.Image, yaml, matplotlib  # not ultralytics: each job imports its tree's
assert not any(m.split(".")[0] in ("ultralytics", "einops", "halo_patch") for m in sys.modules), "the server must not import a tree"
base_path = list(sys.path)
reply = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # what the server itself might print never mixes with its replies
reply.write("ready\n")
reply.flush()
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            for fd, name in ((1, "stdout"), (2, "stderr")):
                os.dup2(os.open(job[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
            os.chdir(job["cwd"])
            os.environ.clear()
            os.environ.update(job["env"])
            paths = [p for p in job["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
            sys.path[:] = base_path[:1] + paths + base_path[1:]  # where PYTHONPATH puts them for `python -c`
            sys.dont_write_bytecode = bool(job["env"].get("PYTHONDONTWRITEBYTECODE"))
            sys.argv = ["-c", *job["argv"]]
            exec(compile(job["code"], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, (int, type(None))):
                print(exc.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    reply.write(json.dumps(os.waitstatus_to_exitcode(status)) + "\n")
    reply.flush()
'''


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


class WarmPython:
    """Runs `python -c CODE` jobs as forks of one server that has torch imported."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.count = 0
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_CURRENT_TEST")}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=scratch
        )
        assert self._reply(600) == "ready", "the warm python server did not start"

    def _reply(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, f"no reply from the warm python server in {timeout} s"
        line = self.proc.stdout.readline()
        assert line, f"the warm python server died (exit {self.proc.wait()})"
        return line.strip()

    def run(self, code: str, *, cwd: Path, env: dict[str, str], argv: tuple[str, ...] = (), timeout: float = 600) -> Done:
        """`python -c CODE *argv` in cwd with exactly the environment env (PYTHONPATH included)."""
        self.count += 1
        out, err = self.scratch / f"{self.count}.out", self.scratch / f"{self.count}.err"
        job = {"code": textwrap.dedent(code), "cwd": str(cwd), "env": env, "argv": list(argv), "stdout": str(out), "stderr": str(err)}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        returncode = int(self._reply(timeout))
        return Done(returncode, out.read_text(), err.read_text())

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a job hung (its test has failed already)
            self.proc.kill()
            self.proc.wait()
