"""compare from start to end: plan, check the manifest, carry weights, preflight, train what is left, report.

Nothing is started before every input is checked (bad input: exit 2, nothing written). Finished runs
(halo_patch.compare.manifest.finished_record) are kept; an interrupted one is resumed by Ultralytics.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from rich.console import Console

from halo_patch.compare import jobs
from halo_patch.compare.manifest import check_manifest, finished_record, record_path, save_manifest, sha256, write_json
from halo_patch.compare.options import Options, check_set_keys
from halo_patch.compare.plan import Matrix, Run, plan_matrix
from halo_patch.compare.progress import Progress
from halo_patch.compare.weights import carry_weights
from halo_patch.errors import HaloPatchError
from halo_patch.modules import DEFAULT
from halo_patch.target import UltralyticsTarget, find_target
from halo_patch.tree_status import check_status
from halo_patch.verify.interpreter import Interpreter, find_interpreter


class RunFailed(HaloPatchError):
    """A preflight or a training run that failed: its reason and log; finished runs are kept."""

    exit_code = 1


class Interrupted(HaloPatchError):
    exit_code = 130


@dataclass
class Comparison:
    options: Options
    target: UltralyticsTarget
    interpreter: Interpreter
    matrix: Matrix
    out: Path
    settings: dict
    records: dict[str, dict] = field(default_factory=dict)
    trained: list[str] = field(default_factory=list)  # runs trained (or resumed) by this call
    seconds: float = 0.0


def prepare(options: Options, target_path: Optional[Path]) -> Comparison:
    """Everything checked, nothing written: the target, the patch, the matrix, the manifest."""
    target = find_target(target_path)
    status = check_status(target)
    if not status.fully_applied:
        raise HaloPatchError(f"{target.package_dir}: HaloAttention is not (fully) applied; run halo-patch apply --target {target.root} first")
    check_set_keys(options.overrides, target.package_dir / "cfg" / "default.yaml")
    matrix = plan_matrix(target, options)
    interpreter = find_interpreter(target)
    out = options.out_dir
    settings = make_settings(options, target, interpreter, matrix)
    check_manifest(out, settings)
    return Comparison(options, target, interpreter, matrix, out, settings)


def train_args(options: Options) -> dict:
    """The train arguments every run shares (the seed is added per run)."""
    args: dict = {"data": str(options.data), "epochs": options.epochs, "imgsz": options.imgsz, "batch": options.batch,
                  "patience": options.epochs + 1}  # never stops early; no time= budget
    if options.device is not None:
        args["device"] = options.device
    args.update(dict(options.overrides))
    return args


def make_settings(options: Options, target: UltralyticsTarget, interpreter: Interpreter, matrix: Matrix) -> dict:
    weights = {"path": str(options.weights), "sha256": sha256(options.weights)} if options.weights else None
    return {
        "target": str(target.package_dir),
        "ultralytics": target.version,
        "python": interpreter.python,
        "data": str(options.data),
        "data_sha256": sha256(options.data),
        "models": [
            {"label": m.label, "model": m.model, "variant": m.variant, "yaml_sha256": sha256(m.yaml_path)} for m in matrix.models
        ],
        "seeds": list(matrix.seeds),
        "train_args": train_args(options),
        "weights": weights,
    }


def execute(c: Comparison, console: Console) -> None:
    """Train what is not finished; fills c.records. Ctrl-C keeps every finished run (exit 130)."""
    start = time.perf_counter()
    try:
        _execute(c, console)
    except KeyboardInterrupt:
        done = sum(1 for r in c.matrix.runs if r.name in c.records)
        raise Interrupted(
            f"interrupted: {done} of {len(c.matrix.runs)} runs finished and kept in {c.out}; run the same command again to resume"
        ) from None
    c.seconds = time.perf_counter() - start


def _execute(c: Comparison, console: Console) -> None:
    c.out.mkdir(parents=True, exist_ok=True)
    save_manifest(c.out, c.settings)
    jobs.prepare(c.out)
    runs = c.matrix.runs
    todo = []
    for run in runs:
        record = finished_record(c.out, run.name)
        if record is not None:
            c.records[run.name] = record
        else:
            todo.append(run)
    if not todo:
        console.print(f"All {len(runs)} runs finished earlier (kept, nothing trained); writing the report again.", highlight=False)
        return
    if len(todo) < len(runs):
        console.print(f"{len(runs) - len(todo)} of {len(runs)} runs finished earlier (kept); {len(todo)} to train.", highlight=False)
    weights = carry_weights(c, console) if c.options.weights else {}
    progress = Progress(console, c.options.epochs, len(todo))
    progress.estimate(preflight(c, todo, weights, progress), todo)
    for k, run in enumerate(todo):
        train_one(c, run, weights, progress, k)


def preflight(c: Comparison, todo: list[Run], weights: dict[str, Path], progress: Progress) -> dict:
    """The patched tree is what the runs import; one real training step per model; its timings."""
    labels = list(dict.fromkeys(r.model.label for r in todo))
    models = [m for m in c.matrix.models if m.label in labels]
    config = {
        "package_dir": str(c.target.package_dir),
        "module": DEFAULT.class_name,
        "data": str(c.options.data),
        "workdir": str(jobs.state_dir(c.out) / "preflight"),
        "train_args": {**train_args(c.options), "seed": c.matrix.seeds[0]},
        "models": [{"label": m.label, "model": m.model, "variant": m.variant, "weights": _weights_for(c, m.label, weights)} for m in models],
    }
    c_start = time.perf_counter()
    progress.say(f"Preflight: {len(models)} models, one training step each on the data, in {c.interpreter.python}")
    try:
        result = jobs.run_job(c.interpreter, c.out, jobs.Job.PREFLIGHT, "preflight", config)
    except jobs.JobError as exc:
        raise RunFailed(f"preflight failed: {exc}; the log is {exc.log}") from None
    result["wall_s"] = time.perf_counter() - c_start
    shutil.rmtree(jobs.state_dir(c.out) / "preflight", ignore_errors=True)
    return result


def _weights_for(c: Comparison, label: str, weights: dict[str, Path]) -> Optional[str]:
    if not c.options.weights:
        return None
    return str(weights.get(label, c.options.weights))


def train_one(c: Comparison, run: Run, weights: dict[str, Path], progress: Progress, k: int) -> None:
    run_dir = c.out / "runs" / run.name
    resuming = (run_dir / "weights" / "last.pt").is_file()
    config = {
        "package_dir": str(c.target.package_dir),
        "model": run.model.model,
        "weights": _weights_for(c, run.model.label, weights),
        "data": str(c.options.data),
        "train_args": {**train_args(c.options), "seed": run.seed},
        "project": str(c.out / "runs"),
        "val_project": str(jobs.state_dir(c.out) / "val"),
        "name": run.name,
    }
    progress.begin(k, run.name, resuming)
    try:
        result = jobs.run_job(c.interpreter, c.out, jobs.Job.TRAIN, f"train-{run.name}", config, lambda: progress.poll(run_dir / "results.csv"))
    except jobs.JobError as exc:
        raise RunFailed(f"run {run.name} failed: {exc}; the log is {exc.log}; finished runs are kept") from None
    record = {**result, "run": run.name, "label": run.model.label, "seed": run.seed, "checkpoint_sha256": sha256(Path(result["checkpoint"]))}
    write_json(record_path(c.out, run.name), record)
    c.records[run.name] = record
    c.trained.append(run.name)
    progress.end(k, run.name, run_dir / "results.csv")
