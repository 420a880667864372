"""Suite ``evaluator``: what an Evaluator costs per batch when the metric path dominates.

Pre-batched data (the iterator yields whole batches, the converter passes them through) and a model
that replays precomputed logits (256 x 1000 float32) and reports loss, accuracy and two more scalars.
- ours: ``fusedmetrics.extensions.Evaluator`` with ``fusedmetrics.accuracy``;
- chainer: ``chainer.training.extensions.Evaluator`` with ``chainer.functions.accuracy``;
- loop: Chainer's Evaluator with a model that reports nothing: the floor of the loop itself.
Loss and the extra scalars are small multiples of 1/64, so all means are exact enough for the guard.
"""
import numpy as np

from . import hooks
from .errors import GuardError, SkipSuite
from .timing import Candidate, measure, rounds, spread

NAME = "evaluator"
BATCH, CLASSES = 256, 1000
DISTINCT_BATCHES = 8
GUARD_REL = 1e-6


def _ours():
    try:
        import fusedmetrics
        accuracy = fusedmetrics.accuracy
    except Exception:
        accuracy = None
    try:
        from fusedmetrics.extensions import Evaluator
    except Exception:
        Evaluator = None
    return hooks.get("Evaluator", Evaluator), hooks.get("accuracy", accuracy)


def plan(ctx):
    chainer, why = ctx.chainer()
    if chainer is None:
        raise SkipSuite(f"needs Chainer: {why}")
    Evaluator, accuracy = _ours()
    if Evaluator is None or accuracy is None:
        raise SkipSuite("fusedmetrics.extensions.Evaluator or fusedmetrics.accuracy unavailable")
    n_batches = 32 if ctx.quick else 100
    return [{"batches": n_batches, "batch": BATCH, "classes": CLASSES, "dtype": "float32"}]


def steps(ctx, case):
    return rounds(ctx.repeat, ctx.warmup)


def label(case):
    return f"evaluator {case['batches']} batches of {case['batch']}x{case['classes']}"


def _pieces(chainer):
    """Chainer-dependent classes, built only when Chainer is there."""
    class ReplayModel(chainer.Link):
        """Reports loss, accuracy (via ``accuracy_fn``) and two more scalars of a replayed batch."""

        def __init__(self, accuracy_fn):
            super().__init__()
            self.accuracy_fn = accuracy_fn

        def forward(self, y, t, loss, aux1, aux2):
            if self.accuracy_fn is None:
                return None
            chainer.report({"loss": loss, "accuracy": self.accuracy_fn(y, t), "aux1": aux1, "aux2": aux2}, self)
            return loss

    @chainer.dataset.converter()
    def passthrough(batch, device):
        return batch

    return ReplayModel, passthrough


def _batches(ctx, n_batches):
    xp = ctx.xp
    rng = np.random.default_rng(12345)
    distinct = []
    for _ in range(DISTINCT_BATCHES):
        y = rng.random((BATCH, CLASSES), dtype=np.float32)
        t = rng.integers(0, CLASSES, size=BATCH, dtype=np.int32)
        hit = rng.random(BATCH) < 0.5
        t[hit] = y[hit].argmax(axis=1)
        scalars = [np.asarray(v / 64.0, dtype=np.float32) for v in rng.integers(0, 256, size=3)]
        distinct.append(tuple(xp.asarray(a) for a in [y, t] + scalars))
    return [distinct[i % DISTINCT_BATCHES] for i in range(n_batches)]


def _host_means(result):
    out = {}
    for k, v in result.items():
        if hasattr(v, "get") and not isinstance(v, np.generic):
            v = v.get()
        out[k] = float(np.asarray(getattr(v, "array", v)))
    return out


def run_case(ctx, case):
    chainer, _ = ctx.chainer()
    Ours, accuracy = _ours()
    from .replay import Replay  # needs Chainer, which ctx.chainer() found

    ReplayModel, passthrough = _pieces(chainer)
    batches = _batches(ctx, case["batches"])
    ChainerEvaluator = chainer.training.extensions.Evaluator

    def chainer_accuracy(y, t):
        return chainer.functions.accuracy(y, t)

    ours = Ours(Replay(batches), ReplayModel(accuracy), converter=passthrough)
    theirs = ChainerEvaluator(Replay(batches), ReplayModel(chainer_accuracy), converter=passthrough)
    loop = ChainerEvaluator(Replay(batches), ReplayModel(None), converter=passthrough)

    # Guard: same keys in the same order, means equal to 1e-6 relative.
    got, ref = _host_means(ours()), _host_means(theirs())
    if list(got) != list(ref):
        raise GuardError(f"Evaluator keys differ: ours {list(got)}, Chainer's {list(ref)}")
    for k in ref:
        if not abs(got[k] - ref[k]) <= GUARD_REL * max(abs(ref[k]), 1e-300):
            raise GuardError(f"Evaluator result {k!r}: ours {got[k]!r}, Chainer's {ref[k]!r}")

    candidates = [Candidate("ours", lambda i: ours(), ctx.sync_fn),
                  Candidate("chainer", lambda i: theirs(), ctx.sync_fn),
                  Candidate("loop", lambda i: loop(), ctx.sync_fn)]
    timings = measure(candidates, ctx.repeat, ctx.warmup, max(ctx.min_sample_s, 0.02),
                      on_round=ctx.progress.step if ctx.progress else None)
    nb = case["batches"]
    per_batch = {k: v.median_s / nb for k, v in timings.items()}
    result = {
        **case, "device": ctx.device,
        "time_per_batch_s": per_batch,
        "samples_s": {k: v.samples_s for k, v in timings.items()},
        "spread_s": {k: spread(v.samples_s) for k, v in timings.items()},
        "calls_per_sample": {k: v.calls_per_sample for k, v in timings.items()},
        "speedup": {"chainer": per_batch["chainer"] / per_batch["ours"]},
    }
    overhead = _overhead_ratio(per_batch)
    if overhead is not None:
        result["metric_overhead_speedup"] = overhead
    return result


def _overhead_ratio(per_batch):
    """Chainer's cost above the bare loop over ours above it; absent when ours is at the floor."""
    ours_extra = per_batch["ours"] - per_batch["loop"]
    theirs_extra = per_batch["chainer"] - per_batch["loop"]
    if ours_extra <= 0 or theirs_extra <= 0:
        return None
    return theirs_extra / ours_extra


def table(results):
    headers = ["batches", "batch", "ours us/batch", "chainer us/batch", "x chainer", "loop us/batch"]
    rows = []
    for r in results:
        pb = r["time_per_batch_s"]
        rows.append([str(r["batches"]), f"{r['batch']}x{r['classes']} {r['dtype']}",
                     f"{pb['ours'] * 1e6:.1f}", f"{pb['chainer'] * 1e6:.1f}",
                     f"{r['speedup']['chainer']:.2f}x", f"{pb['loop'] * 1e6:.1f}"])
    return headers, rows
