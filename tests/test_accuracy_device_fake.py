"""The Python side of device accuracy counts against a host stand-in for ``_cuda``
(tests/fake_cuda.py): checks once, one cached plan per call shape, launch arguments.
Runs without a GPU; the real kernels are tested in test_accuracy.py's cuda backend."""
import sys

import numpy as np
import pytest

import fake_cuda
import fusedmetrics as fm
from fusedmetrics import _device_accuracy, _interop, _layout
from fake_cuda import FakeDeviceArray
from reference import top_k_counts


@pytest.fixture
def cuda(monkeypatch):
    module = fake_cuda.module()
    monkeypatch.setattr(_interop, "cuda_module", lambda: module)
    monkeypatch.setattr(_device_accuracy, "cuda_module", lambda: module)
    monkeypatch.setattr(_device_accuracy, "_PLANS", _layout.PlanCache())
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


@pytest.mark.parametrize("ignore", [np.array(-1), np.int64(-1)])
def test_an_ignore_label_the_host_takes_is_taken_on_the_device(cuda, ignore):
    y, t = _batch(np.random.default_rng(25))
    out = FakeDeviceArray(np.zeros(2, np.int64))
    fm.accuracy_counts(FakeDeviceArray(y), FakeDeviceArray(t), ignore, out=out)
    np.testing.assert_array_equal(out.array, fm.accuracy_counts(y, t, -1))


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


@pytest.fixture
def fake_cupy(monkeypatch, cuda):
    cupy = fake_cuda.cupy_module()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    return cupy


def test_labels_on_another_stream_are_waited_for_before_the_launch(cuda):
    y, t = _batch(np.random.default_rng(5))
    out = FakeDeviceArray(np.zeros(2, np.int64))
    fm.accuracy_counts(FakeDeviceArray(y, stream=7), FakeDeviceArray(t, stream=9), out=out)
    assert cuda.order == [("wait", 9, 7), ("launch", 7)]
    np.testing.assert_array_equal(out.array, top_k_counts(y, t))


def test_labels_on_the_launch_stream_need_no_wait(cuda):
    y, t = _batch(np.random.default_rng(6))
    fm.accuracy_counts(FakeDeviceArray(y, stream=2), FakeDeviceArray(t, stream=2),
                       out=FakeDeviceArray(np.zeros(2, np.int64)))
    assert cuda.order == [("launch", 2)]


@pytest.mark.parametrize("which", ["y", "t", "out"])
def test_big_endian_typestrs_are_refused_naming_the_argument(cuda, which):
    y, t = _batch(np.random.default_rng(7))
    arrays = {"y": y, "t": t, "out": np.zeros(2, np.int64)}
    wrapped = {name: FakeDeviceArray(a, typestr=(">" + a.dtype.str[1:]) if name == which else None)
               for name, a in arrays.items()}
    with pytest.raises(TypeError, match=rf"{which} has byte-swapped elements"):
        fm.accuracy_counts(wrapped["y"], wrapped["t"], out=wrapped["out"])
    assert not cuda.order


def test_read_only_out_is_refused(cuda):
    y, t = _batch(np.random.default_rng(8))
    out = np.zeros(2, np.int64)
    with pytest.raises(ValueError, match="out is read-only"):
        fm.accuracy_counts(FakeDeviceArray(y), FakeDeviceArray(t), out=FakeDeviceArray(out, readonly=True))
    assert not cuda.order and out.tolist() == [0, 0]


def test_accuracy_on_foreign_arrays_computes_the_value_on_the_launch_stream(fake_cupy):
    """CuPy's current stream is 0 here; the counts were launched on the interface's stream 7,
    so the division must run there too (another stream could read the counter early)."""
    y, t = _batch(np.random.default_rng(9), dtype=np.float16)
    got = fm.accuracy(FakeDeviceArray(y), FakeDeviceArray(t))
    correct, total = top_k_counts(y, t)
    assert got.dtype == np.float16 and float(got) == np.float16(correct / total)
    assert fake_cupy.ops and {stream for _, stream in fake_cupy.ops} == {7}


def test_accuracy_reads_the_dtype_of_interface_only_arrays(fake_cupy):
    y, t = _batch(np.random.default_rng(10))
    t[:] = -1
    got = fm.accuracy(FakeDeviceArray(y, has_dtype=False), FakeDeviceArray(t, has_dtype=False), ignore_label=-1)
    assert got.dtype == np.float32 and float(got) == 0.0  # all ignored


def test_accuracy_of_cupy_current_stream_arrays_stays_on_that_stream(fake_cupy):
    y, t = _batch(np.random.default_rng(11))
    with fake_cupy.on_stream(5):
        fm.accuracy(FakeDeviceArray(y, stream=5), FakeDeviceArray(t, stream=5))
    assert {stream for _, stream in fake_cupy.ops} == {5}


def test_the_real_stream_wait_checks_its_arguments():
    """The compiled binding, where it was built: argument checks, and no CUDA call at all
    for the same handle (so the common case costs nothing)."""
    real = pytest.importorskip("fusedmetrics._cuda")
    with pytest.raises(ValueError, match="device_id must be >= 0"):
        real.stream_wait(7, 9, -1)
    real.stream_wait(7, 7, 0)  # same stream: a no-op, even without a device
    if real.device_count() == 0:
        with pytest.raises(RuntimeError, match="stream_wait: CUDA error"):
            real.stream_wait(0, 2, 0)


# --- several k: one launch per k, straight into its row of the result, all on y's stream -----

def test_several_k_add_into_the_rows_of_out_on_the_launch_stream_after_the_labels(cuda):
    y, t = _batch(np.random.default_rng(20), shape=(33, 9))
    ks = (1, 5, 2, 1000)
    out = np.arange(8, dtype=np.int64).reshape(4, 2)
    got = fm.accuracy_counts(FakeDeviceArray(y, stream=7), FakeDeviceArray(t, stream=9), -1, k=ks,
                             out=FakeDeviceArray(out))
    assert got.array is out
    want = np.arange(8).reshape(4, 2) + np.stack([top_k_counts(y, t, -1, k=k) for k in ks])
    np.testing.assert_array_equal(out, want)
    assert cuda.order == [("wait", 9, 7), ("launch", 7)] * len(ks)


def test_several_k_zero_a_new_result_on_the_launch_stream_and_nothing_else_runs(fake_cupy, cuda):
    """CuPy's current stream is 0; the arrays say 7. No stack or add on stream 0 may read the rows early."""
    y, t = _batch(np.random.default_rng(21))
    got = fm.accuracy_counts(FakeDeviceArray(y), FakeDeviceArray(t), k=[2, 1])
    assert fake_cupy.ops == [("zeros", 7)] and cuda.order == [("launch", 7), ("launch", 7)]
    np.testing.assert_array_equal(np.asarray(got), np.stack([top_k_counts(y, t, k=2), top_k_counts(y, t, k=1)]))


@pytest.mark.parametrize("out, message", [
    (FakeDeviceArray(np.zeros((2, 2), np.int64), readonly=True), "out is read-only"),
    (np.zeros((2, 2), np.int64), "host array"),
    (FakeDeviceArray(np.zeros((2, 2), np.int32)), "int64"),
    (FakeDeviceArray(np.zeros((3, 2), np.int64)), r"shape \(2, 2\)"),
    (FakeDeviceArray(np.zeros((2, 4), np.int64)[:, ::2]), "C-contiguous"),
    (FakeDeviceArray(np.zeros((2, 2), np.int64), has_dtype=False, typestr=">i8"), "out has byte-swapped"),
])
def test_several_k_refuse_a_bad_out_before_any_launch(cuda, out, message):
    y, t = _batch(np.random.default_rng(22))
    with pytest.raises((ValueError, TypeError), match=message):
        fm.accuracy_counts(FakeDeviceArray(y), FakeDeviceArray(t), k=(1, 3), out=out)
    assert cuda.order == []


def test_copies_of_unwalkable_layouts_run_on_the_launch_stream_after_the_labels(fake_cupy, cuda):
    rng = np.random.default_rng(23)
    y = rng.integers(-3, 4, (6, 3, 4, 5)).astype(np.float32)[:, :, :, :3]  # trailing axes not one stride
    t = rng.integers(-1, 4, (6, 4, 5)).astype(np.int64)[:, :, :3]
    out = FakeDeviceArray(np.zeros(2, np.int64))
    fm.accuracy_counts(FakeDeviceArray(y, stream=7), FakeDeviceArray(t, stream=9), out=out)
    assert cuda.order[0] == ("wait", 9, 7) and cuda.order[-1] == ("launch", 7)
    assert fake_cupy.ops and {stream for _, stream in fake_cupy.ops} == {7}
    np.testing.assert_array_equal(out.array, top_k_counts(y, t))


@pytest.mark.parametrize("k", [1, (1, 2)])
def test_a_bad_out_is_refused_before_any_copy_of_an_unwalkable_layout(fake_cupy, cuda, k):
    rng = np.random.default_rng(24)
    y = rng.integers(-3, 4, (6, 3, 4, 5)).astype(np.float32)[:, :, :, :3]
    t = rng.integers(-1, 3, (6, 4, 5)).astype(np.int64)[:, :, :3]
    shape = (2,) if k == 1 else (2, 2)
    out = FakeDeviceArray(np.zeros(shape, np.int64), readonly=True)
    with pytest.raises(ValueError, match="out is read-only"):
        fm.accuracy_counts(FakeDeviceArray(y), FakeDeviceArray(t), k=k, out=out)
    assert fake_cupy.ops == [] and cuda.order == []
