"""Hardening: the weighted update and the Chan merge (csrc/semantics/moments.h)
against an exact rational reference over adversarial weights and values, and a
total weight that would overflow float64."""
import io
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fusedmetrics import DictSummary, Summary, _core

EPS = sys.float_info.epsilon


def exact(items):
    """(W, mean, M2) as Fractions."""
    W = sum(Fraction(w) for _, w in items)
    mean = sum(Fraction(x) * Fraction(w) for x, w in items) / W
    m2 = sum(Fraction(w) * (Fraction(x) - mean) ** 2 for x, w in items)
    return W, mean, m2


def check(row, items, steps):
    """The float64 row is within a few ulps per step of the exact moments, scaled by
    the data's magnitude (sum |w x| / W for the mean, sum w x^2 for M2)."""
    W, mean, m2 = exact(items)
    s1 = float(sum(abs(Fraction(x) * Fraction(w)) for x, w in items) / W)
    s2 = float(sum(Fraction(w) * Fraction(x) ** 2 for x, w in items))
    got_w, got_mean, got_m2 = (float(v) for v in row)
    assert got_m2 >= 0
    assert abs(got_w - float(W)) <= 2 * steps * EPS * float(W)
    assert abs(got_mean - float(mean)) <= 8 * steps * EPS * s1 + 1e-300, (got_mean, float(mean))
    assert abs(got_m2 - float(m2)) <= 16 * steps * EPS * s2 + 1e-300, (got_m2, float(m2))


def add_all(items):
    s = DictSummary()
    for x, w in items:
        s.add({"a": (x, w)})
    return s


def row_of(s):
    return np.asarray(s.state_dict()["moments"])[0]


def assert_round_trips(s):
    sd = s.state_dict()
    again = DictSummary.from_state_dict(sd)
    np.testing.assert_array_equal(np.asarray(again.state_dict()["moments"]), np.asarray(sd["moments"]))
    chainer = pytest.importorskip("chainer")
    buf = io.BytesIO()
    chainer.serializers.save_npz(buf, s)
    buf.seek(0)
    loaded = DictSummary()
    chainer.serializers.load_npz(buf, loaded)
    np.testing.assert_array_equal(np.asarray(loaded.state_dict()["moments"]), np.asarray(sd["moments"]))


HUGE_THEN_HEAVY = [(1e16, 1), (1.0, 10**16)]


def test_heavy_small_value_after_a_huge_one():
    s = add_all(HUGE_THEN_HEAVY)
    row = row_of(s)
    assert row[1] == pytest.approx(2.0, rel=1e-15)
    assert row[2] >= 0
    check(row, HUGE_THEN_HEAVY, 2)
    assert_round_trips(s)


@pytest.mark.parametrize("cls", [DictSummary, Summary])
def test_merge_of_huge_and_heavy(cls):
    a, b = cls(), cls()
    if cls is DictSummary:
        a.add({"a": HUGE_THEN_HEAVY[0]})
        b.add({"a": HUGE_THEN_HEAVY[1]})
    else:
        a.add(*HUGE_THEN_HEAVY[0])
        b.add(*HUGE_THEN_HEAVY[1])
    for first, second in ((a, b), (b, a)):
        merged = cls()
        merged.merge(first)
        merged.merge(second)
        row = merged._state.moments()[0]
        assert row[1] == pytest.approx(2.0, rel=1e-15)
        check(row, HUGE_THEN_HEAVY, 2)


def test_merge_moment_stack_is_stable():
    stack = np.array([[[1.0, 1e16, 0.0]], [[1e16, 1.0, 0.0]]])
    row = _core.merge_moment_stack(stack)[0]
    assert row[1] == pytest.approx(2.0, rel=1e-15)
    assert row[2] >= 0


def test_constant_series_keeps_std_exactly_zero():
    s = DictSummary()
    for w in (1, 1e16, 3, 1e-20, 7.5):
        s.add({"a": (0.1, w)})
    stats = s.make_statistics()
    assert stats["a"] == 0.1 and stats["a.std"] == 0.0


def test_opposite_huge_values_keep_a_finite_mean():
    items = [(1.7e308, 1), (-1.7e308, 1), (1.0, 1)]
    row = row_of(add_all(items))
    assert np.isfinite(row[1])
    assert abs(row[1] - 1 / 3) <= 1e-15 * 1.7e308


values = st.one_of(
    st.floats(min_value=-1e100, max_value=1e100, allow_nan=False),
    st.sampled_from([0.0, 1.0, -1.0, 1e16, -1e16, 1e-16, 3.0, 1e100, -1e100]),
)
weights = st.one_of(
    st.floats(min_value=1e-30, max_value=1e30),
    st.integers(min_value=1, max_value=10**18),
    st.sampled_from([1, 2, 10**16, 1e-16, 1e30]),
)
series = st.lists(st.tuples(values, weights), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(series)
@example(HUGE_THEN_HEAVY)
@example([(1.0, 10**16), (1e16, 1)])
@example([(1e16, 1), (1.0, 10**16), (1e16, 1), (-3.0, 1e30)])
@example([(1e100, 1e-30), (0.0, 1e30), (-1e100, 1e-30)])
def test_add_matches_exact_reference(items):
    s = add_all(items)
    check(row_of(s), [(x, float(w)) for x, w in items], len(items))


@settings(max_examples=300, deadline=None)
@given(series, series)
@example(HUGE_THEN_HEAVY[:1], HUGE_THEN_HEAVY[1:])
@example(HUGE_THEN_HEAVY[1:], HUGE_THEN_HEAVY[:1])
def test_merge_matches_exact_reference(left, right):
    merged = add_all(left).merge(add_all(right))
    row = row_of(merged)
    check(row, [(x, float(w)) for x, w in left + right], len(left) + len(right) + 1)
    assert_round_trips(merged)


@pytest.mark.parametrize("values", [[float("nan")], [float("inf")], [-float("inf"), 1.0], [1.0, float("nan"), 2.0],
                                    [float("inf"), -float("inf")], [2.0, float("inf"), 3.0]])
def test_nonfinite_values_give_numpys_mean_and_a_nan_std(values):
    """A series with a NaN or an infinity: the mean numpy gives, and std NaN as numpy's
    (never 0.0 from a single non-finite value); the state then loads back."""
    from fusedmetrics import DictSummary
    s = DictSummary()
    for v in values:
        s.add({"k": v})
    stats = s.make_statistics()
    with np.errstate(invalid="ignore"):
        want_mean, want_std = np.mean(values), np.std(values)
    np.testing.assert_equal(stats["k"], want_mean)
    assert np.isnan(want_std) and np.isnan(stats["k.std"])
    DictSummary.from_state_dict(s.state_dict())


# Found by tests/fuzz/fuzz_summary_add.py: the growth of M2 was formed as
# delta * (delta * (wb * share_a)), whose last factor rounds to 0 for subnormal weights.
@pytest.mark.parametrize("items", [
    [(7.895077760941333e-10, 5e-324), (-9.021112406905443e+21, 5e-324)],  # M2 was 0, exact ~2e-280
    [(1.4207953655668954e-46, 5e-324), (-8.969915060669882e+145, 5e-324), (1e-310, 5e-324)],
])
def test_subnormal_weights_keep_the_spread(items):
    W, mean, m2 = exact(items)
    got_w, got_mean, got_m2 = row_of(add_all(items))
    assert got_m2 == pytest.approx(float(m2), rel=1e-12, abs=0)
    assert got_m2 / got_w == pytest.approx(float(m2 / W), rel=1e-12, abs=0)


@pytest.mark.parametrize("items", [
    [(1.7976931348623157e308, 5.563195330051448e-30), (-1.7976931348623157e308, 6.4e307)],
    [(-1e308, 7.979548856809403e-174), (1.7976931348623157e308, 1.437759510177874e173)],
    [(1e308, 1e-310), (-1.7976931348623157e308, 2.5e291), (5.3379331597802465e272, 4.0685465982787567e-131)],
])
def test_m2_beyond_float64_is_inf_not_nan(items):
    """Opposite huge values: delta overflows and (with a tiny weight share) inf * 0
    gave M2 NaN. The exact M2 is beyond float64: documented as +inf with a finite mean."""
    W, mean, m2 = exact(items)
    assert m2 > Fraction(sys.float_info.max)
    s = add_all(items)
    got_w, got_mean, got_m2 = row_of(s)
    assert got_m2 == np.inf
    assert abs(got_mean - float(mean)) <= 1e-12 * 1.8e308
    assert s.make_statistics()["a.std"] == np.inf
    assert_round_trips(s)


def test_opposite_huge_values_with_a_tiny_weight_keep_a_finite_m2():
    """delta overflows but the exact M2 (about 3e293) is a float64: it must come out."""
    items = [(1.7976931348623157e308, 5e-324), (-1.7976931348623157e308, 5e-324)]
    W, mean, m2 = exact(items)
    got_w, got_mean, got_m2 = row_of(add_all(items))
    assert got_mean == 0.0
    assert got_m2 == pytest.approx(float(m2), rel=1e-12, abs=0)
