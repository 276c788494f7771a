"""Carry a checkpoint's tensors into a HaloAttention model, reporting as JSON lines.

Protocol. argv: the folder holding this package, then a JSON object:
    {"source": path, "output": path, "class_name": "HaloAttention", "chosen": index | null,
     "scale": "n" | null, "candidates": [{"yaml", "build", "base", "base_rows", "rows", "model",
     "map", "inserted", "scales"}, ...]}
The file descriptor that was stdout carries only protocol lines, one JSON object each:
    {"event": "progress", "what": "..."}
    {"event": "refused", "message": "one line"}          (nothing written)
    {"event": "done", "report": {...}}                   (the checkpoint is at "output")
Everything the libraries print goes to stderr. An unexpected error exits 1 with its traceback on stderr.
"""

from __future__ import annotations

import json
import os

from .common import Refused


def main(config_json):
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # whatever torch and Ultralytics print goes to stderr, never into the protocol
    config = json.loads(config_json)

    def emit(**event):
        proto.write(json.dumps(event) + "\n")

    from .carry import carry

    try:
        report = carry(config, lambda what: emit(event="progress", what=what))
    except Refused as exc:
        emit(event="refused", message=str(exc))
        proto.close()
        return 0
    emit(event="done", report=report)
    proto.close()
    return 0
