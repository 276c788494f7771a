"""`python burst_cli.py`: start bursts of halo-patch CLI runs that race as real OS processes.

One interpreter imports the CLI once, then for each request on stdin (one JSON line:
`{"argvs": [["apply", "--target", "/t"], ...], "env": {...}}`) it forks one child per argv. Every
child waits on one pipe (the start barrier: the parent closes its end once all are forked), points
its fd 1 and 2 at files of its own, runs `halo_patch.cli.main()` with that argv and exits with the
CLI's code. The parent answers with one JSON line: `[{"pid", "cpu_s", "code", "stdout", "stderr"}, ...]` in argv
order (code is the exit status, or -signal when a child was killed). EOF on stdin ends it.

A request `{"warm": [argv...]}` runs the CLI once in this interpreter itself (its output dropped;
answer `{"code": N}`), on a tree of the test's own: the children then start with tasks.py already
parsed (halo_patch's parse and codegen memos are keyed by the text, never by the tree).

It saves the 0.3-1 s interpreter start-up and the cold parse per run (a 240-run test paid them 240
times), nothing else: the children are separate processes racing on the real flock and the real files."""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile

from halo_patch.cli import main

# What a run of apply or revert imports lazily: imported once here, not once per child. Imports
# only, no state (no command runs here): each child still runs every line of the CLI itself. A
# module missing from this list costs time, never correctness.
PRELOAD = (
    "halo_patch.commands.apply", "halo_patch.commands.revert", "halo_patch.table_out", "halo_patch.templates",
    "typer._adapters", "rich._emoji_codes", "libcst.native", "importlib.readers",
)


def _main(argv: list[str]) -> int:
    """`halo-patch ARGV` in this process; its exit code, as the console script would end with it."""
    sys.argv = ["halo-patch", *argv]
    try:
        main()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def _child(argv: list[str], start: int, out: str, err: str) -> None:
    """In the forked child: wait for the start, run the CLI once, exit with its code. Never returns."""
    code = 3
    try:
        for path, fd in ((os.devnull, 0), (out, 1), (err, 2)):
            f = os.open(path, os.O_RDONLY) if fd == 0 else os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(f, fd)
            os.close(f)
        os.read(start, 1)  # blocks until the parent closes its end: all start together
        os.close(start)
        try:
            code = _main(argv)
        except BaseException:  # what a real process would print at exit: the test asserts there is none
            import traceback

            traceback.print_exc()
            code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os._exit(code)


def _burst(argvs: list[list[str]], env: dict[str, str], scratch: str) -> list[dict]:
    sys.stdout.flush()
    sys.stderr.flush()
    saved = dict(os.environ)
    os.environ.update(env)
    start_r, start_w = os.pipe()
    runs = []
    try:
        for i, argv in enumerate(argvs):
            out, err = os.path.join(scratch, f"{i}.out"), os.path.join(scratch, f"{i}.err")
            pid = os.fork()
            if pid == 0:
                os.close(start_w)
                _child(argv, start_r, out, err)
            runs.append((pid, out, err))
    finally:
        os.close(start_r)
        os.close(start_w)  # the barrier opens: every child's read returns now
        os.environ.clear()
        os.environ.update(saved)
    results = []
    for pid, out, err in runs:
        _, status, usage = os.wait4(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        with open(out, encoding="utf-8", errors="replace") as f_out, open(err, encoding="utf-8", errors="replace") as f_err:
            results.append({"pid": pid, "cpu_s": usage.ru_utime + usage.ru_stime, "code": code, "stdout": f_out.read(), "stderr": f_err.read()})
    return results


def _warm(argv: list[str]) -> dict:
    """Run the CLI here, once, with its output dropped (this process's stdout answers the test)."""
    saved = sys.stdout, sys.stderr, sys.argv
    with open(os.devnull, "w", encoding="utf-8") as null:
        sys.stdout = sys.stderr = null
        try:
            code = _main(argv)
        finally:
            sys.stdout, sys.stderr, sys.argv = saved
    return {"code": code}


def serve() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    with tempfile.TemporaryDirectory(prefix="halo-burst-") as scratch:
        for line in sys.stdin:
            request = json.loads(line)
            results = _warm(request["warm"]) if "warm" in request else _burst(request["argvs"], request.get("env", {}), scratch)
            sys.stdout.write(json.dumps(results) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    serve()
