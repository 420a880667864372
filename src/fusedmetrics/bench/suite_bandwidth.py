"""Suite ``bandwidth``: the memory ceilings every kernel figure is compared to.

Over the byte counts of the accuracy inputs (logits plus labels; and 512 MiB outside --quick):
- read: ``numpy.sum`` (``cupy.sum`` on a GPU) of float32 buffers, GB/s = bytes read / time;
- copy: ``numpy.copyto`` (a device-to-device copy on a GPU), GB/s = (bytes read + bytes written) / time.
Buffers rotate as in the accuracy suite, so the cache is not measured.
"""
import numpy as np

from . import data
from .timing import Candidate, ParallelSum, measure, reader_threads, rounds, spread

NAME = "bandwidth"
REFERENCE_BYTES = 512 << 20


def plan(ctx):
    sizes = []
    for dtype in ctx.dtypes:
        shapes = ctx.shapes or data.default_shapes(ctx.device, dtype, ctx.label_dtype, ctx.llc_bytes, ctx.quick)
        sizes += [data.input_bytes(n, c, dtype, ctx.label_dtype) for n, c in shapes]
    if not ctx.quick and ctx.shapes is None:
        sizes.append(REFERENCE_BYTES)
    return [{"bytes": b} for b in sorted(set(sizes))]


def steps(ctx, case):
    return rounds(ctx.repeat, ctx.warmup)


def label(case):
    return f"bandwidth {case['bytes'] / 1e6:.1f} MB"


def run_case(ctx, case):
    xp = ctx.xp
    elems = max(1, case["bytes"] // 4)
    size = elems * 4
    cache = ctx.llc_bytes if ctx.device == "cpu" else 64 << 20
    pool_n = data.pool_size(size, cache)
    maker = data.ArrayMaker(xp, seed=elems)
    srcs = [maker.uniform((elems,), np.float32) for _ in range(pool_n)]
    dsts = [s.copy() for s in srcs]   # touched pages: no first-write faults in the timings
    if ctx.device == "cuda":
        stream = ctx.cupy.cuda.get_current_stream()

        def copy(i):
            dsts[i % pool_n].data.copy_from_device_async(srcs[(i + 1) % pool_n].data, size, stream)
    else:
        def copy(i):
            np.copyto(dsts[i % pool_n], srcs[(i + 1) % pool_n])
    candidates = [Candidate("read", lambda i: srcs[i % pool_n].sum(), ctx.sync_fn),
                  Candidate("copy", copy, ctx.sync_fn)]
    parallel = ParallelSum(srcs, reader_threads()) if ctx.device == "cpu" else None
    if parallel is not None:
        candidates.append(Candidate("read_mt", parallel))
    try:
        timings = measure(candidates, ctx.repeat, ctx.warmup, ctx.min_sample_s,
                          on_round=ctx.progress.step if ctx.progress else None)
    finally:
        if parallel is not None:
            parallel.close()
    result = {
        "bytes": size, "device": ctx.device, "buffers": pool_n,
        "read_method": "cupy.sum float32" if ctx.device == "cuda" else "numpy.sum float32",
        "copy_method": "device-to-device copy" if ctx.device == "cuda" else "numpy.copyto float32",
        "time_s": {k: v.median_s for k, v in timings.items()},
        "samples_s": {k: v.samples_s for k, v in timings.items()},
        "spread_s": {k: spread(v.samples_s) for k, v in timings.items()},
        "calls_per_sample": {k: v.calls_per_sample for k, v in timings.items()},
        "gbps": {"read": size / timings["read"].median_s / 1e9,
                 "copy": 2 * size / timings["copy"].median_s / 1e9},
    }
    if parallel is not None:
        result["read_mt_threads"] = parallel.threads
        result["gbps"]["read_mt"] = size / timings["read_mt"].median_s / 1e9
    return result


def table(results):
    headers = ["MB", "read GB/s", "all-core read GB/s", "copy GB/s (r+w)", "read ms", "copy ms"]
    rows = [[f"{r['bytes'] / 1e6:.1f}", f"{r['gbps']['read']:.1f}",
             f"{r['gbps']['read_mt']:.1f} ({r['read_mt_threads']}T)" if "read_mt" in r["gbps"] else "-",
             f"{r['gbps']['copy']:.1f}",
             f"{r['time_s']['read'] * 1e3:.3f}", f"{r['time_s']['copy'] * 1e3:.3f}"] for r in results]
    return headers, rows
