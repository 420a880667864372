"""ns per sample of confusion_matrix into a reused out= (best of 15 x 10 calls), one case per line.
    python confusion_paths_ns.py labels:16384:1000:int64,labels:65536:19:int32/int64,strided:1048576:10:int32,...
(a dtype "T/P" gives true labels T and integer predictions P)
kinds: labels (contiguous integer predictions), strided (both label arrays every other element: the
typed walk instead of the ISA label tally), scores (float32 (N, C) rows, int32/int64 labels),
image (float32 (2, C, 256, 512) class-strided scores, N = 2*256*512 is ignored)."""
import sys
import time

import numpy as np

import fusedmetrics as fm

for case in sys.argv[1].split(","):
    kind, n, C, dtype = case.split(":")
    n, C = int(n), int(C)
    t_dtype, _, p_dtype = dtype.partition("/")  # "int32/int64": true labels int32, predictions int64
    p_dtype = p_dtype or t_dtype
    rng = np.random.default_rng(0)
    if kind in ("labels", "strided"):
        step = 2 if kind == "strided" else 1
        t = rng.integers(0, C, n * step).astype(t_dtype)[::step]
        y = rng.integers(0, C, n * step).astype(p_dtype)[::step]
    elif kind == "scores":
        y = rng.random((n, C), dtype=np.float32)
        t = rng.integers(0, C, n).astype(dtype)
    else:
        y = rng.random((2, C, 256, 512), dtype=np.float32)
        t = rng.integers(0, C, (2, 256, 512)).astype(dtype)
        n = t.size
    out, best = np.zeros((C, C), np.int64), np.inf
    for _ in range(15):
        start = time.perf_counter()
        for _ in range(10):
            fm.confusion_matrix(y, t, C, out=out)
        best = min(best, (time.perf_counter() - start) / 10 / n * 1e9)
    print(case, "%.3f" % best)
