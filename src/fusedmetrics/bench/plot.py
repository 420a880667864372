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
    if log:
        ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def _shape_label(r):
    return f"{r['N']}x{r['C']}\n{r['dtype']}"


def _speedup(ax, acc):
    base = "cupy" if "cupy" in acc[0]["speedup"] else "numpy"
    series = {f"vs {base} argmax": [r["speedup"].get(base) for r in acc]}
    if any("chainer" in r["speedup"] for r in acc):
        series["vs Chainer F.accuracy"] = [r["speedup"].get("chainer") for r in acc]
    _bars(ax, [_shape_label(r) for r in acc], series, "speedup (x, log)",
          "accuracy_counts: speedup (their time / ours, same run)", target=1.0, target_label="1x", log=True)


def _ceiling(ax, acc):
    _bars(ax, [_shape_label(r) for r in acc], {"ours": [r["pct_of_ceiling"] for r in acc]},
          "% of ceiling", f"accuracy_counts GB/s as % of {acc[0]['ceiling']}", target=80.0,
          target_label="80% target (CPU)", fmt="{:.0f}%")


def _summary(ax, res):
    labels = [f"{r['keys']} keys\n{r['values']}" for r in res]
    _bars(ax, labels, {"vs Chainer DictSummary": [r["speedup"].get("chainer") for r in res]},
          "speedup (x)", "DictSummary.add: Chainer's time / ours", target=1.0, target_label="1x")


def _evaluator(ax, res):
    labels = [f"{r['batches']} batches {r['batch']}x{r['classes']}" for r in res]
    _bars(ax, labels, {"ours": [r["time_per_batch_s"]["ours"] * 1e6 for r in res],
                       "chainer": [r["time_per_batch_s"]["chainer"] * 1e6 for r in res],
                       "bare loop": [r["time_per_batch_s"]["loop"] * 1e6 for r in res]},
          "us per batch", "Evaluator cost per batch (lower is better)", fmt="{:.0f}")
