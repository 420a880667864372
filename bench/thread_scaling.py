"""Does the second thread of the CPU kernel help? One vs two threads, back to back.

    PYTHONPATH=src .venv/bin/python bench/thread_scaling.py [--rounds 7]

Times accuracy_counts at N=2^20, C=10 float32 (44 MB over 3 rotating buffers), 30 calls per
median, and prints GB/s with the process's CPU time over wall time (about 2 when both threads
really run at once). Used for the threading notes in RESULTS.md.
"""
import argparse
import os
import time

import numpy as np

import fusedmetrics as fm


def median_gbps(buffers, calls=30):
    nbytes = buffers[0][0].nbytes + buffers[0][1].nbytes
    times = []
    cpu0 = os.times()
    for i in range(calls):
        y, t = buffers[i % len(buffers)]
        start = time.perf_counter()
        fm.accuracy_counts(y, t)
        times.append(time.perf_counter() - start)
    cpu1 = os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return nbytes / np.median(times) / 1e9, cpu / sum(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, c = 2 ** 20, 10
    buffers = [(rng.standard_normal((n, c)).astype(np.float32), rng.integers(0, c, n).astype(np.int32))
               for _ in range(3)]
    before = fm.get_num_threads()
    try:
        for _ in range(args.rounds):
            for threads in (1, 2):
                fm.set_num_threads(threads)
                gbps, cpu_per_wall = median_gbps(buffers)
                print("threads %d: %5.1f GB/s  cpu/wall %.2f" % (threads, gbps, cpu_per_wall), flush=True)
    finally:
        fm.set_num_threads(before)


if __name__ == "__main__":
    main()
