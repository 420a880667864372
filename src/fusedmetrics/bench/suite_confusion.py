"""Suite ``confusion``: confusion matrices against what people use today, same run.

From scores (flat (N, C) rows, and one class-strided (N, 19, H, W) image batch):
- ours: ``fusedmetrics.confusion_matrix(y, t, C)``;
- accuracy: ``fusedmetrics.accuracy_counts(y, t)`` on the same input (the target: confusion at >= 80%
  of its speed, as it needs the same one read of the scores);
- numpy / cupy: ``bincount(C * t + y.argmax(1), minlength=C * C)``;
- the memory ceiling over the same bytes, interleaved (``ceiling.py``): ``pct_of_read_ceiling`` on a
  CPU, ``pct_of_ceiling`` of the device-to-device copy on a GPU.
Scores rotate over a pool of buffers beyond the cache, as in the accuracy suite.
From integer predictions (uniform labels; both arrays of one dtype: int64, int32 and uint8, the
last for C <= 256 only; and the mixed pairs users hold, int32 or uint8 truth with int64
predictions from ``argmax``, whose ``dtype`` reads "truth/predictions"):
- ours: ``fusedmetrics.confusion_matrix(p, t, C)``;
- numpy / cupy: ``bincount(C * t.astype(int64) + p, minlength=C * C)`` (the cast users must write:
  ``C * t`` would wrap in a narrow dtype);
- torchmetrics: ``MulticlassConfusionMatrix(C).update(p, t)`` on CPU tensors (when importable).
Every candidate is checked against the numpy result before anything is timed.
"""
import numpy as np

from . import data
from .errors import GuardError, SkipSuite
from .optional import try_import
from .ceiling import Ceiling, gpu_l2
from .planner_settle import settle_planner
from .timing import Candidate, measure, rounds, spread

NAME = "confusion"
CLASSES = (10, 19, 100, 1000)
LABEL_DTYPES = ("int64", "int32", "uint8")
# Mixed pairs as users hold them: (truth, predictions) with predictions from argmax (int64).
MIXED_LABEL_DTYPES = (("int32", "int64"), ("uint8", "int64"))


def plan(ctx):
    fm, why = try_import("fusedmetrics")
    if fm is None or not hasattr(fm, "confusion_matrix"):
        raise SkipSuite(f"fusedmetrics.confusion_matrix unavailable ({why})")
    cases = []
    for dtype in ctx.dtypes:
        shapes = ctx.shapes or data.default_shapes(ctx.device, dtype, ctx.label_dtype, ctx.llc_bytes, ctx.quick)
        cases += [{"kind": "scores", "shape": [n, c], "dtype": dtype} for n, c in shapes]
        image = [2, 19, 64, 128] if ctx.quick else [2, 19, 512, 1024]
        cases.append({"kind": "scores", "shape": image, "dtype": dtype})
    n = 1 << 14 if ctx.quick else 1 << 24
    cases += [{"kind": "labels", "shape": [n], "C": c, "dtype": dtype}
              for dtype in LABEL_DTYPES for c in CLASSES if c <= np.iinfo(dtype).max + 1]
    cases += [{"kind": "labels", "shape": [n], "C": c, "dtype": pred, "truth": truth}
              for truth, pred in MIXED_LABEL_DTYPES for c in CLASSES if c <= np.iinfo(truth).max + 1]
    return cases


def steps(ctx, case):
    return rounds(ctx.repeat, ctx.warmup)


def label(case):
    shape = "x".join(str(s) for s in case["shape"])
    classes = case["C"] if "C" in case else case["shape"][1]
    return f"confusion {case['kind']} {shape} C={classes} {_dtypes(case)}"


def _dtypes(case):
    """'float32' for scores and one-dtype labels; 'int32/int64' (truth/predictions) for a mixed pair."""
    return f"{case['truth']}/{case['dtype']}" if "truth" in case else str(case["dtype"])


def _host(a):
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


def _bincount(xp, C):
    return lambda t, p: xp.bincount(C * t.ravel().astype(xp.int64) + p.ravel(), minlength=C * C).reshape(C, C)


def _inputs(ctx, case, maker):
    """(C, predictions or scores, truth): labels uniform in [0, C); scores' truth is their argmax."""
    shape = case["shape"]
    if case["kind"] == "labels":
        C = case["C"]
        return C, maker.integers(C, shape, case["dtype"]), maker.integers(C, shape, case.get("truth", case["dtype"]))
    y = maker.uniform(shape, case["dtype"])
    return shape[1], y, y.argmax(axis=1).astype(ctx.label_dtype)  # every score must be read


def run_case(ctx, case):
    import fusedmetrics as fm
    scores = case["kind"] == "scores"
    maker = data.ArrayMaker(ctx.xp, seed=sum(case["shape"]) * 31 + case.get("C", 0))
    C, y, t = _inputs(ctx, case, maker)
    nbytes = y.nbytes + t.nbytes
    cache = ctx.llc_bytes if ctx.device == "cpu" else gpu_l2(ctx)
    # Scores rotate over a pool, as in the accuracy suite, so that every call reads memory.
    extra = data.pool_size(nbytes, cache) - 1 if scores else 0
    pool = [(y, t)] + [_inputs(ctx, case, maker)[1:] for _ in range(extra)]
    bincount = _bincount(ctx.xp, C)
    predict = (lambda y: y.argmax(axis=1)) if scores else (lambda y: y)
    for y, t in pool:
        expected = _host(bincount(t, predict(y)))
        if not np.array_equal(_host(fm.confusion_matrix(y, t, C)), expected):
            raise GuardError(f"confusion_matrix differs from numpy's bincount ({label(case)})")

    def pick(i):
        return pool[i % len(pool)]

    candidates = [Candidate("ours", lambda i: fm.confusion_matrix(*pick(i), C), ctx.sync_fn),
                  Candidate("cupy" if ctx.device == "cuda" else "numpy",
                            lambda i: (lambda y, t: bincount(t, predict(y)))(*pick(i)), ctx.sync_fn)]
    ceiling = None
    if scores:
        # accuracy_counts' plan measures its kernels on its first calls: time its choice, not those.
        settle_planner(ctx, lambda i: fm.accuracy_counts(*pick(i)))
        candidates.append(Candidate("accuracy", lambda i: fm.accuracy_counts(*pick(i)), ctx.sync_fn))
        ceiling = Ceiling(ctx, maker, nbytes, len(pool))
        candidates += ceiling.candidates
    elif ctx.device == "cpu":
        metric = _torchmetrics(ctx, C, y, t, expected)
        if metric is not None:
            candidates.append(Candidate("torchmetrics", metric))
    try:
        timings = measure(candidates, ctx.repeat, ctx.warmup, ctx.min_sample_s,
                          on_round=ctx.progress.step if ctx.progress else None)
    finally:
        if ceiling is not None:
            ceiling.close()
    ours_t = timings["ours"].median_s
    result = {
        "kind": case["kind"], "shape": case["shape"], "C": C, "dtype": _dtypes(case),
        "device": ctx.device, "bytes": nbytes, "buffers": len(pool),
        "time_s": {k: v.median_s for k, v in timings.items()},
        "samples_s": {k: v.samples_s for k, v in timings.items()},
        "spread_s": {k: spread(v.samples_s) for k, v in timings.items()},
        "speedup": {k: v.median_s / ours_t for k, v in timings.items() if not k.startswith(("ours", "ceiling"))},
        "gbps": {k: nbytes / v.median_s / 1e9 for k, v in timings.items() if not k.startswith("ceiling")},
    }
    if ceiling is not None:
        ceiling.fill(result, timings)
    return result


def _torchmetrics(ctx, C, p, t, expected):
    torch, _ = try_import("torch")
    classification, why = try_import("torchmetrics.classification")
    if torch is None or classification is None:
        ctx.note(f"torchmetrics baseline skipped: {why}")
        return None
    pt, tt = torch.from_numpy(p), torch.from_numpy(t)
    metric = classification.MulticlassConfusionMatrix(num_classes=C, validate_args=False)
    metric.update(pt, tt)
    if not np.array_equal(metric.compute().numpy(), expected):
        raise GuardError("torchmetrics' confusion matrix differs from numpy's bincount")
    return lambda i: metric.update(pt, tt)


def table(results):
    headers = ["input", "C", "dtype", "ours ms", "% ceiling", "vs accuracy_counts", "vs numpy/cupy",
               "vs torchmetrics"]
    rows = []
    for r in results:
        s = r["speedup"]
        base = s.get("numpy", s.get("cupy"))
        rows.append(["x".join(str(v) for v in r["shape"]) + " " + r["kind"], r["C"], r["dtype"],
                     f"{r['time_s']['ours'] * 1e3:.3f}",
                     f"{r.get('pct_of_read_ceiling', r.get('pct_of_ceiling', float('nan'))):.0f}%"
                     if "pct_of_ceiling" in r else "-",
                     f"{100 * s['accuracy']:.0f}%" if "accuracy" in s else "-",
                     f"{base:.1f}x" if base else "-",
                     f"{s['torchmetrics']:.1f}x" if "torchmetrics" in s else "-"])
    return headers, rows
