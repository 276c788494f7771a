"""Run the steps verify asks for and report each one as a JSON line.

Protocol. argv: the folder holding this package, then a JSON object:
    {"package_dir": ..., "imgsz": 640, "device": "cpu", "export": null | "onnx", "workdir": ...,
     "datadir": ..., "models": [{"key": "n", "name": "yolo11n-HaloAttention.yaml", ...}],
     "steps": ["import", "build:n", ...]}
A step id is `kind` or `kind:model key`. The file descriptor that was stdout carries only protocol
lines, one JSON object each:
    {"event": "begin", "step": "build:n"}
    {"event": "end", "step": "build:n", "result": "passed" | "failed" | "skipped",
     "seconds": 1.23, "detail": "one line", "data": {...}, "error": "traceback" | null}
    {"event": "done"}
Everything the libraries print is sent to stderr (fd 1 is pointed there before any import).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

from .common import CheckFailed, Context, Skipped, first_line
from .steps import STEPS, needed_step


def main(config_json):
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # whatever torch and Ultralytics print goes to stderr, never into the protocol
    config = json.loads(config_json)
    ctx = Context(config)

    def emit(**event):
        proto.write(json.dumps(event) + "\n")

    passed = set()
    for step in config["steps"]:
        emit(event="begin", step=step)
        start = time.perf_counter()
        result, detail, data, error = "passed", "", {}, None
        kind, _, key = step.partition(":")
        needed = needed_step(step)
        try:
            if needed is not None and needed not in passed:
                data = {"needs": needed}
                raise Skipped("needs " + needed)
            detail, data = STEPS[kind].run(ctx, ctx.models[key] if key else None)
        except CheckFailed as exc:
            result, detail, data = "failed", str(exc), exc.data
            cause = exc.__cause__  # the error inside the checked code, when there was one
            error = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__)) if cause else None
        except Skipped as exc:
            result, detail, data = "skipped", str(exc), data
        except Exception as exc:  # an error inside the checked code is a failed check, shown with its traceback
            result, detail, error = "failed", first_line(exc), traceback.format_exc()
        seconds = round(time.perf_counter() - start, 3)
        if result == "passed":
            passed.add(step)
        emit(event="end", step=step, result=result, seconds=seconds, detail=detail, data=data, error=error)
        sys.stderr.flush()
    emit(event="done")
    proto.close()
    return 0
