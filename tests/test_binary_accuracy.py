"""binary_accuracy_counts / binary_accuracy against chainer.functions.binary_accuracy (on
every backend), and links.Classifier with accfun=F.binary_accuracy."""
import numpy as np
import pytest

import fusedmetrics as fm

F = pytest.importorskip("chainer.functions")

FLOATS = [np.float16, np.float32, np.float64]
SIGNED = [np.int8, np.int16, np.int32, np.int64]


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("label", SIGNED, ids=lambda d: np.dtype(d).name)
def test_matches_chainer(backend, dtype, label):
    rng = np.random.default_rng(0)
    y = rng.standard_normal((13, 7)).astype(dtype)
    y[0, :4] = [np.nan, 0.0, -0.0, -np.inf]
    t = rng.integers(-1, 3, (13, 7)).astype(label)  # 2: counted, never correct
    expected = F.binary_accuracy(y, t).array
    got = backend.binary_accuracy(y, t)
    assert got.dtype == expected.dtype and got.shape == ()
    assert got == expected
    correct, total = backend.binary_accuracy_counts(y, t)
    assert total == int((t != -1).sum())
    assert correct == int(((y >= 0) == t).sum())


def test_all_ignored_and_empty_give_zero_like_chainer(backend):
    y = np.ones((4,), np.float32)
    t = -np.ones((4,), np.int32)
    assert backend.binary_accuracy(y, t) == F.binary_accuracy(y, t).array == 0
    np.testing.assert_array_equal(backend.binary_accuracy_counts(y, t), [0, 0])
    assert backend.binary_accuracy(y[:0], t[:0]) == F.binary_accuracy(y[:0], t[:0]).array


def test_out_accumulates_and_errors():
    y = np.array([1.0, -1.0, np.nan], np.float32)
    t = np.array([1, 1, 0], np.int32)
    out = np.array([10, 10], np.int64)
    assert fm.binary_accuracy_counts(y, t, out=out) is out
    np.testing.assert_array_equal(out, [12, 13])
    with pytest.raises(ValueError, match="same shape"):
        fm.binary_accuracy_counts(y, t[:2])
    with pytest.raises(TypeError):
        fm.binary_accuracy_counts(t, t)


def test_classifier_recognises_binary_accuracy():
    import chainer
    import chainer.links as L
    from fusedmetrics.links import Classifier

    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 3)).astype(np.float32)
    t = rng.integers(-1, 2, (16, 4)).astype(np.int32)
    predictor = L.Linear(3, 4)
    ours = Classifier(predictor, lossfun=F.sigmoid_cross_entropy, accfun=F.binary_accuracy)
    theirs = L.Classifier(predictor, lossfun=F.sigmoid_cross_entropy, accfun=F.binary_accuracy)
    reporter = chainer.Reporter()
    reporter.add_observer("main", ours)
    with reporter.scope({}) as _:
        obs = {}
        with reporter.scope(obs):
            ours(x, t)
    theirs(x, t)
    assert ours.accuracy.array == theirs.accuracy.array
    assert ours.accuracy.array.dtype == theirs.accuracy.array.dtype
    assert int(obs["main/total"]) == int((t != -1).sum())
