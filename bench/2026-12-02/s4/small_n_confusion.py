import numpy as np, time, statistics, fusedmetrics as fm
rng=np.random.default_rng(0)
def med(f, calls=10, rounds=15):
    return f
res={}
for dt,C in ((np.int64,1000),(np.int32,1000),(np.uint8,255),(np.int64,100)):
    for N in (4096,16384,65536):
        pool=[(rng.integers(0,C,N).astype(dt), rng.integers(0,C,N).astype(dt)) for _ in range(8)]
        out=np.zeros((C,C),np.int64)
        cands={'ours':lambda i: fm.confusion_matrix(*pool[i%8],C),
               'ours_out':lambda i: fm.confusion_matrix(*pool[i%8],C,out=out),
               'numpy':lambda i: np.bincount(C*pool[i%8][1].astype(np.int64)+pool[i%8][0],minlength=C*C).reshape(C,C)}
        assert (cands['ours'](0)==cands['numpy'](0)).all()
        s={k:[] for k in cands}; i=0
        for r in range(15):
            for k,f in (list(cands.items())[r%3:]+list(cands.items())[:r%3]):
                t0=time.perf_counter()
                for j in range(10): f(i+j)
                i+=10
                s[k].append((time.perf_counter()-t0)/10)
        m={k:statistics.median(v)*1e6 for k,v in s.items()}
        print(f"{np.dtype(dt).name:6s} C={C:5d} N={N:6d}: ours {m['ours']:7.1f} us, ours out= {m['ours_out']:7.1f} us, numpy {m['numpy']:7.1f} us -> {m['numpy']/m['ours']:.2f}x / {m['numpy']/m['ours_out']:.2f}x")
