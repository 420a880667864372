"""confusion_matrix at 1024 x 32000 float32 scores: a new (C, C) int64 result per call (8.2 GB,
zero pages faulted in where counts land) against counts added into a kept matrix (as
ConfusionMatrix.update does), and accuracy_counts on the same buffers. Interleaved rounds,
medians. Run: PYTHONPATH=src .venv/bin/python bench/2026-12-02/s7/confusion_32000_out.py"""
import statistics
import time

import numpy as np

import fusedmetrics as fm

N, C, POOL, ROUNDS = 1024, 32000, 6, 9
rng = np.random.default_rng(0)
pool = []
for _ in range(POOL):
    y = rng.random((N, C), dtype=np.float32)
    pool.append((y, y.argmax(1)))
kept = np.zeros((C, C), np.int64)
for y, t in pool:  # warm: plans, the kept matrix's pages
    fm.confusion_matrix(y, t, C, out=kept)
    fm.accuracy_counts(y, t)
    fm.confusion_matrix(y, t, C)
cases = {"new matrix": lambda y, t: fm.confusion_matrix(y, t, C),
         "into kept matrix": lambda y, t: fm.confusion_matrix(y, t, C, out=kept),
         "accuracy_counts": lambda y, t: fm.accuracy_counts(y, t)}
times = {k: [] for k in cases}
for r in range(ROUNDS):
    for name in (list(cases) if r % 2 == 0 else list(reversed(cases))):
        t0 = time.perf_counter()
        for y, t in pool:
            cases[name](y, t)
        times[name].append((time.perf_counter() - t0) / POOL)
nbytes = pool[0][0].nbytes + pool[0][1].nbytes
for name, ts in times.items():
    med = statistics.median(ts)
    print(f"{name:18s} {med * 1e3:8.3f} ms  {nbytes / med / 1e9:6.2f} GB/s")
