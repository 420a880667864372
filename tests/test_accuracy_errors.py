"""Bad input raises clear exceptions and never touches accumulated counts."""
import numpy as np
import pytest

import fusedmetrics as fm

Y = np.zeros((4, 3), np.float32)
T = np.zeros(4, np.int32)


@pytest.mark.parametrize("y,t,exc,words", [
    (np.zeros((4, 3), np.int32), T, TypeError, ["y", "int32", "(4, 3)"]),
    (Y, np.zeros(4, np.float32), TypeError, ["t", "float32", "integer"]),
    (Y, np.zeros(4, bool), TypeError, ["t", "bool"]),
    (Y, np.zeros(5, np.int32), ValueError, ["(4, 3)", "(5,)"]),
    (np.zeros(4, np.float32), T, ValueError, ["y", "2 axes", "(4,)"]),
    (Y, np.zeros((4, 1), np.int32), ValueError, ["(4, 1)"]),
    (np.zeros((4, 3, 2), np.float32), T, ValueError, ["size 1", "(4, 3, 2)"]),
    (np.zeros((4, 3, 5), np.float32), np.zeros((4, 6), np.int32), ValueError, ["(4, 6)"]),
    (Y, np.int32(0), ValueError, ["t"]),
])
def test_bad_arrays(y, t, exc, words):
    with pytest.raises(exc) as info:
        fm.accuracy_counts(y, t)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("k,exc", [(0, ValueError), (-3, ValueError), (1.5, TypeError), ("2", TypeError)])
def test_bad_k(k, exc):
    with pytest.raises(exc, match="k must be"):
        fm.accuracy_counts(Y, T, k=k)


def test_bad_ignore_label():
    with pytest.raises(TypeError, match="ignore_label"):
        fm.accuracy_counts(Y, T, ignore_label=0.5)


@pytest.mark.parametrize("out", [
    np.zeros(2, np.int32), np.zeros(3, np.int64), np.zeros((2, 1), np.int64), [0, 0],
])
def test_bad_out(out):
    with pytest.raises(ValueError, match="out must be"):
        fm.accuracy_counts(Y, T, out=out)


def test_readonly_out():
    out = np.zeros(2, np.int64)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        fm.accuracy_counts(Y, T, out=out)


class FakeDeviceArray:
    """Looks like a GPU array; enough to reach the device checks without a GPU."""
    __cuda_array_interface__ = {"shape": (4,), "typestr": "<i4", "data": (0, False), "version": 3, "strides": None}


def test_host_and_device_mix_is_rejected():
    with pytest.raises(ValueError, match="same device"):
        fm.accuracy_counts(Y, FakeDeviceArray())


def test_error_leaves_out_unchanged():
    out = np.array([3, 9], np.int64)
    with pytest.raises(ValueError):
        fm.accuracy_counts(Y, np.zeros(5, np.int32), out=out)
    np.testing.assert_array_equal(out, [3, 9])


@pytest.mark.parametrize("y_strides", [(2 ** 60, 2 ** 60, 1), (2 ** 61 + 1, 1, 1), (-(2 ** 62), 1, 1)])
def test_plan_refuses_views_whose_offsets_overflow(y_strides):
    """The C++ bounds check itself must not wrap around (the plan is reachable from Python)."""
    from fusedmetrics import _core
    plan = _core.AccuracyPlan(2, 2, 2, 1, y_strides, 2, (1, 1), False, 0, 1)
    out = np.zeros(2, np.int64)
    with pytest.raises(IndexError):
        plan.count(np.zeros((2, 2), np.float32), np.ones(2, np.int32), out)
    np.testing.assert_array_equal(out, [0, 0])


def test_plans_refuse_misaligned_buffers_from_direct_callers():
    """Python copies misaligned inputs first; the C++ plans themselves refuse them too, as
    the kernels read through typed pointers (the plans are reachable from Python)."""
    from fusedmetrics import _core
    misaligned_y = np.frombuffer(np.zeros(4 * 4 + 1, np.uint8).tobytes(), np.float32, count=4, offset=1).reshape(2, 2)
    t = np.ones(2, np.int32)
    plan = _core.AccuracyPlan(2, 2, 2, 1, (2, 1, 1), 2, (1, 1), False, 0, 1)
    out = np.zeros(2, np.int64)
    with pytest.raises(ValueError, match="y is not aligned"):
        plan.count(misaligned_y, t, out)
    np.testing.assert_array_equal(out, [0, 0])
    histogram = _core.RankHistogramPlan(2, 2, 2, 1, (2, 1, 1), 2, (1, 1), False, 0, 1)
    with pytest.raises(ValueError, match="y is not aligned"):
        histogram.count(misaligned_y, t)
    confusion = _core.ConfusionPlan(2, -1, 2, 2, 1, (2, 1, 1), 2, (1, 1), False, 0)
    matrix = np.zeros((2, 2), np.int64)
    with pytest.raises(ValueError, match="y is not aligned"):
        confusion.count(misaligned_y, t, matrix)
    assert not matrix.any()
    plan.count(misaligned_y.copy(), t, out)   # an aligned copy counts
    assert out[1] == 2
