"""A/B of two builds in alternating processes: medians of a per-case script's figures.
    AB_BASE=<base src dir> AB_NEW=<new src dir> python ab.py SCRIPT ROUNDS ARGS...
Each src dir holds a fusedmetrics package with its built _core; SCRIPT prints "case value" lines
(accuracy_kernel_ns.py, confusion_labels_ns.py beside this file)."""
import collections
import os
import statistics
import subprocess
import sys

script, rounds, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
builds = {"base": os.environ["AB_BASE"], "new": os.environ["AB_NEW"]}
values, order = collections.defaultdict(list), []
for _ in range(rounds):
    for name, path in builds.items():
        done = subprocess.run([sys.executable, script] + args, env={"PYTHONPATH": path}, capture_output=True,
                              text=True, check=True)
        for line in done.stdout.splitlines():
            case, value = line.split()
            if case not in order:
                order.append(case)
            values[(case, name)].append(float(value))
for case in order:
    base, new = statistics.median(values[(case, "base")]), statistics.median(values[(case, "new")])
    print("%-20s base %7.3f  new %7.3f  base/new %5.2f" % (case, base, new, base / new))
