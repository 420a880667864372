"""The Python side of device confusion matrices against a host stand-in for
``_cuda.ConfusionPlan``: checks, one cached plan per call shape, launch arguments.
Runs without a GPU; the kernels themselves are in test_confusion_matrix_gpu.py."""
import sys
import types

import numpy as np
import pytest

import fake_cuda
import fusedmetrics as fm
from fusedmetrics import _device_confusion, _dtypes, _interop, _layout
from fake_cuda import FakeDeviceArray

_LOGITS = {code: name for name, code in _dtypes.LOGIT_CODES.items()}
_LABELS = {code: name for name, code in _dtypes.LABEL_CODES.items()}


class FakeConfusionPlan:
    built = []

    def __init__(self, y_code, pred_code, N, C, M, y_strides, t_code, t_strides, has_ignore, ignore):
        self.pred = pred_code >= 0
        self.y_dtype = np.dtype(_LABELS[pred_code] if self.pred else _LOGITS[y_code])
        self.t_dtype = np.dtype(_LABELS[t_code])
        self.N, self.C, self.M = N, C, M
        self.y_strides, self.t_strides = y_strides, t_strides
        self.ignore = ignore if has_ignore else None
        self.launches = []
        FakeConfusionPlan.built.append(self)

    def launch(self, y_ptr, t_ptr, matrix_ptr, invalid_ptr, device_id, stream_ptr):
        self.launches.append((device_id, stream_ptr, invalid_ptr != 0))
        self.order.append(("launch", stream_ptr))
        N, C, M = self.N, self.C, self.M
        ys = [s * self.y_dtype.itemsize for s in self.y_strides]
        t = np.lib.stride_tricks.as_strided(fake_cuda._MEMORY[t_ptr], (N, M),
                                            [s * self.t_dtype.itemsize for s in self.t_strides])
        if self.pred:
            p = np.lib.stride_tricks.as_strided(fake_cuda._MEMORY[y_ptr], (N, M), [ys[0], ys[2]])
        else:
            y = np.lib.stride_tricks.as_strided(fake_cuda._MEMORY[y_ptr], (N, C, M), ys)
            p = np.argmax(y.astype(np.float64), axis=1)
        t, p = t.astype(np.int64).ravel(), p.astype(np.int64).ravel()
        keep = np.ones(t.shape, bool) if self.ignore is None else t != self.ignore
        valid = keep & (t >= 0) & (t < C) & (p >= 0) & (p < C)
        fake_cuda._MEMORY[matrix_ptr].reshape(-1)[:] += np.bincount(C * t[valid] + p[valid], minlength=C * C)
        if invalid_ptr:
            fake_cuda._MEMORY[invalid_ptr][...] += int((keep & ~valid).sum())


@pytest.fixture
def cuda(monkeypatch):
    FakeConfusionPlan.built.clear()
    order = FakeConfusionPlan.order = []  # ("wait", waited, waiting) and ("launch", stream), as issued

    def stream_wait(waited, waiting, device_id):
        order.append(("wait", waited, waiting))

    module = types.SimpleNamespace(ConfusionPlan=FakeConfusionPlan, pointer_device=lambda ptr: 0,
                                   stream_wait=stream_wait, order=order)
    monkeypatch.setattr(_interop, "cuda_module", lambda: module)
    monkeypatch.setattr(_device_confusion, "cuda_module", lambda: module)
    monkeypatch.setattr(_device_confusion, "_PLANS", _layout.PlanCache())
    return module


def test_scores_and_predictions_add_into_out_on_the_arrays_stream(cuda):
    rng = np.random.default_rng(0)
    y = rng.standard_normal((30, 4, 5)).astype(np.float32)
    t = rng.integers(-1, 4, (30, 5)).astype(np.int16)
    out = np.full((4, 4), 3, np.int64)
    got = fm.confusion_matrix(FakeDeviceArray(y), FakeDeviceArray(t), 4, -1, out=FakeDeviceArray(out))
    np.testing.assert_array_equal(got.array, 3 + fm.confusion_matrix(y, t, 4, -1))
    p = y.argmax(1).astype(np.uint8)
    fm.confusion_matrix(FakeDeviceArray(p), FakeDeviceArray(t), 4, -1, out=got)
    np.testing.assert_array_equal(out, 3 + 2 * fm.confusion_matrix(y, t, 4, -1))
    assert [plan.launches for plan in cuda.ConfusionPlan.built] == [[(0, 7, False)], [(0, 7, False)]]


def test_one_plan_per_shape_and_argument_errors(cuda):
    rng = np.random.default_rng(1)
    y = rng.standard_normal((8, 3)).astype(np.float64)
    t = rng.integers(0, 3, 8)
    out = FakeDeviceArray(np.zeros((3, 3), np.int64))
    for _ in range(3):
        fm.confusion_matrix(FakeDeviceArray(y), FakeDeviceArray(t), 3, out=out)
    assert len(cuda.ConfusionPlan.built) == 1
    with pytest.raises(ValueError, match="num_classes"):
        fm.confusion_matrix(FakeDeviceArray(y), FakeDeviceArray(t), 4, out=out)
    with pytest.raises(ValueError, match="host array"):
        fm.confusion_matrix(FakeDeviceArray(y), FakeDeviceArray(t), 3, out=np.zeros((3, 3), np.int64))
    with pytest.raises(ValueError, match="C-contiguous int64"):
        fm.confusion_matrix(FakeDeviceArray(y), FakeDeviceArray(t), 3,
                            out=FakeDeviceArray(np.zeros((3, 3), np.int32)))
    with pytest.raises(ValueError, match="same device"):
        fm.confusion_matrix(FakeDeviceArray(y), t, 3)


@pytest.mark.parametrize("ignore", [np.array(-1), np.int64(-1), np.array([-1])[0]])
def test_an_ignore_label_the_host_takes_is_taken_on_the_device(cuda, ignore):
    """A 0-d array is no dict key: confusion_matrix makes every ignore label an int first."""
    y, t = _scores_and_labels(16)
    out = FakeDeviceArray(np.zeros((4, 4), np.int64))
    for _ in range(2):
        fm.confusion_matrix(FakeDeviceArray(y), FakeDeviceArray(t), 4, ignore, out=out)
    np.testing.assert_array_equal(out.array, 2 * _host_counts(y, t, 4, -1)[0])
    assert len(cuda.ConfusionPlan.built) == 1


def test_invalid_counter(cuda):
    y = np.eye(3, dtype=np.float32)
    t = np.array([0, 5, 2])
    out = FakeDeviceArray(np.zeros((3, 3), np.int64))
    invalid = FakeDeviceArray(np.zeros((), np.int64))
    _device_confusion.counts(FakeDeviceArray(y), FakeDeviceArray(t), 3, None, out, invalid)
    assert int(invalid.array) == 1 and np.trace(out.array) == 2


@pytest.fixture
def fake_cupy(monkeypatch, cuda):
    cupy = fake_cuda.cupy_module()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    return cupy


def _scores_and_labels(seed, shape=(20, 4), label_dtype=np.int32):
    rng = np.random.default_rng(seed)
    y = rng.integers(-2, 3, shape).astype(np.float32)  # ties, so the first maximum matters
    y[::5, 1] = np.nan
    t = rng.integers(-1, shape[1] + 1, (shape[0],) + shape[2:]).astype(label_dtype)
    return y, t


def _host_counts(y, t, C, ignore):
    """float64 numpy reference: first maximum, NaN the maximum; out-of-range left out."""
    p = np.argmax(np.moveaxis(y.astype(np.float64), 1, -1), axis=-1).ravel()
    t = t.astype(np.int64).ravel()
    keep = (t != ignore) & (t >= 0) & (t < C)
    return np.bincount(C * t[keep] + p[keep], minlength=C * C).reshape(C, C), int(((t != ignore) & ~keep).sum())


def test_labels_on_another_stream_are_waited_for_before_the_launch(cuda):
    y, t = _scores_and_labels(10)
    out = FakeDeviceArray(np.zeros((4, 4), np.int64))
    fm.confusion_matrix(FakeDeviceArray(y, stream=7), FakeDeviceArray(t, stream=9), 4, -1, out=out)
    assert cuda.order == [("wait", 9, 7), ("launch", 7)]
    np.testing.assert_array_equal(out.array, _host_counts(y, t, 4, -1)[0])


def test_labels_on_the_launch_stream_need_no_wait(cuda):
    y, t = _scores_and_labels(11)
    fm.confusion_matrix(FakeDeviceArray(y, stream=3), FakeDeviceArray(t, stream=3), 4, -1,
                        out=FakeDeviceArray(np.zeros((4, 4), np.int64)))
    assert cuda.order == [("launch", 3)]


@pytest.mark.parametrize("which", ["out", "invalid"])
def test_read_only_out_and_invalid_are_refused_before_anything_is_queued(cuda, which):
    y, t = _scores_and_labels(12)
    out, invalid = np.full((4, 4), 5, np.int64), np.zeros((), np.int64)
    wrapped = {"out": FakeDeviceArray(out, readonly=which == "out"),
               "invalid": FakeDeviceArray(invalid, readonly=which == "invalid")}
    with pytest.raises(ValueError, match=f"{which} is read-only"):
        _device_confusion.counts(FakeDeviceArray(y), FakeDeviceArray(t, stream=9), 4, -1, wrapped["out"],
                                 wrapped["invalid"])
    assert cuda.order == [] and (out == 5).all() and int(invalid) == 0


def test_read_only_out_is_refused_by_confusion_matrix(cuda):
    y, t = _scores_and_labels(13)
    with pytest.raises(ValueError, match="out is read-only"):
        fm.confusion_matrix(FakeDeviceArray(y), FakeDeviceArray(t), 4, -1,
                            out=FakeDeviceArray(np.zeros((4, 4), np.int64), readonly=True))
    assert cuda.order == []


def test_a_new_matrix_is_zeroed_on_the_launch_stream(fake_cupy, cuda):
    """CuPy's current stream is 0; the interface says 7: zeroing on 0 could race the launch on 7."""
    y, t = _scores_and_labels(14)
    got = fm.confusion_matrix(FakeDeviceArray(y, stream=7), FakeDeviceArray(t, stream=7), 4, -1)
    assert fake_cupy.ops == [("zeros", 7)] and cuda.order == [("launch", 7)]
    np.testing.assert_array_equal(np.asarray(got), _host_counts(y, t, 4, -1)[0])


def test_copies_of_unwalkable_layouts_run_on_the_launch_stream_after_the_labels(fake_cupy, cuda):
    rng = np.random.default_rng(15)
    y = rng.standard_normal((6, 3, 4, 5)).astype(np.float32)[:, :, :, :3]  # trailing axes not one stride
    t = rng.integers(0, 3, (6, 4, 5)).astype(np.int64)[:, :, :3]
    out = FakeDeviceArray(np.zeros((3, 3), np.int64))
    fm.confusion_matrix(FakeDeviceArray(y, stream=7), FakeDeviceArray(t, stream=9), 3, out=out)
    assert cuda.order[0] == ("wait", 9, 7) and cuda.order[-1] == ("launch", 7)
    assert fake_cupy.ops and {stream for _, stream in fake_cupy.ops} == {7}
    np.testing.assert_array_equal(out.array, _host_counts(y, t, 3, None)[0])


def test_accumulator_waits_for_the_labels_stream_and_keeps_its_state_on_errors(fake_cupy, cuda):
    acc = fm.ConfusionMatrix(4, ignore_label=-1)
    y, t = _scores_and_labels(16)
    acc.update(FakeDeviceArray(y, stream=7), FakeDeviceArray(t, stream=9))
    assert cuda.order == [("wait", 9, 7), ("launch", 7)]
    assert fake_cupy.ops == [("zeros", 7), ("zeros", 7)]  # state made on the launch stream
    expected, invalid = _host_counts(y, t, 4, -1)
    np.testing.assert_array_equal(np.asarray(acc.matrix), expected)
    assert int(acc.invalid) == invalid > 0
    before = np.array(acc.matrix), int(acc.invalid)
    for bad_y, bad_t, error in [(y[1:], t, ValueError), (y, t.astype(np.float32), TypeError),
                                (y[:, :3], t, ValueError)]:
        with pytest.raises(error):
            acc.update(FakeDeviceArray(bad_y), FakeDeviceArray(bad_t))
        np.testing.assert_array_equal(np.asarray(acc.matrix), before[0])
        assert int(acc.invalid) == before[1]
    assert cuda.order == [("wait", 9, 7), ("launch", 7)]


def test_a_refused_first_device_batch_leaves_the_accumulator_on_the_host(fake_cupy, cuda):
    acc = fm.ConfusionMatrix(3)
    y, t = _scores_and_labels(17, shape=(9, 3))
    with pytest.raises(ValueError):
        acc.update(FakeDeviceArray(y[1:]), FakeDeviceArray(t))
    assert type(acc.matrix) is np.ndarray and cuda.order == []
    t = np.clip(t, 0, 2)
    acc.update(y, t)  # still a host accumulator
    np.testing.assert_array_equal(acc.compute(), _host_counts(y, t, 3, None)[0])


def test_accumulator_reads_merges_and_loads_after_the_launches_of_other_streams(fake_cupy, cuda, monkeypatch):
    """Foreign arrays on stream 7, CuPy's current stream 0: compute()/state_dict() read on 0, so
    stream 0 must first wait for the launches on 7; a load on 0 is waited for by the next launch."""
    log = fake_cupy.ops  # one log for CuPy's operations, stream waits and launches, in issue order
    monkeypatch.setattr(FakeConfusionPlan, "order", log)
    monkeypatch.setattr(cuda, "stream_wait", lambda waited, waiting, device: log.append(("wait", waited, waiting)))
    acc = fm.ConfusionMatrix(4, ignore_label=-1)
    y, t = _scores_and_labels(18)
    t = np.where(t == 4, -1, t)
    acc.update(FakeDeviceArray(y, stream=7), FakeDeviceArray(t, stream=7))
    acc.update(FakeDeviceArray(y, stream=5), FakeDeviceArray(t, stream=5))
    # the launch on 5 follows the zeroing on 7; launches need not follow each other (atomic adds)
    assert log == [("zeros", 7), ("zeros", 7), ("launch", 7), ("wait", 7, 5), ("launch", 5)]
    del log[:]
    np.testing.assert_array_equal(acc.compute(), 2 * _host_counts(y, t, 4, -1)[0])
    assert sorted(log[:2]) == [("wait", 5, 0), ("wait", 7, 0)] and log[2:] == [("get", 0)] * 2
    del log[:]
    state = acc.state_dict()
    assert state["invalid"] == 0 and log[-2:] == [("get", 0)] * 2 and ("wait", 7, 0) in log
    monkeypatch.setattr(fake_cupy, "asarray", lambda a: a, raising=False)
    acc.load_state_dict(state)
    del log[:]
    acc.update(FakeDeviceArray(y, stream=7), FakeDeviceArray(t, stream=7))
    assert log == [("wait", 0, 7), ("launch", 7)]  # after the load's writes on stream 0
