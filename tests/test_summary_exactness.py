"""Exactness of the float64 West/Chan statistics against a float64 two-pass
reference, on streams where Chainer's sum/sum-of-squares fails."""
import numpy as np
import pytest

from fusedmetrics.summary import DictSummary, Summary


def two_pass(values, weights=None):
    x = np.asarray(values, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    total = w.sum()
    mean = (w * x).sum() / total
    var = (w * (x - mean) ** 2).sum() / total
    return mean, var


def test_constant_float32_series_has_std_exactly_zero():
    s = DictSummary()
    v = np.float32(10000.1)
    for _ in range(1000):
        s.add({"k": v})
    stats = s.make_statistics()
    assert stats["k"] == np.float64(v)
    assert stats["k.std"] == 0.0
    chainer = pytest.importorskip("chainer")
    theirs = chainer.reporter.DictSummary()
    for _ in range(1000):
        theirs.add({"k": v})
    with np.errstate(invalid="ignore"):
        assert np.isnan(theirs.make_statistics()["k.std"])  # what we fix


def test_constant_python_float_series_has_std_exactly_zero():
    s = Summary()
    for _ in range(1000):
        s.add(10000.1)
    assert s.make_statistics() == (10000.1, 0.0)


def test_million_values_around_2_3_with_spread_1e_3():
    rng = np.random.default_rng(42)
    n = 10**6
    values = 2.3 + 1e-3 * rng.standard_normal(n)
    s = DictSummary()
    add = s.add
    for chunk in np.array_split(values, 20):  # tolist() per chunk keeps memory small
        for x in chunk.tolist():
            add({"loss": x})
    mean, var = two_pass(values)
    stats = s.make_statistics()
    assert abs(stats["loss"] - mean) <= 1e-12 * mean
    rel_var_err = abs(float(stats["loss.std"]) ** 2 - var) / var
    assert rel_var_err < 1e-10, rel_var_err


def test_float32_inputs_around_2_3_are_accumulated_in_float64():
    rng = np.random.default_rng(1)
    values = (2.3 + 1e-3 * rng.standard_normal(20000)).astype(np.float32)
    s = DictSummary()
    for x in values:
        s.add({"k": x})
    mean, var = two_pass(values)
    stats = s.make_statistics()
    assert abs(stats["k"] - mean) <= 1e-12 * mean
    assert abs(float(stats["k.std"]) ** 2 - var) / var < 1e-10


def test_mixed_weights():
    rng = np.random.default_rng(5)
    n = 50000
    values = 1e4 + rng.standard_normal(n)
    weights = np.where(rng.random(n) < 0.5, rng.integers(1, 10, n), rng.random(n) * 5)
    s = DictSummary()
    for x, w, is_int in zip(values.tolist(), weights.tolist(), (rng.random(n) < 0.3).tolist()):
        s.add({"k": (x, int(w) if is_int and w == int(w) else w)})
    mean, var = two_pass(values, weights)
    stats = s.make_statistics()
    assert abs(stats["k"] - mean) <= 1e-12 * mean
    assert abs(float(stats["k.std"]) ** 2 - var) / var < 1e-10
    assert s.state_dict()["integer_weights"].tolist() == [False]


@pytest.mark.parametrize("dtype", [np.float16, np.int8, np.uint16, np.int64])
def test_other_dtypes_against_two_pass(dtype):
    rng = np.random.default_rng(9)
    raw = rng.integers(0, 100, 5000) if np.issubdtype(dtype, np.integer) else rng.normal(10, 2, 5000)
    values = raw.astype(dtype)
    s = DictSummary()
    for x in values:
        s.add({"k": x})
    mean, var = two_pass(values.astype(np.float64))
    stats = s.make_statistics()
    assert abs(stats["k"] - mean) <= 1e-13 * abs(mean)
    assert abs(float(stats["k.std"]) ** 2 - var) / var < 1e-12
