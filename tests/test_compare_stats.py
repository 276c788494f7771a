"""compare's report layer on synthetic, non-zero numbers: no training, no torch.

The real runs in tests/test_compare.py are too short to learn anything (every mAP is 0), so the statistics,
verdicts, per-class differences and the compare.md table are checked here on made-up per-run records that go
through the same path compare takes: results.run_row (runs.csv rows) -> summary.summarize -> report.markdown.
Expected values are computed in the test with the statistics module and textbook t quantiles.
"""

from __future__ import annotations

import math
import random
import statistics
from pathlib import Path

import pytest

from halo_patch.compare.plan import Matrix, ModelChoice, Run
from halo_patch.compare.report import markdown
from halo_patch.compare.results import run_row
from halo_patch.compare.summary import summarize

BASE, VARIANT = "yolo11n", "yolo11n-HaloAttention"
T975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706}  # Student t, two-sided 95 % (tables)
BOX = "metrics/mAP50-95(B)"
DETECT = ("metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", BOX)
# Ultralytics' cfg.TASK2METRIC (8.4.190), written out: the metric each task's fitness and our verdict are about
TASK2METRIC = {
    "detect": (DETECT, BOX),
    "obb": (DETECT, BOX),
    "segment": (DETECT + tuple(k.replace("(B)", "(M)") for k in DETECT), "metrics/mAP50-95(M)"),
    "pose": (DETECT + tuple(k.replace("(B)", "(P)") for k in DETECT), "metrics/mAP50-95(P)"),
    "classify": (("metrics/accuracy_top1", "metrics/accuracy_top5"), "metrics/accuracy_top1"),
}
COST = {BASE: (2_624_080, 6.6, 21.5), VARIANT: (2_690_000, 6.9, 24.25)}  # params, GFLOPs, latency ms


def matrix(seeds: int) -> Matrix:
    base = ModelChoice(BASE, "yolo11n.yaml", Path("yolo11n.yaml"), False)
    variant = ModelChoice(VARIANT, "yolo11n-HaloAttention.yaml", Path("yolo11n-HaloAttention.yaml"), True)
    return Matrix(base, (variant,), tuple(range(seeds)))


def record(label: str, metrics: dict, per_class: dict | None = None, images: list | None = None) -> dict:
    params, gflops, latency = COST[label]
    return {"metrics": metrics, "params": params, "gflops": gflops, "latency_ms": latency,
            "per_class": per_class or {}, "images": images or []}


def summarize_records(m: Matrix, records: dict[str, dict], seconds: dict[str, float] | None = None) -> dict:
    """What report.build does with finished runs, minus the files: rows from run_row, then summarize."""
    curves = {r.name: [{"epoch": 1.0, "time": (seconds or {}).get(r.name, 10.0)}] for r in m.runs}
    rows = [run_row(r, records[r.name], curves[r.name], "cpu") for r in m.runs]
    return summarize(m, rows, records, curves)


def detect_records(values: dict[str, list[float]]) -> dict[str, dict]:
    """Per run: mAP50-95(B) = the given value; the other box columns derived from it."""
    out = {}
    for label, xs in values.items():
        for seed, x in enumerate(xs):
            metrics = {"metrics/precision(B)": x + 0.2, "metrics/recall(B)": x + 0.1, "metrics/mAP50(B)": 1.5 * x, BOX: x}
            out[Run(matrix(1).base if label == BASE else matrix(1).variants[0], seed).name] = record(label, metrics)
    return out


def t_interval(diffs: list[float]) -> tuple[float, float]:
    n, m = len(diffs), statistics.mean(diffs)
    half = T975[n - 1] * statistics.stdev(diffs) / math.sqrt(n)
    return m - half, m + half


def doc_of(summary: dict) -> dict:
    return {"target": "/tmp/ultralytics", "ultralytics": "8.4.190", "fairness": {"batch": "explicit 4"}, "notes": ["a note"], **summary}


# ---------------------------------------------------------------- mean, sd, paired difference, verdict


@pytest.mark.parametrize(
    "base, variant, verdict",
    [
        ([0.412, 0.398, 0.421, 0.405], [0.431, 0.420, 0.437, 0.428], "better"),  # every seed +0.016..+0.022
        ([0.412, 0.398, 0.421, 0.405], [0.395, 0.381, 0.409, 0.390], "worse"),
        ([0.412, 0.398, 0.421, 0.405], [0.430, 0.385, 0.428, 0.399], "inconclusive"),  # +0.018 -0.013 +0.007 -0.006
        ([0.300, 0.310, 0.290], [0.312, 0.318, 0.305], "better"),
    ],
)
def test_mean_sd_paired_interval_and_verdict(base: list[float], variant: list[float], verdict: str) -> None:
    n = len(base)
    m = matrix(n)
    summary = summarize_records(m, detect_records({BASE: base, VARIANT: variant}))
    assert summary["metric"] == BOX
    for label, xs in ((BASE, base), (VARIANT, variant)):
        v = summary["variants"][label]
        assert v["n"] == n and v["is_base"] == (label == BASE)
        assert v["mean"][BOX] == pytest.approx(statistics.mean(xs), abs=1e-12)
        assert v["sd"][BOX] == pytest.approx(statistics.stdev(xs), abs=1e-12)
        assert v["mean"]["metrics/mAP50(B)"] == pytest.approx(1.5 * statistics.mean(xs), abs=1e-12)
        assert v["mean"]["params"] == COST[label][0] and v["sd"]["params"] == 0.0
    diffs = [b - a for a, b in zip(base, variant)]
    cmp = summary["comparisons"][VARIANT]
    assert cmp["against"] == BASE and cmp["seeds"] == list(range(n))
    assert [cmp["differences"][str(s)] for s in range(n)] == pytest.approx(diffs, abs=1e-12)
    assert cmp["mean_difference"] == pytest.approx(statistics.mean(diffs), abs=1e-12)
    low, high = t_interval(diffs)
    assert cmp["interval95"] == pytest.approx([low, high], abs=1e-5)
    assert (low > 0, high < 0) == {"better": (True, False), "worse": (False, True), "inconclusive": (False, False)}[verdict]
    assert cmp["verdict"] == verdict
    word = {"better": "lies above 0", "worse": "lies below 0", "inconclusive": "includes 0"}[verdict]
    assert cmp["reason"] == f"95% interval of the paired difference over {n} seeds [{low:+.4f}, {high:+.4f}] {word}"


def test_pairing_is_by_seed_not_by_order() -> None:
    """Paired over seeds: a large seed effect shared by both models cancels out; unpaired it would not."""
    base = [0.20, 0.50, 0.35, 0.65]
    variant = [x + d for x, d in zip(base, (0.011, 0.013, 0.012, 0.014))]
    records = detect_records({BASE: base, VARIANT: variant})
    cmp = summarize_records(matrix(4), records)["comparisons"][VARIANT]
    assert cmp["verdict"] == "better"
    assert cmp["interval95"] == pytest.approx(list(t_interval([0.011, 0.013, 0.012, 0.014])), abs=1e-5)
    # the same numbers unpaired: a two-sample 95 % interval (6 df) is far wider than the difference of the means
    unpaired_half = 2.4469 * math.sqrt((statistics.variance(base) + statistics.variance(variant)) / 4)
    assert statistics.mean(variant) - statistics.mean(base) < unpaired_half / 10


def test_seeds_that_did_not_vary_the_training_are_one_run() -> None:
    """Every seed gives the same difference (a release whose data loader ignores the seed trains the same model
    each time): the interval has width 0, which is one run's evidence, not certainty: inconclusive."""
    cmp = summarize_records(matrix(3), detect_records({BASE: [0.25] * 3, VARIANT: [0.5] * 3}))["comparisons"][VARIANT]
    assert cmp["interval95"] == pytest.approx([0.25, 0.25], abs=1e-12)
    assert cmp["verdict"] == "inconclusive"
    assert cmp["reason"] == ("95% interval of the paired difference over 3 seeds [+0.2500, +0.2500]: every seed gave the "
                             "same difference, so the seeds did not vary the training and count as one run")
    worse = summarize_records(matrix(2), detect_records({BASE: [0.5] * 2, VARIANT: [0.25] * 2}))["comparisons"][VARIANT]
    assert worse["verdict"] == "inconclusive"
    same = summarize_records(matrix(2), detect_records({BASE: [0.0] * 2, VARIANT: [0.0] * 2}))["comparisons"][VARIANT]
    assert (same["verdict"], same["reason"]) == (
        "inconclusive", "95% interval of the paired difference over 2 seeds [+0.0000, +0.0000] includes 0")


def test_missing_run_leaves_its_seed_out_of_the_pairs() -> None:
    """A seed where one model has no row is not paired (a stopped comparison keeps whole pairs)."""
    m = matrix(4)
    records = detect_records({BASE: [0.41, 0.40, 0.42, 0.43], VARIANT: [0.43, 0.415, 0.445, 0.40]})  # seed 3 alone: -0.03
    curves = {r.name: [{"epoch": 1.0, "time": 5.0}] for r in m.runs}
    rows = [run_row(r, records[r.name], curves[r.name], None) for r in m.runs if r.name != f"{VARIANT}-seed3"]
    cmp = summarize(m, rows, records, curves)["comparisons"][VARIANT]
    assert cmp["seeds"] == [0, 1, 2]
    assert cmp["interval95"] == pytest.approx(list(t_interval([0.02, 0.015, 0.025])), abs=1e-5)
    assert cmp["verdict"] == "better"


# ---------------------------------------------------------------- one seed: the bootstrap over validation images


def image(gt: list[int], det: list[tuple[float, int, bool]]) -> dict:
    """A validation image: labels, and detections (conf, class, true positive at every IoU threshold or none)."""
    return {"gt": gt, "det": [[conf, c, 1023 if hit else 0] for conf, c, hit in det]}


def one_seed(base_images: list[dict], variant_images: list[dict], base_map: float = 0.30, variant_map: float = 0.36) -> dict:
    records = {
        f"{BASE}-seed0": record(BASE, {BOX: base_map}, images=base_images),
        f"{VARIANT}-seed0": record(VARIANT, {BOX: variant_map}, images=variant_images),
    }
    return summarize_records(matrix(1), records)["comparisons"][VARIANT]


def test_one_seed_is_never_better_even_when_every_image_says_so() -> None:
    """Base misses every object, the variant finds every one: AP 0 against AP 1 on every resample of the images.
    The bootstrap says +0.995 [+0.995, +0.995] (a perfect detector's AP under Ultralytics' 101-point
    interpolation with the trapezoid rule is 0.995, not 1); the verdict stays inconclusive, because one training run is not evidence."""
    gts = [[0], [1], [0, 1], [1], [0], [0, 1]]
    base = [image(g, [(0.9 - 0.1 * i, c, False) for i, c in enumerate(g)]) for g in gts]
    variant = [image(g, [(0.9 - 0.1 * i, c, True) for i, c in enumerate(g)]) for g in gts]
    cmp = one_seed(base, variant)
    assert cmp["seeds"] == [0] and cmp["interval95"] is None
    assert cmp["mean_difference"] == pytest.approx(0.06, abs=1e-12)  # from runs.csv, not from the bootstrap
    boot = cmp["bootstrap_seed"]
    assert (boot["difference"], boot["low"], boot["high"]) == pytest.approx((0.995, 0.995, 0.995), abs=1e-9)
    assert boot["images"] == 6 and 100 <= boot["resamples"] <= 1000
    assert cmp["verdict"] == "inconclusive"
    assert cmp["reason"] == (
        "1 paired seed(s): one run cannot tell a model from its seed, run --seeds 3 or more; the bootstrap over 6 "
        "validation images gives [+0.9950, +0.9950], which measures the validation set's noise, not the training's"
    )
    # and the same the other way round: never "worse" from one seed
    assert one_seed(variant, base, 0.36, 0.30)["verdict"] == "inconclusive"


def random_images(rng: random.Random, n: int, hit_rate: float) -> list[dict]:
    out = []
    for _ in range(n):
        gt = [rng.randrange(2) for _ in range(rng.randint(1, 2))]
        det = [(rng.random(), c, rng.random() < hit_rate) for c in gt] + [(rng.random() * 0.5, rng.randrange(2), False)]
        out.append(image(gt, det))
    return out


def test_one_seed_bootstrap_properties() -> None:
    """Same resample for both models (identical models differ by exactly 0), the interval contains the point
    estimate, and it narrows when the validation set is larger (the same images three times over)."""
    rng = random.Random(11)
    base, variant = random_images(rng, 5, 0.4), random_images(rng, 5, 0.7)
    assert one_seed(base, base)["bootstrap_seed"] | {"resamples": 0} == {
        "difference": 0.0, "low": 0.0, "high": 0.0, "resamples": 0, "images": 5, "seed": 0}
    small = one_seed(base, variant)["bootstrap_seed"]
    large = one_seed(base * 3, variant * 3)["bootstrap_seed"]
    for boot in (small, large):
        assert boot["low"] <= boot["difference"] <= boot["high"] and boot["low"] < boot["high"]
    assert large["images"] == 15
    assert large["difference"] == pytest.approx(small["difference"], abs=1e-12)  # copies do not move the estimate
    assert large["high"] - large["low"] < 0.75 * (small["high"] - small["low"])


def test_no_per_image_statistics_no_bootstrap() -> None:
    cmp = one_seed([], [])
    assert cmp["bootstrap_seed"] is None and cmp["verdict"] == "inconclusive"
    assert cmp["reason"] == "1 paired seed(s): one run cannot tell a model from its seed, run --seeds 3 or more"


# ---------------------------------------------------------------- per-class AP differences


def test_per_class_differences_are_means_over_seeds() -> None:
    """Per class: the mean AP50-95 over seeds of each model and their difference. A class without validation
    instances has no AP in Ultralytics' ap_class_index (its `maps` would fill it with the overall mAP): it gets
    no row, not a row of overall mAPs."""
    base_ap = {"red": [0.52, 0.48, 0.50], "blue": [0.21, 0.25, 0.23]}
    variant_ap = {"red": [0.55, 0.47, 0.56], "blue": [0.20, 0.22, 0.21]}
    records = {}
    for label, aps in ((BASE, base_ap), (VARIANT, variant_ap)):
        for s in range(3):
            per_class = {name: {"AP50-95": aps[name][s], "AP50": 0.9} for name in ("red", "blue")}
            overall = statistics.mean(v["AP50-95"] for v in per_class.values())
            records[f"{label}-seed{s}"] = record(label, {BOX: overall}, per_class=per_class)
    summary = summarize_records(matrix(3), records)
    rows = summary["comparisons"][VARIANT]["per_class"]
    assert list(rows) == ["red", "blue"]  # "green" (named in the data yaml, no instances) is not there
    for name in ("red", "blue"):
        a, b = statistics.mean(base_ap[name]), statistics.mean(variant_ap[name])
        assert rows[name] == pytest.approx({"base": a, "variant": b, "difference": b - a, "seeds": 3}, abs=1e-12)
    assert rows["red"]["difference"] == pytest.approx(0.08 / 3, abs=1e-12)
    assert rows["blue"]["difference"] == pytest.approx(-0.02, abs=1e-12)
    md = markdown(doc_of(summary))
    section = md.split(f"## Per-class AP50-95(B), {VARIANT} vs {BASE} (mean over seeds)")[1].split("## Fairness")[0]
    assert "| red | 0.5000 | 0.5267 | +0.0267 |" in section
    assert "| blue | 0.2300 | 0.2100 | -0.0200 |" in section
    assert "green" not in section
    assert [line for line in section.splitlines() if line.startswith("|")][2:] == [
        "| red | 0.5000 | 0.5267 | +0.0267 |", "| blue | 0.2300 | 0.2100 | -0.0200 |"]


def test_per_class_pairs_only_seeds_where_both_models_have_the_class() -> None:
    records = {
        f"{BASE}-seed0": record(BASE, {BOX: 0.4}, per_class={"red": {"AP50-95": 0.40}, "blue": {"AP50-95": 0.10}}),
        f"{BASE}-seed1": record(BASE, {BOX: 0.4}, per_class={"red": {"AP50-95": 0.44}, "blue": {"AP50-95": 0.30}}),
        f"{VARIANT}-seed0": record(VARIANT, {BOX: 0.4}, per_class={"red": {"AP50-95": 0.46}}),
        f"{VARIANT}-seed1": record(VARIANT, {BOX: 0.4}, per_class={"red": {"AP50-95": 0.42}, "blue": {"AP50-95": 0.36}}),
    }
    rows = summarize_records(matrix(2), records)["comparisons"][VARIANT]["per_class"]
    assert rows["red"] == pytest.approx({"base": 0.42, "variant": 0.44, "difference": 0.02, "seeds": 2}, abs=1e-12)
    assert rows["blue"] == pytest.approx({"base": 0.30, "variant": 0.36, "difference": 0.06, "seeds": 1}, abs=1e-12)


# ---------------------------------------------------------------- compare.md: accuracy and cost side by side


def test_markdown_puts_accuracy_and_cost_side_by_side() -> None:
    base, variant = [0.412, 0.398, 0.421], [0.431, 0.420, 0.437]
    seconds = {f"{BASE}-seed{s}": 30.0 + s for s in range(3)} | {f"{VARIANT}-seed{s}": 40.0 + 2 * s for s in range(3)}
    records = detect_records({BASE: base, VARIANT: variant})
    summary = summarize_records(matrix(3), records, seconds)
    md = markdown(doc_of(summary))
    lines = md.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| model |"))
    assert lines[head] == ("| model | seeds | mAP50-95(B) mean ± sd | Δ vs base [95% interval] | verdict | params (M) | "
                           "GFLOPs | latency ms | train s |")
    rows = {line.split(" | ")[0][2:]: line for line in lines[head + 2: head + 4]}
    low, high = t_interval([b - a for a, b in zip(base, variant)])
    diff = statistics.mean(variant) - statistics.mean(base)
    assert rows[BASE] == (f"| {BASE} | 3 | {statistics.mean(base):.4f} ± {statistics.stdev(base):.4f} | base |  | "
                          "2.62 | 6.60 | 21.5 | 31.0 |")
    assert rows[VARIANT] == (f"| {VARIANT} | 3 | {statistics.mean(variant):.4f} ± {statistics.stdev(variant):.4f} | "
                             f"{diff:+.4f} [{low:+.4f}, {high:+.4f}] | better | 2.69 | 6.90 | 24.2 | 42.0 |")
    assert f"- **{VARIANT}** vs {BASE}: **better** (95% interval of the paired difference over 3 seeds" in md
    assert summary["variants"][VARIANT]["mean"]["train_seconds"] == pytest.approx(42.0, abs=1e-12)
    assert summary["variants"][VARIANT]["sd"]["latency_ms_batch1"] == 0.0


def test_markdown_one_seed_shows_no_sd_and_the_bootstrap() -> None:
    gts = [[0], [1], [0, 1], [1]]
    base = [image(g, [(0.9, c, i % 2 == 0) for i, c in enumerate(g)]) for g in gts]
    variant = [image(g, [(0.9, c, True) for c in g]) for g in gts]
    records = {
        f"{BASE}-seed0": record(BASE, {BOX: 0.25}, images=base),
        f"{VARIANT}-seed0": record(VARIANT, {BOX: 0.5}, images=variant),
    }
    summary = summarize_records(matrix(1), records)
    md = markdown(doc_of(summary))
    assert f"| {BASE} | 1 | 0.2500 ± - | base |  |" in md
    assert f"| {VARIANT} | 1 | 0.5000 ± - | +0.2500 | inconclusive |" in md
    boot = summary["comparisons"][VARIANT]["bootstrap_seed"]
    assert (f"  - bootstrap over 4 validation images of seed 0 ({boot['resamples']} resamples, the same for both): "
            f"{boot['difference']:+.4f} [{boot['low']:+.4f}, {boot['high']:+.4f}]") in md
    assert boot["low"] <= boot["difference"] <= boot["high"] and boot["difference"] > 0


# ---------------------------------------------------------------- the headline metric of each task


@pytest.mark.parametrize("task", sorted(TASK2METRIC))
def test_headline_metric_is_the_tasks(task: str) -> None:
    """Segment and pose runs carry box columns too: the verdict is about the mask / pose mAP50-95 (Ultralytics'
    TASK2METRIC). The box column is made to say the opposite, so picking it would flip the verdict."""
    columns, metric = TASK2METRIC[task]
    base, variant = [0.30, 0.32, 0.31], [0.34, 0.35, 0.36]
    records = {}
    for label, xs in ((BASE, base), (VARIANT, variant)):
        for s, x in enumerate(xs):
            flipped = 0.62 - x  # the variant is worse on every other column
            records[f"{label}-seed{s}"] = record(label, {c: (x if c == metric else flipped) for c in columns})
    summary = summarize_records(matrix(3), records)
    assert summary["metric"] == metric and summary["metrics"] == list(columns)
    cmp = summary["comparisons"][VARIANT]
    assert cmp["metric"] == metric and cmp["verdict"] == "better"
    assert cmp["interval95"] == pytest.approx(list(t_interval([0.04, 0.03, 0.05])), abs=1e-5)
    md = markdown(doc_of(summary))
    assert f"| model | seeds | {metric.split('/')[-1]} mean ± sd |" in md
    if "mAP" in metric:  # the per-class table is titled with the headline's AP: AP50-95(M) for segment
        assert f"## Per-class {metric.split('/')[-1][1:]}, {VARIANT} vs {BASE}" in md
    assert f"| {VARIANT} | 3 | 0.3500 ± 0.0100 | +0.0400 [" in md
