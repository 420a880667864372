"""Hardening: a total weight that would overflow float64 raises (naming the key)
and leaves the state unchanged, in add() and in merges."""
import numpy as np
import pytest

from fusedmetrics import DictSummary, Summary, _core
from test_summary_moments import assert_round_trips


def test_total_weight_overflow_raises_naming_the_key():
    s = DictSummary()
    s.add({"a": (1.0, 1e308), "b": 1.0})
    before = s.state_dict()
    with pytest.raises(OverflowError, match="'a'"):
        s.add({"b": 2.0, "a": (2.0, 1e308)})
    after = s.state_dict()
    assert after["names"] == before["names"]
    np.testing.assert_array_equal(after["moments"], before["moments"])
    assert_round_trips(s)


def test_summary_total_weight_overflow_raises():
    s = Summary()
    s.add(1.0, 1e308)
    with pytest.raises(OverflowError):
        s.add(2.0, 1e308)
    assert s.compute_mean() == 1.0
    assert s._state.moments()[0, 0] == 1e308


@pytest.mark.parametrize("cls", [DictSummary, Summary])
def test_merge_total_weight_overflow_raises(cls):
    a, b = cls(), cls()
    if cls is DictSummary:
        a.add({"x": 1.0, "a": (1.0, 1e308)})
        b.add({"a": (2.0, 1e308)})
    else:
        a.add(1.0, 1e308)
        b.add(2.0, 1e308)
    before = a._state.moments().copy()
    with pytest.raises(OverflowError):
        a.merge(b)
    np.testing.assert_array_equal(a._state.moments(), before)
    with pytest.raises(OverflowError):
        a + b


def test_merge_moment_stack_overflow_raises():
    with pytest.raises(OverflowError):
        _core.merge_moment_stack(np.array([[[1e308, 1.0, 0.0]], [[1e308, 2.0, 0.0]]]))
