"""GPU confusion matrices against numpy float64 argmax + bincount on host copies."""
import numpy as np
import pytest

import fusedmetrics as fm
from conftest import cupy

pytestmark = pytest.mark.gpu

SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, 1.0, -1.0])


def scores(rng, shape, dtype):
    y = np.round(rng.standard_normal(shape) * 2) / 2
    mask = rng.random(shape) < 0.2
    y[mask] = rng.choice(SPECIAL, size=int(mask.sum()))
    return y.astype(dtype)


def reference(y, t, C, ignore_label=None):
    y, t = np.asarray(y), np.asarray(t)
    p = np.argmax(y.astype(np.float64), axis=1) if y.dtype.kind == "f" else y
    p, t = p.reshape(t.shape).astype(np.int64).ravel(), t.astype(np.int64).ravel()
    keep = np.ones(t.shape, bool) if ignore_label is None else t != ignore_label
    return np.bincount(C * t[keep] + p[keep], minlength=C * C).reshape(C, C)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4000, 19), (3, 19, 64, 65), (500, 1000), (7, 150, 33)])
def test_scores_shared_and_global_paths(dtype, shape):
    rng = np.random.default_rng(0)
    y = scores(rng, shape, dtype)
    t = rng.integers(-1, shape[1], (shape[0],) + shape[2:]).astype(np.int32)
    got = fm.confusion_matrix(cupy.asarray(y), cupy.asarray(t), shape[1], ignore_label=-1)
    assert isinstance(got, cupy.ndarray) and got.dtype == np.int64
    np.testing.assert_array_equal(cupy.asnumpy(got), reference(y, t, shape[1], -1))


def test_integer_predictions_strided_views():
    rng = np.random.default_rng(1)
    p = rng.integers(0, 7, (50, 40)).astype(np.uint8)
    t = rng.integers(0, 7, (50, 40)).astype(np.int64)
    got = fm.confusion_matrix(cupy.asarray(p)[::-1, ::2], cupy.asarray(t)[::-1, ::2], 7)
    np.testing.assert_array_equal(cupy.asnumpy(got), reference(p[::-1, ::2], t[::-1, ::2], 7))


def test_accumulator_counts_invalid_and_compute_raises():
    rng = np.random.default_rng(2)
    y = scores(rng, (300, 5), np.float32)
    t = rng.integers(0, 6, 300)  # label 5 is out of range
    cm = fm.ConfusionMatrix(5)
    cm.update(cupy.asarray(y), cupy.asarray(t))
    assert isinstance(cm.matrix, cupy.ndarray)
    keep = t < 5
    np.testing.assert_array_equal(cupy.asnumpy(cm.matrix), reference(y[keep], t[keep], 5))
    assert int(cm.invalid) == int((~keep).sum())
    with pytest.raises(ValueError, match="outside"):
        cm.compute()
    state = cm.state_dict()
    host = fm.ConfusionMatrix(5)
    host.load_state_dict(state)
    np.testing.assert_array_equal(host.matrix, cupy.asnumpy(cm.matrix))


def test_update_is_graph_capturable():
    rng = np.random.default_rng(3)
    y = cupy.asarray(scores(rng, (2, 19, 32, 32), np.float32))
    t = cupy.asarray(rng.integers(0, 19, (2, 32, 32)).astype(np.int32))
    cm = fm.ConfusionMatrix(19)
    cm.update(y, t)  # builds the plan and moves the state to the device
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        cm.update(y, t)
        graph = stream.end_capture()  # fails if anything synchronised
        graph.launch()
        stream.synchronize()
    np.testing.assert_array_equal(cm.compute(), 3 * reference(cupy.asnumpy(y), cupy.asnumpy(t), 19))


def test_binary_and_multi_k_on_device():
    rng = np.random.default_rng(4)
    y = rng.standard_normal((64, 10)).astype(np.float32)
    t = rng.integers(0, 10, 64)
    got = fm.accuracy_counts(cupy.asarray(y), cupy.asarray(t), k=(1, 5))
    np.testing.assert_array_equal(cupy.asnumpy(got), fm.accuracy_counts(y, t, k=(1, 5)))
    tb = rng.integers(-1, 2, (64, 10)).astype(np.int32)
    np.testing.assert_array_equal(cupy.asnumpy(fm.binary_accuracy_counts(cupy.asarray(y), cupy.asarray(tb))),
                                  fm.binary_accuracy_counts(y, tb))
