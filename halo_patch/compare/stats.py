"""compare's statistics in pure Python (no numpy, no torch): testable on the installer side.

- mean, sample sd, Student-t quantiles (regularized incomplete beta, Lentz's continued fraction) and the
  95 % t-interval of paired differences over seeds;
- average precision exactly as Ultralytics computes it (utils/metrics.py ap_per_class / compute_ap:
  detections sorted by confidence, precision envelope, 101-point interpolation, trapezoid rule; the mean
  over classes that have labels) from the per-image statistics of a validation;
- a paired bootstrap over validation images: the same resample of images for both models.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from typing import Optional, Sequence

AP_X = [i / 100 for i in range(101)]
THRESHOLDS = 10  # IoU 0.50:0.05:0.95
EPS = 1e-16


def mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def sd(xs: Sequence[float]) -> Optional[float]:
    """Sample standard deviation (n - 1); None for fewer than two values."""
    if len(xs) < 2:
        return None
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)), -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: int) -> float:
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: int) -> float:
    """The t with P(T <= t) = p, by bisection (p in (0.5, 1))."""
    lo, hi = 0.0, 1e4
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def t_interval(diffs: Sequence[float], level: float = 0.95) -> Optional[tuple[float, float, float]]:
    """(mean, low, high) of the mean of `diffs`; None for fewer than two."""
    n = len(diffs)
    if n < 2:
        return None
    m, s = mean(diffs), sd(diffs)
    half = t_quantile(0.5 + level / 2, n - 1) * s / math.sqrt(n)
    return m, m - half, m + half


def verdict(interval: Optional[tuple[float, float, float]]) -> str:
    """better / worse / inconclusive from the interval over seeds; never better or worse from one seed, nor from
    seeds that all gave the same difference (an interval of width 0: the seeds did not vary the training, as on
    releases whose data loader ignores the seed, so they are one run's evidence)."""
    if interval is None or interval[1] == interval[2]:
        return "inconclusive"
    return "better" if interval[1] > 0 else "worse" if interval[2] < 0 else "inconclusive"


# ---------------------------------------------------------------- average precision, as Ultralytics


def interp(x: float, xp: Sequence[float], fp: Sequence[float]) -> float:
    """numpy.interp for a non-decreasing xp (repeated values: the last one at or below x is used)."""
    if x < xp[0]:
        return fp[0]
    j = bisect_right(xp, x) - 1
    if j >= len(xp) - 1:
        return fp[-1]
    return fp[j] + (fp[j + 1] - fp[j]) * (x - xp[j]) / (xp[j + 1] - xp[j])


def average_precision(recall: Sequence[float], precision: Sequence[float]) -> float:
    mrec = [0.0, *recall, recall[-1] if recall else 1.0, 1.0]
    mpre = [1.0, *precision, 0.0, 0.0]
    for i in range(len(mpre) - 2, -1, -1):  # the precision envelope
        mpre[i] = max(mpre[i], mpre[i + 1])
    ys = [interp(x, mrec, mpre) for x in AP_X]
    return sum((AP_X[i + 1] - AP_X[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(AP_X) - 1))


def sorted_detections(images: list[dict]) -> list[tuple[float, int, int, int]]:
    """(conf, cls, tp mask, image index) of every detection, highest confidence first (stable)."""
    dets = [(d[0], d[1], d[2], i) for i, im in enumerate(images) for d in im["det"]]
    return sorted(dets, key=lambda d: -d[0])


def mean_ap(images: list[dict], weights: Optional[Sequence[int]] = None, dets=None) -> dict:
    """{"mAP50-95", "mAP50", "per_class": {cls: AP50-95}} over the images, each counted weights[i] times."""
    w = weights if weights is not None else [1] * len(images)
    dets = dets if dets is not None else sorted_detections(images)
    n_labels: dict[int, int] = {}
    for im, k in zip(images, w):
        for c in im["gt"]:
            n_labels[c] = n_labels.get(c, 0) + k
    classes = sorted(c for c, n in n_labels.items() if n > 0)
    per_class, ap50 = {}, []
    for c in classes:
        tpc, fpc = [0] * THRESHOLDS, [0] * THRESHOLDS
        rec: list[list[float]] = [[] for _ in range(THRESHOLDS)]
        pre: list[list[float]] = [[] for _ in range(THRESHOLDS)]
        for conf, cls, mask, img in dets:
            if cls != c:
                continue
            for _ in range(w[img]):
                for j in range(THRESHOLDS):
                    if mask >> j & 1:
                        tpc[j] += 1
                    else:
                        fpc[j] += 1
                    rec[j].append(tpc[j] / (n_labels[c] + EPS))
                    pre[j].append(tpc[j] / (tpc[j] + fpc[j]))
        aps = [average_precision(rec[j], pre[j]) if rec[j] else 0.0 for j in range(THRESHOLDS)]
        per_class[c] = sum(aps) / THRESHOLDS
        ap50.append(aps[0])
    if not classes:
        return {"mAP50-95": 0.0, "mAP50": 0.0, "per_class": {}}
    return {"mAP50-95": mean(list(per_class.values())), "mAP50": mean(ap50), "per_class": per_class}


def boot_count(images: list[dict], budget: float = 3e7, most: int = 1000, least: int = 100) -> int:
    """How many resamples: up to `most`, fewer for large validation sets (pure Python is slow)."""
    n = sum(len(im["det"]) for im in images) * THRESHOLDS * 2 + 1
    return max(least, min(most, int(budget / n)))


def paired_bootstrap(base: list[dict], variant: list[dict], n_boot: int, seed: int = 0, level: float = 0.95) -> Optional[dict]:
    """The variant - base mAP50-95 difference over resamples of the validation images (the same for both)."""
    if not base or len(base) != len(variant):
        return None
    rng = random.Random(seed)
    dets_a, dets_b = sorted_detections(base), sorted_detections(variant)
    n = len(base)
    diffs = []
    for _ in range(n_boot):
        w = [0] * n
        for _ in range(n):
            w[rng.randrange(n)] += 1
        diffs.append(mean_ap(variant, w, dets_b)["mAP50-95"] - mean_ap(base, w, dets_a)["mAP50-95"])
    diffs.sort()
    lo = diffs[int(math.floor((1 - level) / 2 * (n_boot - 1)))]
    hi = diffs[int(math.ceil((1 + level) / 2 * (n_boot - 1)))]
    point = mean_ap(variant)["mAP50-95"] - mean_ap(base)["mAP50-95"]
    return {"difference": point, "low": lo, "high": hi, "resamples": n_boot, "images": n, "seed": seed}
