"""The Python side of device accuracy counts against a host stand-in for ``_cuda``
(tests/fake_cuda.py): checks once, one cached plan per call shape, launch arguments.
Runs without a GPU; the real kernels are tested in test_accuracy.py's cuda backend."""
import numpy as np
import pytest

import fake_cuda
import fusedmetrics as fm
from fusedmetrics import _device_accuracy, _interop
from fake_cuda import FakeDeviceArray
from reference import top_k_counts


@pytest.fixture
def cuda(monkeypatch):
    module = fake_cuda.module()
    monkeypatch.setattr(_interop, "cuda_module", lambda: module)
    monkeypatch.setattr(_device_accuracy, "cuda_module", lambda: module)
    monkeypatch.setattr(_device_accuracy, "_PLANS", {})
    return module


def _batch(rng, shape=(40, 7), dtype=np.float32, label_dtype=np.int32):
    y = rng.integers(-3, 4, size=shape).astype(dtype)
    t = rng.integers(-1, shape[1] + 1, size=(shape[0],) + shape[2:]).astype(label_dtype)
    return y, t


def test_counts_match_the_reference_and_add_into_out(cuda):
    rng = np.random.default_rng(0)
    y, t = _batch(rng)
    out = np.array([5, 7], np.int64)
    got = fm.accuracy_counts(FakeDeviceArray(y), FakeDeviceArray(t), -1, k=2, out=FakeDeviceArray(out))
    np.testing.assert_array_equal(got.array, top_k_counts(y, t, -1, k=2) + [5, 7])
    plan, = cuda.AccuracyPlan.built
    assert plan.launches == [(0, 7)]  # y's device, the interface's stream


def test_one_plan_per_call_shape(cuda):
    rng = np.random.default_rng(1)
    for _ in range(3):
        y, t = _batch(rng)
        out = FakeDeviceArray(np.zeros(2, np.int64))
        fm.accuracy_counts(FakeDeviceArray(y), FakeDeviceArray(t), out=out)
        np.testing.assert_array_equal(out.array, top_k_counts(y, t))
    y, t = _batch(rng, shape=(9, 3))
    fm.accuracy_counts(FakeDeviceArray(y), FakeDeviceArray(t), out=FakeDeviceArray(np.zeros(2, np.int64)))
    assert [len(p.launches) for p in cuda.AccuracyPlan.built] == [3, 1]


def test_strided_and_trailing_axes_reach_the_plan_as_element_strides(cuda):
    rng = np.random.default_rng(2)
    y, t = _batch(rng, shape=(12, 5, 3), dtype=np.float64, label_dtype=np.uint8)
    y_view, t_view = y[::2], t[::2]
    out = FakeDeviceArray(np.zeros(2, np.int64))
    fm.accuracy_counts(FakeDeviceArray(y_view), FakeDeviceArray(t_view), out=out)
    np.testing.assert_array_equal(out.array, top_k_counts(y_view, t_view))
    plan, = cuda.AccuracyPlan.built
    assert plan.y_strides == (30, 3, 1) and plan.t_strides == (6, 1)


def test_uint64_ignore_label_is_converted_once(cuda):
    y = np.eye(3, dtype=np.float32)
    t = np.array([0, 2 ** 64 - 1, 2], np.uint64)
    out = FakeDeviceArray(np.zeros(2, np.int64))
    fm.accuracy_counts(FakeDeviceArray(y), FakeDeviceArray(t), 2 ** 64 - 1, out=out)
    np.testing.assert_array_equal(out.array, [2, 2])
    plan, = cuda.AccuracyPlan.built
    assert (plan.has_ignore, plan.ignore) == (True, -1)


@pytest.mark.parametrize("out, message", [
    (np.zeros(2, np.int64), "host array"),
    (FakeDeviceArray(np.zeros(2, np.int32)), "int64"),
    (FakeDeviceArray(np.zeros(4, np.int64)[::2]), "contiguous"),
])
def test_bad_out_is_refused_before_the_launch(cuda, out, message):
    y, t = _batch(np.random.default_rng(3))
    with pytest.raises(ValueError, match=message):
        fm.accuracy_counts(FakeDeviceArray(y), FakeDeviceArray(t), out=out)
    assert all(not p.launches for p in cuda.AccuracyPlan.built)


def test_bad_shapes_and_dtypes_raise_without_building_a_plan(cuda):
    y, t = _batch(np.random.default_rng(4))
    with pytest.raises(ValueError, match="batch size"):
        fm.accuracy_counts(FakeDeviceArray(y), FakeDeviceArray(t[1:]))
    with pytest.raises(TypeError, match="integer labels"):
        fm.accuracy_counts(FakeDeviceArray(y), FakeDeviceArray(t.astype(np.float32)))
    assert cuda.AccuracyPlan.built == []
