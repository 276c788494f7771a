"""compare's findings from the per-run records: per variant mean and sd, paired differences with their
interval, the bootstrap over images, the verdict, per-class AP differences, cost side by side."""

from __future__ import annotations

from typing import Optional

from halo_patch.compare import stats
from halo_patch.compare.plan import Matrix
from halo_patch.compare.results import COST_COLUMNS, headline


def summarize(matrix: Matrix, rows: list[dict], records: dict[str, dict], curves_in: dict[str, list]) -> dict:
    metric_names = [k for k in rows[0] if k.startswith("metrics/")] if rows else []
    metric = headline(metric_names)
    by = {(r["variant"], r["seed"]): r for r in rows}
    variants = {}
    for m in matrix.models:
        mine = [by[(m.label, s)] for s in matrix.seeds if (m.label, s) in by]
        variants[m.label] = {
            "model": m.model,
            "is_base": not m.variant,
            "n": len(mine),
            "mean": {c: stats.mean([r[c] for r in mine]) for c in (*metric_names, *COST_COLUMNS)} if mine else {},
            "sd": {c: stats.sd([r[c] for r in mine]) for c in (*metric_names, *COST_COLUMNS)} if mine else {},
        }
    comparisons = {m.label: compare_one(matrix, m.label, by, records, metric) for m in matrix.variants}
    return {
        "metric": metric,
        "metrics": metric_names,
        "variants": variants,
        "comparisons": comparisons,
        "curves": curves(matrix, curves_in, metric),
    }


def compare_one(matrix: Matrix, label: str, by: dict, records: dict[str, dict], metric: str) -> dict:
    base = matrix.base.label
    seeds = [s for s in matrix.seeds if (base, s) in by and (label, s) in by]
    diffs = {s: by[(label, s)][metric] - by[(base, s)][metric] for s in seeds}
    interval = stats.t_interval(list(diffs.values()))
    boot = None
    if seeds:
        a, b = records.get(by[(base, seeds[0])]["run"], {}), records.get(by[(label, seeds[0])]["run"], {})
        images_a, images_b = a.get("images") or [], b.get("images") or []
        if images_a and len(images_a) == len(images_b):
            boot = stats.paired_bootstrap(images_a, images_b, stats.boot_count(images_a + images_b), seed=seeds[0])
    result = stats.verdict(interval)
    return {
        "against": base,
        "metric": metric,
        "seeds": seeds,
        "differences": {str(s): d for s, d in diffs.items()},
        "mean_difference": stats.mean(list(diffs.values())) if diffs else None,
        "interval95": [interval[1], interval[2]] if interval else None,
        "bootstrap_seed": boot,
        "verdict": result,
        "reason": reason(result, interval, len(seeds), boot),
        "per_class": per_class(seeds, by, records, base, label),
    }


def reason(result: str, interval: Optional[tuple], n: int, boot: Optional[dict]) -> str:
    if interval is None:
        where = ""
        if boot is not None:
            where = f"; the bootstrap over {boot['images']} validation images gives [{boot['low']:+.4f}, {boot['high']:+.4f}], which measures the validation set's noise, not the training's"
        return f"{n} paired seed(s): one run cannot tell a model from its seed, run --seeds 3 or more{where}"
    span = f"95% interval of the paired difference over {n} seeds [{interval[1]:+.4f}, {interval[2]:+.4f}]"
    if interval[1] == interval[2] != 0:  # width 0 away from 0: identical seeds (all 0 simply includes 0)
        return f"{span}: every seed gave the same difference, so the seeds did not vary the training and count as one run"
    if result == "inconclusive":
        return f"{span} includes 0"
    return f"{span} lies {'above' if result == 'better' else 'below'} 0"


def per_class(seeds: list[int], by: dict, records: dict[str, dict], base: str, label: str) -> dict:
    """Per class: mean AP50-95 of base and variant over the seeds where both have the class, and the difference."""
    out: dict[str, dict] = {}
    names: list[str] = []
    for s in seeds:
        for name in records.get(by[(base, s)]["run"], {}).get("per_class", {}):
            names += [name] if name not in names else []
    for name in names:
        pairs = []
        for s in seeds:
            a = records.get(by[(base, s)]["run"], {}).get("per_class", {}).get(name)
            b = records.get(by[(label, s)]["run"], {}).get("per_class", {}).get(name)
            if a is not None and b is not None:
                pairs.append((a["AP50-95"], b["AP50-95"]))
        if pairs:
            ma, mb = stats.mean([p[0] for p in pairs]), stats.mean([p[1] for p in pairs])
            out[name] = {"base": ma, "variant": mb, "difference": mb - ma, "seeds": len(pairs)}
    return out


def curves(matrix: Matrix, curves_in: dict[str, list], metric: str) -> dict:
    """Per variant and epoch: mean, min and max of the validation metric over the seeds (results.csv)."""
    out = {}
    for m in matrix.models:
        per_epoch: dict[int, list[float]] = {}
        for s in matrix.seeds:
            for row in curves_in.get(f"{m.label}-seed{s}", []):
                if metric in row and "epoch" in row:
                    per_epoch.setdefault(int(row["epoch"]), []).append(row[metric])
        epochs = sorted(per_epoch)
        out[m.label] = {
            "epoch": epochs,
            "mean": [stats.mean(per_epoch[e]) for e in epochs],
            "low": [min(per_epoch[e]) for e in epochs],
            "high": [max(per_epoch[e]) for e in epochs],
            "n": max((len(v) for v in per_epoch.values()), default=0),
        }
    return out
