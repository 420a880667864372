"""accuracy_counts / accuracy on every backend (each CPU ISA, cuda) against numpy float64 references."""
import os
import signal
import time

import numpy as np
import pytest

import fusedmetrics as fm
from fusedmetrics import _core

from reference import FLOATS, LABELS, argmax_counts, top_k_counts

ISAS = _core.usable_isas()
SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, 1.0, 2.0, -1.0])



def adversarial_scores(rng, shape, dtype, special_fraction=0.3, levels=None):
    """Random scores with ties, NaN, +-inf and -0.0 sprinkled in."""
    y = rng.standard_normal(shape)
    if levels:  # few distinct values -> many ties
        y = np.round(y * levels) / levels
    mask = rng.random(shape) < special_fraction
    y[mask] = rng.choice(SPECIAL, size=int(mask.sum()))
    return y.astype(dtype)


def labels_for(rng, shape, C, dtype, out_of_range=True):
    lo = -2 if out_of_range and np.issubdtype(dtype, np.signedinteger) else 0
    hi = C + 2 if out_of_range else C
    hi = min(hi, np.iinfo(dtype).max)
    return rng.integers(lo, max(hi, lo + 1), size=shape).astype(dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("C", [1, 2, 3, 7, 8, 10, 15, 16, 17, 31, 33, 64, 100, 257, 1000])
def test_matches_sort_reference_all_dtypes(backend, dtype, C):
    rng = np.random.default_rng(C)
    y = adversarial_scores(rng, (97, C), dtype, levels=2)
    t = labels_for(rng, (97,), C, np.int32)
    for k in (1, 2, 5):
        for ignore in (None, -1, 0):
            got = backend.accuracy_counts(y, t, ignore, k=k)
            np.testing.assert_array_equal(got, top_k_counts(y, t, ignore, k), err_msg="k=%d ignore=%r" % (k, ignore))
    np.testing.assert_array_equal(backend.accuracy_counts(y, t), argmax_counts(y, t))


@pytest.mark.parametrize("label_dtype", LABELS)
def test_every_label_dtype(backend, label_dtype):
    rng = np.random.default_rng(1)
    C = 12
    y = adversarial_scores(rng, (300, C), np.float32, levels=3)
    t = labels_for(rng, (300,), C, label_dtype)
    ignore = 3
    np.testing.assert_array_equal(backend.accuracy_counts(y, t, ignore), top_k_counts(y, t, ignore))
    np.testing.assert_array_equal(backend.accuracy_counts(y, t), argmax_counts(y, t))


def test_uint64_labels_beyond_int64_are_wrong_but_counted(backend):
    y = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    t = np.array([2 ** 64 - 1, 0], np.uint64)
    np.testing.assert_array_equal(backend.accuracy_counts(y, t), [1, 2])
    np.testing.assert_array_equal(backend.accuracy_counts(y, t, ignore_label=2 ** 64 - 1), [1, 1])
    np.testing.assert_array_equal(backend.accuracy_counts(y, t, ignore_label=-1), [1, 2])  # uint can't hold -1


@pytest.mark.parametrize("y_shape,t_shape", [
    ((20, 5, 1), (20,)),
    ((20, 5, 1, 1), (20,)),
    ((6, 5, 7), (6, 7)),
    ((4, 5, 3, 6), (4, 3, 6)),
    ((4, 5, 3, 6, 1), (4, 3, 6)),
    ((3, 4, 2, 3, 5), (3, 2, 3, 5)),
    ((2, 300, 5, 3), (2, 5, 3)),
])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_trailing_axes(backend, y_shape, t_shape, dtype):
    rng = np.random.default_rng(sum(y_shape))
    C = y_shape[1]
    y = adversarial_scores(rng, y_shape, dtype, levels=2)
    t = labels_for(rng, t_shape, C, np.int64)
    for ignore in (None, -1, 1):
        for k in (1, 3):
            np.testing.assert_array_equal(backend.accuracy_counts(y, t, ignore, k=k), top_k_counts(y, t, ignore, k))


def strided_views(rng, dtype):
    base = adversarial_scores(rng, (40, 24, 6), dtype, levels=2)
    yield "class-strided", base[:, ::2, 0], rng.integers(-1, 13, 40)
    yield "reversed rows", base[::-1, :, 2], rng.integers(-1, 25, 40)
    yield "reversed classes", base[:, ::-1, 1], rng.integers(-1, 25, 40)
    yield "channels-last", np.moveaxis(adversarial_scores(rng, (8, 6, 24), dtype, levels=2), 2, 1), \
        rng.integers(-1, 25, (8, 6))
    four_d = adversarial_scores(rng, (5, 7, 6, 8), dtype, levels=2)
    yield "unmergeable spatial axes", four_d[:, :, ::2, 1:7], rng.integers(-1, 8, (5, 3, 6))
    yield "sliced pixels", four_d[:, :, 1:4, :], rng.integers(-1, 8, (5, 3, 8))
    yield "strided labels", base[:, :, 3], rng.integers(-1, 25, 80)[::2]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_strided_views(isa, dtype):
    rng = np.random.default_rng(7)
    for name, y, t in strided_views(rng, dtype):
        for ignore in (None, 0):
            for k in (1, 2):
                np.testing.assert_array_equal(fm.accuracy_counts(y, t, ignore, k=k), top_k_counts(y, t, ignore, k),
                                              err_msg=name)


@pytest.mark.parametrize("C", [5000, 50000])
def test_large_class_counts(backend, C):
    rng = np.random.default_rng(C)
    y = adversarial_scores(rng, (9, C), np.float32, special_fraction=0.0005, levels=3)
    t = rng.integers(0, C, 9)
    y[np.arange(9), t] = y.max() if not np.isnan(y).any() else y[np.arange(9), t]
    for k in (1, 10):
        np.testing.assert_array_equal(backend.accuracy_counts(y, t, k=k), top_k_counts(y, t, None, k))


def test_rows_of_ties_and_nans(backend):
    C = 37
    ties = np.ones((C, C), np.float32)
    t = np.arange(C)
    np.testing.assert_array_equal(backend.accuracy_counts(ties, t), [1, C])  # only label 0 wins a full tie
    np.testing.assert_array_equal(backend.accuracy_counts(ties, t, k=5), [5, C])
    nans = np.full((C, C), np.nan, np.float32)
    np.testing.assert_array_equal(backend.accuracy_counts(nans, t), [1, C])  # the first NaN wins
    one_nan = np.zeros((C, C), np.float32)
    one_nan[:, 20] = np.nan
    np.testing.assert_array_equal(backend.accuracy_counts(one_nan, t), [1, C])
    signed_zero = np.zeros((2, 2), np.float32)
    signed_zero[:, 0] = -0.0
    np.testing.assert_array_equal(backend.accuracy_counts(signed_zero, np.array([0, 1])), [1, 2])


def test_threads_split_gives_same_counts(isa):
    rng = np.random.default_rng(3)
    y = adversarial_scores(rng, (2 ** 16, 10), np.float32, special_fraction=0.01, levels=4)  # 2.6 MB: threaded
    t = labels_for(rng, (2 ** 16,), 10, np.int32)
    expected = argmax_counts(y, t, -1)
    before = fm.get_num_threads()
    try:
        for n in (1, 2, 3, 8):
            fm.set_num_threads(n)
            np.testing.assert_array_equal(fm.accuracy_counts(y, t, -1), expected)
    finally:
        fm.set_num_threads(before)


def test_back_to_back_threaded_calls():
    """Many short pool calls in a row, more threads than cores: workers that wake late
    must not take part in the next call (each call's counts stay exact)."""
    rng = np.random.default_rng(9)
    y = adversarial_scores(rng, (40000, 10), np.float32, special_fraction=0.01, levels=4)  # 1.6 MB: 3 tasks
    t = labels_for(rng, (40000,), 10, np.int32)
    expected = argmax_counts(y, t)
    before = fm.get_num_threads()
    try:
        fm.set_num_threads(8)
        acc = np.zeros(2, np.int64)
        for _ in range(300):
            fm.accuracy_counts(y, t, out=acc)
        np.testing.assert_array_equal(acc, expected * 300)
    finally:
        fm.set_num_threads(before)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_threaded_counts_in_a_forked_child():
    """The pool's workers do not survive fork(); the child must start a fresh pool, not hang."""
    rng = np.random.default_rng(10)
    y = adversarial_scores(rng, (40000, 10), np.float32, special_fraction=0.01, levels=4)
    t = labels_for(rng, (40000,), 10, np.int32)
    expected = argmax_counts(y, t)
    before = fm.get_num_threads()
    try:
        fm.set_num_threads(4)
        np.testing.assert_array_equal(fm.accuracy_counts(y, t), expected)  # the parent's pool exists now
        pid = os.fork()
        if pid == 0:  # child: exit code 0 only if threaded calls return the right counts
            same = np.array_equal(fm.accuracy_counts(y, t), expected)
            fm.set_num_threads(3)  # a new pool: the parent's (whose threads are gone) must not be joined
            os._exit(0 if same and np.array_equal(fm.accuracy_counts(y, t), expected) else 1)
        deadline = time.monotonic() + 60
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        if done[0] == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung in a threaded accuracy_counts call")
        assert os.waitstatus_to_exitcode(done[1]) == 0
    finally:
        fm.set_num_threads(before)


def test_out_accumulates_and_is_returned():
    rng = np.random.default_rng(4)
    out = np.array([5, 7], np.int64)
    y = rng.standard_normal((50, 4)).astype(np.float32)
    t = rng.integers(0, 4, 50)
    result = fm.accuracy_counts(y, t, out=out)
    assert result is out
    np.testing.assert_array_equal(out, argmax_counts(y, t) + [5, 7])


def test_out_may_be_an_ndarray_subclass(tmp_path):
    y = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    out = np.memmap(tmp_path / "counts", dtype=np.int64, mode="w+", shape=(2,))
    assert fm.accuracy_counts(y, np.array([1, 1]), out=out) is out
    np.testing.assert_array_equal(out, [1, 2])


def test_empty_and_all_ignored(backend):
    y = np.zeros((0, 3), np.float32)
    t = np.zeros((0,), np.int32)
    np.testing.assert_array_equal(backend.accuracy_counts(y, t), [0, 0])
    y = np.ones((4, 3), np.float32)
    t = np.full(4, -1, np.int32)
    np.testing.assert_array_equal(backend.accuracy_counts(y, t, ignore_label=-1), [0, 0])
    assert backend.accuracy(y, t, ignore_label=-1) == 0.0
    np.testing.assert_array_equal(backend.accuracy_counts(np.zeros((3, 0), np.float32), np.zeros(3, int)), [0, 3])


def test_empty_batches_with_strides_a_copy_cannot_fix():
    """numpy takes an empty array as contiguous, so a contiguous copy keeps its odd strides:
    empty inputs must be taken with any strides (they once reached the kernels' plans as None)."""
    odd_t = np.zeros((1, 5, 7), np.int64)[1:1, 1:5:2, 1:7:2]
    odd_y = np.zeros((1, 3, 5, 7), np.float32)[1:1, :, 1:5:2, 1:7:2]
    plain_y, plain_t = np.zeros((0, 3, 2, 3), np.float32), np.zeros((0, 2, 3), np.int64)
    unaligned_y = np.lib.stride_tricks.as_strided(np.zeros(8, np.float32), shape=(0, 3), strides=(6, 4))
    cases = [(plain_y, odd_t), (odd_y, plain_t), (odd_y, odd_t), (unaligned_y, np.zeros(0, np.int32))]
    for y, t in cases:
        np.testing.assert_array_equal(fm.accuracy_counts(y, t), [0, 0])
        np.testing.assert_array_equal(fm.accuracy_counts(y, t, k=(1, 2)), [[0, 0], [0, 0]])
        np.testing.assert_array_equal(fm.confusion_matrix(y, t, 3), np.zeros((3, 3)))
        np.testing.assert_array_equal(fm.ConfusionMatrix(3).update(y, t).compute(), np.zeros((3, 3)))


@pytest.mark.parametrize("y_shape,y_strides,t_shape", [
    ((200000, 0), (4096, 4), (200000,)),      # flat rows: kernels must not read class 0 of an empty row
    ((64, 0, 4096), (1 << 20, 4, 4), (64, 4096)),  # class-strided pixels
    ((64, 0, 4096), (1 << 20, 1 << 16, 4), (64, 4096)),
])
def test_no_classes_reads_no_scores(isa, y_shape, y_strides, t_shape):
    """C == 0: every row is wrong but counted, and y (which holds no element) is never read."""
    y = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape=y_shape, strides=y_strides)
    t = np.zeros(t_shape, np.int32)
    t.flat[::3] = -1
    expected_total = t.size - t.size // 3 - (t.size % 3 > 0)
    np.testing.assert_array_equal(fm.accuracy_counts(y, t), [0, t.size])
    np.testing.assert_array_equal(fm.accuracy_counts(y, t, ignore_label=-1), [0, expected_total])


def test_top_k_at_least_C_counts_every_kept_row():
    rng = np.random.default_rng(5)
    y = adversarial_scores(rng, (200, 6), np.float32)
    t = rng.integers(-1, 6, 200)
    kept = int((t != -1).sum())
    np.testing.assert_array_equal(fm.accuracy_counts(y, t, -1, k=6), [kept, kept])
    np.testing.assert_array_equal(fm.accuracy_counts(y, t, -1, k=100), [kept, kept])


def test_buffer_protocol_and_variable_like_inputs():
    rng = np.random.default_rng(6)
    y = rng.standard_normal((30, 5)).astype(np.float32)
    t = rng.integers(0, 5, 30).astype(np.int32)
    expected = argmax_counts(y, t)
    np.testing.assert_array_equal(fm.accuracy_counts(memoryview(y), memoryview(t)), expected)
    assert fm.accuracy(memoryview(y), memoryview(t)) == np.float32(expected[0] / expected[1])

    class Variable:  # duck-typed chainer.Variable
        def __init__(self, array):
            self.array = array
    np.testing.assert_array_equal(fm.accuracy_counts(Variable(y), t), expected)


def test_non_native_byte_order():
    rng = np.random.default_rng(8)
    y = adversarial_scores(rng, (300, 10), np.float32, levels=3)
    t = labels_for(rng, (300,), 10, np.int32)
    expected = top_k_counts(y, t, 3)
    swapped_y, swapped_t = y.astype(y.dtype.newbyteorder()), t.astype(t.dtype.newbyteorder())
    for yy, tt in ((swapped_y, t), (y, swapped_t), (swapped_y, swapped_t), (swapped_y, swapped_t)):  # twice: cached plans
        np.testing.assert_array_equal(fm.accuracy_counts(yy, tt, 3), expected)


NAN_BITS = {
    np.float16: (np.uint16, [0x7C01, 0xFC01, 0xFE00, 0x7FFF]),
    np.float32: (np.uint32, [0x7F800001, 0xFF800001, 0xFFC00000, 0x7FFFFFFF]),
    np.float64: (np.uint64, [0x7FF0000000000001, 0xFFF8000000000000, 0x7FFFFFFFFFFFFFFF]),
}


@pytest.mark.parametrize("dtype", sorted(NAN_BITS, key=lambda d: np.dtype(d).itemsize))
@pytest.mark.parametrize("C", [3, 8, 16, 30, 100])
def test_every_nan_payload_counts_as_nan(backend, dtype, C):
    """Signalling, negative and smallest-payload NaNs rank like any NaN (kernels that
    work on bit patterns must classify all of them)."""
    rng = np.random.default_rng(C)
    bits_dtype, payloads = NAN_BITS[dtype]
    y = rng.standard_normal((400, C)).astype(dtype)
    mask = rng.random(y.shape) < 0.15
    nan_bits = rng.choice(np.array(payloads, dtype=bits_dtype), size=int(mask.sum()))
    y.view(bits_dtype)[mask] = nan_bits
    assert np.isnan(y[mask]).all()
    t = rng.integers(0, C, 400)
    for k in (1, 2):
        np.testing.assert_array_equal(backend.accuracy_counts(y, t, k=k), top_k_counts(y, t, None, k))


def test_misaligned_buffers(isa):
    """Arrays whose data sit at an odd byte offset (np.frombuffer) are read correctly."""
    rng = np.random.default_rng(11)
    for dtype, C in ((np.float32, 10), (np.float64, 100), (np.float16, 40)):
        y_ok = adversarial_scores(rng, (257, C), dtype, levels=2)
        t_ok = rng.integers(-1, C + 1, 257).astype(np.int32)
        y_raw = bytearray(y_ok.nbytes + 1)
        t_raw = bytearray(t_ok.nbytes + 1)
        y = np.frombuffer(y_raw, dtype=dtype, offset=1, count=y_ok.size).reshape(y_ok.shape)
        t = np.frombuffer(t_raw, dtype=np.int32, offset=1, count=t_ok.size)
        y[...] = y_ok
        t[...] = t_ok
        assert not y.flags.aligned and not t.flags.aligned
        for _ in range(2):  # the second call may find a cached plan for the aligned twin
            np.testing.assert_array_equal(fm.accuracy_counts(y, t, -1), top_k_counts(y_ok, t_ok, -1))
            np.testing.assert_array_equal(fm.accuracy_counts(y_ok, t_ok, -1), top_k_counts(y_ok, t_ok, -1))


@pytest.mark.parametrize("label_dtype", [np.int32, np.int64, np.int16, np.uint32])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("C", [2, 4, 8])
def test_few_classes(backend, label_dtype, dtype, C):
    """Few classes (binary classifiers with two logits; 4 or 8 classes): dedicated
    16-rows-at-a-time kernels for contiguous rows with int32/int64 labels; ties, NaN,
    every label case, every k, rows that start and end anywhere."""
    rng = np.random.default_rng(C)
    N = 16 * 40 + 7  # whole steps of 16 rows and a tail
    y = adversarial_scores(rng, (N, C), dtype, special_fraction=0.3, levels=1)
    t = labels_for(rng, (N,), C, label_dtype)
    for ignore in (None, -1, 0, 1):
        for k in (1, 2, C - 1, C):
            np.testing.assert_array_equal(backend.accuracy_counts(y, t, ignore, k=k), top_k_counts(y, t, ignore, k),
                                          err_msg="ignore=%r k=%d" % (ignore, k))
    for cut in (0, 5, 16, 33):
        np.testing.assert_array_equal(backend.accuracy_counts(y[cut:], t[cut:], -1), top_k_counts(y[cut:], t[cut:], -1))
