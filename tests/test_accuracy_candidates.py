"""Every candidate kernel of every ISA build usable here (AccuracyPlan.candidates()),
with one and two threads, against the numpy float64 reference, on adversarial inputs:
NaN/inf/ties/-0.0 scores, ignore and out-of-range labels, every label dtype, k from 1
to C + 1, row counts 0..17 and a few thousand, class counts around each kernel's limits
(8-lane chunks, 64-class flat rows, 32-class gathers, two-class packing), and layouts
that select different kernels (contiguous, strided and reversed rows, class-strided)."""
import numpy as np
import pytest

from fusedmetrics import _accuracy, _core
from reference import FLOATS, LABELS, top_k_counts

CLASS_COUNTS = [1, 2, 3, 4, 5, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 128, 129]
ROW_COUNTS = list(range(18)) + [2999]
SPECIAL = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, 65504.0])


def adversarial_scores(rng, n, c, dtype, nan_rate):
    """Scores with many exact ties (small integers), specials (NaN of both signs, inf,
    -0.0) and, per row, copies of the score at the row's argmax."""
    y = rng.integers(-3, 4, size=(n, c)).astype(np.float64)
    y += rng.standard_normal((n, c)) * (rng.random((n, c)) < 0.5)
    special = rng.random((n, c)) < 0.15
    y[special] = rng.choice(SPECIAL, size=int(special.sum()))
    nan = rng.random((n, c)) < nan_rate
    y[nan] = np.nan
    with np.errstate(over="ignore", invalid="ignore"):
        return y.astype(dtype)


def adversarial_labels(rng, y, dtype):
    """Labels: mostly the row's argmax or a near class, plus out-of-range values (C, the
    dtype's extremes, negatives for signed dtypes) and the values used as ignore labels."""
    n, c = y.shape[0], y.shape[1]
    info = np.iinfo(dtype)
    with np.errstate(invalid="ignore"):
        best = np.asarray(y, dtype=np.float64).argmax(axis=1) if c else np.zeros(n, np.int64)
    labels = np.where(rng.random(n) < 0.5, best, rng.integers(0, max(c, 1), size=n)).astype(np.int64)
    odd = rng.random(n) < 0.2
    choices = [c, c + 1, int(info.max), 0]
    if info.min < 0:
        choices += [-1, int(info.min)]
    picked = np.array([choices[i] for i in rng.integers(0, len(choices), size=int(odd.sum()))], dtype=object)
    out = labels.astype(object)
    out[odd] = picked
    # Labels past the dtype's range (C > 127 for int8) are clipped to it: still out of range or valid.
    return np.array([min(max(int(v), int(info.min)), int(info.max)) for v in out], dtype=dtype) if n else np.zeros(0, dtype)


def layouts(y, t):
    """(name, y view, t view): views that reach different kernels."""
    yield "contiguous", y, t
    if len(y) > 1:
        yield "every other row", y[::2], t[::2]
        yield "reversed rows", y[::-1], t[::-1]
    yield "class-strided", np.asfortranarray(y), t


def check_every_candidate(y, t, ignore_label, k):
    y, t, y_code, t_code, view, has_ignore, ignore, _ = _accuracy.host_view(y, t, ignore_label)
    plan = _core.AccuracyPlan(y_code, view.N, view.C, view.M, view.y_strides, t_code, view.t_strides,
                              has_ignore, ignore, k)
    expected = top_k_counts(y, t, ignore_label, k)
    names = plan.candidates()
    assert names, "no candidate kernel"
    assert len(set(names)) == len(names), names
    for name in names:
        for threads in (1, 2):
            out = np.zeros(2, np.int64)
            plan.count_with(name, threads, y, t, out)
            assert out.tolist() == expected.tolist(), (name, threads, y.dtype, t.dtype, y.shape, ignore_label, k)
    return names


def k_values(c):
    return sorted({1, 2, max(c - 1, 1), c, c + 1})


@pytest.mark.parametrize("c", CLASS_COUNTS)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_every_candidate_matches_reference(dtype, c):
    rng = np.random.default_rng(1000 * c + len(np.dtype(dtype).name))
    for case, n in enumerate(ROW_COUNTS):
        if n > 20 and c > 64:
            n = 300  # long rows: fewer of them keep the reference quick
        label_dtype = LABELS[case % len(LABELS)]
        y = adversarial_scores(rng, n, c, dtype, nan_rate=(0.0, 0.02, 0.3)[case % 3])
        t = adversarial_labels(rng, y, label_dtype)
        ignore = (None, 1 % c, int(np.iinfo(label_dtype).max))[case % 3]
        ks = k_values(c) if n > 20 or case % 4 == 0 else [(1, 2, c, c + 1)[case % 4]]
        for name, yv, tv in layouts(y, t):
            for k in ks:
                check_every_candidate(yv, tv, ignore, k)


@pytest.mark.parametrize("label_dtype", LABELS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_two_class_packed_rows_every_label_dtype(dtype, label_dtype):
    """Two classes, rows and labels contiguous: the 8-rows-per-step kernels' case, with
    row counts around multiples of 8 and every label dtype."""
    rng = np.random.default_rng(7)
    for n in [0, 1, 7, 8, 9, 15, 16, 17, 23, 24, 25, 1001]:
        y = adversarial_scores(rng, n, 2, dtype, nan_rate=0.1)
        t = adversarial_labels(rng, y, label_dtype)
        for ignore in (None, 0, 1, int(np.iinfo(label_dtype).max)):
            for k in (1, 2, 3):
                check_every_candidate(y, t, ignore, k)


BLOCKED_CLASS_COUNTS = [3, 4, 5, 6, 7, 8, 10, 14, 16, 32]


@pytest.mark.parametrize("c", BLOCKED_CLASS_COUNTS)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_blocked_rows_every_label_dtype(dtype, c):
    """Packed rows of the blocked kernels' class counts: 3-10 classes that do not divide 8
    (float32-widened blocks of 4 or 8 rows) and, for float16/bfloat16 top-1, even counts
    up to 16 and 32 (16-bit keys in blocks of 8 or 4 rows):
    row counts around the block size, every label dtype (contiguous int32 and int64
    labels take a vector path), ignore labels in and outside each dtype's range.
    float64 has no blocked kernel (4 lanes per register)."""
    rng = np.random.default_rng(100 + c)
    for case, n in enumerate([0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 25, 33, 1001]):
        y = adversarial_scores(rng, n, c, dtype, nan_rate=(0.0, 0.05, 0.3)[case % 3])
        for label_dtype in LABELS:
            t = adversarial_labels(rng, y, label_dtype)
            for ignore in (None, 0, c - 1, -1, int(np.iinfo(label_dtype).max)):
                for k in (1, 2, c):
                    names = check_every_candidate(y, t, ignore, k)
                    if n and dtype != np.float64 and "avx2" in _core.usable_isas() and c in (3, 5, 6, 7, 10):
                        assert "avx2/blocked_rows" in names, names
                    if n and k == 1 and np.dtype(dtype).itemsize == 2 and c in (4, 6, 8, 10, 14, 16, 32) \
                            and "avx2" in _core.usable_isas():
                        assert "avx2/half_blocked_rows" in names, names


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_long_rows_with_the_target_in_every_chunk_position(dtype):
    """Long rows whose target sits at each lane of the 8-score chunks and at the last,
    partial chunk, with ties to the target's score on both sides of it."""
    c = 37
    n = 8 * c
    y = np.zeros((n, c))
    t = np.arange(n) % c
    y[np.arange(n), t] = 2.0
    y[np.arange(n), (t + 1 + np.arange(n) // c) % c] = 2.0  # a tie after (or wrapped, before) the target
    y[::5, 0] = np.nan
    y[::7, -1] = -0.0
    y = y.astype(dtype)
    for k in (1, 2, 3):
        check_every_candidate(y, t.astype(np.int64), None, k)


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_zero_and_negative_zero_tie_and_nan_signs(dtype):
    """-0.0 == +0.0 (a tie, the lower index wins) and NaNs of either sign are the largest,
    the first NaN winning, in every candidate."""
    rows = np.array([
        [-0.0, 0.0, -1.0], [0.0, -0.0, -1.0], [-np.nan, 1.0, np.nan], [np.nan, -np.nan, 1.0],
        [-np.inf, -np.inf, -np.inf], [np.inf, np.nan, np.inf], [-1.0, -0.0, -np.nan],
    ] * 5)
    y = rows.astype(dtype)
    for target in range(3):
        t = np.full(len(y), target, np.int32)
        for k in (1, 2, 3):
            check_every_candidate(y, t, None, k)
            check_every_candidate(np.ascontiguousarray(np.repeat(y, 11, axis=1)), t, None, k)


def test_four_dimensional_scores_every_candidate():
    """(N, C, H, W) scores reach the vertical kernel; every candidate must agree."""
    rng = np.random.default_rng(3)
    for dtype in FLOATS:
        for c in (1, 3, 9, 70):
            y = adversarial_scores(rng, 2 * 5 * 7, c, dtype, 0.05).reshape(2, 5, 7, c).transpose(0, 3, 1, 2)
            t = rng.integers(-1, c + 1, size=(2, 5, 7)).astype(np.int16)
            for k in (1, 2):
                check_every_candidate(np.ascontiguousarray(y), t, -1, k)
