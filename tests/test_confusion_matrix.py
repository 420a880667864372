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


# --- The typed label tallies (one loop per (t, p) label dtype pair, private uint32 tables) ---

def _in_range_labels(rng, n, C, dtype):
    return rng.integers(0, C, n).astype(dtype)


@pytest.mark.parametrize("p_dtype", LABELS, ids=lambda d: "p_" + np.dtype(d).name)
@pytest.mark.parametrize("t_dtype", LABELS, ids=lambda d: "t_" + np.dtype(d).name)
def test_every_label_dtype_pair(isa, t_dtype, p_dtype):
    """Contiguous, strided and reversed labels, odd lengths (not a multiple of any block or
    vector width), with and without an ignore label that the dtype can hold."""
    rng = np.random.default_rng(np.dtype(t_dtype).num * 31 + np.dtype(p_dtype).num)
    C = 7
    for n in [1, 3, 255, 257, 1001, 4099]:
        t = _in_range_labels(rng, n, C, t_dtype)
        p = _in_range_labels(rng, n, C, p_dtype)
        np.testing.assert_array_equal(fm.confusion_matrix(p, t, C), reference(p, t, C))
        t2 = _in_range_labels(rng, 3 * n, C, t_dtype)[::3]
        p2 = _in_range_labels(rng, 2 * n, C, p_dtype)[::-2]
        np.testing.assert_array_equal(fm.confusion_matrix(p2, t2, C), reference(p2, t2, C))
        ignore = 100  # outside [0, C), held by every label dtype
        t[::5] = ignore
        p[::5] = 3 * C  # ignored samples are skipped whatever their prediction
        np.testing.assert_array_equal(fm.confusion_matrix(p, t, C, ignore_label=ignore),
                                      reference(p, t, C, ignore))


@pytest.mark.parametrize("dtype", LABELS, ids=lambda d: np.dtype(d).name)
def test_ignore_label_outside_the_dtype_never_matches(isa, dtype):
    info = np.iinfo(dtype)
    t = np.array([0, 1, 2, 1, 0], dtype)
    p = np.array([0, 2, 2, 1, 1], dtype)
    if np.dtype(dtype).itemsize == 8:
        pytest.skip("64-bit labels hold every int64 reading of an ignore label")
    outside = int(info.max) + 1
    np.testing.assert_array_equal(fm.confusion_matrix(p, t, 3, ignore_label=outside), reference(p, t, 3))
    # The largest value of a narrow dtype is an ignore label of its own...
    t[1] = info.max
    got = fm.confusion_matrix(p, t, 3, ignore_label=int(info.max))
    np.testing.assert_array_equal(got, reference(p, t, 3, int(info.max)))
    # ... and without it, an out-of-range label (its value named in the error).
    with pytest.raises(ValueError, match=r"t holds the label %d \(sample 1\)" % info.max):
        fm.confusion_matrix(p, t, 3)


@pytest.mark.parametrize("pair", [(np.uint8, np.uint8), (np.int32, np.int32), (np.int64, np.int64),
                                  (np.int8, np.uint16), (np.uint64, np.int16)],
                         ids=lambda pr: "%s_%s" % (np.dtype(pr[0]).name, np.dtype(pr[1]).name))
@pytest.mark.parametrize("C", [5, 1000])
def test_invalid_label_anywhere_leaves_out_unchanged(isa, pair, C):
    """Each thread stops at its first invalid sample; the earliest in order is reported and
    nothing is added. C=1000 with 10^6 samples takes the private-table path too."""
    t_dtype, p_dtype = pair
    if C > np.iinfo(t_dtype).max or C > np.iinfo(p_dtype).max:
        pytest.skip("labels up to C do not fit this dtype")
    rng = np.random.default_rng(C)
    n = 1_000_003 if C == 1000 else 300_001
    t = _in_range_labels(rng, n, C, t_dtype)
    p = _in_range_labels(rng, n, C, p_dtype)
    out = np.full((C, C), 3, np.int64)
    fm.confusion_matrix(p, t, C, out=out)
    np.testing.assert_array_equal(out, 3 + reference(p, t, C))
    before = out.copy()
    for where in [0, 255, 256, n // 2 + 1, n - 1]:
        for target, name in [(t, "t"), (p, r"y \(integer predictions\)")]:
            saved = target[where]
            bad = -1 if np.iinfo(target.dtype).min < 0 else C
            later = min(n - 1, where + 1 + (n - 1 - where) // 2)
            saved_later = target[later]
            target[later] = C  # a later invalid one (in another thread's share): never reported
            target[where] = bad
            with pytest.raises(ValueError, match=r"%s holds the label %d \(sample %d\)" % (name, bad, where)):
                fm.confusion_matrix(p, t, C, out=out)
            np.testing.assert_array_equal(out, before)
            target[later] = saved_later
            target[where] = saved


@pytest.mark.parametrize("C", [1, 2, 17, 1000])
def test_private_tables_match_the_checked_path(isa, C):
    """Around the "no more cells than samples" rule: just below it the check-then-tally path,
    at and above it the private tables (with 2 threads when there is work for them)."""
    rng = np.random.default_rng(C + 9)
    for n in {C * C - 1, C * C, 4 * C * C + 3} - {0}:
        t = _in_range_labels(rng, n, C, np.int16)
        p = _in_range_labels(rng, n, C, np.int32)
        np.testing.assert_array_equal(fm.confusion_matrix(p, t, C), reference(p, t, C))


def test_uint32_counters_spill_into_int64():
    """The uint32 counters move into int64 ones every `rows` rows per thread (2^32 - 1 by
    default, so none overflows); a tiny interval exercises the move on every path."""
    rng = np.random.default_rng(10)
    try:
        for rows in [1, 7, 256, 1000]:
            _core._set_confusion_spill_rows(rows)
            for C, n in [(3, 100_001), (40, 200_000)]:
                t = rng.integers(0, C, n)
                p = rng.integers(0, C, n).astype(np.uint8)
                t[::11] = C  # one more invalid than ignored: skipped
                np.testing.assert_array_equal(fm.confusion_matrix(p, t, C, ignore_label=C),
                                              reference(p, t, C, C))
                y = scores(rng, (n // 10, C), np.float32)
                np.testing.assert_array_equal(fm.confusion_matrix(y, t[:n // 10], C, ignore_label=C),
                                              reference(y, t[:n // 10], C, C))
    finally:
        _core._set_confusion_spill_rows(0)


def test_image_label_layouts(isa):
    """(N, H, W) labels: one run when both arrays are C-contiguous, else per image."""
    rng = np.random.default_rng(11)
    C = 9
    t = rng.integers(0, C, (4, 37, 41)).astype(np.uint8)
    p = rng.integers(0, C, (4, 37, 41)).astype(np.int32)
    for tt, pp in [(t, p), (t[:, ::2], p[:, ::2]), (t[:, :, 1:], p[:, :, 1:]), (t, np.asfortranarray(p)),
                   (t[::-1], p)]:
        np.testing.assert_array_equal(fm.confusion_matrix(pp, tt, C), reference(pp, tt, C))
        np.testing.assert_array_equal(fm.confusion_matrix(pp, tt, C, ignore_label=0), reference(pp, tt, C, 0))


# --- The argmax of flat float rows (vector max, then the first lane equal to it) ---

@pytest.mark.parametrize("C", [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40, 64, 65, 100, 1000])
def test_flat_row_argmax_nan_ties_and_zeros(isa, C):
    """NaN (first one wins), ties across vector and unrolled-block boundaries, -0.0 vs +0.0,
    all -inf and +inf rows, a maximum in the tail lanes; against numpy's float64 argmax."""
    rng = np.random.default_rng(C)
    rows = []
    for _ in range(6):  # a random row with many ties
        rows.append(np.round(rng.standard_normal(C) * 2) / 2)
    for j in sorted({0, C // 2, C - 1, min(C - 1, 8), min(C - 1, 31), min(C - 1, 32)}):
        row = rng.standard_normal(C)
        row[j] = np.nan
        rows.append(row)
        row = row.copy()
        row[C - 1 - (j // 2)] = np.nan  # two NaNs: the first wins
        rows.append(row)
        row = np.full(C, -1.0)
        row[j] = 5.0
        rows.append(row)
        row = np.full(C, -np.inf)
        row[j:] = 2.0  # first of a run of maxima reaching the tail
        rows.append(row)
        row = np.full(C, -1.0)
        row[j] = -0.0
        row[C - 1] = 0.0  # -0.0 == +0.0: the earlier zero
        rows.append(row)
        row = np.full(C, -1.0)
        row[C - 1 - j] = np.inf
        row[j] = np.inf
        rows.append(row)
    rows += [np.full(C, -np.inf), np.full(C, np.inf), np.full(C, np.nan), np.zeros(C), -np.zeros(C)]
    y64 = np.array(rows)
    t = np.zeros(len(rows), np.int64)
    for dtype in FLOATS:
        y = y64.astype(dtype)
        np.testing.assert_array_equal(fm.confusion_matrix(y, t, C), reference(y, t, C))
        # rows one stride apart that is not C (a column slice of wider rows)
        wide = np.full((len(rows), C + 5), np.nan, dtype)
        wide[:, 2:C + 2] = y
        np.testing.assert_array_equal(fm.confusion_matrix(wide[:, 2:C + 2], t, C), reference(y, t, C))


@pytest.mark.parametrize("threads", [1, 2])
def test_zero_classes_count_nothing_and_refuse_every_sample_not_ignored(isa, threads):
    """C = 0: no cell exists, so a non-ignored sample is out of range (this divided by zero once)."""
    before = fm.get_num_threads()
    fm.set_num_threads(threads)
    try:
        for y in (np.zeros(600, np.int64), np.zeros((600, 0), np.float32), np.zeros((200, 0, 3), np.float16)):
            t = np.full(600, -1, np.int64).reshape(y.shape[:1] + y.shape[2:])
            np.testing.assert_array_equal(fm.confusion_matrix(y, t, 0, ignore_label=-1), np.zeros((0, 0)))
            t.flat[457] = 3
            out = np.zeros((0, 0), np.int64)
            with pytest.raises(ValueError, match=r"label 3 \(sample 457\), outside \[0, 0\)"):
                fm.confusion_matrix(y, t, 0, ignore_label=-1, out=out)
            with pytest.raises(ValueError, match=r"outside \[0, 0\)"):
                fm.confusion_matrix(y, t, 0)
        acc = fm.ConfusionMatrix(0, ignore_label=-1)
        acc.update(np.zeros(4, np.int64), np.full(4, -1))
        with pytest.raises(ValueError, match=r"outside \[0, 0\)"):
            acc.update(np.zeros(4, np.int64), np.zeros(4, np.int64))
        assert acc.compute().shape == (0, 0) and int(acc.invalid) == 0
    finally:
        fm.set_num_threads(before)


def _self_overlapping_outs(shape):
    from numpy.lib.stride_tricks import as_strided
    for strides in ((0, 8),     # rows share memory (a broadcast)
                    (8, 8),     # rows shifted by one cell
                    (16, 4)):   # cells straddling each other
        base = np.zeros(64, np.int64)
        yield as_strided(base, shape, strides), base


def test_self_overlapping_out_is_refused_and_untouched():
    y = np.array([[0, 1], [1, 0], [0, 1]], np.float32)
    t = np.array([1, 1, 0])
    for out, memory in _self_overlapping_outs((2, 2)):
        for call in (lambda: fm.confusion_matrix(y, t, 2, out=out), lambda: fm.accuracy_counts(y, t, k=(1, 2), out=out)):
            with pytest.raises(ValueError, match="out must not overlap itself"):
                call()
            assert not memory.any()
    # Views that do not overlap themselves are taken: transposed, strided.
    for out in (np.zeros((2, 2), np.int64).T, np.zeros((2, 4), np.int64)[:, ::2]):
        np.testing.assert_array_equal(fm.confusion_matrix(y, t, 2, out=out), reference(y, t, 2))
    torch = pytest.importorskip("torch")
    expanded = torch.zeros(1, 2, dtype=torch.int64).expand(2, 2)
    with pytest.raises(ValueError, match="out must not overlap itself"):
        fm.confusion_matrix(torch.from_numpy(y), torch.from_numpy(t), 2, out=expanded)
    with pytest.raises(ValueError, match="out must not overlap itself"):
        fm.accuracy_counts(torch.from_numpy(y), torch.from_numpy(t), k=(1, 2), out=expanded)
