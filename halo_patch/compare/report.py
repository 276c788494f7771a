"""compare's outputs: runs.csv, the gathered results.csv files, compare.json, compare.md, the plots, the table."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.markup import escape

from halo_patch import __version__, report
from halo_patch.compare import jobs
from halo_patch.compare.manifest import write_json
from halo_patch.compare.results import read_results, run_row, write_runs_csv
from halo_patch.compare.summary import summarize

NOTES = [
    "GFLOPs are Ultralytics' get_flops (thop): matmul/einsum inside attention are not counted, so attention layers are undercounted",
    "latency_ms_batch1: median of 20 forward passes of one image at imgsz (fused, eval mode, after 3 warm-up passes) on the run's device",
    "metrics: the final validation of each run's best.pt with Ultralytics' validator and the run's own arguments",
]
PLOTS = ("map-per-epoch.png", "paired-differences.png", "accuracy-vs-latency.png")


def build(c) -> dict:
    """Rows, summary and the JSON document of a finished comparison (every run has a record)."""
    rows, curves = [], {}
    gathered = c.out / "results"
    gathered.mkdir(exist_ok=True)
    for run in c.matrix.runs:
        csv_path = c.out / "runs" / run.name / "results.csv"
        results = read_results(csv_path)
        curves[run.name] = results
        if csv_path.is_file():  # for Ultralytics' own overlay: plot_results(dir=<out>/results)
            shutil.copyfile(csv_path, gathered / f"results_{run.name}.csv")
        rows.append(run_row(run, c.records[run.name], results, c.options.device))
    summary = summarize(c.matrix, rows, c.records, curves)
    warnings = seed_warnings(c, curves)
    doc = {
        "tool": f"halo-patch {__version__}",
        "target": c.settings["target"],
        "ultralytics": c.settings["ultralytics"],
        "fairness": fairness(c),
        "runs": rows,
        "trained_by_this_call": c.trained,
        "training_seconds_this_call": round(c.seconds, 1),
        "notes": NOTES + warnings,
        **summary,
    }
    return doc


def seed_warnings(c, curves: dict) -> list[str]:
    """Seeds that trained a model identically: a release whose data loader ignores the seed (ultralytics#6820)."""
    out = []
    for m in c.matrix.models:
        losses = [tuple(tuple(v for k, v in sorted(r.items()) if k.startswith("train/")) for r in curves[f"{m.label}-seed{s}"])
                  for s in c.matrix.seeds]
        if len(losses) > 1 and all(losses[0] and x == losses[0] for x in losses):
            out.append(f"warning: every seed of {m.label} logged the same training losses: this Ultralytics may ignore the seed, so the seeds are not independent")
    return out


def fairness(c) -> dict:
    args = c.settings["train_args"]
    return {
        "same_for_every_run": {**args, "seeds": c.settings["seeds"]},
        "early_stopping": f"off (patience {args['patience']} > epochs {args['epochs']})",
        "time_budget": "none (time= not set)",
        "batch": f"explicit {args['batch']} (no auto batch)",
        "per_run": ["model", "seed", "name"] + (["pretrained (--weights: SRC for the base, SRC carried for each variant)"] if c.settings["weights"] else []),
        "settings_file": str(c.out / ".halo-compare" / "config" / "settings.json"),
        "data_sha256": c.settings["data_sha256"],
    }


def write(c, doc: dict) -> list[Path]:
    write_runs_csv(c.out / "runs.csv", doc["runs"])
    write_json(c.out / "compare.json", doc)
    (c.out / "compare.md").write_text(markdown(doc), encoding="utf-8")
    return plots(c, doc)


def plots(c, doc: dict) -> list[Path]:
    metric = doc["metric"]
    variants, comps = doc["variants"], doc["comparisons"]
    data = {
        "metric": metric,
        "curves": doc["curves"],
        "pairs": {
            label: {
                "diffs": list(cmp["differences"].values()),
                "mean": cmp["mean_difference"] or 0.0,
                "low": cmp["interval95"][0] if cmp["interval95"] else None,
                "high": cmp["interval95"][1] if cmp["interval95"] else None,
            }
            for label, cmp in comps.items()
        },
        "cost": [
            {"label": label, "accuracy": v["mean"][metric], "accuracy_sd": v["sd"][metric] or 0.0,
             "latency": v["mean"]["latency_ms_batch1"], "latency_sd": v["sd"]["latency_ms_batch1"] or 0.0,
             "device": str(c.options.device or "the default device")}
            for label, v in variants.items()
        ],
    }
    config = {"package_dir": str(c.target.package_dir), "out": str(c.out), "plots": data}
    try:
        jobs.run_job(c.interpreter, c.out, jobs.Job.PLOTS, "plots", config)
    except jobs.JobError as exc:
        from halo_patch.compare.runner import RunFailed

        raise RunFailed(f"the plots failed: {exc}; the log is {exc.log}") from None
    return [c.out / p for p in PLOTS]


def fmt(value: Optional[float], digits: int = 4, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def table_rows(doc: dict) -> list[list[str]]:
    metric = doc["metric"]
    out = []
    for label, v in doc["variants"].items():
        cmp = doc["comparisons"].get(label)
        m, s = v["mean"], v["sd"]
        if cmp is None:
            diff = "base"
        else:
            ci = "" if cmp["interval95"] is None else f" [{fmt(cmp['interval95'][0], sign=True)}, {fmt(cmp['interval95'][1], sign=True)}]"
            diff = f"{fmt(cmp['mean_difference'], sign=True)}{ci}"
        out.append([
            label, str(v["n"]), f"{fmt(m[metric])} ± {fmt(s[metric])}", diff, "" if cmp is None else cmp["verdict"],
            f"{m['params'] / 1e6:.2f}", fmt(m["GFLOPs"], 2), fmt(m["latency_ms_batch1"], 1), fmt(m["train_seconds"], 1),
        ])
    return out


HEADER = ["model", "seeds", "{m} mean ± sd", "Δ vs base [95% interval]", "verdict", "params (M)", "GFLOPs", "latency ms", "train s"]


def markdown(doc: dict) -> str:
    metric = doc["metric"]
    head = [h.format(m=metric.split("/")[-1]) for h in HEADER]
    lines = [f"# halo-patch compare: {doc['target']} (Ultralytics {doc['ultralytics']})", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(doc)]
    lines += ["", "## Verdicts", ""]
    for label, cmp in doc["comparisons"].items():
        lines.append(f"- **{label}** vs {cmp['against']}: **{cmp['verdict']}** ({cmp['reason']})")
        boot = cmp["bootstrap_seed"]
        if boot is not None:
            lines.append(
                f"  - bootstrap over {boot['images']} validation images of seed {boot['seed']} ({boot['resamples']} resamples, the same for both): "
                f"{fmt(boot['difference'], sign=True)} [{fmt(boot['low'], sign=True)}, {fmt(boot['high'], sign=True)}]"
            )
    per_class_ap = metric.split("/")[-1].replace("mAP", "AP", 1)  # AP50-95(M) for segment: the headline's own AP
    for label, cmp in doc["comparisons"].items():
        lines += ["", f"## Per-class {per_class_ap}, {label} vs {cmp['against']} (mean over seeds)", "", "| class | base | variant | difference |", "|---|---|---|---|"]
        lines += [f"| {name} | {fmt(p['base'])} | {fmt(p['variant'])} | {fmt(p['difference'], sign=True)} |" for name, p in cmp["per_class"].items()]
    lines += ["", "## Fairness", ""] + [f"- {k}: {v}" for k, v in doc["fairness"].items()]
    lines += ["", "## Notes", ""] + [f"- {n}" for n in doc["notes"]]
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in PLOTS]
    return "\n".join(lines) + "\n"


def print_report(console: Console, c, doc: dict, seconds: float) -> None:
    metric = doc["metric"]
    t = report.table(f"halo-patch compare: {c.out} ({len(doc['runs'])} runs, {seconds:.1f} s)", [h.format(m=metric.split("/")[-1]) for h in HEADER])
    for col in t.columns:
        col.overflow = "fold"
    for r in table_rows(doc):
        t.add_row(*(escape(x) for x in r))
    console.print(t)
    for label, cmp in doc["comparisons"].items():
        console.print(f"{escape(label)} vs {escape(cmp['against'])}: {cmp['verdict']} ({escape(cmp['reason'])})", highlight=False, soft_wrap=True)
    console.print(f"Report: {escape(str(c.out / 'compare.md'))}, {escape(str(c.out / 'compare.json'))}, {escape(str(c.out / 'runs.csv'))}", highlight=False, soft_wrap=True)
