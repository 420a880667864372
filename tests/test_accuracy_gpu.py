"""GPU accuracy counts against numpy float64 on host copies (exact counts).

The reference (tests/reference.py) ranks every row by a stable sort (NaN first, then larger scores, then
lower class index: numpy's argmax order) and, for k=1, also by numpy's argmax, so
it shares no code with the kernels' rule. CuPy's argmax is not a reference (it does
not pick the first NaN).
"""
import numpy as np
import pytest

import fusedmetrics
from conftest import cupy
from reference import argmax_counts, top_k_counts

pytestmark = pytest.mark.gpu

LABEL_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def _bfloat16():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    dtype = np.dtype(ml_dtypes.bfloat16)
    try:
        cupy.asarray(np.zeros(2, dtype=dtype))
    except Exception:  # noqa: BLE001 - this CuPy has no bfloat16
        pytest.skip("this CuPy does not support bfloat16")
    return dtype


def _logit_dtype(name):
    return _bfloat16() if name == "bfloat16" else np.dtype(name)


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
