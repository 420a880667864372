"""ns per sample of confusion_matrix from integer labels into a reused out= (best of 15 x 10 calls).
    python confusion_labels_ns.py 1048576:10:int64,16384:1000:int32"""
import sys
import time

import numpy as np

import fusedmetrics as fm

for case in sys.argv[1].split(","):
    n, C, dtype = case.split(":")
    n, C = int(n), int(C)
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, C, n).astype(dtype), rng.integers(0, C, n).astype(dtype)
    out, best = np.zeros((C, C), np.int64), np.inf
    for _ in range(15):
        start = time.perf_counter()
        for _ in range(10):
            fm.confusion_matrix(p, t, C, out=out)
        best = min(best, (time.perf_counter() - start) / 10 / n * 1e9)
    print(case, "%.3f" % best)
