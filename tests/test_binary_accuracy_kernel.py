"""The fused binary-accuracy count against numpy float64 (no Chainer needed): every score
and label dtype, every float16/bfloat16 bit pattern, sizes around the vector widths and
the kernel's block, thread splits, and layouts the kernel cannot read in place."""
import numpy as np
import pytest

import fusedmetrics as fm

LABELS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
FLOATS = [np.float16, np.float32, np.float64]
try:
    import ml_dtypes

    FLOATS.append(ml_dtypes.bfloat16)
except ImportError:  # bfloat16 is then tested through torch (test_torch_confusion_binary.py)
    ml_dtypes = None


def _reference(y, t):
    """[correct, total] in float64 / int64 numpy: y >= 0 predicts 1; -1 ignored."""
    with np.errstate(invalid="ignore"):  # signalling NaN patterns convert with a warning
        y64 = np.asarray(y, dtype=np.float64)
    t64 = np.asarray(t).astype(np.int64)  # uint64 beyond 2^63 wraps negative: never 0 or 1
    counted = (t64 != -1) if np.asarray(t).dtype.kind == "i" else np.ones(t64.shape, bool)
    return np.array([((y64 >= 0) == t64).sum(), counted.sum()], dtype=np.int64)


def _scores(rng, shape, dtype):
    y = rng.standard_normal(shape).astype(np.float32)
    flat = y.reshape(-1)
    specials = [0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-30, -1e-30]
    flat[: min(len(specials), flat.size)] = specials[: flat.size]
    return y.astype(dtype)


def _labels(rng, shape, dtype):
    low = -2 if np.dtype(dtype).kind == "i" else 0
    return rng.integers(low, 3, shape).astype(dtype)  # -1 ignored, -2 and 2 counted and never correct


@pytest.mark.parametrize("ydtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("tdtype", LABELS, ids=lambda d: np.dtype(d).name)
def test_every_dtype_pair(isa, ydtype, tdtype):
    rng = np.random.default_rng(7)
    y, t = _scores(rng, (37, 29), ydtype), _labels(rng, (37, 29), tdtype)
    got = fm.binary_accuracy_counts(y, t)
    assert isinstance(got, np.ndarray) and got.dtype == np.int64
    np.testing.assert_array_equal(got, _reference(y, t))


@pytest.mark.parametrize("dtype", [np.float16] + ([ml_dtypes.bfloat16] if ml_dtypes else []),
                         ids=lambda d: np.dtype(d).name)
def test_every_16_bit_pattern(isa, dtype):
    """All 65536 patterns (zeros, subnormals, infinities, every NaN) against label 1 and 0."""
    y = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(dtype)
    for label in (0, 1):
        t = np.full(y.shape, label, np.int32)
        np.testing.assert_array_equal(fm.binary_accuracy_counts(y, t), _reference(y, t))


def test_float32_and_float64_edge_patterns(isa):
    bits32 = np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7F800001, 0xFFC00000, 0x7FFFFFFF, 0x00000001,
                       0x80000001, 0x7F7FFFFF, 0xFF7FFFFF], dtype=np.uint32)
    bits64 = np.array([0, 1 << 63, 0x7FF0000000000000, 0xFFF0000000000000, 0x7FF0000000000001,
                       0xFFF8000000000000, 1, (1 << 63) | 1], dtype=np.uint64)
    for y in (bits32.view(np.float32), bits64.view(np.float64)):
        for label in (0, 1):
            t = np.full(y.shape, label, np.int64)
            np.testing.assert_array_equal(fm.binary_accuracy_counts(y, t), _reference(y, t))


@pytest.mark.parametrize("n", list(range(0, 70)) + [65535, 65536, 65537, 3 * 65536 + 5])
def test_sizes_around_vectors_and_blocks(isa, n):
    rng = np.random.default_rng(n)
    y, t = _scores(rng, (n,), np.float32), _labels(rng, (n,), np.int8)
    np.testing.assert_array_equal(fm.binary_accuracy_counts(y, t), _reference(y, t))


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_thread_splits_are_exact(threads):
    rng = np.random.default_rng(threads)
    n = (1 << 20) + 13  # enough bytes for several threads
    y, t = _scores(rng, (n,), np.float32), _labels(rng, (n,), np.int32)
    before = fm.get_num_threads()
    fm.set_num_threads(threads)
    try:
        got = fm.binary_accuracy_counts(y, t)
    finally:
        fm.set_num_threads(before)
    np.testing.assert_array_equal(got, _reference(y, t))


def test_layouts_the_kernel_cannot_read_in_place():
    rng = np.random.default_rng(3)
    y, t = _scores(rng, (40, 30), np.float32), _labels(rng, (40, 30), np.int16)
    expected_full = _reference(y, t)
    cases = {
        "F-order both": (np.asfortranarray(y), np.asfortranarray(t)),
        "F-order y only": (np.asfortranarray(y), t),
        "strided": (y[:, ::3], t[:, ::3]),
        "reversed": (y[::-1], t[::-1]),
        "byte-swapped": (y.astype(y.dtype.newbyteorder(">")), t.astype(t.dtype.newbyteorder(">"))),
        "broadcast labels": (y, np.broadcast_to(t[:1], y.shape)),
    }
    for name, (yy, tt) in cases.items():
        np.testing.assert_array_equal(fm.binary_accuracy_counts(yy, tt), _reference(yy, tt), err_msg=name)
    raw = np.zeros(y.nbytes + 1, np.uint8)
    misaligned = raw[1:].view(np.float32).reshape(y.shape)
    misaligned[...] = y
    assert not misaligned.flags.aligned
    np.testing.assert_array_equal(fm.binary_accuracy_counts(misaligned, t), expected_full)


def test_lists_and_zero_dim():
    np.testing.assert_array_equal(fm.binary_accuracy_counts([0.5, -1.0, np.nan], [1, 0, -1]), [2, 2])
    np.testing.assert_array_equal(fm.binary_accuracy_counts(np.float32(-0.0), np.int32(1)), [1, 1])


def test_out_and_errors_leave_out_unchanged():
    y = np.array([1.0, -1.0], np.float32)
    t = np.array([1, 1], np.int64)
    out = np.array([5, 5], np.int64)
    with pytest.raises(ValueError, match="same shape"):
        fm.binary_accuracy_counts(y, t[:1], out=out)
    with pytest.raises(TypeError, match="t must hold integer labels"):
        fm.binary_accuracy_counts(y, y, out=out)
    with pytest.raises(TypeError, match="y must hold"):
        fm.binary_accuracy_counts(t, t, out=out)
    with pytest.raises(ValueError, match="out must be an int64 array of shape"):
        fm.binary_accuracy_counts(y, t, out=np.zeros(3, np.int64))
    np.testing.assert_array_equal(out, [5, 5])
    assert fm.binary_accuracy_counts(y, t, out=out) is out
    np.testing.assert_array_equal(out, [6, 7])


def test_core_binding_refuses_what_the_kernel_cannot_read():
    from fusedmetrics import _core, _dtypes
    y = np.zeros(8, np.float32)
    t = np.zeros(8, np.int32)
    out = np.zeros(2, np.int64)
    f32, i32 = _dtypes.logit_code(y.dtype), _dtypes.label_code(t.dtype)
    with pytest.raises(ValueError, match="same number of elements"):
        _core.binary_accuracy_counts(y, f32, t[:4], i32, out)
    with pytest.raises(ValueError, match="item size"):
        _core.binary_accuracy_counts(y, _dtypes.logit_code(np.dtype(np.float64)), t, i32, out)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.binary_accuracy_counts(np.zeros(16, np.float32)[::2], f32, t, i32, out)
    with pytest.raises(ValueError, match="out must be"):
        _core.binary_accuracy_counts(y, f32, t, i32, np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="logit dtype code"):
        _core.binary_accuracy_counts(y, 99, t, i32, out)
    np.testing.assert_array_equal(out, [0, 0])
