"""Same-run before/after of confusion_matrix from integer labels across builds.

Two builds' _core modules cannot share one interpreter (pybind11 registers their types
globally), so each build runs in its own process and the parent interleaves the calls:
every round times each build once, then numpy's bincount in each build's process (a
process's allocator state moves the cost of a new 8 MB matrix, for numpy's result as for
ours). Prints medians, ns per sample and each build's ratio to numpy in its own process.

    python bench/compare_confusion_builds.py --builds main=/tmp/main_src,new=src \\
        --cases uint8:10,int32:1000,uint8:19:runs --n 16777216 --repeat 9 --threads 2

A build path is a directory holding a `fusedmetrics` package with its _core module (copy
src/fusedmetrics of a checkout with the module built, e.g. main's, somewhere else).
Patterns: `uniform` labels (the harness's), `runs` (segmentation-like: runs of 64 equal
true labels, predictions equal to them 90% of the time), or `ignore` (uniform, every 8th
true label the ignore label C). A `float32` case times float32 scores (N, C) instead of
integer predictions (labels int64). Small calls: `--calls 20` times 20 calls per figure (the
mean of them), `--out` adds into a preallocated matrix instead of a new one.

    python bench/compare_confusion_builds.py --builds main=/tmp/main_src,new=src \
        --cases int64:1000,int32:1000:ignore,uint8:255,float32:1000 --n 16384 --calls 20 --repeat 21 --threads 1
"""
import argparse
import multiprocessing
import sys
import time

import numpy as np


def make_labels(dtype, C, n, pattern):
    """(t, p, ignore_label); p holds float32 scores (n, C) for dtype float32."""
    rng = np.random.default_rng(C * 7 + n)
    if pattern == "runs":
        t = np.repeat(rng.integers(0, C, n // 64 + 1), 64)[:n]
        p = np.where(rng.random(n) < 0.9, t, rng.integers(0, C, n))
    else:
        t, p = rng.integers(0, C, n), rng.integers(0, C, n)
    ignore = None
    if pattern == "ignore":
        ignore = C
        t[::8] = C
    if dtype == "float32":
        return t, rng.standard_normal((n, C)).astype(np.float32), ignore
    return t.astype(dtype), p.astype(dtype), ignore


def bincount(t, p, C, ignore=None):
    """numpy's count: argmax of scores, the ignored samples dropped, bincount."""
    if p.ndim == 2:
        p = p.argmax(1)
    if ignore is not None:
        keep = t != ignore
        t, p = t[keep], p[keep]
    return np.bincount(C * t.astype(np.int64) + p, minlength=C * C).reshape(C, C)


def worker(path, threads, calls, use_out, conn):
    """Serves ("ours" | "numpy", case) requests with one timing each (the mean of `calls` calls)."""
    sys.path.insert(0, path)
    import fusedmetrics as fm
    fm.set_num_threads(threads)
    current = None
    while True:
        request = conn.recv()
        if request is None:
            return
        kind, case = request
        if current is None or current[0] != case:
            t, p, ignore = make_labels(*case)
            if not np.array_equal(fm.confusion_matrix(p, t, case[1], ignore), bincount(t, p, case[1], ignore)):
                raise AssertionError("%s: confusion_matrix differs from bincount for %s" % (path, case))
            out = np.zeros((case[1], case[1]), np.int64) if use_out else None
            current = (case, t, p, ignore, out)
        _, t, p, ignore, out = current
        C = case[1]
        start = time.perf_counter()
        for _ in range(calls):
            if kind == "ours":
                fm.confusion_matrix(p, t, C, ignore, out=out)
            else:
                bincount(t, p, C, ignore)
        conn.send((time.perf_counter() - start) / calls)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--builds", required=True, help="name=path,name=path")
    parser.add_argument("--cases", default="uint8:10,uint8:19,uint8:100,int32:10,int32:19,int32:100,int32:1000",
                        help="dtype:C[:uniform|runs],...")
    parser.add_argument("--n", type=int, default=1 << 24)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=1, help="calls per timed figure (their mean)")
    parser.add_argument("--out", action="store_true", help="ours add into a preallocated matrix")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    builds = {}
    for item in args.builds.split(","):
        name, path = item.split("=", 1)
        parent, child = context.Pipe()
        context.Process(target=worker, args=(path, args.threads, args.calls, args.out, child), daemon=True).start()
        builds[name] = parent

    def timed(name, kind, case):
        builds[name].send((kind, case))
        return builds[name].recv()

    print("N %d, %d rounds (+1 warm-up) of %d calls, %d threads%s; medians"
          % (args.n, args.repeat, args.calls, args.threads, ", out=" if args.out else ""))
    for spec in args.cases.split(","):
        dtype, C, *pattern = spec.split(":")
        case = (dtype, int(C), args.n, pattern[0] if pattern else "uniform")
        samples = {(name, kind): [] for name in builds for kind in ("ours", "numpy")}
        for round_ in range(args.repeat + 1):
            times = {(name, kind): timed(name, kind, case) for kind in ("ours", "numpy") for name in builds}
            if round_:
                for key, s in times.items():
                    samples[key].append(s)
        med = {key: float(np.median(s)) for key, s in samples.items()}
        cells = ["%s %8.1f us %5.2f ns %5.2fx (numpy %7.1f)" % (
            name, med[name, "ours"] * 1e6, med[name, "ours"] * 1e9 / args.n,
            med[name, "numpy"] / med[name, "ours"], med[name, "numpy"] * 1e6) for name in builds]
        print("%-7s C=%-5s %-7s %s" % (dtype, C, case[3], "   ".join(cells)), flush=True)
    for conn in builds.values():
        conn.send(None)


if __name__ == "__main__":
    main()
