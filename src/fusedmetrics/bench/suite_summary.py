"""Suite ``summary``: ``DictSummary.add`` of one report dict, ours against Chainer's.

For 1, 8 and 64 keys and each kind of value a model reports: Python floats, numpy float32 scalars
and, on a GPU, CuPy 0-d float32 arrays (on the device the time includes waiting for the queued
work, so deferred launches are not hidden). Values are small multiples of 1/8, exactly
representable, so the guard can ask for means equal to 1e-6 relative whatever the accumulator.

When torch is importable (CPU runs), 8 keys of torch 0-d float32 CPU tensors, as a PyTorch model
reports them: ours against pytorch-pfn-extras' ``reporting.DictSummary`` and TorchMetrics'
``MeanMetric`` (one per key, one ``update`` per key and add), each where importable; every one is
checked for the same means before anything is timed. Chainer is not a baseline there (it does not
take torch tensors).
"""
import numpy as np

from . import hooks
from .errors import GuardError, SkipSuite
from .optional import try_import
from .timing import Candidate, measure, rounds, spread

NAME = "summary"
KEY_COUNTS = (1, 8, 64)
TORCH_KEYS = 8
TORCH_KIND = "torch 0-d"
DISTINCT_DICTS = 16
GUARD_REL = 1e-6


def _ours_class():
    try:
        from fusedmetrics.summary import DictSummary
    except Exception:
        DictSummary = None
    return hooks.get("DictSummary", DictSummary)


def plan(ctx):
    if _ours_class() is None:
        raise SkipSuite("fusedmetrics.summary.DictSummary unavailable")
    kinds = ["cupy 0-d"] if ctx.device == "cuda" else ["python float", "numpy float32"]
    cases = [{"keys": k, "values": kind} for kind in kinds for k in KEY_COUNTS]
    if ctx.device == "cpu":
        torch, why = try_import("torch")
        if torch is None:
            ctx.note(f"summary: torch 0-d tensor case skipped: {why}")
        else:
            cases.append({"keys": TORCH_KEYS, "values": TORCH_KIND})
    return cases


def steps(ctx, case):
    return rounds(ctx.repeat, ctx.warmup)


def label(case):
    return f"summary {case['keys']} keys, {case['values']}"


def _make_dicts(ctx, keys, kind):
    rng = np.random.default_rng(keys)
    names = [f"main/metric{j}" for j in range(keys)]
    dicts = []
    for _ in range(DISTINCT_DICTS):
        vals = rng.integers(0, 64, size=keys) / 8.0
        if kind == "python float":
            dicts.append({k: float(v) for k, v in zip(names, vals)})
        elif kind == "numpy float32":
            dicts.append({k: np.float32(v) for k, v in zip(names, vals)})
        elif kind == TORCH_KIND:
            import torch
            dicts.append({k: torch.tensor(v, dtype=torch.float32) for k, v in zip(names, vals)})
        else:
            cp = ctx.cupy
            dicts.append({k: cp.asarray(v, dtype=cp.float32) for k, v in zip(names, vals)})
    return dicts


def _scalar(v):
    if hasattr(v, "get") and not isinstance(v, np.generic):   # CuPy
        v = v.get()
    if hasattr(v, "detach"):                                   # torch
        v = v.detach().cpu().double().numpy()
    return float(np.asarray(v))


def _means(summary):
    return {k: _scalar(v) for k, v in summary.compute_mean().items()}


class _MeanMetrics:
    """TorchMetrics as a ppe user would swap it in: one MeanMetric per key, updated per key."""

    def __init__(self, mean_metric, keys):
        self.metrics = {k: mean_metric() for k in keys}

    def add(self, d):
        for k, v in d.items():
            self.metrics[k].update(v)

    def compute_mean(self):
        return {k: m.compute() for k, m in self.metrics.items()}


def _baselines(ctx, kind, keys):
    """{name: factory of a fresh summary-like object with add/compute_mean}, noting what is missing."""
    out = {}
    if kind == TORCH_KIND:
        ppe, why = try_import("pytorch_pfn_extras.reporting")
        if ppe is None:
            ctx.note(f"ppe's DictSummary skipped: {why}")
        else:
            out["ppe"] = ppe.DictSummary
        tm, why = try_import("torchmetrics")
        if tm is None:
            ctx.note(f"TorchMetrics' MeanMetric skipped: {why}")
        else:
            out["torchmetrics"] = lambda: _MeanMetrics(tm.MeanMetric, keys)
        return out
    chainer, why = ctx.chainer()
    if chainer is None:
        ctx.note(f"Chainer's DictSummary skipped: {why}")
    else:
        out["chainer"] = chainer.reporter.DictSummary
    return out


def run_case(ctx, case):
    keys, kind = case["keys"], case["values"]
    Ours = _ours_class()
    dicts = _make_dicts(ctx, keys, kind)
    where = f"{keys} keys, {kind}"
    baselines = _baselines(ctx, kind, list(dicts[0]))

    # Guard: the same stream through ours, the exact float64 mean and every baseline.
    ours_guard = Ours()
    for d in dicts:
        ours_guard.add(d)
    got = _means(ours_guard)
    references = {"exact": {k: float(np.mean([_scalar(d[k]) for d in dicts])) for k in dicts[0]}}
    for name, make in baselines.items():
        theirs = make()
        for d in dicts:
            theirs.add(d)
        references[name] = _means(theirs)
    for name, ref in references.items():
        if list(got) != list(ref):
            raise GuardError(f"DictSummary keys differ from {name} ({where}): {list(got)[:4]}... vs {list(ref)[:4]}...")
        for k in ref:
            if abs(got[k] - ref[k]) > GUARD_REL * max(abs(ref[k]), 1e-300):
                raise GuardError(f"DictSummary mean of {k!r} is {got[k]!r}, {name} gives {ref[k]!r} ({where})")

    ours = Ours()
    candidates = [Candidate("ours", lambda i: ours.add(dicts[i % DISTINCT_DICTS]), ctx.sync_fn)]
    for name, make in baselines.items():
        candidates.append(Candidate(name, (lambda s: lambda i: s.add(dicts[i % DISTINCT_DICTS]))(make()),
                                    ctx.sync_fn))
    timings = measure(candidates, ctx.repeat, ctx.warmup, max(ctx.min_sample_s, 0.01),
                      on_round=ctx.progress.step if ctx.progress else None)
    ours_t = timings["ours"].median_s
    return {
        "keys": keys, "values": kind, "device": ctx.device,
        "time_s": {k: v.median_s for k, v in timings.items()},
        "samples_s": {k: v.samples_s for k, v in timings.items()},
        "spread_s": {k: spread(v.samples_s) for k, v in timings.items()},
        "calls_per_sample": {k: v.calls_per_sample for k, v in timings.items()},
        "speedup": {k: v.median_s / ours_t for k, v in timings.items() if k != "ours"},
    }


def table(results):
    baselines = [b for b in ("chainer", "ppe", "torchmetrics") if any(b in r["time_s"] for r in results)]
    headers = ["keys", "values", "ours us/add"]
    for b in baselines or ["chainer"]:
        headers += [f"{b} us/add", f"x {b}"]
    rows = []
    for r in results:
        row = [str(r["keys"]), r["values"], f"{r['time_s']['ours'] * 1e6:.2f}"]
        for b in baselines or ["chainer"]:
            row += [f"{r['time_s'][b] * 1e6:.2f}" if b in r["time_s"] else "-",
                    f"{r['speedup'][b]:.1f}x" if b in r["speedup"] else "-"]
        rows.append(row)
    return headers, rows
