"""Suite ``summary``: ``DictSummary.add`` of one report dict, ours against Chainer's.

For 1, 8 and 64 keys and each kind of value a model reports: Python floats, numpy float32 scalars
and, on a GPU, CuPy 0-d float32 arrays (on the device the time includes waiting for the queued
work, so deferred launches are not hidden). Values are small multiples of 1/8, exactly
representable, so the guard can ask for means equal to 1e-6 relative whatever the accumulator.
"""
import numpy as np

from . import hooks
from .errors import GuardError, SkipSuite
from .timing import Candidate, measure, rounds, spread

NAME = "summary"
KEY_COUNTS = (1, 8, 64)
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
    return [{"keys": k, "values": kind} for kind in kinds for k in KEY_COUNTS]


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
        else:
            cp = ctx.cupy
            dicts.append({k: cp.asarray(v, dtype=cp.float32) for k, v in zip(names, vals)})
    return dicts


def _means(summary):
    out = {}
    for k, v in summary.compute_mean().items():
        v = v.get() if hasattr(v, "get") and not isinstance(v, np.generic) else v
        out[k] = float(np.asarray(v))
    return out


def run_case(ctx, case):
    keys, kind = case["keys"], case["values"]
    Ours = _ours_class()
    chainer, why = ctx.chainer()
    if chainer is None:
        ctx.note(f"Chainer's DictSummary skipped: {why}")
    dicts = _make_dicts(ctx, keys, kind)
    where = f"{keys} keys, {kind}"

    # Guard: the same stream through ours and the exact float64 mean (and Chainer's, when there).
    ours_guard = Ours()
    for d in dicts:
        ours_guard.add(d)
    got = _means(ours_guard)
    expected = {k: float(np.mean([float(np.asarray(d[k].get() if hasattr(d[k], "get") else d[k]))
                                  for d in dicts])) for k in dicts[0]}
    reference = expected
    if chainer is not None:
        theirs = chainer.reporter.DictSummary()
        for d in dicts:
            theirs.add(d)
        reference = _means(theirs)
    for name, ref in (("exact", expected), ("chainer", reference)):
        if list(got) != list(ref):
            raise GuardError(f"DictSummary keys differ from {name} ({where}): {list(got)[:4]}... vs {list(ref)[:4]}...")
        for k in ref:
            if abs(got[k] - ref[k]) > GUARD_REL * max(abs(ref[k]), 1e-300):
                raise GuardError(f"DictSummary mean of {k!r} is {got[k]!r}, {name} gives {ref[k]!r} ({where})")

    ours = Ours()
    candidates = [Candidate("ours", lambda i: ours.add(dicts[i % DISTINCT_DICTS]), ctx.sync_fn)]
    if chainer is not None:
        theirs = chainer.reporter.DictSummary()
        candidates.append(Candidate("chainer", lambda i: theirs.add(dicts[i % DISTINCT_DICTS]), ctx.sync_fn))
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
    headers = ["keys", "values", "ours us/add", "chainer us/add", "x chainer"]
    rows = []
    for r in results:
        rows.append([str(r["keys"]), r["values"], f"{r['time_s']['ours'] * 1e6:.2f}",
                     f"{r['time_s']['chainer'] * 1e6:.2f}" if "chainer" in r["time_s"] else "-",
                     f"{r['speedup']['chainer']:.1f}x" if "chainer" in r["speedup"] else "-"])
    return headers, rows
