# Quick A/B: ns per row, confusion_matrix vs accuracy_counts, same input, interleaved, medians.
import sys, time, numpy as np, fusedmetrics as fm
threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
fm.set_num_threads(threads)
cases = [(12000, c) for c in (3, 5, 8, 10, 12, 16, 19, 24, 32, 40, 100)] + [(3000, 128), (2000, 1000)]
if len(sys.argv) > 2:
    cases = [tuple(map(int, s.split('x'))) for s in sys.argv[2].split(',')]
rng = np.random.default_rng(0)
for n, c in cases:
    if n < 0:  # class-strided images (-n, C, 512, 1024)
        y = rng.random((-n, c, 512, 1024), dtype=np.float32); n = -n * 512 * 1024
    else:
        y = rng.random((n, c), dtype=np.float32).astype(__import__("os").environ.get("DT", "float32"))
    t = y.argmax(1).astype(np.int32)
    fm.confusion_matrix(y, t, c)
    for _ in range(30): fm.accuracy_counts(y, t)
    a, b = [], []
    reps = max(3, int(2e7 // (n * c)))
    for r in range(int(__import__('os').environ.get('ROUNDS', '15'))):
        t0 = time.perf_counter()
        for _ in range(reps): fm.confusion_matrix(y, t, c)
        t1 = time.perf_counter()
        for _ in range(reps): fm.accuracy_counts(y, t)
        t2 = time.perf_counter()
        a.append((t1 - t0) / reps / n * 1e9); b.append((t2 - t1) / reps / n * 1e9)
    ma, mb = np.median(a), np.median(b)
    print(f"N={n:6d} C={c:5d}  confusion {ma:7.2f} ns/row  accuracy {mb:7.2f} ns/row  ratio {mb/ma*100:5.1f}%")
