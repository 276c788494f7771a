"""`halo-patch compare` on a patched copy of the installed release: real training on generated data, CPU.

The expected values are recomputed here from the files the runs wrote (statistics module, textbook t
quantiles, an independent validation of best.pt, Ultralytics' own ap_per_class): never from compare's code.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cli_helpers import cli
from conftest import run_cli
from in_target_check import assert_in_target_source

from halo_patch.compare import stats

SEEDS, EPOCHS, IMGSZ, BATCH = 2, 2, 64, 4
BASE, VARIANT = "yolo11n", "yolo11n-HaloAttention"
T975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 9: 2.2622, 29: 2.0452}  # Student t, two-sided 95 % (tables)


def make_dataset(root: Path) -> Path:
    """8 train / 4 val images of 96x64 (non-square), 2 classes of solid rectangles, YOLO labels."""
    from PIL import Image, ImageDraw

    rng = random.Random(7)
    colours = [(220, 40, 40), (40, 80, 220)]
    for split, count in (("train", 8), ("val", 4)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for k in range(count):
            w, h = 96, 64
            im = Image.new("RGB", (w, h), (128, 128, 128))
            draw = ImageDraw.Draw(im)
            rows = []
            for j in range(rng.randint(1, 2)):
                c = (k + j) % 2
                bw, bh = rng.randint(30, 80), rng.randint(25, 55)
                x0, y0 = rng.randint(0, w - bw), rng.randint(0, h - bh)
                draw.rectangle([x0, y0, x0 + bw - 1, y0 + bh - 1], fill=colours[c])
                rows.append(f"{c} {(x0 + bw / 2) / w:.6f} {(y0 + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}")
            im.save(root / "images" / split / f"{split}_{k}.png")
            (root / "labels" / split / f"{split}_{k}.txt").write_text("\n".join(rows) + "\n")
    data = root / "shapes.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: red\n  1: blue\n")
    return data


def compare_args(package: Path, data: Path, out: Path, seeds: int = SEEDS, epochs: int = EPOCHS) -> list[str]:
    return ["compare", "--target", str(package), "--data", str(data), "--seeds", str(seeds), "--epochs", str(epochs),
            "--imgsz", str(IMGSZ), "--batch", str(BATCH), "--device", "cpu", "--out", str(out),
            "--set", "workers=0", "--set", "plots=False"]


@pytest.fixture(scope="module")
def setup(patched_installed: Path, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("compare", numbered=False)
    user_config = root / "user-config"  # stands for the user's own Ultralytics settings dir
    user_config.mkdir()
    (user_config / "settings.json").write_text('{"settings_version": "0.0.6", "mlflow": false}\n')
    env = {"YOLO_CONFIG_DIR": str(user_config), "YOLO_OFFLINE": "1"}
    return {"package": patched_installed, "data": make_dataset(root / "data"), "root": root, "env": env, "user_config": user_config}


@pytest.fixture(scope="module")
def first(setup: dict) -> dict:
    out = setup["root"] / "out"
    start = time.perf_counter()
    result = run_cli(*compare_args(setup["package"], setup["data"], out), env=setup["env"])
    assert result.returncode == 0, result.stdout + result.stderr
    return {"out": out, "result": result, "seconds": time.perf_counter() - start}


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def run_names(seeds: int = SEEDS) -> list[str]:
    return [f"{m}-seed{s}" for s in range(seeds) for m in (BASE, VARIANT)]


def test_matrix_progress_and_outputs(first: dict) -> None:
    out, stdout = first["out"], first["result"].stdout
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(run_names())
    rows = read_csv(out / "runs.csv")
    assert [(r["variant"], r["seed"]) for r in rows] == [(m, str(s)) for s in range(SEEDS) for m in (BASE, VARIANT)]
    assert "Preflight: 2 models" in stdout and "Estimate: 4 runs of 2 epochs, about " in stdout
    assert stdout.index("Estimate:") < stdout.index("run 1/4 yolo11n-seed0: training")
    for name in run_names():
        assert f"{name}: epoch 2/2, elapsed " in stdout and ", remaining ~" in stdout
        run = out / "runs" / name
        assert (run / "args.yaml").is_file() and (run / "weights" / "best.pt").is_file()
        # the results.csv files gathered for Ultralytics' own overlay (plot_results(dir=...)), byte for byte
        assert (out / "results" / f"results_{name}.csv").read_bytes() == (run / "results.csv").read_bytes()
    assert "yolo11n-HaloAttention vs yolo11n: " in stdout and f"Report: {out / 'compare.md'}" in stdout
    md = (out / "compare.md").read_text()
    assert "| model | seeds | mAP50-95(B) mean ± sd |" in md and "## Per-class AP50-95" in md and "| red |" in md


def test_fairness(first: dict, setup: dict) -> None:
    out = first["out"]
    args = {n: yaml.safe_load((out / "runs" / n / "args.yaml").read_text()) for n in run_names()}
    for seed in range(SEEDS):
        a, b = args[f"{BASE}-seed{seed}"], args[f"{VARIANT}-seed{seed}"]
        differ = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
        assert differ == {"model", "name", "save_dir"}, differ
        assert (a["model"], b["model"]) == ("yolo11n.yaml", "yolo11n-HaloAttention.yaml")
        assert (a["batch"], a["epochs"], a["imgsz"], a["seed"], a["time"]) == (BATCH, EPOCHS, IMGSZ, seed, None)
        assert a["patience"] > EPOCHS and a["data"] == str(setup["data"])
    a0, a1 = args[f"{BASE}-seed0"], args[f"{BASE}-seed1"]
    assert {k for k in a0 if a0[k] != a1.get(k)} == {"seed", "name", "save_dir"}
    for name in run_names():  # no early stop: every run trained every epoch
        assert len(read_csv(out / "runs" / name / "results.csv")) == EPOCHS
    # settings went to the comparison's own config dir; the user's settings file is untouched
    assert (setup["user_config"] / "settings.json").read_text() == '{"settings_version": "0.0.6", "mlflow": false}\n'
    assert (out / ".halo-compare" / "config" / "settings.json").is_file()
    doc = json.loads((out / "compare.json").read_text())
    assert doc["fairness"]["same_for_every_run"]["batch"] == BATCH and doc["fairness"]["time_budget"].startswith("none")
    # the seed reaches the training (8.4.190 seeds its data loader): the two seeds of a model log other losses
    assert not [n for n in doc["notes"] if n.startswith("warning")]
    for label in (BASE, VARIANT):
        a, b = (read_csv(out / "runs" / f"{label}-seed{s}" / "results.csv") for s in (0, 1))
        assert [r["train/box_loss"] for r in a] != [r["train/box_loss"] for r in b]


def test_runs_csv_equals_the_runs_own_results(first: dict, setup: dict) -> None:
    out = first["out"]
    rows = {r["run"]: r for r in read_csv(out / "runs.csv")}
    for name, row in rows.items():
        results = read_csv(out / "runs" / name / "results.csv")
        assert int(row["epochs"]) == len(results)
        assert float(row["train_seconds"]) == pytest.approx(float(results[-1]["time"]), abs=1e-9)
        assert float(row["GFLOPs"]) > 0 and float(row["latency_ms_batch1"]) > 0
        # the README's figures: 2.59 M parameters for yolo11n with 2 classes, 3.12 M with HaloAttention
        assert int(row["params"]) == {BASE: 2_590_230, VARIANT: 3_115_670}[row["variant"]]
    # an independent validation of one run's best.pt, in the target's Python, as a user would run it
    name = f"{VARIANT}-seed1"
    code = (
        "import json, sys; from ultralytics import YOLO; m = YOLO(sys.argv[1]); "
        f"r = m.val(data=sys.argv[2], imgsz={IMGSZ}, batch={BATCH}, workers=0, device='cpu', plots=False, "
        "project=sys.argv[3], name='v', verbose=False); "
        "print(json.dumps({**r.results_dict, 'params': sum(p.numel() for p in m.model.parameters())}))"
    )
    env = {**os.environ, **setup["env"], "PYTHONPATH": str(setup["package"].parent)}
    env.pop("PYTEST_CURRENT_TEST", None)
    proc = subprocess.run([sys.executable, "-c", code, str(out / "runs" / name / "weights" / "best.pt"), str(setup["data"]),
                           str(setup["root"] / "val-check")], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    mine = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)"):
        assert float(rows[name][key]) == pytest.approx(mine[key], abs=1e-9), key
    assert int(rows[name]["params"]) == mine["params"]


def test_statistics_recomputed_from_runs_csv(first: dict) -> None:
    doc = json.loads((first["out"] / "compare.json").read_text())
    rows = read_csv(first["out"] / "runs.csv")
    metric = "metrics/mAP50-95(B)"
    assert doc["metric"] == metric
    value = {(r["variant"], int(r["seed"])): float(r[metric]) for r in rows}
    for label in (BASE, VARIANT):
        xs = [value[(label, s)] for s in range(SEEDS)]
        assert doc["variants"][label]["mean"][metric] == pytest.approx(statistics.mean(xs), abs=1e-12)
        assert doc["variants"][label]["sd"][metric] == pytest.approx(statistics.stdev(xs), abs=1e-12)
    diffs = [value[(VARIANT, s)] - value[(BASE, s)] for s in range(SEEDS)]
    half = T975[SEEDS - 1] * statistics.stdev(diffs) / math.sqrt(SEEDS)
    cmp = doc["comparisons"][VARIANT]
    assert cmp["mean_difference"] == pytest.approx(statistics.mean(diffs), abs=1e-12)
    assert cmp["interval95"] == pytest.approx([statistics.mean(diffs) - half, statistics.mean(diffs) + half], abs=1e-5)
    low, high = cmp["interval95"]
    assert cmp["verdict"] == ("better" if low > 0 else "worse" if high < 0 else "inconclusive")
    boot = cmp["bootstrap_seed"]
    assert boot["images"] == 4 and boot["resamples"] >= 100 and boot["low"] <= boot["high"]


def test_plots_are_valid_pngs(first: dict) -> None:
    from PIL import Image

    for name in ("map-per-epoch.png", "paired-differences.png", "accuracy-vs-latency.png"):
        path = first["out"] / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
        with Image.open(path) as im:
            im.load()
            assert im.size[0] >= 300 and im.size[1] >= 100


def test_second_call_trains_nothing_and_other_settings_are_refused(first: dict, setup: dict) -> None:
    out = first["out"]
    before = {n: (out / "runs" / n / "weights" / "best.pt").stat().st_mtime_ns for n in run_names()}
    (out / "compare.md").unlink()
    result = run_cli(*compare_args(setup["package"], setup["data"], out), "--json", "-", env=setup["env"])
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)  # `-`: stdout holds only the JSON; the progress went to stderr
    assert doc["trained_by_this_call"] == [] and len(doc["runs"]) == 4
    assert "All 4 runs finished earlier (kept, nothing trained); writing the report again." in result.stderr
    assert "Preflight" not in result.stderr and (out / "compare.md").is_file()
    assert {n: (out / "runs" / n / "weights" / "best.pt").stat().st_mtime_ns for n in run_names()} == before
    again = run_cli(*compare_args(setup["package"], setup["data"], out), "--json", str(out / "again.json"), env=setup["env"])
    assert again.returncode == 0 and f"Report: {out / 'compare.md'}" in again.stdout  # a PATH: the report printed too
    assert json.loads((out / "again.json").read_text()) == json.loads((out / "compare.json").read_text())
    other = cli(*compare_args(setup["package"], setup["data"], out, epochs=3))  # in process: refused before anything starts
    assert other.code == 2 and other.out == ""
    assert other.err.count("\n") == 1 and "holds a comparison made with other settings" in other.err
    assert '"epochs": 2' in other.err and '"epochs": 3' in other.err


def test_killed_call_resumes_without_retraining(setup: dict) -> None:
    out = setup["root"] / "killed"
    args = compare_args(setup["package"], setup["data"], out, seeds=1, epochs=3)
    env = {**os.environ, "COLUMNS": "200", **setup["env"]}
    proc = subprocess.Popen([sys.executable, "-m", "halo_patch", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    first_best = out / "runs" / f"{BASE}-seed0" / "weights" / "best.pt"
    record = out / ".halo-compare" / "records" / f"{BASE}-seed0.json"
    second_last = out / "runs" / f"{VARIANT}-seed0" / "weights" / "last.pt"
    deadline = time.monotonic() + 240
    while not (record.is_file() and second_last.is_file()) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # last.pt written whole
    os.killpg(proc.pid, signal.SIGKILL)  # the call and its training process, as a lost session would
    proc.wait()
    assert record.is_file() and second_last.is_file(), "the call did not get to its second run"
    kept = first_best.stat().st_mtime_ns
    rows_before = read_csv(out / "runs" / f"{VARIANT}-seed0" / "results.csv")
    assert 1 <= len(rows_before) < 3
    result = run_cli(*args, env=setup["env"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 of 2 runs finished earlier (kept); 1 to train." in result.stdout
    assert f"run 1/1 {VARIANT}-seed0: resuming (Ultralytics resume from last.pt)" in result.stdout
    assert first_best.stat().st_mtime_ns == kept
    rows_after = read_csv(out / "runs" / f"{VARIANT}-seed0" / "results.csv")
    # one row per epoch: a row the trainer wrote before a last.pt the kill cut off is trained again, not doubled
    assert [int(float(r["epoch"])) for r in rows_after] == [1, 2, 3] and rows_after[0] == rows_before[0]
    doc = json.loads((out / "compare.json").read_text())
    assert doc["trained_by_this_call"] == [f"{VARIANT}-seed0"]
    cmp = doc["comparisons"][VARIANT]  # one seed: never better or worse, whatever the numbers
    assert cmp["verdict"] == "inconclusive" and cmp["interval95"] is None
    assert cmp["reason"].startswith("1 paired seed(s): one run cannot tell a model from its seed")
    assert cmp["bootstrap_seed"]["images"] == 4
    assert json.loads((out / ".halo-compare" / "records" / f"{VARIANT}-seed0.json").read_text())["mode"] == "resumed"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"data": "missing.yaml"}, "--data {root}/missing.yaml: no such file; expected the dataset's yaml"),
        ({"variant": "nothere-HaloAttention.yaml"}, "--variant nothere-HaloAttention.yaml: no such file, and no nothere-HaloAttention.yaml under"),
        ({"seeds": "0"}, "--seeds 0: expected a number of seeds of at least 1"),
        ({"set": "epochs=5"}, "--set 'epochs=5': epochs is set by --epochs, the same for every run"),
        ({"set": "patience=5"}, "--set 'patience=5': compare allows no early stopping and no time budget"),
        ({"set": "no_such_arg=1"}, "--set no_such_arg=1: no_such_arg is not a train argument of Ultralytics"),
    ],
)
def test_bad_input_exit_2_nothing_started(setup: dict, change: dict, message: str) -> None:
    out = setup["root"] / "bad"
    args = compare_args(setup["package"], setup["data"], out)
    if "data" in change:
        args[args.index("--data") + 1] = str(setup["root"] / change["data"])
    if "seeds" in change:
        args[args.index("--seeds") + 1] = change["seeds"]
    if "variant" in change:
        args += ["--variant", change["variant"]]
    if "set" in change:
        args += ["--set", change["set"]]
    result = cli(*args)  # in process: refused before anything starts
    assert result.code == 2 and result.out == ""
    assert result.err.count("\n") == 1 and result.err.startswith("error: ")
    assert message.format(root=setup["root"]) in result.err
    assert not out.exists()


def test_ddp_workers_import_the_patched_tree(setup: dict, tmp_path: Path) -> None:
    """Ultralytics' multi-GPU training starts `python -m torch.distributed.run --nproc_per_node N <file>`; older
    releases' files rebuild the model from the yaml in a fresh process. With compare's environment, such a worker
    (here 2 of them on CPU) imports the patched copy and builds the HaloAttention yaml."""
    from halo_patch.compare.jobs import job_env
    from halo_patch.target import find_target
    from halo_patch.verify.interpreter import find_interpreter

    target = find_target(setup["package"])
    env = job_env(find_interpreter(target), tmp_path)
    (tmp_path / "tmp").mkdir()
    worker = tmp_path / "ddp_worker.py"
    worker.write_text(
        "import os, ultralytics\nfrom ultralytics.nn.tasks import DetectionModel\n"
        "m = DetectionModel('yolo11n-HaloAttention.yaml', verbose=False)\n"
        "print('RANK', os.environ['RANK'], ultralytics.__file__, [type(x).__name__ for x in m.model].count('HaloAttention'))\n"
    )
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(worker)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = sorted(line for line in proc.stdout.splitlines() if line.startswith("RANK"))
    assert lines == [f"RANK {r} {setup['package'] / '__init__.py'} 1" for r in (0, 1)]


# ---------------------------------------------------------------- statistics against independent oracles


def test_t_quantiles_match_tables() -> None:
    for df, t in T975.items():
        assert stats.t_quantile(0.975, df) == pytest.approx(t, abs=1e-4)
    xs = [0.012, -0.004, 0.020, 0.007]
    m, lo, hi = stats.t_interval(xs)
    half = 3.1824 * statistics.stdev(xs) / 2
    assert (m, lo, hi) == pytest.approx((statistics.mean(xs), statistics.mean(xs) - half, statistics.mean(xs) + half), abs=1e-5)
    assert stats.t_interval([0.5]) is None and stats.verdict(None) == "inconclusive"
    assert stats.verdict((0.01, 0.001, 0.02)) == "better" and stats.verdict((-0.01, -0.02, -0.001)) == "worse"


AP_SCRIPT = r"""
import json, sys
import numpy as np
from ultralytics.utils.metrics import ap_per_class

out = []
for images in json.loads(sys.stdin.read()):
    dets = [d for im in images for d in im["det"]]
    tp = np.array([[bool(d[2] >> j & 1) for j in range(10)] for d in dets], dtype=bool).reshape(-1, 10)
    ap = ap_per_class(tp, np.array([d[0] for d in dets]), np.array([d[1] for d in dets]),
                      np.array([c for im in images for c in im["gt"]]))[5]
    out.append([float(ap.mean()), float(ap[:, 0].mean())])
print(json.dumps(out))
"""


def test_average_precision_equals_ultralytics(setup: dict, tmp_path: Path) -> None:
    """compare's pure-Python mAP of per-image statistics equals Ultralytics' ap_per_class on the same numbers
    (run in the test tree's Ultralytics, not the environment's)."""
    rng = random.Random(3)
    cases = [
        [{"det": [[rng.random(), rng.randrange(3), rng.randrange(1024)] for _ in range(rng.randint(0, 6))],
          "gt": [rng.randrange(3) for _ in range(rng.randint(1, 4))]}
         for _ in range(rng.randint(1, 8))]
        for _ in range(40)
    ]
    env = {**os.environ, "PYTHONPATH": str(setup["package"].parent), "PYTHONDONTWRITEBYTECODE": "1", "YOLO_OFFLINE": "1",
           "YOLO_CONFIG_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", AP_SCRIPT], input=json.dumps(cases), capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(theirs) == len(cases)
    for images, (map50_95, map50) in zip(cases, theirs):
        mine = stats.mean_ap(images)
        assert mine["mAP50-95"] == pytest.approx(map50_95, abs=1e-9)
        assert mine["mAP50"] == pytest.approx(map50, abs=1e-9)
    images = cases[-1]
    # the paired bootstrap: identical models differ by exactly 0 on every resample
    boot = stats.paired_bootstrap(images, images, 200, seed=1)
    assert (boot["difference"], boot["low"], boot["high"], boot["resamples"]) == (0.0, 0.0, 0.0, 200)


@pytest.mark.parametrize("path", sorted((Path(stats.__file__).parent / "in_target").glob("*.py")), ids=lambda p: p.name)
def test_in_target_code_is_python_38_with_allowed_imports(path: Path) -> None:
    """compare's jobs run in whatever Python owns the target: 3.8 syntax, stdlib + torch + ultralytics (+ numpy,
    matplotlib, PIL that Ultralytics brings), never halo_patch, and those packages only inside functions."""
    assert_in_target_source(path, {"torch", "ultralytics", "numpy", "matplotlib", "PIL"})


def test_a_variant_without_the_layer_fails_in_preflight(setup: dict, tmp_path: Path) -> None:
    """A --variant that builds but holds no HaloAttention is stopped by the preflight: exit 1, one line, no run."""
    plain = tmp_path / "models" / "plain.yaml"
    plain.parent.mkdir()
    plain.write_bytes((setup["package"] / "cfg" / "models" / "11" / "yolo11.yaml").read_bytes())
    out = tmp_path / "out"
    result = run_cli(*compare_args(setup["package"], setup["data"], out), "--variant", str(plain), env=setup["env"])
    assert result.returncode == 1, result.stdout + result.stderr
    log = out / ".halo-compare" / "logs" / "preflight.log"
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: preflight failed: JobFailed: {plain} builds without a HaloAttention layer")
    assert f"the log is {log}" in result.stderr and log.is_file()
    assert not (out / "runs").exists() and "Estimate" not in result.stdout
