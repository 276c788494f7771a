"""Entry point of a compare job in the target's Python: read the config, run the job, write its result.

Protocol. argv: the folder holding this package, then the path of a JSON config with at least
{"job": "preflight" | "train" | "plots", "result": <path>, "package_dir": <ultralytics dir>}.
The job's result is written as JSON to config["result"]: {"ok": true, ...} or {"ok": false, "error": "one line",
"traceback": "..."}. Everything the libraries print goes to this process's stdout/stderr (a log file).
"""

import json
import sys
import traceback
from pathlib import Path


class JobFailed(Exception):
    """A job that ran and found something wrong; the message is the one-line reason."""


def check_import(package_dir):
    """The ultralytics this process imports is the target's (the patched tree); its version."""
    import ultralytics

    found = Path(ultralytics.__file__).resolve().parent
    if found != Path(package_dir).resolve():
        raise JobFailed("this Python imports ultralytics from {}, not the target {}".format(found, package_dir))
    return ultralytics.__version__


def main(config_path):
    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    result_path = Path(config["result"])
    try:
        result = {"ok": True}
        if config["job"] == "plots":  # matplotlib only: no torch/ultralytics import (seconds) for drawing
            from .plots import run
        else:
            result["ultralytics"] = check_import(config["package_dir"])
            if config["job"] == "preflight":
                from .preflight import run
            else:
                from .train_run import run
        result.update(run(config))
        code = 0
    except Exception as exc:  # the job failed: one line for the user, the traceback for the log
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        result = {"ok": False, "error": "{}: {}".format(type(exc).__name__, first), "traceback": traceback.format_exc()}
        traceback.print_exc()
        code = 1
    tmp = result_path.with_name(result_path.name + ".tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    tmp.replace(result_path)
    sys.stdout.flush()
    return code
