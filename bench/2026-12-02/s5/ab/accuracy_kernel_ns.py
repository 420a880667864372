"""ns per row of one named accuracy kernel (best of 15 x 20 calls), 12,000 rows in L2, one thread.
    python accuracy_kernel_ns.py avx2/blocked_rows f32:10:i32,f16:10:i64"""
import sys
import time

import ml_dtypes
import numpy as np

from fusedmetrics import _accuracy, _core

kernel, cases = sys.argv[1], sys.argv[2].split(",")
for case in cases:
    dname, C, lname = case.split(":")
    C = int(C)
    dtype = {"f16": np.float16, "bf16": ml_dtypes.bfloat16, "f32": np.float32}[dname]
    rng = np.random.default_rng(0)
    y = rng.standard_normal((12000, C), dtype=np.float32).astype(dtype)
    t = y.astype(np.float32).argmax(1).astype({"i32": np.int32, "i64": np.int64}[lname])
    y, t, y_code, t_code, view, has_ignore, ignore, _ = _accuracy.host_view(y, t, None)
    plan = _core.AccuracyPlan(y_code, view.N, view.C, view.M, view.y_strides, t_code, view.t_strides,
                              has_ignore, ignore, 1)
    out, best = np.zeros(2, np.int64), np.inf
    for _ in range(15):
        start = time.perf_counter()
        for _ in range(20):
            plan.count_with(kernel, 1, y, t, out)
        best = min(best, (time.perf_counter() - start) / 20 / 12000 * 1e9)
    print(case, "%.3f" % best)
