"""Aggregation time per multi-node evaluation: fusedmetrics vs ChainerMN, same run.

    python bench/multi_node_bench.py [--ranks 2 3] [--keys 8 64 1024] [--json out.json]

Launches itself under ``mpiexec -n P`` (mpiexec next to sys.executable first) for each P. On
every rank, a local summary with K keys (a few batches each) is prepared once; then each timed
iteration is what an evaluation does after its local loop, from the local summary to the global
result dict on every rank:

- fusedmetrics: ``create_multi_node_evaluator`` around an evaluator whose ``evaluate_summary()``
  returns the prepared fusedmetrics DictSummary: ``state_dict()``, one packed
  float64 ``Allgather`` (header row included), rank-order Chan merge, ``from_state_dict().compute_mean()``;
- ChainerMN: ``chainermn.create_multi_node_evaluator`` around an evaluator whose ``evaluate()``
  returns the prepared ``chainer.reporter.DictSummary``'s ``compute_mean()``, then one pickled
  ``allreduce_obj`` per key (naive communicator).

Ranks meet at a Barrier before each iteration; an iteration's time is the slowest rank's; the
table shows medians (at most ~2 s of iterations per cell, at least 5). Shards are equal here, so both give the same values (checked); only
fusedmetrics is also exact for unequal shards.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ITERATIONS = {8: 300, 64: 200, 1024: 50}  # at most; fewer when slow
BUDGET_S = 2.0  # per measurement


def worker(keys_list):
    import warnings
    warnings.filterwarnings("ignore")
    import chainer.reporter as reporter_module
    import chainermn
    from mpi4py import MPI

    from fusedmetrics.multi_node import create_multi_node_evaluator
    from fusedmetrics.summary import DictSummary

    world = MPI.COMM_WORLD
    rank = world.Get_rank()
    results = []
    for k in keys_list:
        names = [f"validation/main/metric_{i}" for i in range(k)]
        rng = np.random.RandomState(100 + rank)
        ours, theirs = DictSummary(), reporter_module.DictSummary()
        for _ in range(4):  # four batches
            obs = {n: float(v) for n, v in zip(names, rng.rand(k))}
            ours.add(obs)
            theirs.add(obs)

        class OurLocal:
            def evaluate_summary(self):
                return ours

            def evaluate(self):
                return ours.compute_mean()

        class TheirLocal:
            def evaluate(self):
                return theirs.compute_mean()

        ev_ours = create_multi_node_evaluator(OurLocal(), world)
        ev_theirs = chainermn.create_multi_node_evaluator(TheirLocal(),
                                                          chainermn.create_communicator("naive"))
        row = {"ranks": world.Get_size(), "keys": k}
        for label, ev in (("fusedmetrics", ev_ours), ("chainermn", ev_theirs)):
            ev.evaluate()  # warm-up (ours: the one-time names exchange happens here)
            world.Barrier()
            t0 = time.perf_counter()
            ev.evaluate()
            first = world.allreduce(time.perf_counter() - t0, op=MPI.MAX)
            iters = int(np.clip(BUDGET_S / first, 5, ITERATIONS.get(k, 20)))  # same on every rank
            times = np.empty(iters)
            for i in range(iters):
                world.Barrier()
                t0 = time.perf_counter()
                out = ev.evaluate()
                times[i] = time.perf_counter() - t0
            slowest = np.max(world.allgather(times), axis=0)
            row[label] = float(np.median(slowest))
            row[label + "_result"] = out
        a, b = row.pop("fusedmetrics_result"), row.pop("chainermn_result")
        row["agree"] = bool(set(a) == set(b) and all(abs(a[n] - b[n]) <= 1e-9 * abs(b[n]) for n in b))
        results.append(row)
    if rank == 0:
        print("BENCH " + json.dumps(results), flush=True)


def find_mpiexec():
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--keys", type=int, nargs="+", default=[8, 64, 1024])
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.keys)
        return
    mpiexec = find_mpiexec()
    if mpiexec is None:
        sys.exit("no mpiexec found (pip install 'fusedmetrics[mpi]')")
    import fusedmetrics
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(fusedmetrics.__file__).resolve().parent.parent) + os.pathsep + \
        env.get("PYTHONPATH", "")
    rows = []
    for p in args.ranks:
        cmd = [mpiexec, "-n", str(p), sys.executable, __file__, "--worker", "--keys",
               *map(str, args.keys)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")]
        if proc.returncode != 0 or not line:
            sys.exit(f"{' '.join(cmd)} failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}")
        rows += json.loads(line[-1][len("BENCH "):])
    print(f"Aggregation time per evaluation (median of the slowest rank; {os.cpu_count()} cores"
          f"{', oversubscribed' if max(args.ranks) > (os.cpu_count() or 1) else ''})\n")
    print("| ranks | keys | fusedmetrics (1 Allgather) | ChainerMN (1 allreduce_obj per key) | speed-up | same values |")
    print("|---:|---:|---:|---:|---:|:---:|")
    for r in rows:
        print(f"| {r['ranks']} | {r['keys']} | {r['fusedmetrics'] * 1e6:,.0f} us | "
              f"{r['chainermn'] * 1e6:,.0f} us | {r['chainermn'] / r['fusedmetrics']:.1f}x | "
              f"{'yes' if r['agree'] else 'NO'} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
