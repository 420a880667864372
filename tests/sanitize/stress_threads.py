"""Threaded stress of the C++ core, meant to run under the sanitizers (scripts/sanitize.sh).

Several Python threads at once: accuracy_counts on different shapes, dtypes, layouts and
k (calls over 1 MiB among them, which the planner times) while other threads keep
changing the kernels' thread count and the planner's mode and wisdom; DictSummary.add into
private summaries and into one shared summary, with merge, state_dict and
make_statistics on it in between. Some values are Fractions, whose conversion runs
Python code, so the interpreter can switch threads in the middle of an add().

Checks: every count equals tests/reference.py; at the end the shared summary holds
exactly the weight every thread added, with the mean and std of all the values.
Exit status 1 on any mismatch or unexpected exception. Not a pytest file: the
sanitizers make it slow, and it runs for --seconds.
"""
import argparse
import fractions
import random
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for reference.py
import fusedmetrics as fm  # noqa: E402
from reference import top_k_counts  # noqa: E402

KEYS = ["loss", "acc", "lr", "x/y"]


def accuracy_cases(rng):
    """(y, t, ignore, k, expected): shapes across the kernels' paths, any layout."""
    cases = []
    for n, c, extra in [(0, 5, ()), (1, 1, ()), (7, 2, ()), (33, 4, ()), (64, 8, ()), (129, 10, ()),
                        (50, 33, ()), (9, 1000, ()), (6, 3, (5,)), (4, 7, (3, 2)), (300, 2, ())]:
        for dtype in (np.float16, np.float32, np.float64):
            y = rng.standard_normal((n, c) + extra).astype(dtype)
            if y.size and rng.random() < 0.3:
                y.flat[rng.integers(0, y.size, 3)] = np.nan
            t = rng.integers(-1, c + 1, (n,) + extra).astype(rng.choice([np.int32, np.int64, np.uint8]))
            layouts = [(y, t), (y[::-1], t[::-1])]
            if n >= 2:
                layouts.append((y[::2], t[::2]))
            if c >= 2 and not extra:  # a strided class axis: every other class of a wider array
                wide = np.repeat(y, 2, axis=1)
                layouts.append((wide[:, ::2], t))
            for yy, tt in layouts:
                ignore = -1 if tt.dtype.kind == "i" else None
                k = int(rng.integers(1, 4))
                cases.append((yy, tt, ignore, k, top_k_counts(yy, tt, ignore, k)))
    # Calls over 1 MiB: the planner times their candidate kernels while the others run.
    for shape, dtype in [((30000, 10), np.float32), ((2, 5, 200, 300), np.float16)]:
        y = rng.standard_normal(shape).astype(dtype)
        y.flat[rng.integers(0, y.size, 50)] = np.nan
        t = rng.integers(-1, shape[1] + 1, (shape[0],) + shape[2:]).astype(np.int32)
        cases.append((y, t, -1, 1, top_k_counts(y, t, -1, 1)))
    return cases


def accuracy_worker(cases, deadline, seed, errors):
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        y, t, ignore, k, expected = rng.choice(cases)
        got = fm.accuracy_counts(y, t, ignore, k=k)
        if not np.array_equal(got, expected):
            errors.append(f"accuracy_counts {y.shape} {y.dtype} strides {y.strides} k={k}: {got} != {expected}")
            return


def thread_count_worker(deadline, seed):
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        fm.set_num_threads(rng.choice([0, 1, 2, 3, 4]))
        time.sleep(0.001)
    fm.set_num_threads(0)


def planner_worker(deadline, seed):
    """Flips the planner's mode and forgets or reloads its decisions while plans time kernels."""
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        r = rng.random()
        if r < 0.3:
            fm.set_planner(rng.choice(["measure", "heuristic"]))
        elif r < 0.6:
            fm.load_planner_wisdom(fm.planner_wisdom())
        elif r < 0.8:
            fm.clear_planner_wisdom()
        else:
            fm.planner_decisions()
        time.sleep(0.002)
    fm.set_planner("measure")


def summary_worker(shared, merged, lock, deadline, seed, added):
    """Adds random batches to its own summary and the shared one; now and then reads
    the shared one and merges its own into `merged`. Records what it added."""
    rng = random.Random(seed)
    own = fm.DictSummary()
    while time.monotonic() < deadline:
        batch = {}
        for key in rng.sample(KEYS, rng.randint(1, len(KEYS))):
            value = rng.choice([rng.uniform(-10, 10), rng.randint(-5, 5), np.float32(rng.random()),
                                fractions.Fraction(rng.randint(-99, 99), rng.randint(1, 9))])
            weight = rng.randint(1, 4)
            batch[key] = (value, weight)
            added.append((key, fractions.Fraction(float(value)), weight))  # C++ reads float(value)
        own.add(batch)
        shared.add(batch)
        r = rng.random()
        if r < 0.1:
            shared.state_dict()
        elif r < 0.2:
            shared.make_statistics()
        elif r < 0.25:
            with lock:  # merge is read-then-combine; the lock keeps `merged` exact
                merged.merge(own)
            own = fm.DictSummary()
        elif r < 0.3:
            fm.DictSummary.from_state_dict(shared.state_dict()).merge(own)
    with lock:
        merged.merge(own)


def expected_statistics(added):
    """{key: (W, mean, variance)} of everything added, exactly."""
    out = {}
    for key in KEYS:
        items = [(v, w) for k, v, w in added if k == key]
        if not items:
            continue
        total = sum(w for _, w in items)
        mean = sum(v * w for v, w in items) / total
        var = sum(w * (v - mean) ** 2 for v, w in items) / total
        out[key] = (total, mean, var)
    return out


def check_summary(name, summary, expected, errors):
    sd = summary.state_dict()
    got = {n: tuple(row) for n, row in zip(sd["names"], sd["moments"])}
    if set(got) != set(expected):
        errors.append(f"{name}: keys {sorted(got)} != {sorted(expected)}")
        return
    for key, (total, mean, var) in expected.items():
        w, m, m2 = got[key]
        # Weights are small integers: exact. Values are within [-99, 99]: 1e-9 absolute is
        # far above the float64 rounding of a few thousand Welford steps.
        if w != total or abs(m - float(mean)) > 1e-9 or abs(m2 / w - float(var)) > 1e-9:
            errors.append(f"{name}[{key}]: (W, mean, var) = ({w}, {m}, {m2 / w}) expected "
                          f"({total}, {float(mean)}, {float(var)})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.setswitchinterval(1e-5)  # switch threads often, inside add() too
    cases = accuracy_cases(np.random.default_rng(args.seed))
    deadline = time.monotonic() + args.seconds
    shared, merged, lock = fm.DictSummary(), fm.DictSummary(), threading.Lock()
    errors, added = [], [[] for _ in range(3)]
    jobs = [(accuracy_worker, (cases, deadline, args.seed + i, errors)) for i in range(3)]
    jobs.append((thread_count_worker, (deadline, args.seed)))
    jobs.append((planner_worker, (deadline, args.seed)))
    jobs += [(summary_worker, (shared, merged, lock, deadline, args.seed + i, added[i])) for i in range(3)]

    def run(fn, fn_args):
        try:
            fn(*fn_args)
        except Exception:  # noqa: BLE001 - every exception is a finding
            errors.append(f"{fn.__name__}: {traceback.format_exc()}")

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [item for per_thread in added for item in per_thread]
    expected = expected_statistics(everything)
    check_summary("shared", shared, expected, errors)
    check_summary("merged", merged, expected, errors)
    print(f"stress_threads: {len(cases)} accuracy cases, {len(everything)} summary items, "
          f"{len(threads)} threads, {args.seconds:g} s: {len(errors)} errors")
    for error in errors[:20]:
        print(error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
