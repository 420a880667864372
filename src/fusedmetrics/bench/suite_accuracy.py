"""Suite ``accuracy``: fused accuracy counts against the argmax paths people use today.

Per shape and dtype, interleaved in one loop:
- ours: ``fusedmetrics.accuracy_counts(y, t)``;
- numpy (CPU) / cupy (GPU): ``(y.argmax(1) == t).sum()``;
- chainer: ``chainer.functions.accuracy(y, t)`` (when Chainer is importable and can use the arrays);
- the ceiling over the same byte count: ``numpy.sum`` of a float32 buffer (CPU, read bandwidth) or a
  device-to-device copy (GPU, bytes read plus bytes written, as copy bandwidth is usually quoted).
GB/s counts the bytes of the logits plus the labels, each read once. By default every row's label is
its argmax (``--labels argmax``), so every score must be read: a kernel that stops reading a wrong row
early would otherwise report more GB/s than memory gives. The guard also checks counts on labels where
only about half the rows are correct, so an implementation that counts every row is caught.

Each shape is timed in every call pattern of ``--mode`` on the same buffers: back to back, and
"loop" (each timed call after ~10 ms of other memory traffic, see ``timing.MemoryGap``). The read
ceiling is measured in the same pattern and interleaved: one-thread numpy.sum ("ceiling") and
numpy.sum split over the kernel's threads ("ceiling_mt"); ``pct_of_read_ceiling`` divides ours by
the better of the two medians.

With the measuring planner on (the default; ``FUSEDMETRICS_PLANNER=heuristic`` turns it off), ours is
first called untimed until the planner has chosen its kernel for the shape (at most 400 calls), as a
training loop does in its first batches; the choice is recorded per result ("planner").

With ``--torch`` (automatic outside ``--quick`` when torch is importable; CPU only) two more
candidates read the same buffers as torch CPU tensors (``torch.from_numpy``, no copy):
- ours_torch: ``fusedmetrics.accuracy_counts`` on the tensors (``torch_input_ratio`` = its time / ours
  on numpy: the cost of taking torch input);
- torchmetrics: ``MulticlassAccuracy(num_classes=C, average="micro").update`` on the same tensors
  (``speedup_torch`` = its time / ours_torch), when TorchMetrics is importable (a note otherwise).
Both are checked against the argmax baseline before anything is timed.
"""
import numpy as np

from . import data, hooks
from .planner_settle import settle_planner
from .errors import GuardError, SkipSuite
from .optional import try_import
from .ceiling import Ceiling, gpu_l2
from .timing import Candidate, measure, rounds, spread

NAME = "accuracy"


def plan(ctx):
    try:
        import fusedmetrics
        fusedmetrics.accuracy_counts  # noqa: B018  (fails when the core is not built)
    except Exception as exc:
        if hooks.get("accuracy_counts", None) is None:
            raise SkipSuite(f"fusedmetrics.accuracy_counts unavailable ({type(exc).__name__}: {exc})")
    cases = []
    for dtype in ctx.dtypes:
        shapes = ctx.shapes or data.default_shapes(ctx.device, dtype, ctx.label_dtype, ctx.llc_bytes, ctx.quick)
        for n, c in shapes:
            cases.append({"N": n, "C": c, "dtype": dtype})
    return cases


def steps(ctx, case):
    return rounds(ctx.repeat, ctx.warmup) * len(ctx.modes)


def label(case):
    return f"accuracy {case['N']}x{case['C']} {case['dtype']}"


def _ours():
    import fusedmetrics
    return hooks.get("accuracy_counts", getattr(fusedmetrics, "accuracy_counts", None))


def _to_host(a):
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


def _check_chainer_value(ctx, value, correct, total, dtype, where):
    """Chainer's F.accuracy is a baseline: a wrong value is noted (e.g. float16 overflow), not fatal."""
    exact = correct / total if total else 0.0
    got = float(_to_host(value))
    tol = 2 * float(np.finfo(dtype).eps) * max(1.0, abs(exact))
    if not np.isfinite(got) or abs(got - exact) > tol:
        ctx.note(f"chainer F.accuracy gave {got!r} where the exact accuracy is {exact!r} ({where}); "
                 "timed anyway as a baseline")
        return False
    return True


def run_case(ctx, case):
    xp, n, c, dtype = ctx.xp, case["N"], case["C"], np.dtype(case["dtype"])
    label_dtype = np.dtype(ctx.label_dtype)
    nbytes = data.input_bytes(n, c, dtype, label_dtype)
    cache = ctx.llc_bytes if ctx.device == "cpu" else gpu_l2(ctx)
    pool_n = data.pool_size(nbytes, cache)
    if ctx.device == "cuda":
        pool_n = max(pool_n, 3)
    maker = data.ArrayMaker(xp, seed=n * 7919 + c)
    pool = [maker.logits_and_labels(n, c, dtype, label_dtype, ctx.label_mode) for _ in range(pool_n)]
    where = f"N={n} C={c} {dtype.name} logits, {label_dtype.name} labels ({ctx.label_mode}), {ctx.device}"

    ours = _ours()
    chainer, why = ctx.chainer()
    if chainer is None:
        ctx.note(f"Chainer baselines skipped: {why}")
    F = chainer.functions if chainer is not None else None

    # Correctness guard: every buffer, before anything is timed.
    chainer_ok = F is not None
    guard_sets = pool + [(pool[0][0], maker.labels(pool[0][0], label_dtype, "half"))]
    for y, t in guard_sets:
        expected = int(_to_host((y.argmax(axis=1) == t).sum()))
        got = _to_host(ours(y, t))
        if got.shape != (2,) or int(got[0]) != expected or int(got[1]) != n:
            raise GuardError(f"accuracy_counts mismatch ({where}): got {got.tolist()}, "
                             f"the argmax baseline gives [{expected}, {n}]")
        if chainer_ok:
            try:
                with np.errstate(over="ignore"):   # Chainer's float16 mean overflows; noted below
                    value = F.accuracy(y, t).array
                chainer_ok = _check_chainer_value(ctx, value, expected, n, dtype, where) and chainer_ok
            except Exception as exc:
                ctx.note(f"chainer F.accuracy failed ({where}): {type(exc).__name__}: {exc}; skipped")
                F = None
                chainer_ok = False

    def pick(i):
        return pool[i % pool_n]

    candidates = [
        Candidate("ours", lambda i: ours(*pick(i)), ctx.sync_fn),
        Candidate("cupy" if ctx.device == "cuda" else "numpy",
                  lambda i: (lambda y, t: (y.argmax(axis=1) == t).sum())(*pick(i)), ctx.sync_fn),
    ]
    if F is not None:
        candidates.append(Candidate("chainer", lambda i: F.accuracy(*pick(i)), ctx.sync_fn))
    if ctx.torch and ctx.device == "cpu":
        candidates += _torch_candidates(ctx, ours, pool, guard_sets, where)
    ceiling = Ceiling(ctx, maker, nbytes, pool_n)
    candidates += ceiling.candidates

    decision = settle_planner(ctx, lambda i: ours(*pick(i)))
    per_mode = {}
    try:
        for mode in ctx.modes:
            per_mode[mode] = measure(candidates, ctx.repeat, ctx.warmup, ctx.min_sample_s,
                                     on_round=ctx.progress.step if ctx.progress else None,
                                     gap=ctx.memory_gap() if mode == "loop" else None)
    finally:
        ceiling.close()
    del pool, guard_sets
    results = [_result(ctx, case, mode, timings, nbytes, pool_n, cache, ceiling,
                       chainer_ok if F is not None else None)
               for mode, timings in per_mode.items()]
    for r in results:
        r["planner"] = decision
    return results


def _torch_candidates(ctx, ours, pool, guard_sets, where):
    """ours on torch CPU tensors and TorchMetrics' micro accuracy, over views of the same buffers."""
    import torch

    def as_torch(a):  # the same memory; torch cannot wrap ml_dtypes' bfloat16, so via int16
        if a.dtype.name == "bfloat16":
            return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
        return torch.from_numpy(a)

    tpool = [(as_torch(y), as_torch(t)) for y, t in pool]
    out = []
    for y, t in guard_sets:
        expected, n = int((y.argmax(axis=1) == t).sum()), len(t)
        got = ours(as_torch(y), as_torch(t))
        if not isinstance(got, torch.Tensor) or got.tolist() != [expected, n]:
            raise GuardError(f"accuracy_counts on torch tensors gave {got!r}, the argmax baseline "
                             f"[{expected}, {n}] ({where})")
    out.append(Candidate("ours_torch", lambda i: ours(*tpool[i % len(tpool)])))
    classification, why = try_import("torchmetrics.classification")
    if classification is None:
        ctx.note(f"TorchMetrics' MulticlassAccuracy skipped: {why}")
        return out
    C = pool[0][0].shape[1]
    metric = classification.MulticlassAccuracy(num_classes=C, average="micro", validate_args=False)
    for y, t in guard_sets:
        metric.reset()
        metric.update(as_torch(y), as_torch(t))
        exact = float((y.argmax(axis=1) == t).mean())
        got = float(metric.compute())
        if abs(got - exact) > 1e-6:
            raise GuardError(f"TorchMetrics' MulticlassAccuracy gave {got!r}, the argmax baseline {exact!r} ({where})")
    metric.reset()
    out.append(Candidate("torchmetrics", lambda i: metric.update(*tpool[i % len(tpool)])))
    return out


def _result(ctx, case, mode, timings, nbytes, pool_n, cache, ceiling, chainer_ok):
    n, c, dtype = case["N"], case["C"], np.dtype(case["dtype"])
    label_dtype = np.dtype(ctx.label_dtype)
    ours_t = timings["ours"].median_s
    result = {
        "N": n, "C": c, "dtype": dtype.name, "label_dtype": label_dtype.name, "labels": ctx.label_mode,
        "device": ctx.device, "mode": mode,
        "bytes": nbytes, "buffers": pool_n, "pool_exceeds_cache": bool(cache is None or nbytes * pool_n > 2 * cache),
        "chainer_value_exact": chainer_ok,
        "time_s": {k: v.median_s for k, v in timings.items()},
        "samples_s": {k: v.samples_s for k, v in timings.items()},
        "spread_s": {k: spread(v.samples_s) for k, v in timings.items()},
        "calls_per_sample": {k: v.calls_per_sample for k, v in timings.items()},
        "gbps": {k: nbytes / v.median_s / 1e9 for k, v in timings.items() if not k.startswith("ceiling")},
        "speedup": {k: v.median_s / ours_t for k, v in timings.items()
                    if not k.startswith(("ours", "ceiling", "torchmetrics"))},
    }
    if "ours_torch" in timings:
        ours_torch_t = timings["ours_torch"].median_s
        result["torch_input_ratio"] = ours_torch_t / ours_t
        result["speedup_torch"] = {k: timings[k].median_s / ours_torch_t for k in ("torchmetrics",) if k in timings}
    ceiling.fill(result, timings)
    if mode == "loop":
        result["gap_ms"] = 1e3 * ctx.memory_gap().measured_s
    if result["chainer_value_exact"] is None:
        del result["chainer_value_exact"]
    return result


def table(results):
    headers = ["shape NxC", "dtype", "mode", "ours ms", "ours GB/s (best)", "% ceiling", "% read ceiling",
               "base ms", "x base", "chainer ms", "x chainer", "ceiling GB/s", "all-core best GB/s", "% all-core"]
    torch = any("ours_torch" in r["time_s"] for r in results)
    if torch:
        headers += ["torch/numpy input", "torchmetrics ms", "x torchmetrics"]
    planned = any(r.get("planner") for r in results)
    if planned:
        headers.append("kernel (planner)")
    rows = []
    for r in results:
        base = "cupy" if "cupy" in r["time_s"] else "numpy"
        rows.append([
            f"{r['N']}x{r['C']}", r["dtype"], r.get("mode", "back-to-back"),
            _ms(r["time_s"]["ours"]), f"{r['gbps']['ours']:.1f} ({_best_gbps(r):.1f})", f"{r['pct_of_ceiling']:.0f}%",
            f"{r['pct_of_read_ceiling']:.0f}%" if "pct_of_read_ceiling" in r else "-",
            _ms(r["time_s"][base]) + f" ({base})", f"{r['speedup'][base]:.1f}x",
            _ms(r["time_s"]["chainer"]) if "chainer" in r["time_s"] else "-",
            f"{r['speedup']['chainer']:.1f}x" if "chainer" in r["speedup"] else "-",
            f"{r['gbps']['ceiling']:.1f}",
            f"{r['ceiling_mt_best_gbps']:.1f}" if "ceiling_mt_best_gbps" in r else "-",
            f"{r['pct_of_ceiling_mt']:.0f}%" if "pct_of_ceiling_mt" in r else "-",
        ])
        if torch:
            st = r.get("speedup_torch", {})
            rows[-1] += [f"{r['torch_input_ratio']:.2f}" if "torch_input_ratio" in r else "-",
                         _ms(r["time_s"]["torchmetrics"]) if "torchmetrics" in r["time_s"] else "-",
                         f"{st['torchmetrics']:.1f}x" if "torchmetrics" in st else "-"]
        if planned:
            d = r.get("planner")
            rows[-1].append(f"{d['kernel']}@{d['max_threads'] or 'all'}" if d else "-")
    return headers, rows


def _best_gbps(r):
    best = r.get("spread_s", {}).get("ours", {}).get("min", r["time_s"]["ours"])
    return r["bytes"] / best / 1e9


def _ms(seconds):
    return f"{seconds * 1e3:.3f}"
