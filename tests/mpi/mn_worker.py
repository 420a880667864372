"""Runs under ``mpiexec -n P``; checks multi-node results against single-process evaluations.

Usage: ``mn_worker.py scenarios`` (every scenario; rank 0 prints one ``RESULT <json>`` line
mapping scenario name -> "pass" / "skip: why" / "fail: why") or ``mn_worker.py failfast``
(rank 1's evaluation raises, uncaught: the job must end with a nonzero status).

Each scenario first runs everything collective on every rank, then checks locally, and the
verdicts are gathered once, so one rank's failed check cannot leave the others waiting.
"""
import json
import math
import sys
import traceback
import warnings

import numpy as np

warnings.filterwarnings("ignore")

import chainer  # noqa: E402
import chainer.reporter as reporter_module  # noqa: E402
import chainermn  # noqa: E402
from chainer.dataset import concat_examples  # noqa: E402
from chainer.training.extensions import Evaluator as ChainerEvaluator  # noqa: E402
from mpi4py import MPI  # noqa: E402

from fusedmetrics.multi_node import (RemoteEvaluationError, allreduce_pair,  # noqa: E402
                                     create_multi_node_evaluator, scatter_dataset, shard_bounds)
from fusedmetrics.bench.replay import Replay  # noqa: E402
from fusedmetrics.summary import DictSummary  # noqa: E402

try:
    from fusedmetrics.extensions import Evaluator as FMEvaluator
    from fusedmetrics.extensions import MicroAverage as FMMicroAverage
except ImportError:  # the extensions land separately; their scenarios report "skip"
    FMEvaluator = FMMicroAverage = None

WORLD = MPI.COMM_WORLD
RANK, SIZE = WORLD.Get_rank(), WORLD.Get_size()
REL = 1e-12


class Model(chainer.Link):
    """Reports plain, weighted, integer, numpy-integer and Variable values, plus a rare key."""

    def __init__(self, fail_on_rank=None):
        super().__init__()
        self.fail_on_rank = fail_on_rank

    def forward(self, x, tag):
        if self.fail_on_rank == RANK:
            raise ValueError(f"deliberate failure in the model on rank {RANK}")
        m = float(x.mean())
        chainer.report({
            "loss": m,
            "loss32": np.float32(m),
            "wloss": (m, len(x)),                      # weighted by the batch size
            "wfloat": (float(x.sum()), 0.5 * len(x)),  # float weights
            "correct": int((x > 0.5).sum()),           # integer counts
            "count64": np.int64(len(x)),
            "var": chainer.Variable(np.asarray(x.max())),
        }, self)
        if (tag == 1).any():
            chainer.report({"rare": float(x[tag == 1].sum())}, self)
        if getattr(self, "late_key", False) and (tag == 1).any():
            chainer.report({"late": (float(x.min()), 3)}, self)


def make_dataset(n, seed, rare_range=None):
    rng = np.random.RandomState(seed)
    xs = rng.rand(n) * rng.choice([1.0, 1e3], size=n)
    tags = np.zeros(n, dtype=np.int32)
    if rare_range is not None:
        tags[rare_range[0]:rare_range[1]] = 1
    return [(np.array([xs[i]]), np.int32(tags[i])) for i in range(n)]


def batches_of(shard, bs):
    return [list(shard[i:i + bs]) for i in range(0, len(shard), bs)]


def shards_for(data, sizes):
    edges = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    return [data[edges[r]:edges[r + 1]] for r in range(len(sizes))]


def converter(batch, device=None):
    x, tag = concat_examples(batch, device)
    return x.reshape(-1), tag


def in_reporter(ev, fn):
    """Runs fn() in the reporter setup of ``Evaluator.__call__`` (observers named main/...)."""
    reporter = reporter_module.Reporter()
    prefix = ev.name + "/" if ev.name else ""
    for name, target in ev.get_all_targets().items():
        reporter.add_observer(prefix + name, target)
        reporter.add_observers(prefix + name, target.namedlinks(skipself=True))
    with reporter, chainer.using_config("train", False):
        return fn()


def single_process_chainer(batches, model):
    return ChainerEvaluator(Replay(batches), model, converter=converter)()


def single_process_fm_state(batches, model):
    """Single-process reference state: Chainer's Evaluator over our DictSummary."""
    saved = reporter_module.DictSummary
    holder = []

    class Keep(DictSummary):
        def __init__(self):
            super().__init__()
            holder.append(self)

    reporter_module.DictSummary = Keep
    try:
        ChainerEvaluator(Replay(batches), model, converter=converter)()
    finally:
        reporter_module.DictSummary = saved
    return holder[-1].state_dict()


def close(a, b):
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= REL * max(abs(a), abs(b), 1e-300)


def check_dicts(got, want, what):
    assert set(got) == set(want), f"{what}: keys {sorted(got)} != {sorted(want)}"
    bad = {k: (float(got[k]), float(want[k])) for k in want if not close(got[k], want[k])}
    assert not bad, f"{what}: values differ beyond {REL}: {bad}"


def check_states(got, want, what):
    gi = {n: i for i, n in enumerate(got["names"])}
    wi = {n: i for i, n in enumerate(want["names"])}
    assert set(gi) == set(wi), f"{what}: state names {sorted(gi)} != {sorted(wi)}"
    for n in wi:
        g, w = got["moments"][gi[n]], want["moments"][wi[n]]
        assert g[0] == w[0], f"{what}: total weight of {n!r} {g[0]!r} != {w[0]!r} (must be exact)"
        assert close(g[1], w[1]), f"{what}: mean of {n!r} {g[1]!r} vs {w[1]!r}"
        assert abs(g[2] - w[2]) <= 1e-10 * max(abs(w[2]), g[0] * g[1] ** 2, 1e-300), \
            f"{what}: M2 of {n!r} {g[2]!r} vs {w[2]!r}"
        assert bool(got["integer_weights"][gi[n]]) == bool(want["integer_weights"][wi[n]]), \
            f"{what}: integer-weight flag of {n!r}"


def identical_on_all_ranks(comm, value, what):
    """Collective: True when every rank's ``value`` pickles to the same bytes."""
    import pickle
    blobs = comm.allgather(pickle.dumps(value))
    return all(b == blobs[0] for b in blobs), what


def make_comm(kind):
    if kind == "mpi4py":
        return WORLD
    return chainermn.create_communicator("naive")


def make_evaluator(kind, iterator, model):
    cls = ChainerEvaluator if kind == "chainer" else FMEvaluator
    return cls(iterator, model, converter=converter)


# ---------------------------------------------------------------- evaluation scenarios
SHARDINGS = {
    # name: shard sizes per rank (P = 2 or 3), batch size
    "even": (lambda p: [24] * p, 5),
    "shards_50_3": (lambda p: [50, 3] + [17] * (p - 2), 4),
    "rank_without_data": (lambda p: [10, 0] + [7] * (p - 2), 3),
    "all_ranks_empty": (lambda p: [0] * p, 3),
    "key_on_one_rank": (lambda p: [12] * p, 5),
}


def evaluation_scenario(shard_name, comm_kind, ev_kind):
    sizes_of, bs = SHARDINGS[shard_name]
    sizes = sizes_of(SIZE)
    n = sum(sizes)
    rare = None
    if shard_name == "key_on_one_rank":  # only the last rank's examples carry the rare tag
        rare = (n - sizes[-1], n)
    data = make_dataset(n, seed=len(shard_name) + 7 * SIZE, rare_range=rare)
    shards = shards_for(data, sizes)
    model = Model()
    all_batches = [b for s in shards for b in batches_of(s, bs)]

    comm = make_comm(comm_kind)
    ev = make_evaluator(ev_kind, Replay(batches_of(shards[RANK], bs)), model)
    ev = create_multi_node_evaluator(ev, comm)
    agg = ev._fm_multi_node.aggregator
    got1 = ev()  # Evaluator.__call__ -> the patched evaluate()
    exchanges_after_first = agg.names_exchanges
    got2 = ev()  # same keys again: no names collective this time
    state = in_reporter(ev, ev.evaluate_summary).state_dict()
    same, _ = identical_on_all_ranks(WORLD, (sorted(got1.items()), state["names"],
                                             state["moments"].tobytes()), "")

    def verify():
        want = single_process_chainer(all_batches, model) if all_batches else {}
        check_dicts(got1, want, "vs single-process chainer Evaluator")
        check_dicts(got2, want, "second evaluation")
        check_states(state, single_process_fm_state(all_batches, model), "state vs single process")
        if ev_kind == "fusedmetrics":
            ref = FMEvaluator(Replay(all_batches), model, converter=converter)
            check_dicts(got1, ref(), "vs single-process fusedmetrics Evaluator")
            check_states(state, in_reporter(ref, ref.evaluate_summary).state_dict(), "state vs fusedmetrics")
        assert same, "results differ between ranks (must be bit-identical)"
        expected_exchanges = 1 if all_batches else 0
        assert exchanges_after_first == expected_exchanges, \
            f"names exchanges after first evaluation: {exchanges_after_first}"
        assert agg.names_exchanges == exchanges_after_first, "names exchanged again with unchanged keys"
        if shard_name == "key_on_one_rank":
            assert "main/rare" in got1
    return verify


def keys_change_scenario():
    """A key appears on one rank in the second evaluation: names are exchanged again, exactly."""
    sizes = [9] * SIZE
    n = sum(sizes)
    data = make_dataset(n, seed=11, rare_range=(n - 9, n))
    shards = shards_for(data, sizes)
    all_batches = [b for sh in shards for b in batches_of(sh, 4)]
    model = Model()
    ev = create_multi_node_evaluator(
        make_evaluator("chainer", Replay(batches_of(shards[RANK], 4)), model), WORLD)
    first = ev()
    model.late_key = True
    second = ev()
    third = ev()
    exchanges = ev._fm_multi_node.aggregator.names_exchanges

    def verify():
        model.late_key = False
        check_dicts(first, single_process_chainer(all_batches, model), "before the new key")
        model.late_key = True
        want = single_process_chainer(all_batches, model)
        assert "main/late" in want
        check_dicts(second, want, "after the new key")
        check_dicts(third, want, "third evaluation")
        assert exchanges == 2, exchanges
    return verify


def error_scenario(comm_kind):
    """The last rank's model raises: it re-raises its error, the others RemoteEvaluationError."""
    comm = make_comm(comm_kind)
    data = make_dataset(10 * SIZE, seed=3)
    shard = data[10 * RANK:10 * (RANK + 1)]
    ev = create_multi_node_evaluator(
        make_evaluator("chainer", Replay(batches_of(shard, 4)), Model(fail_on_rank=SIZE - 1)), comm)
    try:
        ev()
        outcome = None
    except Exception as exc:  # noqa: BLE001 - the type is what we check
        outcome = exc
    # The communicator must still be usable (nobody is stuck in a collective):
    after = create_multi_node_evaluator(
        make_evaluator("chainer", Replay(batches_of(shard, 4)), Model()), comm)()

    def verify():
        if RANK == SIZE - 1:
            assert isinstance(outcome, ValueError) and "deliberate" in str(outcome), repr(outcome)
        else:
            assert isinstance(outcome, RemoteEvaluationError), repr(outcome)
            assert outcome.failed_ranks == [SIZE - 1], outcome.failed_ranks
            assert f"rank(s) [{SIZE - 1}]" in str(outcome)
        assert "main/loss" in after
    return verify


class CustomEvaluator(ChainerEvaluator):
    def evaluate(self):  # returns a dict that no DictSummary produced
        return {"custom": 1.0}


def bad_evaluator_scenario():
    comm = WORLD
    ev = create_multi_node_evaluator(CustomEvaluator(Replay([]), Model()), comm)
    try:
        ev()
        outcome = None
    except Exception as exc:  # noqa: BLE001
        outcome = exc

    def verify():
        assert isinstance(outcome, TypeError) and "compute_mean" in str(outcome), repr(outcome)
    return verify


def argument_errors_scenario():
    ev = ChainerEvaluator(Replay([]), Model())
    outcomes = {}
    for label, call in [
        ("not_evaluator", lambda: create_multi_node_evaluator(object(), WORLD)),
        ("evaluator_class", lambda: create_multi_node_evaluator(ChainerEvaluator, WORLD)),
        ("not_comm", lambda: create_multi_node_evaluator(ev, "world")),
        ("none_comm", lambda: create_multi_node_evaluator(ev, None)),
    ]:
        try:
            call()
            outcomes[label] = None
        except Exception as exc:  # noqa: BLE001
            outcomes[label] = exc
    create_multi_node_evaluator(ev, WORLD)
    same_again = create_multi_node_evaluator(ev, WORLD.Dup())  # congruent: accepted
    split = WORLD.Split(color=0 if RANK == 0 else 1, key=RANK)  # a different group
    try:
        create_multi_node_evaluator(ev, split)
        mismatch = None
    except Exception as exc:  # noqa: BLE001
        mismatch = exc
    patched_by_chainermn = chainermn.create_multi_node_evaluator(
        ChainerEvaluator(Replay([]), Model()), chainermn.create_communicator("naive"))
    try:
        create_multi_node_evaluator(patched_by_chainermn, WORLD)
        double = None
    except Exception as exc:  # noqa: BLE001
        double = exc

    def verify():
        assert isinstance(outcomes["not_evaluator"], TypeError) and "evaluate()" in str(outcomes["not_evaluator"])
        assert isinstance(outcomes["evaluator_class"], TypeError)
        assert isinstance(outcomes["not_comm"], TypeError) and "comm" in str(outcomes["not_comm"])
        assert isinstance(outcomes["none_comm"], TypeError)
        assert same_again is ev
        assert isinstance(mismatch, ValueError) and "different communicator" in str(mismatch), repr(mismatch)
        assert isinstance(double, ValueError) and "chainermn" in str(double), repr(double)
    return verify


# ---------------------------------------------------------------- allreduce_pair
def allreduce_pair_scenario():
    comm_mn = chainermn.create_communicator("naive")
    ints = allreduce_pair(WORLD, RANK + 1, np.int64(10 * RANK))
    big = allreduce_pair(comm_mn, np.int64(2 ** 62), np.array(RANK, dtype=np.uint8))
    floats = [0.1 * (RANK + 1), 1e16 if RANK == 0 else 1.0]
    mixed = allreduce_pair(WORLD, np.float32(floats[0]) if RANK == 0 else RANK, np.array(floats[1]))
    empty_rank = allreduce_pair(WORLD, 0 if RANK == 1 else 2.5, 0 if RANK == 1 else 4)
    try:
        allreduce_pair(WORLD, np.zeros(3), 1)
        bad = None
    except Exception as exc:  # noqa: BLE001
        bad = exc
    # Only the last rank's value is invalid: it must not leave the others blocked in the collective.
    try:
        allreduce_pair(WORLD, np.zeros(2) if RANK == SIZE - 1 else 1, 1)
        one_bad = None
    except Exception as exc:  # noqa: BLE001
        one_bad = exc
    after = allreduce_pair(WORLD, 1, 2)  # the communicator is still in step

    def verify():
        p = SIZE
        if RANK == SIZE - 1:
            assert isinstance(one_bad, ValueError) and "shape (2,)" in str(one_bad), repr(one_bad)
        else:
            assert isinstance(one_bad, RemoteEvaluationError) and one_bad.failed_ranks == [SIZE - 1], repr(one_bad)
            assert "allreduce_pair" in str(one_bad), str(one_bad)
        assert after == (p, 2 * p), after
        assert ints == (p * (p + 1) // 2, 10 * p * (p - 1) // 2) and all(type(v) is int for v in ints), ints
        assert big == (p * 2 ** 62, p * (p - 1) // 2), big  # beyond int64, still exact
        nums = [float(np.float32(0.1))] + [float(r) for r in range(1, p)]
        dens = [1e16] + [1.0] * (p - 1)
        assert mixed == (math.fsum(nums), math.fsum(dens)), (mixed, nums, dens)
        assert type(mixed[0]) is float
        assert empty_rank == (2.5 * (p - 1), 4 * (p - 1)) and type(empty_rank[1]) is int, empty_rank
        assert isinstance(bad, ValueError) and "shape (3,)" in str(bad), repr(bad)
    return verify


# ---------------------------------------------------------------- MicroAverage(comm=...)
class FakeTrainer:
    """What MicroAverage and IntervalTrigger read: observation and updater.iteration."""

    def __init__(self):
        self.observation = {}
        self.updater = type("Updater", (), {"iteration": 0, "epoch_detail": 0.0})()


def micro_average_scenario(comm_kind):
    """Per-rank correct/total counts (ranks see different numbers of batches, one sees none):
    the averaging trigger reports sum(correct) / sum(total) over all ranks."""
    comm = make_comm(comm_kind)
    rng = np.random.RandomState(42)
    per_rank = [[(int(c), int(t)) for t in rng.randint(1, 50, size=3 + 2 * r) for c in [rng.randint(0, t + 1)]]
                if r != 1 else [] for r in range(SIZE)]
    ma = FMMicroAverage("main/correct", "main/total", "main/accuracy_micro", trigger=(6, "iteration"),
                        comm=comm)
    trainer = FakeTrainer()
    reports = []
    for it in range(1, 7):  # the trigger fires at iteration 6 on every rank
        trainer.updater.iteration = it
        mine = per_rank[RANK]
        trainer.observation = ({"main/correct": np.int64(mine[it - 1][0]), "main/total": mine[it - 1][1]}
                               if it - 1 < len(mine) else {})
        if it == 6 and not trainer.observation:  # MicroAverage skips the trigger without both keys
            trainer.observation = {"main/correct": 0, "main/total": 0}
        observed = {}
        with reporter_module.Reporter().scope(observed):
            ma(trainer)
        reports.append(observed)

    def verify():
        first6 = [p[:6] for p in per_rank]
        want = sum(c for p in first6 for c, _ in p) / sum(t for p in first6 for _, t in p)
        assert all("main/accuracy_micro" not in r for r in reports[:5]), reports
        assert reports[5]["main/accuracy_micro"] == want, (reports[5], want)
    return verify


def classification_scenario(comm_kind):
    """ClassificationEvaluator wrapped for multi-node, uneven shards: the per-class and macro keys
    equal a single-process evaluation of all batches exactly, bit-identical on every rank."""
    from fusedmetrics.extensions import ClassificationEvaluator

    rng = np.random.RandomState(11)
    n = 23 * SIZE + 4
    x = rng.randn(n, 3).astype(np.float32)
    x[::4, 2] = x[::4, 0]  # ties: the first maximum wins
    t = rng.randint(0, 3, n).astype(np.int32)
    t[t == 1] = 2          # class 1 never true: its recall is NaN
    t[::5] = -1            # ignored
    data = list(zip(x, t))
    shards = shards_for(data, [n - 20 * (SIZE - 1)] + [20] * (SIZE - 1))

    class Scores(chainer.Link):
        def forward(self, x, t):
            self.y = x
            chainer.report({"loss": float(x.sum())}, self)

    def evaluator(batches):
        return ClassificationEvaluator(Replay(batches), Scores(), 3, ignore_label=-1)

    got = create_multi_node_evaluator(evaluator(batches_of(shards[RANK], 4)), make_comm(comm_kind))()
    same, _ = identical_on_all_ranks(WORLD, sorted(got.items()), "")

    def verify():
        want = evaluator(batches_of(data, 4))()
        scores = [k for k in want if k.split("/")[1].split("_")[-1] in ("precision", "recall", "f1")]
        assert len(scores) == 3 * 3 + 3, scores
        for k in scores:
            assert k in got, (k, sorted(got))
            assert got[k] == want[k] or (np.isnan(got[k]) and np.isnan(want[k])), (k, got[k], want[k])
        assert "main/loss" in got
        assert same, "results differ between ranks (must be bit-identical)"
    return verify


# ---------------------------------------------------------------- scatter_dataset
def scatter_scenario():
    records = {}
    for n in (0, 1, 2, 7, 53):
        data = list(range(100, 100 + n))
        for shuffle, seed in ((False, None), (True, 5), (True, None)):
            shard = scatter_dataset(data, WORLD, shuffle=shuffle, seed=seed)
            records[(n, shuffle, seed)] = WORLD.allgather(list(shard))
    try:
        scatter_dataset(list(range(5 + RANK)), WORLD)
        mismatch = None
    except Exception as exc:  # noqa: BLE001
        mismatch = exc
    root_shuffle = WORLD.allgather(list(scatter_dataset(list(range(9)), chainermn.create_communicator("naive"),
                                                        shuffle=True, seed=11, root=SIZE - 1)))
    equal = {n: WORLD.allgather(list(scatter_dataset(list(range(n)), WORLD, shuffle=True, seed=3,
                                                     force_equal_length=True))) for n in (1, 7, 53)}

    def verify():
        for (n, shuffle, seed), shards in records.items():
            flat = [v for s in shards for v in s]
            assert sorted(flat) == list(range(100, 100 + n)), (n, shuffle, shards)  # union, no dups
            lens = [len(s) for s in shards]
            assert max(lens) - min(lens) <= 1, lens
            if not shuffle:
                for r, s in enumerate(shards):
                    a, b = shard_bounds(n, SIZE, r)
                    assert s == list(range(100 + a, 100 + b)), (r, s)
            elif seed is not None:
                assert flat == [100 + i for i in np.random.RandomState(seed).permutation(n)]
        assert isinstance(mismatch, ValueError) and "lengths per rank" in str(mismatch), repr(mismatch)
        assert [v for s in root_shuffle for v in s] == list(np.random.RandomState(11).permutation(9))
        for n, shards in equal.items():  # training shards: ceil(n/P) each, covering every example
            assert {len(s) for s in shards} == {-(-n // SIZE)}, (n, shards)
            assert set(v for s in shards for v in s) == set(range(n)), (n, shards)
            perm = np.random.RandomState(3).permutation(n)
            for r, s in enumerate(shards):
                a, b = shard_bounds(n, SIZE, r)
                assert s[:b - a] == list(perm[a:b]), (r, s)   # its own examples first
    return verify


def run_scenarios():
    scenarios = []
    for shard_name in SHARDINGS:
        for comm_kind in ("mpi4py", "chainermn"):
            for ev_kind in ("chainer", "fusedmetrics"):
                scenarios.append((f"{shard_name}/{comm_kind}/{ev_kind}",
                                  lambda s=shard_name, c=comm_kind, e=ev_kind: evaluation_scenario(s, c, e),
                                  ev_kind == "fusedmetrics" and FMEvaluator is None))
    scenarios += [
        ("keys_change", keys_change_scenario, False),
        ("error_on_last_rank/mpi4py", lambda: error_scenario("mpi4py"), False),
        ("error_on_last_rank/chainermn", lambda: error_scenario("chainermn"), False),
        ("evaluator_without_dictsummary", bad_evaluator_scenario, False),
        ("argument_errors", argument_errors_scenario, False),
        ("allreduce_pair", allreduce_pair_scenario, False),
        ("micro_average/mpi4py", lambda: micro_average_scenario("mpi4py"), FMMicroAverage is None),
        ("micro_average/chainermn", lambda: micro_average_scenario("chainermn"), FMMicroAverage is None),
        ("scatter_dataset", scatter_scenario, False),
        ("classification/mpi4py", lambda: classification_scenario("mpi4py"), FMEvaluator is None),
        ("classification/chainermn", lambda: classification_scenario("chainermn"), FMEvaluator is None),
    ]
    verdicts = {}
    for name, run, skip in scenarios:
        if skip:
            verdicts[name] = "skip: fusedmetrics.extensions is not available"
            continue
        try:
            verify = run()
            verify()
            mine = "pass"
        except Exception:  # noqa: BLE001 - reported with the rank
            mine = f"fail on rank {RANK}: {traceback.format_exc()}"
        everyone = WORLD.allgather(mine)
        failed = [v for v in everyone if v != "pass"]
        verdicts[name] = failed[0] if failed else "pass"
    if RANK == 0:
        print("RESULT " + json.dumps(verdicts), flush=True)
    return all(v == "pass" or v.startswith("skip") for v in verdicts.values())


def run_failfast():
    data = make_dataset(8 * SIZE, seed=1)
    shard = data[8 * RANK:8 * (RANK + 1)]
    ev = create_multi_node_evaluator(
        ChainerEvaluator(Replay(batches_of(shard, 3)), Model(fail_on_rank=1), converter=converter),
        WORLD)
    ev()  # raises on every rank; nothing catches it
    print("UNREACHABLE", flush=True)


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "scenarios"
    if mode == "failfast":
        run_failfast()
    else:
        sys.exit(0 if run_scenarios() else 1)
