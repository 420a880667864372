"""GPU accuracy counts against numpy float64 on host copies (exact counts).

The reference (tests/reference.py) ranks every row by a stable sort (NaN first, then larger scores, then
lower class index: numpy's argmax order) and, for k=1, also by numpy's argmax, so
it shares no code with the kernels' rule. CuPy's argmax is not a reference (it does
not pick the first NaN).
"""
import numpy as np
import pytest

import fusedmetrics
from conftest import cupy, device_bfloat16
from reference import argmax_counts, top_k_counts

pytestmark = pytest.mark.gpu

LABEL_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def _logit_dtype(name):
    return device_bfloat16() if name == "bfloat16" else np.dtype(name)


def reference_counts(y, t, ignore_label=None, k=1):
    """[correct, total] for host arrays, with numpy's argmax as a second opinion at k=1."""
    want = top_k_counts(y, t, ignore_label, k)
    if k == 1:
        np.testing.assert_array_equal(want, argmax_counts(y, t, ignore_label))
    return want


def make_logits(rng, shape, dtype, special=True):
    """Scores with many ties (few distinct values) and, when asked, NaN, +-inf, -0.0."""
    y = rng.integers(-4, 5, size=shape).astype(np.float64) * 0.5
    if special:
        u = rng.random(shape)
        y[u < 0.02] = np.nan
        y[(u >= 0.02) & (u < 0.04)] = np.inf
        y[(u >= 0.04) & (u < 0.06)] = -np.inf
        y[(u >= 0.06) & (u < 0.10)] = -0.0
        y[(u >= 0.10) & (u < 0.14)] = 0.0
    return y.astype(dtype)


def make_labels(rng, shape, C, dtype, ignore=None):
    info = np.iinfo(dtype)
    hi = min(C + 3, int(info.max))  # a few out-of-range labels
    lo = -2 if info.min < 0 else 0
    t = rng.integers(lo, hi + 1, size=shape)
    if ignore is not None:
        t[rng.random(shape) < 0.1] = ignore
    return t.astype(dtype)


def run(y, t, ignore_label=None, k=1):
    got = fusedmetrics.accuracy_counts(cupy.asarray(y), cupy.asarray(t), ignore_label, k=k)
    assert isinstance(got, cupy.ndarray) and got.dtype == np.int64 and got.shape == (2,)
    return cupy.asnumpy(got)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("C", [1, 2, 5, 10, 31, 33, 64, 100, 257, 1000, 4099])
def test_contiguous_rows_all_float_dtypes(dtype, C):
    rng = np.random.default_rng(C)
    N = max(8, 60000 // C)
    y = make_logits(rng, (N, C), _logit_dtype(dtype))
    t = make_labels(rng, (N,), C, np.int32, ignore=-1)
    for ignore in (None, -1):
        np.testing.assert_array_equal(run(y, t, ignore), reference_counts(y, t, ignore))


@pytest.mark.parametrize("t_dtype", LABEL_DTYPES)
@pytest.mark.parametrize("C", [7, 300])
def test_every_label_dtype(t_dtype, C):
    rng = np.random.default_rng(3)
    y = make_logits(rng, (500, C), np.float32)
    t = make_labels(rng, (500,), C, t_dtype)
    ignore = 2 if np.issubdtype(t_dtype, np.unsignedinteger) else -1
    t[::7] = ignore
    for ign in (None, ignore, C + 1000):
        np.testing.assert_array_equal(run(y, t, ign), reference_counts(y, t, ign))


def test_uint64_labels_beyond_int64_are_out_of_range_and_ignorable():
    rng = np.random.default_rng(4)
    y = make_logits(rng, (64, 5), np.float32)
    t = rng.integers(0, 5, size=64).astype(np.uint64)
    t[::3] = np.uint64(2 ** 64 - 1)
    t[1::5] = np.uint64(2 ** 63)
    for ign in (None, 2 ** 64 - 1, 2 ** 63, -1):
        expect = reference_counts(y, t, None if ign == -1 else ign)  # -1 matches no uint64 label
        np.testing.assert_array_equal(run(y, t, ign), expect)


@pytest.mark.parametrize("C", [3, 50, 1000, 50000])
@pytest.mark.parametrize("k", [2, 5, 10 ** 6])
def test_top_k(C, k):
    rng = np.random.default_rng(C + k)
    N = max(4, 200000 // C)
    y = make_logits(rng, (N, C), np.float32)
    t = make_labels(rng, (N,), C, np.int64, ignore=-1)
    np.testing.assert_array_equal(run(y, t, -1, k=k), reference_counts(y, t, -1, k=k))
    if k >= C:  # every in-range, non-ignored row counts
        got = run(y, t, -1, k=k)
        assert got[0] == int(((t >= 0) & (t < C)).sum())


@pytest.mark.parametrize("C", [1, 4, 40, 2000])
@pytest.mark.parametrize("dims", [(3,), (2, 5), (1, 4, 3)])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_spatial_axes_m_greater_than_one(C, dims, dtype):
    rng = np.random.default_rng(C * len(dims))
    N = max(2, 4000 // (C * int(np.prod(dims))))
    y = make_logits(rng, (N, C) + dims, np.dtype(dtype))
    t = make_labels(rng, (N,) + dims, C, np.int32, ignore=-1)
    np.testing.assert_array_equal(run(y, t, -1), reference_counts(y, t, -1))


STRIDED_VIEWS = {
    "rows not 16-byte aligned": lambda b, C: b[:, 1:C + 1],
    "class stride 2": lambda b, C: b[:, 3:3 + 2 * C:2],
    "negative row stride": lambda b, C: b[::-2, :C],
    "negative class stride": lambda b, C: b[::3, C + 2:2:-1],
}


@pytest.mark.parametrize("view", sorted(STRIDED_VIEWS))
@pytest.mark.parametrize("C", [3, 100, 700])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_strided_views(view, C, dtype):
    rng = np.random.default_rng(C)
    base = make_logits(rng, (90, 2 * C + 3), np.dtype(dtype))
    y_host = STRIDED_VIEWS[view](base, C)
    y_dev = STRIDED_VIEWS[view](cupy.asarray(base), C)  # the same strides on the device
    assert y_dev.shape == y_host.shape == (y_host.shape[0], C) and y_dev.strides == y_host.strides
    t_full = make_labels(rng, (2 * y_host.shape[0],), C, np.int64, ignore=-1)
    got = cupy.asnumpy(fusedmetrics.accuracy_counts(y_dev, cupy.asarray(t_full)[::2], -1))
    np.testing.assert_array_equal(got, reference_counts(y_host, t_full[::2], -1))


@pytest.mark.parametrize("C", [3, 100, 700])
def test_class_axis_last_in_memory_with_m_greater_than_one(C):
    """y stored as (N, M, C) and viewed as (N, C, M): class stride 1, m stride C."""
    rng = np.random.default_rng(C + 1)
    nmc = make_logits(rng, (40, 6, C), np.float32)
    t = make_labels(rng, (40, 6), C, np.uint8 if C < 250 else np.int32, ignore=None)
    got = cupy.asnumpy(fusedmetrics.accuracy_counts(cupy.asarray(nmc).transpose(0, 2, 1), cupy.asarray(t)))
    np.testing.assert_array_equal(got, reference_counts(nmc.transpose(0, 2, 1), t))


def test_counts_accumulate_into_out_across_calls():
    rng = np.random.default_rng(7)
    acc = cupy.asarray(np.array([7, 11], dtype=np.int64))  # a non-zero start: counts are ADDED
    expect = np.array([7, 11], dtype=np.int64)
    for C in (10, 500):
        y = make_logits(rng, (300, C), np.float32)
        t = make_labels(rng, (300,), C, np.int64, ignore=-1)
        returned = fusedmetrics.accuracy_counts(cupy.asarray(y), cupy.asarray(t), -1, out=acc)
        assert returned is acc
        expect += reference_counts(y, t, -1)
    np.testing.assert_array_equal(cupy.asnumpy(acc), expect)


def test_large_batch_counts_are_exact():
    rng = np.random.default_rng(11)
    N, C = 1 << 20, 10
    y = rng.standard_normal((N, C)).astype(np.float32)
    y[rng.random((N, C)) < 0.001] = np.nan
    t = rng.integers(0, C, N).astype(np.int32)
    expect = np.array([int((y.astype(np.float64).argmax(axis=1) == t).sum()), N])
    np.testing.assert_array_equal(run(y, t), expect)


def test_cuda_graph_capture_of_accuracy_counts():
    rng = np.random.default_rng(12)
    y_host = make_logits(rng, (4096, 100), np.float32)
    t_host = make_labels(rng, (4096,), 100, np.int32, ignore=-1)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        y, t = cupy.asarray(y_host), cupy.asarray(t_host)
        acc = cupy.zeros(2, dtype=cupy.int64)
        fusedmetrics.accuracy_counts(y, t, -1, out=acc)  # warm-up: module load, grid-size cache
        stream.synchronize()
        acc.fill(0)
        stream.begin_capture()
        for _ in range(3):
            fusedmetrics.accuracy_counts(y, t, -1, out=acc)
        graph = stream.end_capture()  # fails if anything synchronised during the capture
        graph.launch()
        graph.launch()
        stream.synchronize()
    np.testing.assert_array_equal(cupy.asnumpy(acc), 6 * reference_counts(y_host, t_host, -1))


def test_runs_on_the_current_stream_of_the_arrays_device():
    rng = np.random.default_rng(13)
    y_host = make_logits(rng, (2048, 300), np.float16)
    t_host = make_labels(rng, (2048,), 300, np.int16)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        y, t = cupy.asarray(y_host), cupy.asarray(t_host)  # produced on `stream`
        got = fusedmetrics.accuracy_counts(y, t)
        host = cupy.asnumpy(got, stream=stream)
        stream.synchronize()
    np.testing.assert_array_equal(host, reference_counts(y_host, t_host))


def test_runs_on_the_per_thread_default_stream():
    """CuPy's per-thread default stream has handle 2; our static runtime must read it the same way."""
    rng = np.random.default_rng(14)
    y_host = make_logits(rng, (1000, 40), np.float32)
    t_host = make_labels(rng, (1000,), 40, np.int64, ignore=-1)
    with cupy.cuda.Stream.ptds:
        assert cupy.cuda.get_current_stream().ptr == 2
        acc = cupy.zeros(2, dtype=cupy.int64)
        fusedmetrics.accuracy_counts(cupy.asarray(y_host), cupy.asarray(t_host), -1, out=acc)
        host = cupy.asnumpy(acc)
    np.testing.assert_array_equal(host, reference_counts(y_host, t_host, -1))


class _ForeignArray:
    """A non-CuPy device array (as from another library): only __cuda_array_interface__,
    with the stream its data is ready on."""

    def __init__(self, array, stream_ptr):
        self._array = array
        self._stream_ptr = stream_ptr

    @property
    def __cuda_array_interface__(self):
        cai = dict(self._array.__cuda_array_interface__)
        cai["stream"] = self._stream_ptr
        return cai


def test_foreign_arrays_run_on_their_interface_stream_and_get_a_fresh_counter():
    """out=None with a stream that is not CuPy's current one: the counter is
    allocated and zeroed on that stream (no deprecated ExternalStream warning)."""
    import warnings

    rng = np.random.default_rng(15)
    y_host = make_logits(rng, (3000, 300), np.float16)  # group kernel
    t_host = make_labels(rng, (3000,), 300, np.uint16)
    y, t = cupy.asarray(y_host), cupy.asarray(t_host)
    cupy.cuda.Device().synchronize()
    stream = cupy.cuda.Stream(non_blocking=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        got = fusedmetrics.accuracy_counts(_ForeignArray(y, stream.ptr), _ForeignArray(t, stream.ptr))
    assert isinstance(got, cupy.ndarray) and got.dtype == np.int64 and got.shape == (2,)
    stream.synchronize()
    np.testing.assert_array_equal(cupy.asnumpy(got), reference_counts(y_host, t_host))


# -- Stream ordering: a producer kernel that spins before it writes ----------------------------
# If a launch were not ordered after the producer, it would read the zeros that were there
# before the (slow) copy landed, and the counts would be wrong.

_SPIN_COPY = r"""
extern "C" __global__ void spin_copy(const unsigned char* src, unsigned char* dst, long long n,
                                     long long cycles) {
  const long long start = clock64();
  while (clock64() - start < cycles) {}
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x)
    dst[i] = src[i];
}
"""
_SPIN_CYCLES = 200_000_000  # ~0.1 s at 2 GHz: long enough to lose any race


def _delayed_copy(src, stream):
    """A zeroed array that receives src's bytes on `stream`, after a spin."""
    kernel = cupy.RawKernel(_SPIN_COPY, "spin_copy")
    dst = cupy.zeros_like(src)
    cupy.cuda.Device().synchronize()  # the zeros are in place before the copy is queued
    kernel((64,), (256,), (src, dst, np.int64(src.nbytes), np.int64(_SPIN_CYCLES)), stream=stream)
    return dst


def _ready_batch(seed, shape=(4096, 100), dtype=np.float32):
    rng = np.random.default_rng(seed)
    y_host = make_logits(rng, shape, dtype)
    t_host = make_labels(rng, (shape[0],), shape[1], np.int32, ignore=-1)
    return y_host, t_host, cupy.asarray(y_host), cupy.asarray(t_host)


def test_cupy_non_default_stream_is_ordered_after_the_producer():
    y_host, t_host, y_src, t_src = _ready_batch(20)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        y, t = _delayed_copy(y_src, stream), _delayed_copy(t_src, stream)
        got = fusedmetrics.accuracy_counts(y, t, -1)
    stream.synchronize()
    np.testing.assert_array_equal(cupy.asnumpy(got), reference_counts(y_host, t_host, -1))


@pytest.mark.parametrize("entry", ["legacy 1", "per-thread 2", "handle", "absent", "None"])
def test_foreign_interface_streams_order_the_launch(entry):
    """Interface stream 1 = legacy default stream, 2 = per-thread default stream, a handle;
    absent or None: CuPy's current stream."""
    y_host, t_host, y_src, t_src = _ready_batch(21)
    side = cupy.cuda.Stream(non_blocking=True)
    producer = {"legacy 1": cupy.cuda.Stream.null, "per-thread 2": cupy.cuda.Stream.ptds}.get(entry, side)
    value = {"legacy 1": 1, "per-thread 2": 2, "handle": side.ptr, "None": None}.get(entry, "absent")
    y, t = _delayed_copy(y_src, producer), _delayed_copy(t_src, producer)
    with side:  # CuPy's current stream: what absent/None mean
        got = fusedmetrics.accuracy_counts(_ForeignArray(y, value), _ForeignArray(t, value), -1)
    cupy.cuda.Device().synchronize()
    np.testing.assert_array_equal(cupy.asnumpy(got), reference_counts(y_host, t_host, -1))


def test_labels_on_another_stream_are_waited_for():
    y_host, t_host, y_src, t_src = _ready_batch(22)
    y_stream, t_stream = cupy.cuda.Stream(non_blocking=True), cupy.cuda.Stream(non_blocking=True)
    y = cupy.asarray(y_src)
    acc = cupy.zeros(2, dtype=cupy.int64)
    t = _delayed_copy(t_src, t_stream)  # still spinning when the launch is queued on y's stream
    fusedmetrics.accuracy_counts(_ForeignArray(y, y_stream.ptr), _ForeignArray(t, t_stream.ptr), -1, out=acc)
    cupy.cuda.Device().synchronize()
    np.testing.assert_array_equal(cupy.asnumpy(acc), reference_counts(y_host, t_host, -1))


def test_capture_with_labels_on_a_stream_outside_the_capture():
    """The graph cannot wait on work outside it: the wait is left out (the labels were
    ready before the capture) instead of invalidating the capture."""
    y_host, t_host, y, t = _ready_batch(25)
    other = cupy.cuda.Stream(non_blocking=True)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        acc = cupy.zeros(2, dtype=cupy.int64)
        fusedmetrics.accuracy_counts(_ForeignArray(y, stream.ptr), _ForeignArray(t, other.ptr), -1, out=acc)
        stream.synchronize()
        acc.fill(0)
        stream.begin_capture()
        fusedmetrics.accuracy_counts(_ForeignArray(y, stream.ptr), _ForeignArray(t, other.ptr), -1, out=acc)
        graph = stream.end_capture()
        graph.launch()
        stream.synchronize()
    np.testing.assert_array_equal(cupy.asnumpy(acc), reference_counts(y_host, t_host, -1))


def test_accuracy_on_foreign_arrays_divides_on_the_launch_stream():
    y_host, t_host, y_src, t_src = _ready_batch(23)
    stream = cupy.cuda.Stream(non_blocking=True)  # not CuPy's current stream
    y, t = _delayed_copy(y_src, stream), _delayed_copy(t_src, stream)
    got = fusedmetrics.accuracy(_ForeignArray(y, stream.ptr), _ForeignArray(t, stream.ptr), -1)
    cupy.cuda.Device().synchronize()
    correct, total = reference_counts(y_host, t_host, -1)
    assert got.dtype == np.float32 and float(got) == np.float32(correct / total)


def test_foreign_arrays_that_need_a_contiguous_copy_are_copied_on_their_stream():
    """Spatial axes that cannot be walked as one (H and W swapped): the copy must follow
    the producer on the interface's stream, not run on CuPy's current one."""
    rng = np.random.default_rng(24)
    y_host = make_logits(rng, (8, 5, 6, 7), np.float32)
    t_host = make_labels(rng, (8, 7, 6), 5, np.int32, ignore=-1)
    stream = cupy.cuda.Stream(non_blocking=True)
    y = _delayed_copy(cupy.asarray(y_host), stream).transpose(0, 1, 3, 2)
    t = _delayed_copy(cupy.asarray(t_host), stream)
    got = fusedmetrics.accuracy_counts(_ForeignArray(y, stream.ptr), _ForeignArray(t, stream.ptr), -1)
    cupy.cuda.Device().synchronize()
    np.testing.assert_array_equal(cupy.asnumpy(got), reference_counts(y_host.transpose(0, 1, 3, 2), t_host, -1))


# -- Sizes beyond 32-bit indexing ---------------------------------------------------------------

def _free_bytes():
    return cupy.cuda.runtime.memGetInfo()[0]


def test_more_than_2_31_rows():
    N = 2 ** 31 + 37
    if _free_bytes() < 32 * 2 ** 30:
        pytest.skip("needs ~32 GiB of free device memory")
    rng = cupy.random.default_rng(30)
    y = rng.integers(-2, 3, size=(N, 2), dtype=cupy.int8).astype(cupy.float16)
    t = rng.integers(-1, 3, size=N, dtype=cupy.int8)  # -1 ignored, 2 out of range
    got = fusedmetrics.accuracy_counts(y, t, -1)
    # numpy's argmax with two classes: class 1 wins only when strictly greater
    pred = (y[:, 1] > y[:, 0]).astype(cupy.int8)
    want = [int(((t == pred) & (t >= 0)).sum()), int((t != -1).sum())]
    np.testing.assert_array_equal(cupy.asnumpy(got), want)


def test_element_offsets_above_2_31():
    """Row offsets (contiguous, split rows) and a class stride (rows kernel) past 2**31 elements."""
    if _free_bytes() < 24 * 2 ** 30:
        pytest.skip("needs ~24 GiB of free device memory")
    rng = np.random.default_rng(31)
    C = 2 ** 30 + 64
    y = cupy.zeros((3, C), dtype=cupy.float32)  # row 2 starts at element 2**31 + 128
    t_host = np.array([5, C - 1, C - 7], np.int64)
    for row, label in enumerate(t_host):
        y[row, label] = 1.0
    y[2, C - 3] = 2.0  # row 2 is wrong, decided past element 2**31
    np.testing.assert_array_equal(cupy.asnumpy(fusedmetrics.accuracy_counts(y, cupy.asarray(t_host))), [2, 3])
    del y
    S = 2 ** 31 + 1  # class stride in elements
    base = cupy.zeros(2 * S + 4, dtype=cupy.float16)
    yv = cupy.lib.stride_tricks.as_strided(base, shape=(4, 3), strides=(2, 2 * S))
    scores = rng.integers(-2, 3, size=(4, 3)).astype(np.float16)
    for c in range(3):
        base[c * S:c * S + 4] = cupy.asarray(scores[:, c])
    t_small = np.array([0, 1, 2, 1], np.int32)
    got = fusedmetrics.accuracy_counts(yv, cupy.asarray(t_small))
    np.testing.assert_array_equal(cupy.asnumpy(got), reference_counts(scores, t_small))


# -- Few huge rows: split over blocks -------------------------------------------------------------

def _rank(row, t):
    """Classes ranked above class t of a host row (NaN greatest, ties to the lower index)."""
    v = row[t]
    if np.isnan(v):
        return int(np.isnan(row[:t]).sum())
    return int((row > v).sum() + (row[:t] == v).sum() + np.isnan(row).sum())


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_one_row_of_2_28_classes(layout):
    C = 2 ** 28
    rng = np.random.default_rng(40)
    host = rng.integers(-1000, 1000, size=C).astype(np.float32)
    host[rng.integers(0, C, 8)] = 999.0  # ties of the maximum
    top = int(np.argmax(host))
    if layout == "contiguous":
        y = cupy.asarray(host).reshape(1, C)
    else:
        base = cupy.zeros((1, 2 * C), dtype=cupy.float32)
        base[0, ::2] = cupy.asarray(host)
        y = base[:, ::2]
    later_tie = int(np.flatnonzero(host == host[top])[-1])
    for label in (top, later_tie, 12345, C - 1):
        rank = _rank(host, label)
        t = cupy.asarray(np.array([label], np.int64))
        for k in (1, rank, rank + 1):
            got = cupy.asnumpy(fusedmetrics.accuracy_counts(y, t, k=max(k, 1)))
            np.testing.assert_array_equal(got, [int(rank < max(k, 1)), 1], err_msg=f"label {label} k {k}")
    host[C - 5] = np.nan  # a NaN far from the target outranks it
    y[0, C - 5] = np.nan
    t = cupy.asarray(np.array([top], np.int64))
    np.testing.assert_array_equal(cupy.asnumpy(fusedmetrics.accuracy_counts(y, t)), [0, 1])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("shape, view", [((40, 20000), "contiguous"), ((30, 4000), "class stride 2"),
                                         ((2, 3000, 4), "spatial")])
def test_few_long_rows_against_the_reference(dtype, shape, view):
    """Shapes that take the split-row path, with ties, NaN, ignored and out-of-range labels."""
    rng = np.random.default_rng(41)
    dt = _logit_dtype(dtype)
    if view == "class stride 2":
        base = make_logits(rng, (shape[0], 2 * shape[1]), dt)
        y_host, y_dev = base[:, ::2], cupy.asarray(base)[:, ::2]
    else:
        y_host = make_logits(rng, shape, dt)
        y_dev = cupy.asarray(y_host)
    t_host = make_labels(rng, (shape[0],) + shape[2:], shape[1], np.int64, ignore=-1)
    for k in (1, 3):
        got = cupy.asnumpy(fusedmetrics.accuracy_counts(y_dev, cupy.asarray(t_host), -1, k=k))
        np.testing.assert_array_equal(got, reference_counts(y_host, t_host, -1, k=k))


# -- accuracy() on the device ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("case", ["mixed", "all ignored", "empty", "empty without ignore"])
def test_accuracy_value_on_device_matches_the_host(dtype, case):
    rng = np.random.default_rng(50)
    dt = _logit_dtype(dtype)
    n = 0 if case.startswith("empty") else 3000
    y_host = make_logits(rng, (n, 10), dt)
    t_host = make_labels(rng, (n,), 10, np.int32, ignore=-1)
    if case == "all ignored":
        t_host[:] = -1
    ignore = None if case == "empty without ignore" else -1
    got = fusedmetrics.accuracy(cupy.asarray(y_host), cupy.asarray(t_host), ignore)
    want = fusedmetrics.accuracy(y_host, t_host, ignore)
    assert isinstance(got, cupy.ndarray) and got.dtype == want.dtype and got.shape == ()
    np.testing.assert_array_equal(cupy.asnumpy(got).astype(np.float64), want.astype(np.float64))


# -- Graph capture and threads --------------------------------------------------------------------

def test_capture_in_global_mode_with_the_first_launch_inside():
    """A call shape (and plan) never launched before, captured in global mode: nothing in the
    first launch (plan build, grid-size queries, stream-ordered scratch) may break the capture."""
    rng = np.random.default_rng(60)
    y_host = make_logits(rng, (2, 70001), np.float32)  # split-row path, a fresh shape
    t_host = np.array([3, 70000], np.int64)
    y2_host = make_logits(rng, (777, 61), np.float64)
    t2_host = make_labels(rng, (777,), 61, np.int16, ignore=-1)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        y, t, y2, t2 = (cupy.asarray(a) for a in (y_host, t_host, y2_host, t2_host))
        acc = cupy.zeros(2, dtype=cupy.int64)
        stream.synchronize()
        stream.begin_capture(mode=cupy.cuda.runtime.streamCaptureModeGlobal)
        fusedmetrics.accuracy_counts(y, t, out=acc)
        fusedmetrics.accuracy_counts(y2, t2, -1, out=acc)
        graph = stream.end_capture()
        graph.launch()
        graph.launch()
        stream.synchronize()
    want = reference_counts(y_host, t_host) + reference_counts(y2_host, t2_host, -1)
    np.testing.assert_array_equal(cupy.asnumpy(acc), 2 * want)


def test_two_threads_launching_on_separate_streams():
    import threading

    batches = [_ready_batch(70 + i, shape=(2048, 50 + 300 * i)) for i in range(2)]
    results, errors = [None, None], []

    def work(i):
        try:
            y_host, t_host, y_src, t_src = batches[i]
            stream = cupy.cuda.Stream(non_blocking=True)
            with stream:
                acc = cupy.zeros(2, dtype=cupy.int64)
                for _ in range(200):
                    fusedmetrics.accuracy_counts(y_src, t_src, -1, out=acc)
                results[i] = cupy.asnumpy(acc, stream=stream)
                stream.synchronize()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    cupy.cuda.Device().synchronize()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for i, (y_host, t_host, _, _) in enumerate(batches):
        np.testing.assert_array_equal(results[i], 200 * reference_counts(y_host, t_host, -1))
