"""What the in-target modules share."""

from __future__ import annotations

import re

# Ultralytics' own rules (nn/tasks.py yaml_model_load, guess_model_scale).
UNIFIED = re.compile(r"(\d+)([nslmx])(.+)?$")
SCALE = re.compile(r"yolo(e-)?[v]?\d+([nslmx])")
LAYER_KEY = re.compile(r"^model\.(\d+)\.(.+)$")


class Refused(Exception):
    """The checkpoint cannot be carried: one line for the user, nothing written."""


def base_stem(yaml_file):
    """`yolo11n-seg.yaml` -> `yolo11-seg`, as Ultralytics finds the yaml of a scaled name."""
    stem = str(yaml_file).replace("\\", "/").rsplit("/", 1)[-1]
    stem = stem[: -len(".yaml")] if stem.endswith(".yaml") else stem
    return UNIFIED.sub(r"\1\3", stem)


def plain(value):
    """A yaml row as JSON has it (tuples become lists), so rows compare equal across the two sides."""
    import json

    return json.loads(json.dumps(value, default=str))


def shape(tensor):
    return "x".join(str(d) for d in tensor.shape) or "scalar"
