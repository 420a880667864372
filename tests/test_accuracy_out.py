"""`out` of accuracy_counts: what is accepted, and that counts land in it exactly."""
import numpy as np
import pytest

import fusedmetrics as fm

Y = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.5, 0.5]], np.float32)
T = np.array([1, 0, 0, 0, 1], np.int32)  # correct: rows 0, 1, 3 -> [3, 5]


def test_self_overlapping_out_is_refused_and_left_unchanged():
    base = np.array([7], np.int64)
    out = np.lib.stride_tricks.as_strided(base, shape=(2,), strides=(0,))
    with pytest.raises(ValueError, match="out must not overlap itself"):
        fm.accuracy_counts(Y, T, out=out)
    assert base[0] == 7


def test_counters_that_straddle_each_other_are_refused_too():
    """Half an int64 apart: the two counters share four bytes (the one rule, _layout.overlaps_itself)."""
    base = np.zeros(3, np.int64)
    out = np.lib.stride_tricks.as_strided(base, shape=(2,), strides=(4,))
    with pytest.raises(ValueError, match="out must not overlap itself"):
        fm.accuracy_counts(Y, T, out=out)
    assert not base.any()


def test_self_overlapping_out_is_refused_on_the_cached_plan_path():
    fm.accuracy_counts(Y, T)  # the plan for this shape is now cached
    base = np.zeros(1, np.int64)
    out = np.lib.stride_tricks.as_strided(base, shape=(2,), strides=(0,))
    with pytest.raises(ValueError, match="overlap"):
        fm.accuracy_counts(Y, T, out=out)
    assert base[0] == 0


@pytest.mark.parametrize("offset", [1, 3, 4])
def test_misaligned_out_accumulates_exactly(offset):
    buffer = bytearray(16 + offset)
    out = np.frombuffer(buffer, np.int64, count=2, offset=offset)
    assert not out.flags.aligned
    out[:] = [10, 20]
    for _ in range(2):  # the second call takes the cached plan
        result = fm.accuracy_counts(Y, T, out=out)
        assert result is out
    np.testing.assert_array_equal(out, [16, 30])


def test_strided_out_accumulates_into_its_own_elements():
    backing = np.zeros(4, np.int64)
    out = backing[::2]
    fm.accuracy_counts(Y, T, out=out)
    np.testing.assert_array_equal(backing, [3, 0, 5, 0])


def _plan():
    from fusedmetrics import _core
    return _core.AccuracyPlan(2, 5, 2, 1, (2, 1, 1), 2, (1, 1), False, 0, 1)  # Y, T above


@pytest.mark.parametrize("make_out,message", [
    (lambda: np.zeros(2, np.int32), "int64"),
    (lambda: np.zeros(2, ">i8"), "int64"),
    (lambda: np.zeros(3, np.int64), "shape"),
    (lambda: np.lib.stride_tricks.as_strided(np.zeros(1, np.int64), (2,), (0,)), "overlap"),
    (lambda: np.frombuffer(bytearray(17), np.int64, count=2, offset=1), "aligned"),
])
def test_plan_count_refuses_outs_it_cannot_write_in_place(make_out, message):
    """The C++ plan never writes into a converted copy (the counts would be lost) nor
    through a misaligned or self-overlapping int64*."""
    out = make_out()
    before = out.copy()
    with pytest.raises(ValueError, match=message):
        _plan().count(Y, T, out)
    np.testing.assert_array_equal(out, before)


def test_plan_count_adds_into_a_strided_out():
    backing = np.zeros(4, np.int64)
    _plan().count(Y, T, backing[::2])
    np.testing.assert_array_equal(backing, [3, 0, 5, 0])


def test_plan_refuses_row_counts_beyond_int64():
    from fusedmetrics import _core
    with pytest.raises(ValueError, match="overflow"):
        _core.AccuracyPlan(2, 2 ** 62, 1, 4, (1, 1, 0), 2, (1, 0), False, 0, 1)
