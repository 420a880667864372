"""The direct count (C * C > N: no private tables): samples binned first, the bins added into
the matrix only once every sample was valid. Against numpy int64 bincount, on both sides of
the C * C == N switch, for every label dtype, with ignored samples, invalid labels at the
first, middle and last positions (out unchanged), strided and image layouts, float32 scores,
1 and 2 threads, and calls longer than one bin buffer (labels then checked first); the binning
on every CPU ISA (the `isa` fixture)."""
import numpy as np
import pytest

import fusedmetrics as fm
from fusedmetrics import _core

from reference import LABELS

# Over 2^16 int64 labels: two threads bin (the bytes rule) when two are allowed.
TWO_THREADS_N = 70_001


def reference(y, t, C, ignore_label=None):
    y = np.asarray(y)
    p = y if y.dtype.kind in "iu" else np.argmax(y.astype(np.float64), axis=1)
    p = p.reshape(np.asarray(t).shape).astype(np.int64).ravel()
    t = np.asarray(t).ravel()
    keep = np.ones(t.shape, bool) if ignore_label is None else t != ignore_label  # in t's own dtype
    t = t.astype(np.int64)
    return np.bincount(C * t[keep] + p[keep], minlength=C * C).reshape(C, C)


@pytest.fixture(params=[1, 2], ids=lambda n: "%d_threads" % n)
def threads(request):
    before = fm.get_num_threads()
    fm.set_num_threads(request.param)
    try:
        yield request.param
    finally:
        fm.set_num_threads(before)


@pytest.fixture
def direct_rows():
    """set(rows): bins buffered per chunk (restored to the default afterwards)."""
    try:
        yield _core._set_confusion_direct_rows
    finally:
        _core._set_confusion_direct_rows(0)


def _labels(rng, n, C, dtype):
    return rng.integers(0, C, n).astype(dtype)


def _name(dtype):
    return np.dtype(dtype).name


@pytest.mark.parametrize("dtype", LABELS, ids=_name)
def test_both_sides_of_cells_equal_samples(isa, threads, dtype):
    """N = C*C - 1 (direct), C*C and C*C + 1 (private tables): the same counts."""
    rng = np.random.default_rng(np.dtype(dtype).num)
    for C in [2, 3, 31, 100]:
        for n in [C * C - 1, C * C, C * C + 1]:
            t, p = _labels(rng, n, C, dtype), _labels(rng, n, C, dtype)
            np.testing.assert_array_equal(fm.confusion_matrix(p, t, C), reference(p, t, C))
            t[::4] = C  # an ignore label outside [0, C), with out-of-range predictions
            p[::4] = C + 1
            np.testing.assert_array_equal(fm.confusion_matrix(p, t, C, ignore_label=C), reference(p, t, C, C))


@pytest.mark.parametrize("t_dtype", LABELS, ids=lambda d: "t_" + _name(d))
@pytest.mark.parametrize("p_dtype", [np.int64, np.uint8, np.int16, np.uint32], ids=lambda d: "p_" + _name(d))
def test_label_pairs_large_matrix(isa, t_dtype, p_dtype):
    """C = 1000 (255 where a dtype cannot hold it) with N far below C * C, odd lengths."""
    rng = np.random.default_rng(np.dtype(t_dtype).num * 13 + np.dtype(p_dtype).num)
    C = min(1000, int(np.iinfo(t_dtype).max), int(np.iinfo(p_dtype).max))
    for n in [1, 2, 255, 256, 257, 4099]:
        t, p = _labels(rng, n, C, t_dtype), _labels(rng, n, C, p_dtype)
        np.testing.assert_array_equal(fm.confusion_matrix(p, t, C), reference(p, t, C))
        ignore = C - 1  # a valid class as the ignore label
        np.testing.assert_array_equal(fm.confusion_matrix(p, t, C, ignore_label=ignore), reference(p, t, C, ignore))


@pytest.mark.parametrize("dtype", LABELS, ids=_name)
def test_invalid_first_middle_last_leaves_out_unchanged(isa, threads, dtype):
    """The earliest invalid sample is named (a later one too: in the other thread's share
    with 2 threads), and nothing is added."""
    rng = np.random.default_rng(np.dtype(dtype).num + 50)
    C = min(1000, int(np.iinfo(dtype).max))
    n = TWO_THREADS_N if np.dtype(dtype).itemsize == 8 else 20_001
    t0, p0 = _labels(rng, n, C, dtype), _labels(rng, n, C, dtype)
    out = np.full((C, C), 5, np.int64)
    fm.confusion_matrix(p0, t0, C, out=out)
    np.testing.assert_array_equal(out, 5 + reference(p0, t0, C))
    before = out.copy()
    bad = -1 if np.iinfo(dtype).min < 0 else C
    for where in [0, n // 2, n // 2 + 1, n - 1]:
        for which, name in [(0, "t"), (1, r"y \(integer predictions\)")]:
            arrays = [t0.copy(), p0.copy()]
            arrays[which][where] = bad
            if where + n // 3 < n:
                arrays[1 - which][where + n // 3] = C  # a later one, in the other label
            with pytest.raises(ValueError, match=r"%s holds the label %d \(sample %d\)" % (name, bad, where)):
                fm.confusion_matrix(arrays[1], arrays[0], C, out=out)
            np.testing.assert_array_equal(out, before)


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int64, np.uint64], ids=_name)
def test_ignored_samples_skip_even_invalid_predictions(isa, threads, dtype):
    rng = np.random.default_rng(7)
    C = 120
    n = TWO_THREADS_N
    t, p = _labels(rng, n, C, dtype), _labels(rng, n, C, dtype)
    ignore = -1 if np.iinfo(dtype).min < 0 else int(np.iinfo(dtype).max)
    t[::3] = ignore
    p[::3] = np.iinfo(dtype).max  # out of range, but in ignored samples only
    out = np.zeros((C, C), np.int64)
    got = fm.confusion_matrix(p, t, C, ignore_label=ignore, out=out)
    assert got is out
    np.testing.assert_array_equal(out, reference(p, t, C, ignore))
    assert out.sum() == n - len(t[::3])
    t[4] = C  # a sample that is not ignored: invalid
    before = out.copy()
    with pytest.raises(ValueError, match=r"sample 4\)"):
        fm.confusion_matrix(p, t, C, ignore_label=ignore, out=out)
    np.testing.assert_array_equal(out, before)


def test_strided_reversed_and_image_layouts(isa, threads):
    rng = np.random.default_rng(8)
    C = 300
    t = _labels(rng, (6, 37, 41), C, np.int32)
    p = _labels(rng, (6, 37, 41), C, np.uint16)
    t_ignored = t.copy()
    t_ignored[:, :3] = 65535

    def layouts(t):
        return [(t, p), (t[:, ::2], p[:, ::2]), (t[:, :, 1:], p[:, :, 1:]), (t[::-1], p),
                (t, np.asfortranarray(p)), (t.ravel()[::3], p.ravel()[::-3])]

    for tt, pp in layouts(t):
        np.testing.assert_array_equal(fm.confusion_matrix(pp, tt, C), reference(pp, tt, C))
    for tt, pp in layouts(t_ignored):
        np.testing.assert_array_equal(fm.confusion_matrix(pp, tt, C, ignore_label=65535),
                                      reference(pp, tt, C, 65535))
    t = t_ignored
    p[2, 5, 7] = C
    with pytest.raises(ValueError, match=r"y \(integer predictions\) holds the label %d \(sample %d\)"
                       % (C, 2 * 37 * 41 + 5 * 41 + 7)):
        fm.confusion_matrix(p, t, C, ignore_label=65535)


@pytest.mark.parametrize("n", [1, 255, 257, 4099])
def test_float32_scores(isa, threads, n):
    """Scores: the predictions are valid by construction; the true labels are checked."""
    rng = np.random.default_rng(n)
    C = 1000
    y = rng.standard_normal((n, C)).astype(np.float32)
    y[::7, 3] = np.nan  # NaN is the largest score
    t = _labels(rng, n, C, np.int64)
    np.testing.assert_array_equal(fm.confusion_matrix(y, t, C), reference(y, t, C))
    np.testing.assert_array_equal(fm.confusion_matrix(y[::-1], t[::-1], C), reference(y[::-1], t[::-1], C))
    t[::5] = -1
    np.testing.assert_array_equal(fm.confusion_matrix(y, t, C, ignore_label=-1), reference(y, t, C, -1))
    out = np.ones((C, C), np.int64)
    t[n - 1] = C
    with pytest.raises(ValueError, match=r"t holds the label %d \(sample %d\)" % (C, n - 1)):
        fm.confusion_matrix(y, t, C, ignore_label=-1, out=out)
    np.testing.assert_array_equal(out, 1)


@pytest.mark.parametrize("rows", [1, 7, 256, 1000])
def test_calls_longer_than_the_bin_buffer(threads, direct_rows, rows):
    """Chunks of `rows` bins: the labels are checked first, so an invalid one in a later chunk
    still leaves out unchanged, and the chunks add up to the whole count."""
    direct_rows(rows)
    rng = np.random.default_rng(rows)
    C = 200
    n = 3001
    t, p = _labels(rng, n, C, np.int64), _labels(rng, n, C, np.uint8)
    t[::9] = C
    np.testing.assert_array_equal(fm.confusion_matrix(p, t, C, ignore_label=C), reference(p, t, C, C))
    y = rng.standard_normal((n, C)).astype(np.float32)
    np.testing.assert_array_equal(fm.confusion_matrix(y, t, C, ignore_label=C), reference(y, t, C, C))
    out = np.full((C, C), 2, np.int64)
    for where in [1, rows + 1, n - 2]:  # not ignored samples (those are multiples of 9)
        for target, bad in [(t, -3), (p, C)]:
            saved = target[where]
            target[where] = bad
            with pytest.raises(ValueError, match=r"label %d \(sample %d\)" % (bad, where)):
                fm.confusion_matrix(p, t, C, ignore_label=C, out=out)
            np.testing.assert_array_equal(out, 2)
            target[where] = saved
        saved = t[where]
        t[where] = -3
        with pytest.raises(ValueError, match=r"t holds the label -3 \(sample %d\)" % where):
            fm.confusion_matrix(y, t, C, ignore_label=C, out=out)
        np.testing.assert_array_equal(out, 2)
        t[where] = saved


def test_out_of_range_label_values_that_wrap_in_32_bits(isa):
    """Labels whose low 32 (or 16) bits are in range must still be invalid."""
    C = 1000
    t = np.arange(500, dtype=np.int64) % C
    p = t[::-1].copy()
    for value in [2 ** 32 + 3, -(2 ** 32) + 3, 2 ** 16 + 3, 2 ** 63 - 1]:
        for target, name in [(t, "t"), (p, r"y \(integer predictions\)")]:
            saved = target[17]
            target[17] = value
            with pytest.raises(ValueError, match=r"%s holds the label %d \(sample 17\)" % (name, value)):
                fm.confusion_matrix(p, t, C)
            target[17] = saved
    # From scores (C * C > N: the direct path), where only t is checked and bins are 32-bit.
    y = np.random.default_rng(17).standard_normal((500, C)).astype(np.float32)
    for value in [2 ** 32 + 3, -(2 ** 32) + 3, 2 ** 63 - 1]:
        saved = t[17]
        t[17] = value
        with pytest.raises(ValueError, match=r"t holds the label %d \(sample 17\)" % value):
            fm.confusion_matrix(y, t, C)
        t[17] = saved
    np.testing.assert_array_equal(fm.confusion_matrix(y, t, C), reference(y, t, C))
    u = t.astype(np.uint64)
    u[3] = 2 ** 64 - 1
    with pytest.raises(ValueError, match=r"t holds the label %d \(sample 3\)" % (2 ** 64 - 1)):
        fm.confusion_matrix(p, u, C)
