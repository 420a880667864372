"""The vector tally of contiguous integer labels (AVX2 builds: any two label dtypes, in 16-bit
lanes when both are 1-2 bytes wide and C <= 255, else in 32-bit lanes up to C = 32768) against
numpy int64 bincount, on every CPU ISA: block and
vector-width boundaries, ignored and invalid samples at every position, label values that
only look in range once narrowed, runs of one bin through the rotating copies, and the
uint32 counters' spill."""
import numpy as np
import pytest

import fusedmetrics as fm
from fusedmetrics import _core

NARROW = [np.int8, np.uint8, np.int16, np.uint16]
WIDE = [np.int32, np.uint32]
WIDEST = [np.int64, np.uint64]
# Around the 16-sample vector step and the 256-sample block.
LENGTHS = [1, 2, 15, 16, 17, 31, 255, 256, 257, 271, 512, 4111]


def reference(p, t, C, ignore_label=None):
    p = np.asarray(p).astype(np.int64).ravel()
    t = np.asarray(t).astype(np.int64).ravel()
    keep = np.ones(t.shape, bool) if ignore_label is None else t != ignore_label
    return np.bincount(C * t[keep] + p[keep], minlength=C * C).reshape(C, C)


def _pairs(group):
    return [(t, p) for t in group for p in group]


def _pair_id(pair):
    return "%s_%s" % (np.dtype(pair[0]).name, np.dtype(pair[1]).name)


def _check(p, t, C, ignore_label=None):
    got = fm.confusion_matrix(p, t, C, ignore_label=ignore_label)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, reference(p, t, C, ignore_label))


ALL = NARROW + WIDE + WIDEST
SAME_WIDTH = [(t, p) for t in ALL for p in ALL if np.dtype(t).itemsize == np.dtype(p).itemsize]
MIXED_WIDTH = [(t, p) for t in ALL for p in ALL if np.dtype(t).itemsize != np.dtype(p).itemsize]


@pytest.mark.parametrize("pair", SAME_WIDTH + MIXED_WIDTH, ids=_pair_id)
def test_vector_pairs_every_length(isa, pair):
    t_dtype, p_dtype = pair
    rng = np.random.default_rng(np.dtype(t_dtype).num * 17 + np.dtype(p_dtype).num)
    same = pair in SAME_WIDTH  # mixed widths: fewer cases (48 pairs), each load path still met
    for C in [1, 2, 3, 16, 17, 100, 127, 255, 256, 300, 1000] if same else [3, 100, 255, 256, 1000]:
        if C - 1 > min(np.iinfo(t_dtype).max, np.iinfo(p_dtype).max):
            continue
        for n in LENGTHS if same else [15, 17, 257, 4111]:
            t = rng.integers(0, C, n).astype(t_dtype)
            p = rng.integers(0, C, n).astype(p_dtype)
            _check(p, t, C)
            # An ignore label inside and one outside [0, C) (-1 for signed labels: all bits
            # set); predictions of ignored samples may be anything, the dtype's largest value
            # included.
            ignores = {C - 1, min(C + 5, int(np.iinfo(t_dtype).max))}
            if np.iinfo(t_dtype).min < 0:
                ignores.add(-1)
            for ignore in ignores:
                t2, p2 = t.copy(), p.copy()
                t2[::3] = ignore
                p2[::3] = np.iinfo(p_dtype).max
                _check(p2, t2, C, ignore)


@pytest.mark.parametrize("pair", [(np.uint8, np.uint8), (np.int8, np.int16), (np.int32, np.int32),
                                  (np.uint32, np.int32), (np.int64, np.int64), (np.uint64, np.int64),
                                  (np.int64, np.int32), (np.uint8, np.int64), (np.int16, np.uint32)],
                         ids=_pair_id)
def test_ignored_and_invalid_at_every_position(isa, pair):
    """300 samples: a full block, then vector steps, then a scalar tail of 12."""
    t_dtype, p_dtype = pair
    rng = np.random.default_rng(5)
    C, n, ignore = 11, 300, 7
    t = rng.integers(0, C, n).astype(t_dtype)
    p = rng.integers(0, C, n).astype(p_dtype)
    out = np.full((C, C), 2, np.int64)
    for where in range(n):
        saved_t, saved_p = t[where], p[where]
        t[where] = ignore
        p[where] = C  # out of range, but the sample is ignored
        _check(p, t, C, ignore)
        t[where] = saved_t
        for target, name, bad in [(t, "t", C), (p, r"y \(integer predictions\)", C + 1)]:
            target[where] = bad
            with pytest.raises(ValueError, match=r"%s holds the label %d \(sample %d\)" % (name, bad, where)):
                fm.confusion_matrix(p, t, C, out=out)
            np.testing.assert_array_equal(out, 2)
            target[where] = saved_t if target is t else saved_p
        assert t[where] == saved_t and p[where] == saved_p


@pytest.mark.parametrize("dtype, values", [
    (np.int8, [-1, -128, 127]),
    (np.int16, [-1, -32768, 256, 256 + 3, 32767]),
    (np.uint16, [255, 256 + 3, 65535]),
    (np.int32, [-1, 65536 + 3, -65536 + 3, 2 ** 31 - 1, -2 ** 31, 2 ** 16 * 255 + 3]),
    (np.uint32, [2 ** 16 + 3, 2 ** 31, 2 ** 31 + 3, 2 ** 32 - 1]),
    (np.int64, [-1, 2 ** 32 + 3, -(2 ** 32) + 3, 2 ** 32, 2 ** 31 + 3, 2 ** 63 - 1, -2 ** 63, 255 * 2 ** 32 + 3]),
    (np.uint64, [2 ** 32 + 3, 2 ** 63, 2 ** 63 + 3, 2 ** 64 - 1]),
], ids=lambda v: np.dtype(v).name if isinstance(v, type) else "")
def test_values_in_range_only_once_narrowed_are_invalid(isa, dtype, values):
    """A lane of 16 or 32 bits (or the low half of a 64-bit label) must not turn an out-of-range
    label into a valid one."""
    C = 5
    n = 40
    # The other label of the same dtype, and of another width (the mixed-width loads).
    for other in [dtype, np.int8 if np.dtype(dtype).itemsize >= 4 else np.int64]:
        for t_dtype, p_dtype in [(dtype, other), (other, dtype)]:
            t = (np.arange(n) % C).astype(t_dtype)
            p = (np.arange(n)[::-1] % C).astype(p_dtype)
            for value in values:
                for where in [0, 7, 16, 33, n - 1]:
                    for target, name in [(t, "t"), (p, r"y \(integer predictions\)")]:
                        if target.dtype != dtype:
                            continue
                        saved = target[where]
                        target[where] = value
                        with pytest.raises(ValueError,
                                           match=r"%s holds the label %d \(sample %d\)" % (name, value, where)):
                            fm.confusion_matrix(p, t, C)
                        target[where] = saved
            _check(p, t, C)


@pytest.mark.parametrize("dtype", [np.int64, np.uint64], ids=lambda d: np.dtype(d).name)
def test_wide_labels_are_ignored_only_when_every_bit_matches(isa, dtype):
    """8-byte labels are compared in two 32-bit halves: one that matches the ignore label in its
    low half only is an invalid label, not an ignored one."""
    C, n = 5, 40
    t = (np.arange(n) % C).astype(dtype)
    p = (np.arange(n)[::-1] % C).astype(dtype)
    cases = [(7, 2 ** 32 + 7), (2 ** 32 + 7, 7)] + ([(-1, 2 ** 32 - 1)] if dtype is np.int64 else [])
    for ignore, lookalike in cases:
        for where in [0, 9, 17, n - 1]:
            saved = t[where]
            t[where] = ignore
            _check(p, t, C, ignore)
            t[where] = lookalike
            with pytest.raises(ValueError, match=r"t holds the label %d \(sample %d\)" % (lookalike, where)):
                fm.confusion_matrix(p, t, C, ignore_label=ignore)
            t[where] = saved


@pytest.mark.parametrize("pair", [(np.uint8, np.uint8), (np.int32, np.int32), (np.int64, np.int64)], ids=_pair_id)
@pytest.mark.parametrize("C", [2, 10, 31, 32, 63, 64, 255, 1000])
def test_one_bin_hit_more_than_65535_times(isa, pair, C):
    """Every sample in one bin (8 copies up to C = 31, 4 up to 63, then 1), more often than a 16-bit
    counter holds, with a few samples elsewhere so every copy is merged."""
    t_dtype, p_dtype = pair
    if C - 1 > np.iinfo(t_dtype).max:
        pytest.skip("labels up to C do not fit this dtype")
    n = 3 * 65536 + 13
    t = np.full(n, C - 1, t_dtype)
    p = np.full(n, C // 2, p_dtype)
    t[::1001] = 0
    p[::997] = C - 1
    _check(p, t, C)
    got = fm.confusion_matrix(p, t, C)
    assert got.sum() == n


@pytest.mark.parametrize("pair", [(np.uint8, np.uint8), (np.int16, np.uint8), (np.int32, np.uint32),
                                  (np.int64, np.uint64)], ids=_pair_id)
def test_uint32_counters_spill_with_the_vector_tally(pair):
    """The spill interval cuts a thread's share into ranges of any length; each range ends
    in its own vector steps and scalar tail."""
    t_dtype, p_dtype = pair
    rng = np.random.default_rng(12)
    try:
        for rows in [1, 15, 16, 17, 256, 1000]:
            _core._set_confusion_spill_rows(rows)
            for C, n in [(3, 30_001), (40, 20_003)]:
                t = rng.integers(0, C, n).astype(t_dtype)
                p = rng.integers(0, C, n).astype(p_dtype)
                t[::11] = C + 1
                _check(p, t, C, C + 1)
                t[n // 3] = C
                with pytest.raises(ValueError, match=r"t holds the label %d \(sample %d\)" % (C, n // 3)):
                    fm.confusion_matrix(p, t, C, ignore_label=C + 1)
    finally:
        _core._set_confusion_spill_rows(0)


@pytest.mark.parametrize("pair", [(np.uint8, np.uint8), (np.int32, np.int32), (np.int64, np.int64)], ids=_pair_id)
def test_image_labels_one_run_per_image_and_strided(isa, pair):
    """(N, H, W) labels: one run when both are C-contiguous, one run per image when rows are
    cut, the typed loop for strided pixels; ignore label 255 as in segmentation data."""
    t_dtype, p_dtype = pair
    rng = np.random.default_rng(13)
    C = 19
    t = rng.integers(0, C, (3, 37, 43)).astype(t_dtype)
    p = rng.integers(0, C, (3, 37, 43)).astype(p_dtype)
    t[:, :4] = 255
    p[:, 30:] = 200  # out of range, but in ignored pixels only below
    t[:, 30:] = 255
    for tt, pp in [(t, p), (t[:, :, 1:], p[:, :, 1:]), (t[:, 1:], p[:, 1:]), (t[:, :, ::2], p[:, :, ::2]),
                   (t[::-1], p[::-1]), (t, np.asfortranarray(p))]:
        _check(pp, tt, C, 255)
    p[1, 5, 2] = 200  # a pixel that is not ignored
    with pytest.raises(ValueError, match=r"y \(integer predictions\) holds the label 200 \(sample %d\)"
                       % (37 * 43 + 5 * 43 + 2)):
        fm.confusion_matrix(p, t, C, ignore_label=255)


def test_threads_split_the_vector_tally():
    """Two threads' shares (odd lengths) give the same exact counts as one."""
    rng = np.random.default_rng(14)
    before = fm.get_num_threads()
    t = rng.integers(0, 100, 2_000_003).astype(np.uint8)
    p = rng.integers(0, 100, 2_000_003).astype(np.uint8)
    try:
        for threads in [1, 2]:
            fm.set_num_threads(threads)
            _check(p, t, 100)
            _check(p.astype(np.int32), t.astype(np.int32), 100, 3)
            _check(p.astype(np.int64), t.astype(np.int64), 100, 3)
    finally:
        fm.set_num_threads(before)
