# A/B: alternate processes of base and new builds; medians of confusion ns/row and of the
# same-process ratio accuracy/confusion.
#   AB_BASE=<base build's src dir> AB_NEW=<new build's src dir> python ab_builds.py CASES [ROUNDS] [THREADS]
# Each src dir holds a fusedmetrics package with its built _core (as `cp build/dev/_core*.so src/fusedmetrics/`
# leaves it); CASES as ab_micro.py takes them, e.g. 12000x10,1000x1000. DT=float16 times half scores.
import os, subprocess, sys, re, collections, statistics as st
cases = sys.argv[1]; rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
threads = sys.argv[3] if len(sys.argv) > 3 else "1"
builds = {"base": os.environ["AB_BASE"], "new": os.environ["AB_NEW"]}
res = collections.defaultdict(list)
for r in range(rounds):
    for name, path in builds.items():
        out = subprocess.run([sys.executable, __file__.replace("ab_builds.py", "ab_micro.py"), threads, cases], env={"PYTHONPATH": path, "DT": __import__("os").environ.get("DT", "float32")},
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            m = re.search(r"N=\s*(\d+) C=\s*(\d+)\s+confusion\s+([\d.]+).*accuracy\s+([\d.]+).*ratio\s+([\d.]+)", line)
            res[((int(m.group(1)), int(m.group(2))), name)].append((float(m.group(3)), float(m.group(4)), float(m.group(5))))
for c in sorted({k[0] for k in res}):
    row = []
    for name in builds:
        v = res[(c, name)]
        row.append(f"{name}: conf {st.median(x[0] for x in v):6.2f} acc {st.median(x[1] for x in v):6.2f} ratio {st.median(x[2] for x in v):5.1f}%")
    print(f"N={c[0]:8d} C={c[1]:5d}  " + "  |  ".join(row))
