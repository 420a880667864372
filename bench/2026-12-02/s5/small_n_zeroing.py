"""16384 int64 labels, C = 1000: where the time of confusion_matrix and of numpy's
bincount goes (5 calls per sample, 40 interleaved rounds, medians in ms).

    PYTHONPATH=src python bench/2026-12-02/s5/small_n_zeroing.py
"""
import statistics
import time

import numpy as np

import fusedmetrics as fm

C, N = 1000, 16384
rng = np.random.default_rng(0)
t = rng.integers(0, C, N).astype(np.int64)
p = rng.integers(0, C, N).astype(np.int64)
hot = np.zeros((C, C), np.int64)
calls = {
    "ours (result allocated inside)": lambda: fm.confusion_matrix(p, t, C),
    "ours, out=np.zeros(...) built just before": lambda: fm.confusion_matrix(p, t, C, out=np.zeros((C, C), np.int64)),
    "ours, out= a reused matrix": lambda: fm.confusion_matrix(p, t, C, out=hot),
    "numpy bincount(C * t + p, minlength=C * C)": lambda: np.bincount(C * t + p, minlength=C * C).reshape(C, C),
    "np.zeros((C, C), int64) alone": lambda: np.zeros((C, C), np.int64),
}
samples = {name: [] for name in calls}
for _ in range(40):
    for name, call in calls.items():
        start = time.perf_counter()
        for _ in range(5):
            call()
        samples[name].append((time.perf_counter() - start) / 5 * 1e3)
for name, values in samples.items():
    print("%-45s %.3f ms" % (name, statistics.median(values)))
