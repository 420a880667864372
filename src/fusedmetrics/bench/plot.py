"""The PNG: speedups and % of the memory ceiling per shape, readable at a glance (matplotlib optional)."""
from .optional import try_import


def write_plot(doc, path):
    """Write the figure; return None, or a one-line reason when it could not be drawn."""
    mpl, why = try_import("matplotlib")
    if mpl is None:
        return f"--plot skipped: {why} (pip install matplotlib)"
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    acc = _results(doc, "accuracy")
    panels = [p for p in ("speedup", "ceiling", "summary", "evaluator")
              if (p in ("speedup", "ceiling") and acc) or _results(doc, p)]
    if not panels:
        return "--plot skipped: no results to draw"
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.6 * len(panels)), squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        if panel == "speedup":
            _speedup(ax, acc)
        elif panel == "ceiling":
            _ceiling(ax, acc)
        elif panel == "summary":
            _summary(ax, _results(doc, "summary"))
        else:
            _evaluator(ax, _results(doc, "evaluator"))
    m = doc["machine"]
    gpu = (m.get("gpu") or {}).get("name")
    fig.suptitle(f"fusedmetrics-bench {doc['date'][:10]}: {gpu or m['cpu_model']}, "
                 f"{m['cpu_cores_usable']} cores, numpy {m['versions']['numpy']}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def _results(doc, name):
    suite = doc["suites"].get(name)
    return suite["results"] if suite else []


def _bars(ax, labels, series, ylabel, title, target=None, target_label=None, log=False, fmt="{:.1f}x"):
    import numpy as np
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(series))
    for j, (name, values) in enumerate(series.items()):
        pos = x + (j - (len(series) - 1) / 2) * width
        bars = ax.bar(pos, [v if v is not None else 0 for v in values], width, label=name)
        for b, v in zip(bars, values):
            if v is not None:
                ax.annotate(fmt.format(v), (b.get_x() + b.get_width() / 2, b.get_height()),
                            ha="center", va="bottom", fontsize=8)
    if target is not None:
        ax.axhline(target, color="red", linestyle="--", linewidth=1, label=target_label)
    values = [v for vals in series.values() for v in vals if v]
    if log and values and max(values) / min(values) > 20:
        from matplotlib.ticker import ScalarFormatter
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
    if values:   # head room so the legend does not cover the bars
        top = max(values + ([target] if target else []))
        ax.set_ylim(top=top * (3.0 if ax.get_yscale() == "log" else 1.35))
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", ncol=2)


def _shape_label(r):
    return f"{r['N']}x{r['C']}\n{r['dtype']}"


# The CPU speedups we aim for against numpy's argmax path, per class count (float32 logits):
# large at small C where numpy's argmax is slow, never slower than numpy at large C.
CPU_SPEEDUP_TARGETS = {10: 15.0, 100: 3.0, 1000: 1.0, 32000: 1.0}


def _speedup(ax, acc):
    base = "cupy" if "cupy" in acc[0]["speedup"] else "numpy"
    series = {f"vs {base} argmax": [r["speedup"].get(base) for r in acc]}
    if any("chainer" in r["speedup"] for r in acc):
        series["vs Chainer F.accuracy"] = [r["speedup"].get("chainer") for r in acc]
    _bars(ax, [_shape_label(r) for r in acc], series, "speedup (x)",
          "accuracy_counts: speedup (their time / ours, same run)", target=1.0, target_label="1x", log=True)
    if base == "numpy":
        marked = False
        for x, r in enumerate(acc):
            goal = CPU_SPEEDUP_TARGETS.get(r["C"])
            if goal and goal > 1:
                ax.hlines(goal, x - 0.45, x + 0.45, colors="black", linewidth=2,
                          label=None if marked else "target vs numpy")
                marked = True
        if marked:
            ax.legend(fontsize=8, loc="upper left", ncol=2)


def _ceiling(ax, acc):
    series = {f"% of {acc[0]['ceiling']}": [r["pct_of_ceiling"] for r in acc]}
    if any("pct_of_ceiling_mt" in r for r in acc):
        series["% of all-core read (best numpy.sum split over threads)"] = [r.get("pct_of_ceiling_mt") for r in acc]
    target = 85.0 if acc[0]["device"] == "cuda" else 80.0
    _bars(ax, [_shape_label(r) for r in acc], series, "% of ceiling",
          "accuracy_counts GB/s (logits + labels read once) as % of the memory ceiling", target=target,
          target_label=f"{target:.0f}% target", fmt="{:.0f}%")


# The DictSummary.add speedups we aim for, 8 keys on the CPU: over Chainer's, and with torch 0-d
# tensors over ppe's DictSummary (20x) and TorchMetrics' MeanMetric per key (50x).
SUMMARY_TARGETS = {(8, "numpy float32"): 10.0, (8, "python float"): 5.0, (8, "torch 0-d"): 20.0}


def _summary(ax, res):
    labels = [f"{r['keys']} keys\n{r['values']}" for r in res]
    series = {"vs Chainer DictSummary": [r["speedup"].get("chainer") for r in res]}
    if any("ppe" in r["speedup"] for r in res):
        series["vs ppe DictSummary"] = [r["speedup"].get("ppe") for r in res]
    if any("torchmetrics" in r["speedup"] for r in res):
        series["vs TorchMetrics MeanMetric"] = [r["speedup"].get("torchmetrics") for r in res]
    _bars(ax, labels, series, "speedup (x)", "DictSummary.add: their time / ours", target=1.0, target_label="1x")
    marked = False
    for x, r in enumerate(res):
        goal = SUMMARY_TARGETS.get((r["keys"], r["values"]))
        if goal:
            ax.hlines(goal, x - 0.45, x + 0.45, colors="black", linewidth=2,
                      label=None if marked else "target")
            marked = True
    if marked:
        ax.legend(fontsize=8, loc="upper left", ncol=2)


def _evaluator(ax, res):
    labels = [f"{r['batches']} batches {r['batch']}x{r['classes']}" for r in res]
    _bars(ax, labels, {"ours": [r["time_per_batch_s"]["ours"] * 1e6 for r in res],
                       "chainer": [r["time_per_batch_s"]["chainer"] * 1e6 for r in res],
                       "bare loop": [r["time_per_batch_s"]["loop"] * 1e6 for r in res]},
          "us per batch", "Evaluator cost per batch (lower is better; target: ours at most half of Chainer's)",
          fmt="{:.0f}")
