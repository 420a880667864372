"""Device-array plumbing for the CUDA kernels in ``fusedmetrics._cuda``.

Everything here passes raw device pointers and stream handles (integers) to the
extension. Nothing on the accuracy or ``DeviceMomentStore.add`` paths synchronises
with the host: no ``.get()``, no ``int()``/``bool()``/``float()`` of a device value,
no allocation once the moment table is large enough. That is what lets a caller
capture those calls in a CUDA graph.

CuPy is optional and imported lazily: this module imports without it, and
``describe`` works on any object with ``__cuda_array_interface__``.

Streams. Kernels run on the stream where the inputs were produced:
- CuPy arrays: CuPy's current stream of the array's device;
- other ``__cuda_array_interface__`` objects: the interface's ``stream`` entry when
  it is given (1 = legacy default stream, 2 = per-thread default stream, else a
  ``cudaStream_t``); when it is absent or None, CuPy's current stream of the
  device if CuPy is already imported, else 0 (the legacy default stream).
"""
from __future__ import annotations

import sys

import numpy as np

__all__ = [
    "DeviceArray",
    "DeviceMomentStore",
    "accuracy_counts_device",
    "describe",
    "is_device_array",
]

_INT64_MIN = -(1 << 63)
_INT64_END = 1 << 63
_U64 = 7  # label code of uint64 (csrc/semantics/dtypes.h)


def _cuda():
    """The compiled CUDA extension, or a clear error when it was not built."""
    try:
        from . import _cuda as module
    except ImportError as exc:  # built without CUDA (FUSEDMETRICS_CUDA=OFF or no nvcc)
        raise RuntimeError(
            "fusedmetrics was built without its CUDA kernels (fusedmetrics._cuda is missing); "
            "reinstall with a CUDA compiler available to use device arrays"
        ) from exc
    return module


def _loaded_cupy():
    """CuPy if it is already imported, else None (never imports it)."""
    return sys.modules.get("cupy")


def _require_cupy():
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError("this operation on device arrays needs CuPy (pip install cupy-cuda13x)") from exc
    return cupy


def _is_cupy_array(obj) -> bool:
    cupy = _loaded_cupy()
    return cupy is not None and isinstance(obj, cupy.ndarray)


def is_device_array(obj) -> bool:
    """True when obj exposes ``__cuda_array_interface__`` (CuPy, Numba, PyTorch CUDA tensors, ...)."""
    return hasattr(type(obj), "__cuda_array_interface__") or hasattr(obj, "__cuda_array_interface__")


class DeviceArray:
    """What the kernels need to know about a device array.

    ptr: address of the first element; shape: tuple; strides: bytes, never None;
    dtype: numpy dtype; device_id: int; stream_ptr: the stream to launch on (int).
    """

    __slots__ = ("ptr", "shape", "strides", "dtype", "device_id", "stream_ptr")

    def __init__(self, ptr, shape, strides, dtype, device_id, stream_ptr):
        self.ptr = ptr
        self.shape = shape
        self.strides = strides
        self.dtype = dtype
        self.device_id = device_id
        self.stream_ptr = stream_ptr

    def __repr__(self):
        return (
            f"DeviceArray(ptr={self.ptr:#x}, shape={self.shape}, strides={self.strides}, "
            f"dtype={self.dtype}, device_id={self.device_id}, stream_ptr={self.stream_ptr:#x})"
        )


def _c_strides(shape, itemsize):
    strides = []
    step = itemsize
    for extent in reversed(shape):
        strides.append(step)
        step *= max(int(extent), 1)
    return tuple(reversed(strides))


def _dtype_from_interface(obj, cai):
    typestr = cai["typestr"]
    if "bfloat16" in typestr:
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    dtype = np.dtype(typestr)
    # The interface spells bfloat16 as a 2-byte void ('<V2'); the object's own dtype
    # (CuPy, Numba) tells which it is.
    own = getattr(obj, "dtype", None)
    if isinstance(own, np.dtype) and own.itemsize == dtype.itemsize and (dtype.kind == "V" or own == dtype):
        return own
    if dtype.kind == "V":
        raise TypeError(
            f"cannot tell the element type of a device array with typestr {typestr!r}; "
            "bfloat16 arrays must carry a numpy-compatible .dtype (ml_dtypes.bfloat16)"
        )
    return dtype


def _current_stream_ptr(cupy, device_id):
    if cupy.cuda.runtime.getDevice() == device_id:
        return cupy.cuda.get_current_stream().ptr
    with cupy.cuda.Device(device_id):
        return cupy.cuda.get_current_stream().ptr


def _device_of(obj, ptr):
    device = getattr(obj, "device", None)
    for attr in ("id", "index"):  # CuPy Device.id, torch.device.index
        value = getattr(device, attr, None)
        if isinstance(value, int) and value >= 0:
            return value
    try:
        owner = _cuda().pointer_device(ptr)
    except RuntimeError:
        owner = -1
    if owner >= 0:
        return owner
    cupy = _loaded_cupy()
    if cupy is not None:
        try:
            return cupy.cuda.runtime.getDevice()
        except Exception:  # noqa: BLE001 - CuPy without a driver: no current device
            pass
    return 0


def describe(obj) -> DeviceArray:
    """Pointer, shape, byte strides, dtype, device and launch stream of a device array.

    Device of a non-CuPy object: its ``.device`` (``.id`` or ``.index``) when it has
    one, else the owner of the pointer (cudaPointerGetAttributes), else CuPy's
    current device if CuPy is imported, else 0. Stream: see the module docstring.
    """
    if _is_cupy_array(obj):
        cupy = _loaded_cupy()
        device_id = obj.device.id
        return DeviceArray(
            obj.data.ptr, obj.shape, obj.strides, obj.dtype, device_id, _current_stream_ptr(cupy, device_id)
        )
    try:
        cai = obj.__cuda_array_interface__
    except AttributeError:
        raise TypeError(f"expected a device array with __cuda_array_interface__, got {type(obj).__name__}") from None
    shape = tuple(int(s) for s in cai["shape"])
    dtype = _dtype_from_interface(obj, cai)
    strides = cai.get("strides")
    strides = _c_strides(shape, dtype.itemsize) if strides is None else tuple(int(s) for s in strides)
    ptr = int(cai["data"][0] or 0)
    device_id = _device_of(obj, ptr)
    stream = cai.get("stream")
    if stream is None:
        stream = 0
        cupy = _loaded_cupy()
        if cupy is not None:
            try:
                stream = _current_stream_ptr(cupy, device_id)
            except Exception:  # noqa: BLE001 - CuPy without a driver: legacy default stream
                stream = 0
    return DeviceArray(ptr, shape, strides, dtype, device_id, int(stream))


def _locate(obj):
    """(pointer, device id, launch stream) of a device array, with the CuPy fast path."""
    if _is_cupy_array(obj):
        device_id = obj.device.id
        return obj.data.ptr, device_id, _current_stream_ptr(_loaded_cupy(), device_id)
    info = describe(obj)
    return info.ptr, info.device_id, info.stream_ptr


def _check_out(out, device_id):
    """Pointer of a device int64 (2,) contiguous counter array on device_id."""
    info = describe(out)
    if info.dtype != np.int64 or info.shape != (2,) or info.strides != (8,):
        raise ValueError(
            "out must be a contiguous int64 device array of shape (2,), got "
            f"dtype={info.dtype}, shape={info.shape}, strides={info.strides}"
        )
    if info.device_id != device_id:
        raise ValueError(f"out is on device {info.device_id} but y is on device {device_id}")
    return info.ptr


def _normalise_ignore(t_code, has_ignore, ignore):
    """The ignore label as the kernels compare it: with the label's int64 reading.

    uint64 labels are read with their bits reinterpreted as int64, so an ignore value
    in [2^63, 2^64) is reinterpreted the same way. A value no label can take (outside
    int64) disables ignoring.
    """
    if not has_ignore:
        return False, 0
    ignore = int(ignore)
    if t_code == _U64 and _INT64_END <= ignore < (1 << 64):
        ignore -= 1 << 64
    if not _INT64_MIN <= ignore < _INT64_END:
        return False, 0
    return True, ignore


def accuracy_counts_device(y_obj, t_obj, y_code, t_code, N, C, M, ys, ts, has_ignore, ignore, k, out):
    """Adds [correct, total] of device logits y (N, C, M) against labels t (N, M) into out.

    ys = (ysN, ysC, ysM) and ts = (tsN, tsM) are ELEMENT strides. out: a device int64
    array of shape (2,) on y's device, or None (a zeroed one is allocated on the
    launch stream). One kernel launch on y's stream (see the module docstring); no
    synchronisation. Returns out.
    """
    cuda = _cuda()
    y_ptr, device_id, stream = _locate(y_obj)
    if _is_cupy_array(t_obj):
        t_ptr, t_device = t_obj.data.ptr, t_obj.device.id
    else:
        info = describe(t_obj)
        t_ptr, t_device = info.ptr, info.device_id
    if t_device != device_id:
        raise ValueError(f"y is on device {device_id} but t is on device {t_device}")
    if out is None:
        out = _zeros_counter(device_id, stream)
        out_ptr = out.data.ptr
    elif _is_cupy_array(out) and out.dtype == np.int64 and out.shape == (2,) and out.strides == (8,):
        if out.device.id != device_id:
            raise ValueError(f"out is on device {out.device.id} but y is on device {device_id}")
        out_ptr = out.data.ptr
    else:
        out_ptr = _check_out(out, device_id)
    has_ignore, ignore = _normalise_ignore(t_code, bool(has_ignore), ignore)
    cuda.accuracy_counts(
        y_ptr, int(y_code), int(N), int(C), int(M), int(ys[0]), int(ys[1]), int(ys[2]),
        t_ptr, int(t_code), int(ts[0]), int(ts[1]), has_ignore, ignore, int(k),
        out_ptr, device_id, stream,
    )
    return out


def _zeros_counter(device_id, stream_ptr):
    """A zeroed int64 (2,) CuPy array, zeroed on stream_ptr so the launch that follows
    on the same stream sees the zeros."""
    cupy = _require_cupy()
    with cupy.cuda.Device(device_id):
        if cupy.cuda.get_current_stream().ptr == stream_ptr:
            return cupy.zeros(2, dtype=cupy.int64)
        # Allocate under that stream too: CuPy's pool reuses blocks in the order
        # of the allocating stream, so a block taken on another stream could
        # still be in use there when the zeroing runs.
        with _foreign_stream(cupy, stream_ptr, device_id):
            return cupy.zeros(2, dtype=cupy.int64)


class _StreamHandle:
    """A raw stream handle in the CUDA stream protocol (``__cuda_stream__``)."""

    __slots__ = ("ptr",)

    def __init__(self, ptr):
        self.ptr = int(ptr)

    def __cuda_stream__(self):
        return (0, self.ptr)


def _foreign_stream(cupy, stream_ptr, device_id):
    """A CuPy stream object for a handle CuPy did not create (call it with
    device_id current). CuPy 14 deprecates ExternalStream (a DeprecationWarning
    on every call) in favour of Stream.from_external; older CuPy has only the former."""
    if hasattr(cupy.cuda.Stream, "from_external"):
        return cupy.cuda.Stream.from_external(_StreamHandle(stream_ptr))
    return cupy.cuda.ExternalStream(stream_ptr, device_id)


def _scalar_code(dtype):
    from ._dtypes import scalar_code

    return scalar_code(dtype)


class DeviceMomentStore:
    """Per-slot float64 moments (W, mean, M2) kept on one device.

    ``add`` folds the values of one ``DictSummary.add`` into the table with ONE
    kernel launch (per 128 values) on CuPy's current stream of the device, and
    never synchronises: the table grows on the device (allocation + device copy,
    both stream-ordered) when a slot beyond its capacity appears. Keep one store's
    calls on one stream, as with any CuPy code. Grow it before capturing a CUDA graph
    (an add() that needs to grow allocates).

    Deliberate difference from the host path: a negative or NaN *device* weight
    cannot raise without a host sync, so it turns that slot's state into NaN
    (host weights are still checked and raise ValueError).
    """

    def __init__(self, device_id):
        self.device_id = int(device_id)
        self._state = None  # cupy float64 (capacity, 3)
        self._capacity = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def _stream_ptr(self, cupy):
        return _current_stream_ptr(cupy, self.device_id)

    def _grow(self, cupy, needed):
        capacity = max(16, 2 * self._capacity, needed)
        with cupy.cuda.Device(self.device_id):
            table = cupy.zeros((capacity, 3), dtype=cupy.float64)
            if self._state is not None:
                table[: self._capacity] = self._state
        self._state = table
        self._capacity = capacity

    def _operand(self, value, what, index):
        """(ptr, scalar code) of a one-element device array on this store's device."""
        if _is_cupy_array(value):
            ptr, dev, dtype, size = value.data.ptr, value.device.id, value.dtype, value.size
        else:
            info = describe(value)
            size = 1
            for extent in info.shape:
                size *= extent
            ptr, dev, dtype = info.ptr, info.device_id, info.dtype
        if size != 1:
            raise ValueError(f"{what}[{index}] must be a scalar (one element), got {size} elements")
        if dev != self.device_id:
            raise ValueError(f"{what}[{index}] is on device {dev} but this summary's device values are on {self.device_id}")
        try:
            code = _scalar_code(dtype)
        except (TypeError, ValueError, KeyError):
            code = None
        if code is None:
            raise TypeError(f"{what}[{index}] has unsupported dtype {dtype} (expected a float, integer or bool scalar)")
        return ptr, code

    def add(self, slots, values, weights):
        """Folds values[i] with weights[i] into slot slots[i]; one launch, no sync.

        values: one-element device arrays (any float/int/bool dtype); weights: Python
        or numpy numbers (checked here: negative or NaN raises ValueError) or
        one-element device arrays. Everything is checked before anything is launched.
        """
        n = len(slots)
        if len(values) != n or len(weights) != n:
            raise ValueError(
                f"slots, values and weights must have the same length, got {n}, {len(values)}, {len(weights)}"
            )
        if n == 0:
            return
        cupy = _require_cupy()
        slots = [int(s) for s in slots]
        if min(slots) < 0:
            raise ValueError(f"slots must be >= 0, got {min(slots)}")
        x_ptrs, x_codes, w_ptrs, w_codes, w_consts = [], [], [], [], []
        for i in range(n):
            ptr, code = self._operand(values[i], "values", i)
            x_ptrs.append(ptr)
            x_codes.append(code)
            w = weights[i]
            if is_device_array(w):
                ptr, code = self._operand(w, "weights", i)
                w_ptrs.append(ptr)
                w_codes.append(code)
                w_consts.append(0.0)
            else:
                wf = float(w)
                if not wf >= 0.0:
                    raise ValueError(f"weights[{i}] must be >= 0, got {w!r}")
                w_ptrs.append(0)
                w_codes.append(0)
                w_consts.append(wf)
        needed = max(slots) + 1
        if needed > self._capacity:
            self._grow(cupy, needed)
        _cuda().summary_update(
            slots, x_ptrs, x_codes, w_ptrs, w_codes, w_consts,
            self._state.data.ptr, self.device_id, self._stream_ptr(cupy), self._capacity,
        )

    def states(self):
        """The live CuPy float64 (capacity, 3) table [W, mean, M2] (not a copy)."""
        cupy = _require_cupy()
        if self._state is None:
            with cupy.cuda.Device(self.device_id):
                return cupy.zeros((0, 3), dtype=cupy.float64)
        return self._state

    def statistics(self, slots, host_moments):
        """(means, stds) as CuPy float64 arrays of len(slots): the Chan merge of
        host_moments[i] (numpy (len, 3) [W, mean, M2], zeros where a key has no host
        part) with the device state of slots[i]; population std, variance clamped at
        0. One small upload and one launch; no synchronisation. A slot at or beyond
        the capacity has no device part (its device state counts as zeros)."""
        cupy = _require_cupy()
        n = len(slots)
        host = np.ascontiguousarray(host_moments, dtype=np.float64).reshape(n, 3)
        slot_arr = np.asarray(slots, dtype=np.int64).reshape(n)
        if n and slot_arr.min() < 0:
            raise ValueError(f"slots must be >= 0, got {int(slot_arr.min())}")
        with cupy.cuda.Device(self.device_id):
            means = cupy.empty(n, dtype=cupy.float64)
            stds = cupy.empty(n, dtype=cupy.float64)
            if n == 0:
                return means, stds
            if self._capacity == 0 or slot_arr.max() >= self._capacity:
                self._grow(cupy, int(slot_arr.max()) + 1)  # missing device parts read as zeros
            d_slots = cupy.asarray(slot_arr)
            d_host = cupy.asarray(host)
            _cuda().summary_statistics(
                self._state.data.ptr, self._capacity, d_slots.data.ptr, d_host.data.ptr, n,
                means.data.ptr, stds.data.ptr, self.device_id, self._stream_ptr(cupy),
            )
        return means, stds

    def to_host(self):
        """numpy float64 (capacity, 3) copy of the table. Synchronises (serialize, state_dict, merge only)."""
        if self._state is None:
            return np.zeros((0, 3), dtype=np.float64)
        return self._state.get()
