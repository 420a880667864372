"""fusedmetrics.accuracy against chainer.functions.accuracy itself."""
import warnings
import zlib

import numpy as np
import pytest

import fusedmetrics as fm

F = pytest.importorskip("chainer.functions")

SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, 2.0])


def scores(rng, shape, dtype):
    y = np.round(rng.standard_normal(shape) * 2) / 2
    mask = rng.random(shape) < 0.2
    y[mask] = rng.choice(SPECIAL, size=int(mask.sum()))
    return y.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("label_dtype", [np.int8, np.int32, np.int64])
@pytest.mark.parametrize("y_shape,t_shape", [
    ((50, 7), (50,)), ((50, 7, 1), (50,)), ((6, 7, 9), (6, 9)), ((3, 7, 4, 5), (3, 4, 5)), ((3, 7, 4, 5, 1), (3, 4, 5)),
])
@pytest.mark.parametrize("ignore_label", [None, -1, 2])
def test_same_value_and_dtype_as_chainer(dtype, label_dtype, y_shape, t_shape, ignore_label):
    rng = np.random.default_rng(zlib.crc32(repr((y_shape, ignore_label)).encode()))  # hash(None) varies per run
    y = scores(rng, y_shape, dtype)
    t = rng.integers(-1, y_shape[1] + 1, t_shape).astype(label_dtype)
    expected = F.accuracy(y, t, ignore_label=ignore_label).array
    got = fm.accuracy(y, t, ignore_label=ignore_label)
    assert got.dtype == expected.dtype and got.shape == expected.shape == ()
    assert got == expected or (np.isnan(got) and np.isnan(expected))


def test_all_ignored_and_empty_like_chainer():
    y = np.ones((3, 4), np.float32)
    t = np.full(3, -1, np.int32)
    assert fm.accuracy(y, t, -1) == F.accuracy(y, t, ignore_label=-1).array == 0.0
    empty_y, empty_t = np.zeros((0, 4), np.float32), np.zeros(0, np.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        chainer_empty = F.accuracy(empty_y, empty_t).array
    assert np.isnan(chainer_empty) and np.isnan(fm.accuracy(empty_y, empty_t))
    assert fm.accuracy(empty_y, empty_t, -1) == F.accuracy(empty_y, empty_t, ignore_label=-1).array == 0.0


def test_float16_does_not_overflow_where_chainer_does():
    y = np.zeros((70000, 2), np.float16)
    y[:, 1] = 1
    t = np.ones(70000, np.int32)
    assert np.isinf(F.accuracy(y, t).array)  # Chainer's float16 mean overflows
    assert fm.accuracy(y, t) == np.float16(1.0)


def test_accepts_chainer_variables():
    import chainer
    rng = np.random.default_rng(0)
    y = rng.standard_normal((20, 3)).astype(np.float32)
    t = rng.integers(0, 3, 20).astype(np.int32)
    assert fm.accuracy(chainer.Variable(y), chainer.Variable(t)) == F.accuracy(y, t).array
