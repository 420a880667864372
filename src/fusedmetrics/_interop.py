"""Reading arrays from other libraries: the one place that knows their protocols.

Taken: numpy and the buffer protocol, ``__cuda_array_interface__`` (CuPy, Numba,
...), torch tensors (CPU or CUDA, read in place through ``detach()``, so
``requires_grad`` is never an error), other ``__dlpack__`` producers (JAX,
numpy, CuPy) and ``chainer.Variable``. The kernels' callers see a numpy array on
the host or one ``DeviceArray`` on a GPU.

CuPy and torch are optional and never imported here: torch is recognised only
once the caller has imported it (``sys.modules``), and torch users need no CuPy.

Streams. Kernels run on the stream where the inputs were produced:
- torch tensors: ``torch.cuda.current_stream()`` of the tensor's device;
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
    "BFLOAT16",
    "DeviceArray",
    "cuda_module",
    "current_stream_ptr",
    "describe",
    "from_dlpack",
    "host_readable",
    "is_cupy_array",
    "is_device_array",
    "is_torch_tensor",
    "loaded_cupy",
    "loaded_torch",
    "require_cupy",
    "to_host",
    "torch_host_view",
    "torch_readable",
    "unwrap",
]


def unwrap(x):
    """A ``chainer.Variable`` (or ``Parameter``, or a look-alike class named Variable)
    stands for its ``.array``; anything else is returned as is. Duck-typed by class
    name so that the core never imports Chainer."""
    if hasattr(x, "array") and any(cls.__name__ == "Variable" for cls in type(x).__mro__):
        return x.array
    return x


def is_device_array(obj) -> bool:
    """True for a CUDA torch tensor or an object exposing ``__cuda_array_interface__``
    (CuPy, Numba, ...). torch is asked directly: its interface raises RuntimeError on
    tensors that require grad."""
    if is_torch_tensor(obj):
        return obj.is_cuda
    return hasattr(obj, "__cuda_array_interface__")


def loaded_torch():
    """torch if it is already imported, else None (never imports it)."""
    return sys.modules.get("torch")


def is_torch_tensor(obj) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


class _NamedDtype:
    """A dtype numpy lacks (bfloat16 without ml_dtypes): what the dtype table needs."""

    __slots__ = ("name", "itemsize", "kind")

    def __init__(self, name, itemsize, kind):
        self.name, self.itemsize, self.kind = name, itemsize, kind

    def __eq__(self, other):
        return getattr(other, "name", other) == self.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return self.name

    isnative = True


BFLOAT16 = _NamedDtype("bfloat16", 2, "V")
_TORCH_DTYPES = {}  # torch.dtype -> numpy dtype (or BFLOAT16)


def _numpy_dtype_of_torch(tdtype):
    dtype = _TORCH_DTYPES.get(tdtype)
    if dtype is None:
        name = str(tdtype).rpartition(".")[2]  # 'torch.float32' -> 'float32'
        if name == "bfloat16":
            ml_dtypes = sys.modules.get("ml_dtypes")
            dtype = np.dtype(ml_dtypes.bfloat16) if ml_dtypes is not None else BFLOAT16
        else:
            try:
                dtype = np.dtype("bool" if name == "bool" else name)
            except TypeError:
                raise TypeError(f"torch dtype {tdtype} has no numpy equivalent") from None
        _TORCH_DTYPES[tdtype] = dtype
    return dtype


def torch_readable(t):
    """t detached, with a pending negation or conjugation applied (their data pointer
    holds the un-negated values). detach() shares the storage: no copy, no autograd."""
    t = t.detach()
    if t.is_neg() or t.is_conj():
        t = t.resolve_conj().resolve_neg()
    return t


def torch_host_view(t, what="the tensor"):
    """(numpy view of a CPU tensor's memory, its dtype for the kernels); ``what`` names
    the argument in errors.

    bfloat16 has no numpy dtype without ml_dtypes: the view is int16 and the dtype
    ``BFLOAT16``, which the dtype table reads as bfloat16."""
    if t.is_cuda:
        raise ValueError(f"expected a CPU tensor; got one on {t.device}")
    try:  # detach() costs ~1 us: only when numpy() would refuse
        array = (t.detach() if t.requires_grad else t).numpy()
    except (RuntimeError, TypeError):  # neg/conj bit, bfloat16, another device (meta, mps)
        if t.device.type != "cpu":
            raise ValueError(f"expected a CPU tensor; got one on {t.device}") from None
        t = torch_readable(t)
        torch = sys.modules["torch"]
        if t.dtype is torch.bfloat16:
            return t.view(torch.int16).numpy(), _numpy_dtype_of_torch(t.dtype)
        try:
            array = t.numpy()
        except TypeError:  # float8, complex32, quantized ...: nothing numpy (or we) can read
            raise TypeError(f"{what} has dtype {t.dtype}, which fusedmetrics does not take (scores: float16, "
                            f"bfloat16, float32, float64; labels: integers); got {what}.shape "
                            f"{tuple(t.shape)}") from None
    return array, array.dtype


def torch_out_view(out):
    """The numpy view of a CPU int64 torch ``out``'s memory, which the counts are added into."""
    try:
        return out.numpy()
    except RuntimeError as exc:  # a lazy negation or conjugation: no plain memory to add into
        raise ValueError("out must be a plain int64 tensor (no pending negation); %s" % exc) from None


def from_dlpack(obj):
    """A numpy (host) or CuPy (device) array for any other ``__dlpack__`` producer
    (JAX, ...), without a copy; objects already readable are returned as is."""
    if (isinstance(obj, np.ndarray) or is_torch_tensor(obj) or not hasattr(obj, "__dlpack__")
            or hasattr(obj, "__cuda_array_interface__")):
        return obj
    try:
        device_type = int(obj.__dlpack_device__()[0])
    except Exception:  # noqa: BLE001 - no device query: try the host
        device_type = 1
    if device_type in (1, 3):  # kDLCPU, kDLCUDAHost
        return np.from_dlpack(obj)
    return require_cupy().from_dlpack(obj)


def host_readable(x, what="the tensor"):
    """(numpy array, dtype for the kernels) of a host input, read in place: a CPU
    torch tensor through ``torch_host_view`` (bfloat16 as an int16 view: the dtype
    says what it holds), another ``__dlpack__`` producer through ``from_dlpack``,
    anything else as it is (the caller checks it). ``what`` names it in errors."""
    if is_torch_tensor(x):
        return torch_host_view(x, what)
    x = from_dlpack(x)
    return x, getattr(x, "dtype", None)


def loaded_cupy():
    """CuPy if it is already imported, else None (never imports it)."""
    return sys.modules.get("cupy")


def require_cupy():
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError("this operation on device arrays needs CuPy (pip install cupy-cuda13x)") from exc
    return cupy


def is_cupy_array(obj) -> bool:
    cupy = loaded_cupy()
    return cupy is not None and isinstance(obj, cupy.ndarray)


def cuda_module():
    """The compiled CUDA extension, or a clear error when it was not built."""
    try:
        from . import _cuda as module
    except ImportError as exc:  # built without CUDA (FUSEDMETRICS_CUDA=OFF or no nvcc)
        raise RuntimeError(
            "fusedmetrics was built without its CUDA kernels (fusedmetrics._cuda is missing); "
            "reinstall with a CUDA compiler available to use device arrays"
        ) from exc
    return module


def to_host(x):
    """A numpy copy of a device array (synchronises: never on a hot path)."""
    if is_torch_tensor(x):
        return x.detach().cpu().numpy()
    get = getattr(x, "get", None)  # cupy.ndarray
    if callable(get):
        return get()
    return require_cupy().asarray(x).get()  # CuPy reads any __cuda_array_interface__


class DeviceArray:
    """What the kernels need to know about a device array.

    ptr: address of the first element; shape: tuple; strides: bytes, never None;
    dtype: numpy dtype; device_id: int; stream_ptr: the stream to launch on (int);
    readonly: the interface's ``data[1]`` flag (False for CuPy and torch).
    """

    __slots__ = ("ptr", "shape", "strides", "dtype", "device_id", "stream_ptr", "readonly")

    def __init__(self, ptr, shape, strides, dtype, device_id, stream_ptr, readonly=False):
        self.ptr = ptr
        self.shape = shape
        self.strides = strides
        self.dtype = dtype
        self.device_id = device_id
        self.stream_ptr = stream_ptr
        self.readonly = readonly

    @property
    def size(self):
        n = 1
        for extent in self.shape:
            n *= extent
        return n

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


def _dtype_from_interface(obj, cai, what):
    typestr = cai["typestr"]
    if "bfloat16" in typestr:
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    dtype = np.dtype(typestr)
    if not dtype.isnative:
        # The kernels read native order; the host path converts, but a device copy
        # would be an unordered allocation on someone else's stream: refuse instead.
        raise TypeError(f"{what} has byte-swapped elements (typestr {typestr!r}); device arrays must be in "
                        "native byte order")
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


def current_stream_ptr(cupy, device_id):
    """CuPy's current stream of device_id (without switching device when it is current)."""
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
        owner = cuda_module().pointer_device(ptr)
    except RuntimeError:
        owner = -1
    if owner >= 0:
        return owner
    cupy = loaded_cupy()
    if cupy is not None:
        try:
            return cupy.cuda.runtime.getDevice()
        except Exception:  # noqa: BLE001 - CuPy without a driver: no current device
            pass
    return 0


def describe(obj, what="the device array") -> DeviceArray:
    """Pointer, shape, byte strides, dtype, device and launch stream of a device array.

    what: the argument's name, for error messages.

    Device of a non-CuPy object: its ``.device`` (``.id`` or ``.index``) when it has
    one, else the owner of the pointer (cudaPointerGetAttributes), else CuPy's
    current device if CuPy is imported, else 0. Stream: see the module docstring.
    """
    if is_torch_tensor(obj):
        return _describe_torch(obj)
    if is_cupy_array(obj):
        device_id = obj.device.id
        return DeviceArray(obj.data.ptr, obj.shape, obj.strides, obj.dtype, device_id,
                           current_stream_ptr(loaded_cupy(), device_id))
    try:
        cai = obj.__cuda_array_interface__
    except AttributeError:
        raise TypeError(f"expected a device array with __cuda_array_interface__, got {type(obj).__name__}") from None
    shape = tuple(int(s) for s in cai["shape"])
    dtype = _dtype_from_interface(obj, cai, what)
    strides = cai.get("strides")
    strides = _c_strides(shape, dtype.itemsize) if strides is None else tuple(int(s) for s in strides)
    data = cai["data"]
    ptr = int(data[0] or 0)
    device_id = _device_of(obj, ptr)
    stream = cai.get("stream")
    if stream is None:
        stream = 0
        cupy = loaded_cupy()
        if cupy is not None:
            try:
                stream = current_stream_ptr(cupy, device_id)
            except Exception:  # noqa: BLE001 - CuPy without a driver: legacy default stream
                stream = 0
    return DeviceArray(ptr, shape, strides, dtype, device_id, int(stream), bool(data[1]))


def _describe_torch(t):
    """A CUDA tensor in place; the stream is torch's current stream of its device.
    Callers pass ``torch_readable(t)`` when t may carry a neg/conj bit."""
    if not t.is_cuda:
        raise TypeError(f"expected a CUDA tensor; got one on {t.device}")
    dtype = _numpy_dtype_of_torch(t.dtype)
    itemsize = t.element_size()
    device_id = t.get_device()
    stream = sys.modules["torch"].cuda.current_stream(device_id).cuda_stream
    return DeviceArray(t.data_ptr(), tuple(t.shape), tuple(s * itemsize for s in t.stride()), dtype,
                       device_id, int(stream))
