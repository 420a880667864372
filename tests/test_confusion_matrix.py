"""confusion_matrix / ConfusionMatrix against numpy float64 argmax + bincount and
scikit-learn, over dtypes, layouts, backends (CPU ISAs, cuda) and adversarial scores."""
import numpy as np
import pytest

import fusedmetrics as fm
from fusedmetrics import _core

from reference import FLOATS, LABELS, to_float64

SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, 1.0, 2.0, -1.0])


def scores(rng, shape, dtype, special=0.3, levels=4):
    y = np.round(rng.standard_normal(shape) * levels) / levels  # many ties
    mask = rng.random(shape) < special
    y[mask] = rng.choice(SPECIAL, size=int(mask.sum()))
    return y.astype(dtype)


def reference(y, t, C, ignore_label=None):
    """numpy float64 argmax (axis 1) + bincount(C * t + p)."""
    p = np.asarray(y) if np.asarray(y).dtype.kind in "iu" else np.argmax(to_float64(y), axis=1)
    p = p.reshape(np.asarray(t).shape).astype(np.int64).ravel()
    t = np.asarray(t).astype(np.int64).ravel()
    keep = np.ones(t.shape, bool) if ignore_label is None else t != ignore_label
    return np.bincount(C * t[keep] + p[keep], minlength=C * C).reshape(C, C)


def test_simple_and_sklearn():
    sk = pytest.importorskip("sklearn.metrics").confusion_matrix  # not in the numpy-2 core leg
    rng = np.random.default_rng(0)
    y = rng.standard_normal((500, 7)).astype(np.float32)
    t = rng.integers(0, 7, 500)
    got = fm.confusion_matrix(y, t, 7)
    assert got.dtype == np.int64 and got.shape == (7, 7)
    np.testing.assert_array_equal(got, sk(t, y.argmax(1), labels=range(7)))
    np.testing.assert_array_equal(fm.confusion_matrix(y.argmax(1), t, 7), got)


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("C", [1, 2, 3, 8, 19, 33])
def test_flat_rows_every_backend(backend, dtype, C):
    rng = np.random.default_rng(C)
    y = scores(rng, (300, C), dtype)
    t = rng.integers(0, C, 300).astype(np.int32)
    np.testing.assert_array_equal(backend.confusion_matrix(y, t, C), reference(y, t, C))


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("C", [1, 3, 19])
def test_class_strided_images_every_backend(backend, dtype, C):
    rng = np.random.default_rng(C + 100)
    y = scores(rng, (3, C, 17, 29), dtype)
    t = rng.integers(0, C, (3, 17, 29)).astype(np.uint8)
    t[0, 0, :5] = 255
    np.testing.assert_array_equal(backend.confusion_matrix(y, t, C, ignore_label=255), reference(y, t, C, 255))


@pytest.mark.parametrize("label", LABELS, ids=lambda d: np.dtype(d).name)
def test_label_dtypes(backend, label):
    rng = np.random.default_rng(1)
    C = 5
    y = scores(rng, (64, C, 9), np.float32)
    t = rng.integers(0, C, (64, 9)).astype(label)
    np.testing.assert_array_equal(backend.confusion_matrix(y, t, C), reference(y, t, C))
    p = rng.integers(0, C, (64, 9)).astype(label)
    np.testing.assert_array_equal(backend.confusion_matrix(p, t, C), reference(p, t, C))


def test_layouts_strided_reversed_and_transposed():
    rng = np.random.default_rng(2)
    C = 6
    base = scores(rng, (40, C, 10, 12), np.float64)
    t = rng.integers(0, C, (40, 10, 12)).astype(np.int64)
    cases = [
        (base[::-1], t[::-1]),
        (base[:, ::-1], t),                                # reversed class axis
        (base[::2, :, ::3], t[::2, ::3]),                  # strided pixels
        (np.moveaxis(np.moveaxis(base, 1, -1).copy(), -1, 1), t),  # channels-last storage
        (base[:, :, :, 3], t[:, :, 3]),                    # non-walkable d axes view
        (np.asfortranarray(base[:, :, 0, 0]), np.asfortranarray(t[:, 0, 0])),
    ]
    for y, tt in cases:
        np.testing.assert_array_equal(fm.confusion_matrix(y, tt, C), reference(y, tt, C))


def test_trailing_size_one_axes_and_predictions_any_shape():
    rng = np.random.default_rng(3)
    y = scores(rng, (20, 4, 3, 1, 1), np.float32)
    t = rng.integers(0, 4, (20, 3))
    np.testing.assert_array_equal(fm.confusion_matrix(y, t, 4), reference(y[..., 0, 0], t, 4))
    p, t = rng.integers(0, 4, (5, 6, 7)), rng.integers(0, 4, (5, 6, 7))
    np.testing.assert_array_equal(fm.confusion_matrix(p, t, 4), reference(p, t, 4))
    np.testing.assert_array_equal(fm.confusion_matrix(np.int64(2), np.int64(3), 4)[3], [0, 0, 1, 0])


def test_nan_tie_and_zero_rules(backend):
    nan = np.nan
    y = np.array([
        [1.0, 1.0, 0.0],      # tie: first max -> 0
        [0.0, nan, nan],      # first NaN -> 1
        [-0.0, 0.0, -1.0],    # -0.0 == 0.0: first -> 0
        [-np.inf, -np.inf, -np.inf],  # all -inf -> 0
        [nan, nan, nan],      # -> 0
        [-1.0, np.inf, nan],  # NaN beats inf -> 2
    ], dtype=np.float32)
    t = np.zeros(6, np.int64)
    got = backend.confusion_matrix(y, t, 3)
    np.testing.assert_array_equal(got[0], [4, 1, 1])
    for dtype in FLOATS:
        np.testing.assert_array_equal(backend.confusion_matrix(y.astype(dtype), t, 3), got)


def test_large_matrix_paths(backend):
    """C * C beyond the private tables: the check-then-tally path, threaded or not."""
    rng = np.random.default_rng(4)
    for C, N in [(300, 50), (300, 20000), (20, 10)]:
        y = rng.standard_normal((N, C)).astype(np.float32)
        t = rng.integers(0, C, N)
        np.testing.assert_array_equal(backend.confusion_matrix(y, t, C), reference(y, t, C))
        p = rng.integers(0, C, N).astype(np.int16)
        np.testing.assert_array_equal(backend.confusion_matrix(p, t, C), reference(p, t, C))


@pytest.mark.parametrize("N", [5, 300000])
def test_out_accumulates_and_is_left_unchanged_on_error(N):
    rng = np.random.default_rng(5)
    C = 4
    y = rng.standard_normal((N, C)).astype(np.float32)
    t = rng.integers(0, C, N)
    out = np.full((C, C), 7, dtype=np.int64)
    assert fm.confusion_matrix(y, t, C, out=out) is out
    np.testing.assert_array_equal(out, 7 + reference(y, t, C))
    before = out.copy()
    bad = t.copy()
    bad[N // 2] = C
    with pytest.raises(ValueError, match=r"label %d .*sample %d.*outside \[0, %d\)" % (C, N // 2, C)):
        fm.confusion_matrix(y, bad, C, out=out)
    np.testing.assert_array_equal(out, before)
    p = y.argmax(1)
    p[-1] = -3
    with pytest.raises(ValueError, match="predictions.* -3 "):
        fm.confusion_matrix(p, t, C, out=out)
    np.testing.assert_array_equal(out, before)


def test_ignore_label_skips_out_of_range_value_and_uint64():
    t = np.array([0, -1, 2, -1], np.int32)
    p = np.array([1, 7, 2, -5], np.int32)
    np.testing.assert_array_equal(fm.confusion_matrix(p, t, 3, ignore_label=-1), [[0, 1, 0], [0, 0, 0], [0, 0, 1]])
    t = np.array([0, 2 ** 64 - 1], np.uint64)
    with pytest.raises(ValueError, match=str(2 ** 64 - 1)):
        fm.confusion_matrix(np.array([0, 0], np.uint64), t, 3)
    assert fm.confusion_matrix(np.array([0, 0], np.uint64), t, 3, ignore_label=2 ** 64 - 1)[0, 0] == 1


def test_out_views_and_argument_errors():
    rng = np.random.default_rng(6)
    y = rng.standard_normal((30, 3))
    t = rng.integers(0, 3, 30)
    out = np.zeros((3, 3), np.int64).T  # not C-contiguous: filled through a temporary
    fm.confusion_matrix(y, t, 3, out=out)
    np.testing.assert_array_equal(out, reference(y, t, 3))
    with pytest.raises(ValueError, match="num_classes"):
        fm.confusion_matrix(y, t, 4)
    with pytest.raises(ValueError, match="shape"):
        fm.confusion_matrix(y, t, 3, out=np.zeros((3, 4), np.int64))
    with pytest.raises(TypeError, match="t must hold integer"):
        fm.confusion_matrix(y, t.astype(float), 3)
    with pytest.raises(ValueError, match="t's shape"):
        fm.confusion_matrix(t[:5], t, 3)
    with pytest.raises(ValueError):
        fm.confusion_matrix(y, t, -1)
    assert fm.confusion_matrix(y[:0], t[:0], 3).sum() == 0


def test_trace_equals_accuracy_counts(backend):
    rng = np.random.default_rng(7)
    for dtype in FLOATS:
        y = scores(rng, (50, 5, 8), dtype)
        t = rng.integers(-1, 5, (50, 8))
        m = backend.confusion_matrix(y, t, 5, ignore_label=-1)
        correct, total = backend.accuracy_counts(y, t, -1)
        assert np.trace(m) == correct and m.sum() == total


def test_byte_swapped_and_misaligned_inputs_are_copied():
    rng = np.random.default_rng(8)
    y = rng.standard_normal((40, 5))
    t = rng.integers(0, 5, 40).astype(np.int32)
    expected = reference(y, t, 5)
    np.testing.assert_array_equal(fm.confusion_matrix(y.astype(">f8"), t.astype(">i4"), 5), expected)
    raw = np.zeros(y.nbytes + 1, np.uint8)
    misaligned = raw[1:].view(np.float64).reshape(y.shape)
    misaligned[...] = y
    assert not misaligned.flags.aligned
    np.testing.assert_array_equal(fm.confusion_matrix(misaligned, t, 5), expected)
    np.testing.assert_array_equal(fm.confusion_matrix(memoryview(y), memoryview(t), 5), expected)
