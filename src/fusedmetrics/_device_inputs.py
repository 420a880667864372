"""The argument handling every device count shares (accuracy, confusion): torch tensors
made readable in place, both arrays described and on one device, a caller's int64
output checked, and the contiguous copies a layout that cannot be walked asks for."""
import numpy as np

from ._device_streams import on_stream, wait_for
from ._interop import describe, is_device_array, is_torch_tensor, require_cupy, torch_readable


def readable_pair(y, t):
    """(y, t, y's description, t's description): torch tensors read in place (a pending
    negation or conjugation resolved: it would flip the argmax), both on one device."""
    if is_torch_tensor(y):
        y = torch_readable(y)
    if is_torch_tensor(t):
        t = torch_readable(t)
    yd, td = describe(y, "y"), describe(t, "t")
    if yd.device_id != td.device_id:
        raise ValueError("y and t must be on the same device; got y on GPU %d and t on GPU %d"
                         % (yd.device_id, td.device_id))
    return y, t, yd, td


def out_ptr(array, shape, device_id, name="out"):
    """Pointer of a writable C-contiguous int64 array of this shape on device_id (counts are added into it)."""
    if not is_device_array(array):
        raise ValueError("%s must be on the same device as y (GPU %d); got a host array" % (name, device_id))
    d = describe(array, name)
    if d.readonly:
        raise ValueError("%s is read-only (its __cuda_array_interface__ data flag says so); the counts are "
                         "added into it" % name)
    contiguous = all(n == 1 or s == 8 * c for n, s, c in zip(shape, d.strides, _contiguous_strides(shape)))
    if d.dtype != np.int64 or tuple(d.shape) != shape or not contiguous or d.device_id != device_id:
        raise ValueError("%s must be a C-contiguous int64 array of shape %s on GPU %d; got dtype %s, shape %s, "
                         "strides %s on GPU %d" % (name, shape, device_id, d.dtype, tuple(d.shape), d.strides,
                                                   d.device_id))
    return d.ptr


def _contiguous_strides(shape):
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def count_on_copies(view, y, t, yd, td, count):
    """``count(y, t)`` with contiguous copies of the arrays ``view`` (a ``_layout.View``)
    marks. A torch tensor copies on torch's current stream; any other array on y's
    stream after t's (a foreign array's data is ready there, not on CuPy's current
    stream), becoming a CuPy array on it."""
    def copy_torch(a, needed):
        return a.contiguous() if needed and is_torch_tensor(a) else a

    y, t = copy_torch(y, view.y_contiguous_copy), copy_torch(t, view.t_contiguous_copy)
    y_copy = view.y_contiguous_copy and not is_torch_tensor(y)
    t_copy = view.t_contiguous_copy and not is_torch_tensor(t)
    if not (y_copy or t_copy):
        return count(y, t)
    cupy = require_cupy()
    wait_for(td.stream_ptr, yd.stream_ptr, yd.device_id)
    with on_stream(cupy, yd.stream_ptr, yd.device_id):
        y = cupy.ascontiguousarray(y) if y_copy else y
        t = cupy.ascontiguousarray(t) if t_copy else t
        return count(y, t)
