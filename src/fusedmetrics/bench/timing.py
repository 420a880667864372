"""Interleaved timing: every candidate runs in every round, in a rotating order, and each figure is
the median of the rounds that follow the warm-up ones.

A candidate is a callable taking the call index ``i``; it picks its input with ``i`` (a rotation over
several buffers, so that a buffer is not re-read straight from cache). The index is one counter
shared by all candidates, so consecutive calls, whoever makes them, touch different buffers.
Device work is timed with a host clock between two synchronisations of the device.

Two call patterns. Back to back: calls follow each other, short ones repeated inside one sample.
Loop: every timed call comes right after ``gap`` (untimed), other work that touches memory for
several milliseconds, as a model step does before the metric call in a training loop; caches,
TLBs, core clocks and the kernel's threads are then in the state users see.
"""
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional


@dataclass
class Candidate:
    name: str
    fn: Callable[[int], Any]
    sync: Optional[Callable[[], None]] = None   # waits for queued device work, None on the host


@dataclass
class Timing:
    """Seconds per call of one candidate: the median and the samples it came from."""
    median_s: float
    samples_s: list = field(default_factory=list)
    calls_per_sample: int = 1


def _time_block(cand, counter, calls):
    if cand.sync is not None:
        cand.sync()
    t0 = time.perf_counter()
    for j in range(calls):
        cand.fn(counter + j)
    if cand.sync is not None:
        cand.sync()
    return time.perf_counter() - t0


def _calls_per_sample(cand, counter, min_sample_s, max_calls):
    """(calls that fill ``min_sample_s``, the next call index), from warm calls timed in blocks
    long enough for the clock. Not from the first call: that one can be a hundred times slower
    (a plan measuring its kernels), and a sample of one short call would then time every call
    cold, right after another candidate, while the others time mostly warm calls."""
    def fill(calls, elapsed):
        return max(1, min(max_calls, math.ceil(min_sample_s * calls / max(elapsed, 1e-9))))

    calls, elapsed = 1, _time_block(cand, counter, 1)
    counter += 1
    while elapsed < min_sample_s / 10 and calls < max_calls:
        calls = min(max_calls, calls * 10)
        elapsed = _time_block(cand, counter, calls)
        counter += calls
    # Once more at the estimated length: the second call can still be cold (fresh pages,
    # another buffer of the rotation).
    calls = fill(calls, elapsed)
    elapsed = _time_block(cand, counter, calls)
    return fill(calls, elapsed), counter + calls


def measure(candidates, repeat, warmup=1, min_sample_s=0.005, max_calls=100000, on_round=None, gap=None):
    """Time ``candidates`` interleaved; return {name: Timing}.

    Back to back (``gap`` None): each sample is long enough (``min_sample_s``) for the clock:
    short calls are repeated inside the sample and divided out. Loop mode (``gap`` a callable):
    each sample is ONE call, timed alone, right after ``gap()`` ran untimed. ``on_round`` is
    called after each round (progress display).
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    counter = 0
    calls = {}
    for cand in candidates:
        if gap is not None:
            gap()
        _time_block(cand, counter, 1)  # the first call: plans, page faults, lazy imports
        counter += 1
        if gap is None:
            calls[cand.name], counter = _calls_per_sample(cand, counter, min_sample_s, max_calls)
        else:
            calls[cand.name] = 1
    samples = {cand.name: [] for cand in candidates}
    n = len(candidates)
    for r in range(warmup + repeat):
        for k in range(n):
            cand = candidates[(r + k) % n]   # rotate who goes first
            c = calls[cand.name]
            if gap is not None:
                gap()
            elapsed = _time_block(cand, counter, c)
            counter += c
            if r >= warmup:
                samples[cand.name].append(elapsed / c)
        if on_round is not None:
            on_round()
    return {name: Timing(statistics.median(s), s, calls[name]) for name, s in samples.items()}


def spread(samples):
    """min / quartiles / max of a candidate's samples: a bimodal run (a vCPU taken away by the host
    for a while) shows as a wide gap between min and median."""
    q = statistics.quantiles(samples, n=4, method="inclusive") if len(samples) > 1 else [samples[0]] * 3
    return {"min": min(samples), "p25": q[0], "median": statistics.median(samples), "p75": q[2],
            "max": max(samples)}


def rounds(repeat, warmup=1):
    """How many progress steps ``measure`` makes."""
    return warmup + repeat


def reader_threads():
    """Threads for the all-cores read ceiling: fusedmetrics' thread count, else the usable cores."""
    try:
        import fusedmetrics
        return max(1, int(fusedmetrics.get_num_threads()))
    except Exception:
        import os
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):
            return max(1, os.cpu_count() or 1)


class ParallelSum:
    """``numpy.sum`` over one slice per thread (numpy releases the GIL while it sums): the read
    bandwidth a multithreaded kernel can reach, which single-threaded ``numpy.sum`` understates."""

    def __init__(self, buffers, threads):
        from concurrent.futures import ThreadPoolExecutor
        self.threads = threads
        self.slices = [[b[k * b.size // threads:(k + 1) * b.size // threads] for k in range(threads)]
                       for b in buffers]
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def __call__(self, i):
        parts = self.slices[i % len(self.slices)]
        if self.pool is None:
            return parts[0].sum()
        return sum(self.pool.map(lambda a: a.sum(), parts))

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()


class MemoryGap:
    """Stand-in for a model step between two metric calls: copies one scratch buffer into another
    (beyond the last-level cache when it can) for about ``target_s`` seconds. Calibrated once."""

    def __init__(self, target_s=0.010, llc_bytes=None, max_bytes=256 << 20):
        import numpy as np
        self.target_s = target_s
        nbytes = min(max_bytes, max(64 << 20, 2 * (llc_bytes or 0)))
        self.src = np.ones(nbytes // 4, dtype=np.float32)
        self.dst = np.empty_like(self.src)
        self.elements = self.src.size
        for _ in range(2):  # first pass faults the pages in; the second is the real cost
            t0 = time.perf_counter()
            self()
            once = time.perf_counter() - t0
        self.elements = max(1 << 16, min(self.src.size, int(self.src.size * target_s / max(once, 1e-6))))
        t0 = time.perf_counter()
        self()
        self.measured_s = time.perf_counter() - t0

    def __call__(self):
        import numpy as np
        np.copyto(self.dst[:self.elements], self.src[:self.elements])
