"""The argmax of flat float32, float16 and bfloat16 rows behind confusion_matrix (whole
rows in registers for C <= 64, one pass with per-lane first positions above), and the
tally of predictions from scores (only the true label is checked), against numpy float64
argmax + bincount."""
import ctypes
import mmap

import numpy as np
import pytest

import fusedmetrics as fm

from reference import FLOATS, LABELS, to_float64

SHORT_FLOATS = [d for d in FLOATS if np.dtype(d).itemsize <= 4]  # the AVX2 kernels' dtypes

EVERY_C = list(range(1, 73)) + [79, 80, 96, 100, 127, 128, 129, 255, 256, 1000, 1001]


def reference(y, t, C, ignore_label=None):
    p = np.argmax(to_float64(y), axis=1).astype(np.int64)
    t = np.asarray(t)
    keep = np.ones(t.shape, bool) if ignore_label is None else t != ignore_label  # in t's own dtype
    t = t.astype(np.int64)
    return np.bincount(C * t[keep] + p[keep], minlength=C * C).reshape(C, C)


def adversarial_rows(C, rng):
    """For every position j: a NaN at j (alone, then with a later NaN: the first wins), a
    unique maximum at j, a tie at j with a later position, -0.0 at j tying a later +0.0
    (and the reverse), +inf at j tying a later +inf, a run of maxima from j to the end,
    plus random rows with many ties and all-equal special rows."""
    rows = []
    for j in range(C):
        later = C - 1 if j < C - 1 else j
        base = rng.standard_normal(C) - 10.0
        r = base.copy(); r[j] = np.nan; rows.append(r)
        r = r.copy(); r[later] = np.nan; rows.append(r)
        r = base.copy(); r[j] = 5.0; rows.append(r)
        r = base.copy(); r[j] = 5.0; r[later] = 5.0; r[(j + later) // 2] = 5.0; rows.append(r)
        r = np.full(C, -1.0); r[j] = -0.0; r[later] = 0.0; rows.append(r)
        r = np.full(C, -1.0); r[j] = 0.0; r[later] = -0.0; rows.append(r)
        r = np.full(C, -np.inf); r[j] = np.inf; r[later] = np.inf; rows.append(r)
        r = np.full(C, -np.inf); r[j:] = 2.0; rows.append(r)
        r = np.full(C, np.inf); r[j] = np.nan; rows.append(r)
    for _ in range(40):
        rows.append(np.round(rng.standard_normal(C) * 2) / 2)
    rows += [np.full(C, -np.inf), np.full(C, np.inf), np.full(C, np.nan), np.zeros(C), -np.zeros(C),
             np.full(C, 65504.0), np.full(C, -65504.0)]  # float16's largest finite
    return np.array(rows)


@pytest.mark.parametrize("dtype", SHORT_FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("C", EVERY_C)
def test_every_position_nan_ties_zeros_and_infinities(isa, C, dtype):
    rng = np.random.default_rng(C)
    y = adversarial_rows(C, rng).astype(dtype)
    t = rng.integers(0, C, len(y)).astype(np.int32)
    np.testing.assert_array_equal(fm.confusion_matrix(y, t, C), reference(y, t, C))
    # the same rows one stride apart that is not C (a column slice of wider rows)
    wide = np.full((len(y), C + 3), np.nan, dtype)
    wide[:, 1:C + 1] = y
    np.testing.assert_array_equal(fm.confusion_matrix(wide[:, 1:C + 1], t, C), reference(y, t, C))
    # reversed rows (a negative row stride)
    np.testing.assert_array_equal(fm.confusion_matrix(y[::-1], t[::-1], C), reference(y, t, C))


@pytest.mark.parametrize("dtype", SHORT_FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("C", [1, 3, 7, 8, 9, 10, 16, 17, 19, 31, 32, 33, 63, 64, 65, 100, 1000])
@pytest.mark.parametrize("n", [1, 2, 255, 256, 257, 511, 777])
def test_row_counts_not_a_multiple_of_any_block(isa, C, n, dtype):
    rng = np.random.default_rng(C * 1000 + n)
    y = rng.standard_normal((n, C)).astype(dtype)
    t = rng.integers(0, C, n).astype(np.int64)
    np.testing.assert_array_equal(fm.confusion_matrix(y, t, C), reference(y, t, C))


@pytest.mark.parametrize("dtype", SHORT_FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("C", list(range(1, 41)) + [63, 64, 65, 100, 129])
def test_last_row_ending_at_a_page_boundary(isa, C, dtype):
    """The scores end exactly where an unreadable page starts: a read past the last row
    would crash the test."""
    page = mmap.PAGESIZE
    n = 37
    itemsize = np.dtype(dtype).itemsize
    nbytes = n * C * itemsize
    pages = -(-nbytes // page) + 1
    buf = mmap.mmap(-1, (pages + 1) * page)
    try:
        address = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        guard = address + pages * page
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        assert libc.mprotect(ctypes.c_void_p(guard), page, 0) == 0  # PROT_NONE
        y = np.frombuffer(buf, dtype, n * C, offset=pages * page - nbytes).reshape(n, C)
        rng = np.random.default_rng(C)
        y[:] = np.round(rng.standard_normal((n, C)) * 2) / 2
        y[-1, -1] = 100.0  # the last class of the last row is its maximum
        t = rng.integers(0, C, n).astype(np.int32)
        np.testing.assert_array_equal(fm.confusion_matrix(y, t, C), reference(y, t, C))
        y[-1, -1] = np.nan
        np.testing.assert_array_equal(fm.confusion_matrix(y, t, C), reference(y, t, C))
        del y
        assert libc.mprotect(ctypes.c_void_p(guard), page, 3) == 0  # readable again for munmap
    finally:
        buf.close()


@pytest.mark.parametrize("label", LABELS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("C", [3, 10, 40])
def test_scores_with_ignored_and_out_of_range_labels(isa, label, C):
    """Predictions from scores are always in range: only t is checked, in t's own width
    (a 64-bit label 2^32 + 1 must not wrap to 1), on strided labels too."""
    rng = np.random.default_rng(C)
    for n in (C * C + 5, 2 * C * C + 300):  # the private-table path (C * C <= N)
        y = rng.standard_normal((n, C)).astype(np.float32)
        t = rng.integers(0, C, n).astype(label)
        ignore = int(np.iinfo(label).max)
        t[::7] = ignore
        np.testing.assert_array_equal(fm.confusion_matrix(y, t, C, ignore_label=ignore),
                                      reference(y, t, C, ignore))
        wide = np.zeros(2 * n, label)
        wide[::2] = t
        np.testing.assert_array_equal(fm.confusion_matrix(y, wide[::2], C, ignore_label=ignore),
                                      reference(y, t, C, ignore))
        bad_values = [C, ignore]
        if np.iinfo(label).min < 0:
            bad_values.append(-1)
        if np.iinfo(label).max > 2 ** 32:
            bad_values.append(2 ** 32 + 1)
        for bad in bad_values:
            for where in (0, n // 2, n - 1):
                u = t.copy()
                u[:] = np.where(u == ignore, 0, u)
                u[where] = bad
                out = np.full((C, C), 2, np.int64)
                with pytest.raises(ValueError, match=r"t holds the label %d \(sample %d\)" % (bad, where)):
                    fm.confusion_matrix(y, u, C, out=out)
                np.testing.assert_array_equal(out, 2)
                wide[::2] = u
                with pytest.raises(ValueError, match=r"t holds the label %d \(sample %d\)" % (bad, where)):
                    fm.confusion_matrix(y, wide[::2], C, out=out)
                np.testing.assert_array_equal(out, 2)
