"""Every step verify can run here, registered by the name verify's plan uses, with the step it needs.

A step is `run(ctx, model) -> (detail, data)`; `model` is None for the steps that are not per model.
It raises CheckFailed (failed, with its reason) or Skipped (cannot run here).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

from . import build, checkpoint, export, forward, import_check, onnx_run, predict, train, train_step


class StepKind(NamedTuple):
    run: Callable
    needs: Optional[str]  # the step (same model) that must have passed first
    per_model: bool = True


STEPS = {
    "import": StepKind(import_check.run, None, per_model=False),
    "build": StepKind(build.run, "import"),
    "forward": StepKind(forward.run, "build"),
    "train-step": StepKind(train_step.run, "build"),
    "train": StepKind(train.run, "build"),
    "predict": StepKind(predict.run, "train"),
    "checkpoint": StepKind(checkpoint.run, "train"),
    "export": StepKind(export.run, "build"),
    "onnxruntime": StepKind(onnx_run.run, "export"),
}


def needed_step(step_id):
    """The id of the step that must pass before `step_id` ("build:n" needs "import", "forward:n" needs "build:n")."""
    kind, _, key = step_id.partition(":")
    needs = STEPS[kind].needs
    if needs is None:
        return None
    return needs if not STEPS[needs].per_model else f"{needs}:{key}"
