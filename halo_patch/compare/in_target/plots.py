"""Job `plots`: draw the comparison's PNGs with matplotlib's default font from numbers computed by the installer."""

from pathlib import Path


def run(config):
    import matplotlib

    matplotlib.use("Agg")
    out = Path(config["out"])
    data = config["plots"]
    written = [epochs_plot(out / "map-per-epoch.png", data["curves"], data["metric"]),
               pairs_plot(out / "paired-differences.png", data["pairs"], data["metric"]),
               cost_plot(out / "accuracy-vs-latency.png", data["cost"], data["metric"])]
    return {"plots": [str(p) for p in written]}


def epochs_plot(path, curves, metric):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for label, c in curves.items():
        line, = ax.plot(c["epoch"], c["mean"], marker="o", ms=3, label="{} (n={})".format(label, c["n"]))
        ax.fill_between(c["epoch"], c["low"], c["high"], color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation " + metric)
    ax.set_title("mean over seeds, band: min to max")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def pairs_plot(path, pairs, metric):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 1.2 + 0.9 * max(1, len(pairs))), dpi=100)
    for row, (label, p) in enumerate(pairs.items()):
        ax.scatter(p["diffs"], [row] * len(p["diffs"]), color="tab:blue", zorder=3, label="per seed" if row == 0 else None)
        if p.get("low") is not None:
            ax.plot([p["low"], p["high"]], [row - 0.15] * 2, color="black", lw=2, label="95% interval" if row == 0 else None)
        ax.plot([p["mean"]], [row - 0.15], marker="D", color="black", ms=5)
    ax.axvline(0.0, color="grey", lw=1, ls="--")
    ax.set_yticks(list(range(len(pairs))))
    ax.set_yticklabels(list(pairs))
    ax.set_ylim(-0.7, len(pairs) - 0.3)
    ax.set_xlabel("{} difference, variant - base (paired by seed)".format(metric))
    ax.legend(fontsize=8, loc="upper right")
    return save(fig, path)


def cost_plot(path, cost, metric):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for c in cost:
        ax.errorbar([c["latency"]], [c["accuracy"]], xerr=[c["latency_sd"]], yerr=[c["accuracy_sd"]], marker="o",
                    capsize=3, label=c["label"])
    ax.set_xlabel("batch-1 latency (ms) on " + (cost[0]["device"] if cost else "the device"))
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def save(fig, path):
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(str(path))
    plt.close(fig)
    return path
