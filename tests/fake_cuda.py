"""A host stand-in for ``fusedmetrics._cuda`` and for device arrays, so the Python side
of the device path (argument checks, plan cache, launch arguments) runs without a GPU.

"Device" pointers are the addresses of numpy arrays registered by ``FakeDeviceArray``;
the fake kernels compute with tests/reference.py.
"""
import contextlib
import types

import numpy as np

from fusedmetrics import _dtypes
from reference import top_k_counts

_MEMORY = {}  # pointer -> the numpy array that starts there

_LOGIT_DTYPES = {code: name for name, code in _dtypes.LOGIT_CODES.items()}
_LABEL_DTYPES = {code: name for name, code in _dtypes.LABEL_CODES.items()}


_ABSENT = object()


class FakeDeviceArray:
    """A numpy array seen through ``__cuda_array_interface__`` (device 0, stream 7 unless
    told). typestr overrides the interface's (the memory stays as it is); with
    has_dtype=False the object is interface-only, as some producers' arrays are."""

    def __init__(self, array, stream=7, readonly=False, typestr=None, has_dtype=True):
        self.array = array
        if has_dtype:
            self.dtype = array.dtype
        self.shape = array.shape
        self.stream, self.readonly, self.typestr = stream, readonly, typestr
        register(array)

    @property
    def __cuda_array_interface__(self):
        cai = {"shape": self.array.shape, "typestr": self.typestr or self.array.dtype.str,
               "strides": self.array.strides, "data": (self.array.ctypes.data, self.readonly), "version": 3}
        if self.stream is not _ABSENT:
            cai["stream"] = self.stream
        return cai


def register(array):
    """Makes array the fake device memory at its address (the latest registration wins:
    a freed numpy block is reused)."""
    _MEMORY.pop(array.ctypes.data, None)
    _MEMORY[array.ctypes.data] = array


def counter_at(ptr):
    """The int64 (2,) counter at ptr: the start of, or two elements inside, the most recently
    registered array holding ptr (a row of a (len(k), 2) result)."""
    for start, array in reversed(list(_MEMORY.items())):
        if start <= ptr < start + array.nbytes:
            assert array.dtype == np.int64 and array.flags.c_contiguous and (ptr - start) % 8 == 0
            offset = (ptr - start) // 8
            return array.reshape(-1)[offset:offset + 2]
    raise KeyError("no fake device memory at %#x" % ptr)


class AccuracyPlan:
    """``_cuda.AccuracyPlan``'s API: built once per call shape, launched per call."""

    built = []

    def __init__(self, y_code, N, C, M, y_strides, t_code, t_strides, has_ignore, ignore, k):
        self.y_dtype = np.dtype(_LOGIT_DTYPES[y_code])
        self.t_dtype = np.dtype(_LABEL_DTYPES[t_code])
        self.shape = (N, C, M)
        self.y_strides, self.t_strides = tuple(y_strides), tuple(t_strides)
        self.has_ignore, self.ignore, self.k = has_ignore, ignore, k
        self.launches = []
        AccuracyPlan.built.append(self)

    def launch(self, y_ptr, t_ptr, out_ptr, device_id, stream_ptr):
        self.launches.append((device_id, stream_ptr))
        N, C, M = self.shape
        y = np.lib.stride_tricks.as_strided(
            _MEMORY[y_ptr], (N, C, M), [s * self.y_dtype.itemsize for s in self.y_strides])
        t = np.lib.stride_tricks.as_strided(
            _MEMORY[t_ptr], (N, M), [s * self.t_dtype.itemsize for s in self.t_strides])
        ignore = None
        if self.has_ignore:  # the plan holds the int64 reading; compare in the label's own type
            ignore = self.ignore + 2 ** 64 if self.ignore < 0 and self.t_dtype.kind == "u" else self.ignore
        counter_at(out_ptr)[:] += top_k_counts(y, t, ignore, self.k)


def module():
    """A fresh fake ``fusedmetrics._cuda``; ``order`` logs stream waits and launches in
    the order they were issued, as ("wait", waited, waiting) and ("launch", stream)."""
    AccuracyPlan.built.clear()
    order = []

    class OrderedPlan(AccuracyPlan):
        def launch(self, y_ptr, t_ptr, out_ptr, device_id, stream_ptr):
            order.append(("launch", stream_ptr))
            super().launch(y_ptr, t_ptr, out_ptr, device_id, stream_ptr)

    def stream_wait(waited, waiting, device_id):
        order.append(("wait", waited, waiting))

    return types.SimpleNamespace(AccuracyPlan=OrderedPlan, pointer_device=lambda ptr: 0, stream_wait=stream_wait,
                                 order=order)


class _Counter(np.ndarray):
    """A fake CuPy array: numpy memory the fake kernels write into, with CuPy's
    ``data.ptr`` and a ``__cuda_array_interface__`` on stream `ops_stream`."""

    @property
    def data(self):
        return types.SimpleNamespace(ptr=self.ctypes.data)

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "strides": None,
                "data": (self.ctypes.data, False), "version": 3}

    def get(self):
        """CuPy's device-to-host copy, on CuPy's current stream (logged as ("get", stream))."""
        self.log("get")
        return np.array(self)


def cupy_module():
    """A fake ``cupy`` for the few calls the device accuracy path makes; ``ops`` logs
    (op, stream) for every array operation, to check which stream it ran on."""
    streams = [0]  # CuPy's current stream: the legacy default stream unless switched
    ops = []

    @contextlib.contextmanager
    def on_stream(ptr):
        streams.append(ptr)
        try:
            yield
        finally:
            streams.pop()

    def zeros(shape, dtype):
        ops.append(("zeros", streams[-1]))
        counter = np.zeros(shape, dtype).view(_Counter)
        counter.log = lambda name: ops.append((name, streams[-1]))
        register(counter)
        return counter

    def logged(name, fn):
        def run(*args):
            ops.append((name, streams[-1]))
            return fn(*args)
        return run

    def ascontiguousarray(a):
        ops.append(("ascontiguousarray", streams[-1]))
        return FakeDeviceArray(np.ascontiguousarray(a.array), stream=streams[-1])

    stream_class = types.SimpleNamespace(from_external=lambda handle: on_stream(handle.__cuda_stream__()[1]))
    cuda = types.SimpleNamespace(
        Device=lambda device_id=0: contextlib.nullcontext(),
        get_current_stream=lambda: types.SimpleNamespace(ptr=streams[-1]),
        Stream=stream_class,
        runtime=types.SimpleNamespace(getDevice=lambda: 0),
    )
    return types.SimpleNamespace(
        cuda=cuda, ndarray=type("NotACupyArray", (), {}), float64=np.float64, int64=np.int64, zeros=zeros,
        ascontiguousarray=ascontiguousarray,
        maximum=logged("maximum", np.maximum), where=logged("where", np.where), ops=ops, on_stream=on_stream)
