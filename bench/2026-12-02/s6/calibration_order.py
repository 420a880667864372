# The harness's calibration, shown at 16384 int64 labels, C = 1000: each candidate list order in one process;
# "calls" is how many calls each sample holds (set by the calibration).
import sys, numpy as np, fusedmetrics as fm, torch
from fusedmetrics.bench.timing import Candidate, measure
from torchmetrics.classification import MulticlassConfusionMatrix
C = 1000; n = 1 << 14; dt = sys.argv[1]
rng = np.random.default_rng(1)
p = rng.integers(0, C, n).astype(dt); t = rng.integers(0, C, n).astype(dt)
m = MulticlassConfusionMatrix(num_classes=C, validate_args=False)
pt, tt = torch.from_numpy(p), torch.from_numpy(t)
c = {"ours": Candidate("ours", lambda i: fm.confusion_matrix(p, t, C)),
     "numpy": Candidate("numpy", lambda i: np.bincount(C * t.astype(np.int64) + p, minlength=C * C).reshape(C, C)),
     "tm": Candidate("tm", lambda i: m.update(pt, tt))}
for order in (["ours", "numpy", "tm"], ["numpy", "ours", "tm"], ["tm", "ours", "numpy"], ["ours", "tm", "numpy"]) * 2:
    r = measure([c[k] for k in order], 9, 1)
    print(dt, order, {k: round(v.median_s * 1e3, 3) for k, v in r.items()}, "numpy/ours", round(r["numpy"].median_s / r["ours"].median_s, 2), "calls", {k: v.calls_per_sample for k, v in r.items()})
