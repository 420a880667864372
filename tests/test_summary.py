"""DictSummary / Summary: Chainer's acceptance rules and results, differentially
against chainer.reporter (Chainer 7.8.1), plus our deliberate differences.

The core package must work without Chainer (and with numpy 2, where Chainer 7.8.1
cannot be installed), so only the comparisons with Chainer's classes and the
Variable inputs need it; everything else runs either way."""
import collections
import pickle

import numpy as np
import pytest

from fusedmetrics.summary import DictSummary, Summary

try:
    import chainer
except ImportError:  # e.g. under numpy 2: Chainer 7.8.1 needs numpy < 2
    chainer = None
requires_chainer = pytest.mark.skipif(chainer is None, reason="needs Chainer 7.8.1 (numpy < 2)")


def chainer_dict_summary():
    return chainer.reporter.DictSummary()


def assert_rel(a, b, rtol):
    a, b = float(a), float(b)
    assert abs(a - b) <= rtol * max(abs(a), abs(b), 1e-300), (a, b)


def feed_both(stream):
    ours, theirs = DictSummary(), chainer_dict_summary()
    for d in stream:
        ours.add(d)
        theirs.add(d)
    return ours, theirs


def random_stream(rng, steps, keys, kinds):
    """Sparse dicts: each key appears with probability 0.6, as one of `kinds`."""
    out = []
    for _ in range(steps):
        d = {}
        for k in keys:
            if rng.random() < 0.6:
                x = rng.normal(3.0, 50.0)
                kind = kinds[rng.integers(len(kinds))]
                if kind == "float":
                    d[k] = float(x)
                elif kind == "f64":
                    d[k] = np.float64(x)
                elif kind == "f32":
                    d[k] = np.float32(x)
                elif kind == "int":
                    d[k] = int(x)
                elif kind == "i32":
                    d[k] = np.int32(x)
                elif kind == "0d64":
                    d[k] = np.array(x)
                elif kind == "0d32":
                    d[k] = np.array(x, dtype=np.float32)
                elif kind == "var":
                    d[k] = chainer.Variable(np.array(x, dtype=np.float32))
                elif kind == "tuple":
                    d[k] = (float(x), int(rng.integers(1, 5)))
                elif kind == "tuple_np":
                    d[k] = (np.float32(x), np.int64(rng.integers(1, 5)))
                elif kind == "tuple_var":
                    d[k] = (chainer.Variable(np.array(x)), chainer.Variable(np.array(rng.integers(1, 5))))
        out.append(d)
    return out


HOST_KINDS = ["float", "f64", "f32", "int", "i32", "0d64", "0d32", "tuple", "tuple_np"]
ALL_KINDS = HOST_KINDS + ["var", "tuple_var"]


@requires_chainer
@pytest.mark.parametrize("seed", range(4))
def test_differential_means_and_order(seed):
    rng = np.random.default_rng(seed)
    keys = ["main/loss", "main/accuracy", "validation/main/loss", "lr", "x/y", "z"]
    ours, theirs = feed_both(random_stream(rng, 300, keys, ALL_KINDS))
    mine, ref = ours.compute_mean(), theirs.compute_mean()
    assert list(mine) == list(ref)  # first-seen order
    for k in ref:
        assert_rel(mine[k], ref[k], 1e-12)
        assert type(mine[k]) is np.float64


@requires_chainer
@pytest.mark.parametrize("seed", range(3))
def test_differential_std_where_chainer_is_sound(seed):
    # float64 values with a large spread: Chainer's x2/n - mean^2 is well conditioned.
    rng = np.random.default_rng(100 + seed)
    keys = ["a", "b", "c"]
    ours, theirs = feed_both(random_stream(rng, 400, keys, ["float", "f64", "0d64", "tuple"]))
    mine, ref = ours.make_statistics(), theirs.make_statistics()
    assert list(mine) == list(ref)
    for k in ref:
        assert_rel(mine[k], ref[k], 1e-10)


@requires_chainer
def test_skipped_values_create_no_entry():
    stream = [{
        "none": None, "list": [1.0], "dict": {"a": 1}, "vec": np.array([1.0]), "mat": np.ones((2, 2)),
        "var_vec": chainer.Variable(np.ones(3, dtype=np.float32)), "obj": object(), "bytearray": bytearray(b"x"),
        "tuple_skip": (None, 2.0), "ok": 1.5,
    }]
    ours, theirs = feed_both(stream)
    assert list(ours.compute_mean()) == list(theirs.compute_mean()) == ["ok"]
    assert ours.make_statistics() == {"ok": 1.5, "ok.std": 0.0}


@pytest.mark.parametrize("value", ["text", b"bytes", np.str_("s"), np.bytes_(b"b")])
def test_strings_raise_type_error_naming_the_key(value):
    if chainer is not None:
        with pytest.raises(TypeError):
            chainer_dict_summary().add({"my/key": value})
    s = DictSummary()
    with pytest.raises(TypeError, match="my/key"):
        s.add({"my/key": value})
    assert s.compute_mean() == {}


@pytest.mark.parametrize("value", [1 + 2j, np.complex64(1), np.array(1j)])
def test_complex_raises_type_error_naming_the_key(value):
    with pytest.raises(TypeError, match="'c'"):
        DictSummary().add({"c": value})


@pytest.mark.parametrize("weight", [[1, 2], np.ones(2), None, np.ones((1,)), {"w": 1}])
def test_non_scalar_weight_raises_chainers_value_error(weight):
    for value in (1.0, None):  # the check runs even when the value is then skipped
        if chainer is not None:
            with pytest.raises(ValueError, match=r"^Given weight to k was not scalar\.$"):
                chainer_dict_summary().add({"k": (value, weight)})
        with pytest.raises(ValueError, match=r"^Given weight to k was not scalar\.$"):
            DictSummary().add({"k": (value, weight)})


@requires_chainer
def test_string_weight_with_skipped_value_is_accepted_as_in_chainer():
    ours, theirs = feed_both([{"k": ([1.0], "w"), "m": 2.0}])
    assert list(ours.compute_mean()) == list(theirs.compute_mean()) == ["m"]
    with pytest.raises(TypeError, match="'k'"):
        DictSummary().add({"k": (1.0, "w")})


def test_one_tuple_raises_index_error():
    if chainer is not None:
        with pytest.raises(IndexError):
            chainer_dict_summary().add({"k": (1.0,)})
    with pytest.raises(IndexError, match="'k'"):
        DictSummary().add({"k": (1.0,)})


@requires_chainer
def test_extra_tuple_elements_are_ignored():
    ours, theirs = feed_both([{"k": (2.0, 3, "extra")}, {"k": (4.0, 1, None, None)}])
    assert ours.compute_mean() == theirs.compute_mean()


def test_zero_weights_are_skipped_and_create_no_entry():
    s = DictSummary()
    s.add({"k": (5.0, 0), "m": (1.0, 0.0)})
    assert s.compute_mean() == {}
    s.add({"k": (2.0, 1), "m": (7.0, 0)})
    s.add({"k": (4.0, 3)})
    assert s.compute_mean() == {"k": 3.5}
    assert s.state_dict()["names"] == ["k"]


@pytest.mark.parametrize("weight", [-1, -0.5, np.float32(-2), float("nan"), np.nan, float("inf")])
def test_bad_weight_values_raise_value_error_naming_the_key(weight):
    with pytest.raises(ValueError, match="'bad/key'"):
        DictSummary().add({"bad/key": (1.0, weight)})


def test_failing_add_leaves_state_unchanged():
    s = DictSummary()
    s.add({"a": 1.0, "b": (2.0, 2)})
    s.add({"a": 3.0})
    before = s.state_dict()
    bad_dicts = [
        {"a": 5.0, "new": 1.0, "b": "oops"},
        {"new": 1.0, "a": (1.0, -1)},
        {"a": 2.0, "b": (1.0, [1, 2])},
        {"new2": 3.0, "c": 1j},
        {"a": 1.0, "t": (1.0,)},
    ]
    for d in bad_dicts:
        with pytest.raises((TypeError, ValueError, IndexError)):
            s.add(d)
        after = s.state_dict()
        assert after["names"] == before["names"] == ["a", "b"]
        np.testing.assert_array_equal(after["moments"], before["moments"])
        np.testing.assert_array_equal(after["integer_weights"], before["integer_weights"])
    s.add({"a": 5.0})  # still usable
    assert s.compute_mean()["a"] == 3.0


def test_integer_weight_flag():
    s = DictSummary()
    s.add({"py": (1.0, 2), "np": (1.0, np.int32(3)), "bool": (1.0, True), "plain": 1.0,
           "f": (1.0, 2.0), "npf": (1.0, np.float32(1)), "0d": (1.0, np.array(2))})
    want = {"py": True, "np": True, "bool": True, "plain": True, "f": False, "npf": False, "0d": True}
    if chainer is not None:
        s.add({"var": (1.0, chainer.Variable(np.array(2)))})
        want["var"] = True
    sd = s.state_dict()
    assert dict(zip(sd["names"], sd["integer_weights"].tolist())) == want


def test_dtypes_are_read_exactly():
    values = {
        "f16": np.float16(1000.1), "f32": np.float32(0.1), "f64": np.float64(0.1), "i8": np.int8(-7),
        "u8": np.uint8(250), "i16": np.int16(-300), "u16": np.uint16(60000), "i64": np.int64(-2**40),
        "u64": np.uint64(2**63), "bool": np.bool_(True), "pybool": False, "0d16": np.array(3.5, np.float16),
        "0d_u32": np.array(4000000000, np.uint32), "0d_be": np.array(2.5, dtype=">f8"),
        "0d_bool": np.array(True), "longdouble": np.longdouble(0.25), "0d_obj": np.array(1.5, dtype=object),
    }
    s = DictSummary()
    s.add(values)
    means = s.compute_mean()
    for k, v in values.items():
        assert means[k] == float(np.asarray(v).astype(np.float64)), k


@requires_chainer
def test_variables_and_parameters_are_unwrapped():
    s = DictSummary()
    s.add({"v": chainer.Variable(np.array(2.0, np.float32)), "p": chainer.Parameter(np.array(4.0)),
           "vec": chainer.Parameter(np.ones(3))})
    assert s.compute_mean() == {"v": 2.0, "p": 4.0}


def test_mapping_input():
    s = DictSummary()
    s.add(collections.OrderedDict([("b", 1.0), ("a", 2.0)]))

    class Items:
        def items(self):
            return [("c", 3.0)]

    s.add(Items())
    assert list(s.compute_mean()) == ["b", "a", "c"]


def test_empty_summary():
    s = DictSummary()
    assert s.compute_mean() == {}
    assert s.make_statistics() == {}


@requires_chainer
def test_summary_matches_chainer_summary():
    rng = np.random.default_rng(7)
    ours, theirs = Summary(), chainer.reporter.Summary()
    for _ in range(200):
        x, w = float(rng.normal(1.0, 10.0)), int(rng.integers(1, 4))
        ours.add(x, w)
        theirs.add(x, w)
    assert_rel(ours.compute_mean(), theirs.compute_mean(), 1e-12)
    (m1, s1), (m2, s2) = ours.make_statistics(), theirs.make_statistics()
    assert_rel(m1, m2, 1e-12)
    assert_rel(s1, s2, 1e-10)
    assert type(m1) is np.float64 and type(s1) is np.float64


def test_summary_errors():
    s = Summary()
    with pytest.raises(ZeroDivisionError):
        s.compute_mean()
    with pytest.raises(ZeroDivisionError):
        s.make_statistics()
    with pytest.raises(ValueError, match="scalar"):
        s.add(np.ones(3))
    with pytest.raises(ValueError, match="not scalar"):
        s.add(1.0, np.ones(2))
    with pytest.raises(ValueError, match=">= 0"):
        s.add(1.0, -1)
    s.add(np.array(3.0) if chainer is None else chainer.Variable(np.array(3.0)), weight=2)
    s.add(np.float32(6.0))
    assert s.compute_mean() == 4.0


def test_summary_merge_and_add():
    a, b = Summary(), Summary()
    for x in (1.0, 2.0):
        a.add(x)
    for x in (3.0, 4.0, 5.0):
        b.add(x)
    c = a + b
    mean, std = c.make_statistics()
    assert mean == 3.0
    assert_rel(std, np.std([1, 2, 3, 4, 5]), 1e-15)
    assert a.compute_mean() == 1.5  # unchanged


def test_state_dict_round_trip_and_pickle():
    rng = np.random.default_rng(3)
    s = DictSummary()
    for d in random_stream(rng, 50, ["a", "b", "c"], HOST_KINDS if chainer is None else ALL_KINDS):
        s.add(d)
    s.add({"f": (1.0, 0.25)})
    sd = s.state_dict()
    assert sd["moments"].dtype == np.float64 and sd["moments"].shape == (4, 3)
    assert sd["integer_weights"].dtype == np.bool_
    for t in (DictSummary.from_state_dict(sd), pickle.loads(pickle.dumps(s))):
        sd2 = t.state_dict()
        assert sd2["names"] == sd["names"]
        np.testing.assert_array_equal(sd2["moments"], sd["moments"])
        np.testing.assert_array_equal(sd2["integer_weights"], sd["integer_weights"])
        assert t.make_statistics() == s.make_statistics()


def test_load_state_dict_replaces_and_validates():
    s = DictSummary()
    s.add({"old": 1.0})
    s.load_state_dict({"names": ["n"], "moments": np.array([[2.0, 5.0, 8.0]]), "integer_weights": [True]})
    assert s.make_statistics() == {"n": 5.0, "n.std": 2.0}
    good = s.state_dict()
    bad = [
        {"names": ["a", "b"], "moments": np.zeros((1, 3)), "integer_weights": [True, True]},
        {"names": ["a"], "moments": np.zeros((1, 2)), "integer_weights": [True]},
        {"names": ["a", "a"], "moments": np.ones((2, 3)), "integer_weights": [True, True]},
        {"names": ["a"], "moments": np.array([[-1.0, 0.0, 0.0]]), "integer_weights": [True]},
        {"names": ["a"], "moments": np.ones((1, 3))},
    ]
    for sd in bad:
        with pytest.raises(ValueError):
            s.load_state_dict(sd)
        assert s.state_dict()["names"] == good["names"]
        np.testing.assert_array_equal(s.state_dict()["moments"], good["moments"])


def test_merge_adds_new_keys_in_others_order():
    a, b = DictSummary(), DictSummary()
    a.add({"x": 1.0, "y": 2.0})
    b.add({"z": 3.0, "x": 3.0})
    c = a + b
    assert list(c.compute_mean()) == ["x", "y", "z"]
    assert c.compute_mean() == {"x": 2.0, "y": 2.0, "z": 3.0}
    assert a.merge(b) is a
    assert a.compute_mean() == c.compute_mean()
    with pytest.raises(TypeError):
        a.merge({"x": 1.0})


@pytest.mark.parametrize("row", [[np.nan, 1.0, 0.0], [-1.0, 1.0, 0.0], [1.0, 1.0, -1.0]])
def test_the_state_table_itself_refuses_nan_weights_or_negative_moments(row):
    """Loaders validate first; the C++ table refuses such rows too (direct callers). A NaN
    mean or M2 stays loadable: NaN values leave it."""
    s = DictSummary()
    s.add({"a": 2.0})
    with pytest.raises(ValueError, match="negative or NaN weight, or a negative M2"):
        s._state.combine(["a"], np.array([row]), np.array([True]), False)
    assert s.compute_mean() == {"a": 2.0}
