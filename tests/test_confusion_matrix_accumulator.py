"""ConfusionMatrix on the host: update, merge, state dicts, Chainer snapshots, and
hypothesis checks of batch-split and shard-split invariance."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fusedmetrics as fm


def batch(seed, N=40, C=5, M=6):
    rng = np.random.default_rng(seed)
    y = np.round(rng.standard_normal((N, C, M)) * 2).astype(np.float32)
    t = rng.integers(-1, C, (N, M))
    return y, t


def test_update_compute_reset():
    y, t = batch(0)
    cm = fm.ConfusionMatrix(5, ignore_label=-1)
    assert cm.update(y, t) is cm
    cm.update(y, t)
    np.testing.assert_array_equal(cm.compute(), 2 * fm.confusion_matrix(y, t, 5, -1))
    assert cm.matrix.dtype == np.int64 and int(cm.invalid) == 0
    cm.reset()
    assert cm.compute().sum() == 0


def test_update_error_adds_nothing():
    y, t = batch(1)
    cm = fm.ConfusionMatrix(5)  # no ignore label: -1 is out of range
    with pytest.raises(ValueError, match="label -1"):
        cm.update(y, t)
    assert cm.compute().sum() == 0 and int(cm.invalid) == 0


def test_merge_state_dict_and_errors():
    y, t = batch(2)
    a, b = fm.ConfusionMatrix(5, -1), fm.ConfusionMatrix(5, -1)
    a.update(y[:10], t[:10])
    b.update(y[10:], t[10:])
    assert a.merge(b) is a
    np.testing.assert_array_equal(a.compute(), fm.confusion_matrix(y, t, 5, -1))
    c = fm.ConfusionMatrix(5, -1)
    c.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(c.compute(), a.compute())
    with pytest.raises(ValueError, match="num_classes"):
        fm.ConfusionMatrix(4).load_state_dict(a.state_dict())
    bad = a.state_dict()
    bad["matrix"] = -bad["matrix"] - 1
    with pytest.raises(ValueError, match="negative"):
        c.load_state_dict(bad)
    np.testing.assert_array_equal(c.compute(), a.compute())  # unchanged
    with pytest.raises(ValueError):
        a.merge(fm.ConfusionMatrix(4))
    with pytest.raises(TypeError):
        a.merge(object())


@pytest.mark.parametrize("change, message", [
    ({"matrix": np.full((5, 5), 2 ** 64 - 1, np.uint64)}, "beyond int64"),   # would read as -1
    ({"matrix": np.full((5, 5), 2 ** 63, np.uint64)}, "beyond int64"),
    ({"invalid": np.uint64(2 ** 63)}, "invalid must be an integer"),
    ({"num_classes": 5.7}, "num_classes"),                                  # int() would truncate it to 5
    ({"num_classes": "5"}, "num_classes"),
])
def test_states_int64_cannot_hold_or_with_inexact_sizes_are_refused(change, message):
    y, t = batch(3)
    acc = fm.ConfusionMatrix(5, -1)
    acc.update(y, t)
    before = acc.compute()
    with pytest.raises(ValueError, match=message):
        acc.load_state_dict(dict(acc.state_dict(), **change))
    np.testing.assert_array_equal(acc.compute(), before)
    ok = dict(acc.state_dict(), matrix=np.full((5, 5), 2 ** 63 - 1, np.uint64), num_classes=np.int64(5))
    acc.load_state_dict(ok)   # the largest count int64 holds, and a numpy integer size
    assert int(acc.compute().min()) == 2 ** 63 - 1


def test_invalid_state_raises_in_compute():
    cm = fm.ConfusionMatrix(3)
    state = cm.state_dict()
    state["invalid"] = 2
    cm.load_state_dict(state)
    with pytest.raises(ValueError, match="2 non-ignored samples"):
        cm.compute()


def test_chainer_snapshot_round_trip(tmp_path):
    serializers = pytest.importorskip("chainer.serializers")
    y, t = batch(3)
    cm = fm.ConfusionMatrix(5, -1)
    cm.update(y, t)
    path = str(tmp_path / "snap.npz")
    serializers.save_npz(path, cm)
    back = fm.ConfusionMatrix(5, -1)
    serializers.load_npz(path, back)
    np.testing.assert_array_equal(back.compute(), cm.compute())


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 31), cuts=st.lists(st.integers(0, 40), max_size=4),
       shards=st.integers(1, 4))
def test_batch_and_shard_split_invariance(seed, cuts, shards):
    y, t = batch(seed)
    whole = fm.confusion_matrix(y, t, 5, -1)
    bounds = [0] + sorted(cuts) + [len(t)]
    parts = [fm.ConfusionMatrix(5, -1) for _ in range(shards)]
    for i, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
        parts[i % shards].update(y[lo:hi], t[lo:hi])
    total = fm.ConfusionMatrix(5, -1)
    for p in parts:
        total.merge(p)
    np.testing.assert_array_equal(total.compute(), whole)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 31), C=st.integers(1, 12), levels=st.sampled_from([1, 2, 8]))
def test_trace_is_accuracy_correct_count(seed, C, levels):
    rng = np.random.default_rng(seed)
    y = np.round(rng.standard_normal((30, C, 3)) * levels) / levels
    y[rng.random(y.shape) < 0.1] = np.nan
    t = rng.integers(-1, C, (30, 3))
    m = fm.confusion_matrix(y, t, C, ignore_label=-1)
    correct, total = fm.accuracy_counts(y, t, -1)
    assert np.trace(m) == correct and m.sum() == total
