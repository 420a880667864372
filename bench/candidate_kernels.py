"""Times every candidate CPU accuracy kernel of one call shape, interleaved, in ns per row.

A developer's tool for choosing between kernels, not a benchmark of the package: it calls
``AccuracyPlan.count_with`` (kernel by name, thread cap) directly and checks that every
candidate gives the same counts. With the default 12,000 rows the input stays in L2, so
the figures are compute cost; pass ``--mb 256`` for inputs beyond the last-level cache.

    PYTHONPATH=src python bench/candidate_kernels.py --classes 3,10 --dtype float32,bfloat16
"""
import argparse
import time

import numpy as np

from fusedmetrics import _accuracy, _core
from fusedmetrics.bench.machine import cpu_model


def dtype_of(name):
    if name == "bfloat16":
        import ml_dtypes
        return ml_dtypes.bfloat16
    return np.dtype(name)


def time_candidates(C, dtype, rows, threads, rounds, reps):
    rng = np.random.default_rng(0)
    y = rng.standard_normal((rows, C), dtype=np.float32).astype(dtype)
    t = y.astype(np.float32).argmax(1).astype(np.int32)  # every score must be read
    y, t, y_code, t_code, view, has_ignore, ignore, _ = _accuracy.host_view(y, t, None)
    plan = _core.AccuracyPlan(y_code, view.N, view.C, view.M, view.y_strides, t_code, view.t_strides,
                              has_ignore, ignore, 1)
    best, counts = {}, {}
    for _ in range(rounds):
        for name in plan.candidates():
            out = np.zeros(2, np.int64)
            start = time.perf_counter()
            for _ in range(reps):
                plan.count_with(name, threads, y, t, out)
            seconds = (time.perf_counter() - start) / reps
            best[name] = min(best.get(name, np.inf), seconds)
            counts[name] = (out // reps).tolist()
    if len({tuple(c) for c in counts.values()}) != 1:
        raise AssertionError("candidates disagree: %s" % counts)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default="3,5,10", help="class counts, comma-separated")
    parser.add_argument("--dtype", default="float32", help="float32, float16, bfloat16, float64; comma-separated")
    parser.add_argument("--rows", type=int, default=12000)
    parser.add_argument("--mb", type=float, help="size the input in MB instead of --rows")
    parser.add_argument("--threads", type=int, default=1, help="thread cap for every kernel")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (best is kept)")
    args = parser.parse_args()
    print("cpu: %s; ISA builds usable: %s" % (cpu_model(), ", ".join(_core.usable_isas())))
    for dname in args.dtype.split(","):
        dtype = dtype_of(dname)
        for C in (int(c) for c in args.classes.split(",")):
            rows = int(args.mb * 2**20 / (C * np.dtype(dtype).itemsize + 4)) if args.mb else args.rows
            reps = max(1, int(2e6 // (rows * C)))
            best = time_candidates(C, dtype, rows, args.threads, args.rounds, reps)
            cells = "  ".join("%s %.2f" % (name, s / rows * 1e9) for name, s in sorted(best.items(), key=lambda kv: kv[1]))
            print("C=%d %s rows=%d (ns/row): %s" % (C, dname, rows, cells))


if __name__ == "__main__":
    main()
