"""The Python side of device confusion matrices against a host stand-in for
``_cuda.ConfusionPlan``: checks, one cached plan per call shape, launch arguments.
Runs without a GPU; the kernels themselves are in test_confusion_matrix_gpu.py."""
import types

import numpy as np
import pytest

import fake_cuda
import fusedmetrics as fm
from fusedmetrics import _device_confusion, _dtypes, _interop
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
    module = types.SimpleNamespace(ConfusionPlan=FakeConfusionPlan, pointer_device=lambda ptr: 0)
    monkeypatch.setattr(_interop, "cuda_module", lambda: module)
    monkeypatch.setattr(_device_confusion, "cuda_module", lambda: module)
    monkeypatch.setattr(_device_confusion, "_PLANS", {})
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


def test_invalid_counter(cuda):
    y = np.eye(3, dtype=np.float32)
    t = np.array([0, 5, 2])
    out = FakeDeviceArray(np.zeros((3, 3), np.int64))
    invalid = FakeDeviceArray(np.zeros((), np.int64))
    _device_confusion.counts(FakeDeviceArray(y), FakeDeviceArray(t), 3, None, out, invalid)
    assert int(invalid.array) == 1 and np.trace(out.array) == 2
