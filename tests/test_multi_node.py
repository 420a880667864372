"""Single-process tests of fusedmetrics.multi_node: state packing and merging, shards, scalars.

The MPI runs themselves are in test_multi_node_mpi.py.
"""
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusedmetrics._snapshot import check_state_dict
from fusedmetrics.multi_node import _pair, _states
from fusedmetrics.multi_node import ShardView, merge_tables, shard_bounds

try:
    from fusedmetrics.summary import DictSummary
except ImportError:  # lands with the summary work; only the tests that need it skip
    DictSummary = None
requires_summary = pytest.mark.skipif(
    DictSummary is None or not hasattr(DictSummary, "from_state_dict"),
    reason="fusedmetrics.summary.DictSummary with state_dict()/from_state_dict() is not available")

KEYS = ["a", "b", "c", "d"]


# ------------------------------------------------------------------ helpers
def summary_of(records):
    s = DictSummary()
    for key, value, weight in records:
        s.add({key: (value, weight)})
    return s


def tables_of(states):
    registry, index = [], {}
    for sd in states:
        for n in sd["names"]:
            if n not in index:
                index[n] = len(registry)
                registry.append(n)
    packed = []
    for sd in states:
        names, moments, integer = check_state_dict(sd, "test")
        rows = np.array([index[n] for n in names], dtype=np.intp)
        packed.append(_states.pack_rows(rows, moments, integer, len(registry)))
    return registry, np.stack(packed) if packed else np.zeros((0, 0, 4))


def assert_state_close(got, want, scale):
    gi = {n: i for i, n in enumerate(got["names"])}
    wi = {n: i for i, n in enumerate(want["names"])}
    assert set(gi) == set(wi)
    for n in wi:
        g, w = got["moments"][gi[n]], want["moments"][wi[n]]
        integer = bool(want["integer_weights"][wi[n]])
        assert bool(got["integer_weights"][gi[n]]) == integer, n
        if integer:
            assert g[0] == w[0], (n, g[0], w[0])  # integer total weights are exact
        else:
            assert g[0] == pytest.approx(w[0], rel=1e-13), n
        if w[0] == 0:
            continue
        assert abs(g[1] - w[1]) <= 1e-12 * scale, (n, g[1], w[1])
        assert abs(g[2] - w[2]) <= 1e-11 * w[0] * scale ** 2, (n, g[2], w[2])


def merge_pair(a, b):
    """Chan merge of two (K, 3) row sets, a first, through the rank-order merge."""
    flags = np.ones((len(a), 1))
    return merge_tables(np.stack([np.hstack([a[:, :3], flags]), np.hstack([b[:, :3], flags])]))[:, :3]


def merge_tree(rows, shape_bits):
    """Merges a list of (K, 3) rows in a random binary tree chosen by shape_bits."""
    rows = list(rows)
    i = 0
    while len(rows) > 1:
        j = shape_bits[i % len(shape_bits)] % (len(rows) - 1)
        i += 1
        rows[j:j + 2] = [merge_pair(rows[j], rows[j + 1])]
    return rows[0]


records_strategy = st.lists(
    st.tuples(st.sampled_from(KEYS),
              st.one_of(st.floats(-1e3, 1e3, allow_nan=False), st.integers(-1000, 1000)),
              st.one_of(st.integers(0, 5), st.floats(0.125, 4.0))),
    min_size=0, max_size=60)


# ------------------------------------------------------------------ merging
@requires_summary
@settings(max_examples=150, deadline=None)
@given(records=records_strategy, cuts=st.lists(st.integers(0, 60), max_size=6),
       tree=st.lists(st.integers(0, 1000), min_size=1, max_size=8))
def test_merging_any_grouping_equals_the_whole(records, cuts, tree):
    bounds = sorted({0, len(records), *[c for c in cuts if c <= len(records)]})
    chunks = [records[a:b] for a, b in zip(bounds[:-1], bounds[1:])] or [[]]
    whole = summary_of(records).state_dict()
    states = [summary_of(c).state_dict() for c in chunks]
    registry, tables = tables_of(states)
    scale = max([abs(float(v)) for _, v, _ in records] + [1.0])
    if not registry:
        assert whole["names"] == []
        return

    # Rank order, as in the MPI path.
    assert_state_close(_states.unpack(merge_tables(tables), registry), whole, scale)
    # Any tree of pairwise merges.
    flags = merge_tables(tables)[:, 3]
    rows = merge_tree([t[:, :3] for t in tables], tree)
    table = np.concatenate([rows, flags[:, None]], axis=1)
    assert_state_close(_states.unpack(table, registry), whole, scale)
    # The summary's own merge (the C++ fm::moments_merge) agrees with ours.
    if hasattr(DictSummary, "merge"):
        merged = DictSummary.from_state_dict(states[0])
        for sd in states[1:]:
            merged.merge(DictSummary.from_state_dict(sd))
        assert_state_close(merged.state_dict(), whole, scale)


@requires_summary
@settings(max_examples=100, deadline=None)
@given(records=records_strategy, cuts=st.lists(st.integers(0, 60), max_size=6))
def test_rank_order_merge_has_the_bits_of_dictsummary_merge(records, cuts):
    """One Chan merge in the code base: merging rank tables gives exactly (bit for bit) what
    merging the ranks' DictSummaries one after the other gives."""
    bounds = sorted({0, len(records), *[c for c in cuts if c <= len(records)]})
    chunks = [records[a:b] for a, b in zip(bounds[:-1], bounds[1:])] or [[]]
    states = [summary_of(c).state_dict() for c in chunks]
    registry, tables = tables_of(states)
    merged = DictSummary()
    for sd in states:
        merged.merge(DictSummary.from_state_dict(sd))
    want = merged.state_dict()
    got = _states.unpack(merge_tables(tables), registry) if registry else want
    assert got["names"] == want["names"]
    assert got["moments"].tobytes() == want["moments"].tobytes()
    np.testing.assert_array_equal(got["integer_weights"], want["integer_weights"])


def test_merge_pair_weight_zero_returns_other_side_exactly():
    a = np.array([[0.0, 0.0, 0.0], [2.0, 1.5, 0.25], [0.0, 7.0, 0.0], [3.0, 1.0, 2.0]])
    b = np.array([[4.0, 2.0, 1.0], [0.0, 9.0, 9.0], [0.0, 5.0, 0.0], [1.0, 5.0, 0.0]])
    out = merge_pair(a, b)
    np.testing.assert_array_equal(out[0], b[0])
    np.testing.assert_array_equal(out[1], a[1])
    np.testing.assert_array_equal(out[2], a[2])  # both empty: a's row, like fm::moments_merge
    # Chan: W = 4, mean = 1 + 4 * 1/4 = 2, M2 = 2 + 0 + 16 * 3 * 1/4 = 14
    np.testing.assert_array_equal(out[3], [4.0, 2.0, 14.0])


def test_merge_tables_is_deterministic_and_flags_combine():
    rng = np.random.RandomState(0)
    tables = np.zeros((3, 4, 4))
    tables[:, :, 0] = rng.randint(1, 5, size=(3, 4))
    tables[:, :, 1] = rng.randn(3, 4)
    tables[:, :, 2] = rng.rand(3, 4)
    tables[:, :, 3] = _states.PRESENT + _states.INTEGER_WEIGHTS
    tables[1, 0] = 0                                # key 0 absent on rank 1
    tables[2, 1, 3] = _states.PRESENT               # key 1 float weights on rank 2
    tables[:, 2] = 0                                # key 2 absent everywhere
    tables[1:, 3] = 0                               # key 3 only on rank 0, ...
    tables[0, 3, 3] = _states.PRESENT + _states.INTEGER_WEIGHTS
    out = merge_tables(tables)
    assert out.tobytes() == merge_tables(tables.copy()).tobytes()
    np.testing.assert_array_equal(out[:, 3], [3.0, 1.0, 0.0, 3.0])
    np.testing.assert_array_equal(out[3, :3], tables[0, 3, :3])
    sd = _states.unpack(out, ["k0", "k1", "k2", "k3"])
    assert sd["names"] == ["k0", "k1", "k3"]
    np.testing.assert_array_equal(sd["integer_weights"], [True, False, True])
    assert sd["moments"][0, 0] == tables[0, 0, 0] + tables[2, 0, 0]


def test_pack_places_rows_by_registry():
    index = {"x": 2, "y": 0, "z": 1}
    rows = np.array([index[n] for n in ["x", "y"]], dtype=np.intp)
    table = _states.pack_rows(rows, np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), np.array([True, False]), 3)
    np.testing.assert_array_equal(table, [[4, 5, 6, 1], [0, 0, 0, 0], [1, 2, 3, 3]])


def test_check_state_dict_rejects_bad_input():
    with pytest.raises(TypeError, match="names"):
        check_state_dict({"moments": np.zeros((0, 3))}, "local")
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        check_state_dict({"names": ["a", "b"], "moments": np.zeros((1, 3)),
                                  "integer_weights": np.zeros(2, bool)}, "local")
    with pytest.raises(TypeError, match="str"):
        check_state_dict({"names": [1], "moments": np.zeros((1, 3)),
                                  "integer_weights": np.zeros(1, bool)}, "local")


# ------------------------------------------------------------------ shards
@given(n=st.integers(0, 500), size=st.integers(1, 17))
def test_shard_bounds_cover_without_overlap(n, size):
    bounds = [shard_bounds(n, size, r) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(bounds[r][1] == bounds[r + 1][0] for r in range(size - 1))
    lengths = [b - a for a, b in bounds]
    assert max(lengths) - min(lengths) <= 1


def test_shard_view_indexing():
    data = list(range(100, 110))
    view = ShardView(data, 3, 7)
    assert len(view) == 4 and list(view) == [103, 104, 105, 106]
    assert view[-1] == 106 and view[1:3] == [104, 105] and view[np.int64(0)] == 103
    with pytest.raises(IndexError, match="length 4"):
        view[4]
    with pytest.raises(TypeError, match="index"):
        view["a"]
    order = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    assert list(ShardView(data, 0, 3, order)) == [109, 108, 107]


# ------------------------------------------------------------------ allreduce_pair's scalars
@pytest.mark.parametrize("value, expected", [
    (3, 3), (True, 1), (np.int8(-4), -4), (np.uint64(2 ** 63 - 1), 2 ** 63 - 1),
    (np.array(7, dtype=np.int32), 7), (np.array([5]), 5), (2.5, 2.5), (np.float16(0.5), 0.5),
    (np.float32(0.1), float(np.float32(0.1))), (np.array(1.25), 1.25),
])
def test_host_number_kinds(value, expected):
    got = _pair._host_number(value, "a")
    assert got == expected and type(got) is type(expected)


def test_host_number_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"b must be a scalar .*shape \(2,\)"):
        _pair._host_number(np.zeros(2), "b")
    with pytest.raises(TypeError, match="a must be an integer or real number.*complex"):
        _pair._host_number(np.array(1j), "a")
    with pytest.raises(TypeError, match="a must be a number"):
        _pair._host_number("3", "a")
    with pytest.raises(ValueError, match="int64"):
        _pair._host_number(np.uint64(2 ** 64 - 1), "a")


def test_sum_column_decodes_mixed_kinds():
    gathered = np.zeros((3, 3), dtype=np.int64)
    gathered[:, 1] = [2 ** 62, 2 ** 62, 5]                    # a: ints everywhere
    gathered[0, 0] = 0b10                                      # b: float on rank 0 only
    gathered[0, 2] = np.float64(0.1).view(np.int64)
    gathered[1:, 2] = [3, 4]
    assert _pair._sum_column(gathered, 0) == 2 ** 63 + 5
    assert _pair._sum_column(gathered, 1) == math.fsum([0.1, 3.0, 4.0])


# ------------------------------------------------------------------ import hygiene
def test_import_does_not_initialise_mpi_or_import_chainer():
    code = ("import sys, fusedmetrics.multi_node; "
            "print('mpi4py.MPI' in sys.modules, 'chainer' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


# ------------------------------------------------------------------ one process, COMM_SELF
@pytest.fixture
def comm_self():
    mpi = pytest.importorskip("mpi4py.MPI", reason="mpi4py is not installed (fusedmetrics[mpi])")
    return mpi.COMM_SELF


def test_resolve_comm_errors(comm_self):
    from fusedmetrics.multi_node._comm import resolve_comm

    class FakeChainerMN:
        mpi_comm = "not a communicator"

    assert resolve_comm(comm_self) is comm_self
    with pytest.raises(TypeError, match="comm must be an mpi4py Intracomm.*its .mpi_comm"):
        resolve_comm(FakeChainerMN())
    with pytest.raises(TypeError, match="got None"):
        resolve_comm(None)


def test_allreduce_pair_on_one_rank(comm_self):
    from fusedmetrics.multi_node import allreduce_pair
    assert allreduce_pair(comm_self, np.int64(3), 4) == (3, 4)
    got = allreduce_pair(comm_self, np.float32(0.5), np.array(2))
    assert got == (0.5, 2) and type(got[0]) is float and type(got[1]) is int


@requires_summary
def test_one_rank_multi_node_evaluator_equals_plain_chainer(comm_self):
    chainer = pytest.importorskip("chainer")
    from chainer.training.extensions import Evaluator

    from fusedmetrics.multi_node import create_multi_node_evaluator, is_multi_node_evaluator

    class Model(chainer.Link):
        def forward(self, x):
            chainer.report({"loss": float(x.mean()), "w": (float(x.sum()), len(x))}, self)

    data = [np.array([v], dtype=np.float32) for v in np.linspace(0.0, 3.0, 11)]
    plain = Evaluator(chainer.iterators.SerialIterator(data, 4, repeat=False, shuffle=False), Model())()
    ev = Evaluator(chainer.iterators.SerialIterator(data, 4, repeat=False, shuffle=False), Model())
    assert create_multi_node_evaluator(ev, comm_self) is ev and is_multi_node_evaluator(ev)
    got = ev()
    assert set(got) == set(plain) == {"main/loss", "main/w"}
    for k in plain:
        assert float(got[k]) == pytest.approx(float(plain[k]), rel=1e-12)
    assert chainer.reporter.DictSummary is not None and \
        chainer.reporter.DictSummary.__module__ == "chainer.reporter"  # substitution undone


def test_aggregator_bad_local_state_raises_after_the_collective(comm_self, capsys):
    from fusedmetrics.multi_node import StateAggregator
    agg = StateAggregator(comm_self)
    with pytest.raises(ValueError, match=r"expected \(1, 3\)"):
        agg.aggregate({"names": ["a"], "moments": np.zeros((2, 3)), "integer_weights": np.zeros(1, bool)})
    assert "rank 0 of 1: local evaluation failed" in capsys.readouterr().err
    # The aggregator is still usable: the next evaluation agrees on names and merges.
    out = agg.aggregate({"names": ["a"], "moments": np.array([[2.0, 1.5, 0.5]]),
                         "integer_weights": np.array([True])})
    assert out["names"] == ["a"] and out["moments"].tolist() == [[2.0, 1.5, 0.5]]
    assert agg.names_exchanges == 1
    agg.aggregate({"names": ["a"], "moments": np.array([[1.0, 0.0, 0.0]]),
                   "integer_weights": np.array([True])})
    assert agg.names_exchanges == 1  # same names: no second exchange
