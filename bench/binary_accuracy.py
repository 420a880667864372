"""binary_accuracy_counts (one fused C++ pass) against numpy's expression and the read ceiling.

    PYTHONPATH=src .venv/bin/python bench/binary_accuracy.py [--mb 512] [--rounds 9]

Per dtype pair: N scores and N labels adding up to about --mb MB (beyond the last-level
cache), two buffers rotated so that no call re-reads the previous one's data from cache.
Every round times, interleaved and in a rotating order, ours, numpy's
``((y >= 0) == t).sum()`` plus ``(t != -1).sum()`` (what the previous implementation did, and
what a user writes), and the read ceiling: the better of one-thread numpy.sum and a
fusedmetrics-thread-count split numpy.sum over a float32 buffer of the same bytes. Medians;
the CPU model is printed first. Counts are checked against numpy before anything is timed.
"""
import argparse
import statistics
import time

import numpy as np

import fusedmetrics as fm
from fusedmetrics.bench import machine
from fusedmetrics.bench.timing import ParallelSum, reader_threads


def cpu_family_model():
    """'family F model M' from /proc/cpuinfo (the model name alone, e.g. "AMD EPYC", says little)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return "family unknown"
    return "family %s model %s" % (fields.get("cpu family", "?"), fields.get("model", "?"))


def numpy_counts(y, t):
    counted = (t != -1).sum() if t.dtype.kind == "i" else t.size
    return np.array([((y >= 0) == t).sum(), counted], dtype=np.int64)


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_case(ydtype, tdtype, mb, rounds, rng):
    n = int(mb * 2 ** 20 / (np.dtype(ydtype).itemsize + np.dtype(tdtype).itemsize))
    buffers = []
    for _ in range(2):
        y = rng.standard_normal(n, dtype=np.float32).astype(ydtype)
        t = rng.integers(-1, 2, n).astype(tdtype)
        buffers.append((y, t))
    for y, t in buffers:
        if not np.array_equal(fm.binary_accuracy_counts(y, t), numpy_counts(y, t)):
            raise SystemExit(f"count mismatch for {np.dtype(ydtype).name}/{np.dtype(tdtype).name}")
    nbytes = buffers[0][0].nbytes + buffers[0][1].nbytes
    ceiling_buffers = [np.ones(nbytes // 4, np.float32) for _ in range(2)]
    parallel = ParallelSum(ceiling_buffers, reader_threads())
    candidates = {
        "ours": lambda i: fm.binary_accuracy_counts(*buffers[i % 2]),
        "numpy": lambda i: numpy_counts(*buffers[i % 2]),
        "ceiling_1t": lambda i: ceiling_buffers[i % 2].sum(),
        "ceiling_mt": parallel,
    }
    samples = {name: [] for name in candidates}
    names = list(candidates)
    try:
        for r in range(rounds + 1):  # the first round warms up
            for k in range(len(names)):
                name = names[(r + k) % len(names)]
                elapsed = timed(lambda: candidates[name](r))
                if r:
                    samples[name].append(elapsed)
    finally:
        parallel.close()
    med = {name: statistics.median(s) for name, s in samples.items()}
    ceiling = min(med["ceiling_1t"], med["ceiling_mt"])
    print("%-9s %-7s %7.1f MB  ours %7.2f ms  numpy %8.2f ms (%5.1fx)  ours at %3.0f%% of the read ceiling "
          "(%5.1f GB/s)" % (np.dtype(ydtype).name, np.dtype(tdtype).name, nbytes / 1e6, med["ours"] * 1e3,
                            med["numpy"] * 1e3, med["numpy"] / med["ours"], 100 * ceiling / med["ours"],
                            nbytes / ceiling / 1e9), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=512)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    print("CPU: %s (%s) | fusedmetrics threads: %d | active ISA: %s"
          % (machine.cpu_model(), cpu_family_model(), fm.get_num_threads(), fm.build_info().get("cpu_isa_active")))
    rng = np.random.default_rng(0)
    for ydtype in (np.float16, np.float32):
        for tdtype in (np.int8, np.int32, np.int64):
            run_case(ydtype, tdtype, args.mb, args.rounds, rng)


if __name__ == "__main__":
    main()
