"""Confusion-matrix counts on device arrays: one cached ``_cuda.ConfusionPlan`` per
call shape, checked with the host path's rules; one launch on y's stream, no host
synchronisation (see ``_device_accuracy``). Every argument is checked before
anything is queued, so a refused call changes nothing; when t's stream differs
from y's, the launch stream first waits on it (an event), and a matrix this call
allocates is zeroed on the launch stream."""
import numpy as np

from . import _confusion_host, _layout
from ._device_streams import on_stream, wait_for, zeros
from ._interop import cuda_module, describe, is_device_array, is_torch_tensor, require_cupy, torch_readable

_PLANS = {}
_MAX_PLANS = 256


def _plan(yd, td, num_classes, ignore_label):
    key = (yd.dtype, yd.shape, yd.strides, td.dtype, td.shape, td.strides, num_classes, ignore_label)
    plan = _PLANS.get(key)
    if plan is not None:
        return plan
    pred_code, y_code, t_code = _confusion_host.check_arrays(yd.dtype, yd.shape, td.dtype, td.shape, num_classes)
    has_ignore, ignore = _layout.ignore_value(ignore_label, td.dtype)
    view = _confusion_host.normalise(pred_code, yd.shape, yd.strides, yd.dtype.itemsize, td.shape, td.strides,
                                     td.dtype.itemsize)
    if view.y_contiguous_copy or view.t_contiguous_copy:
        return view
    plan = cuda_module().ConfusionPlan(y_code, pred_code, view.N, num_classes, view.M, view.y_strides, t_code,
                                       view.t_strides, has_ignore, ignore)
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def _device_ptr(array, shape, device_id, name):
    """Pointer of a C-contiguous int64 array of this shape on device_id."""
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


def counts(y, t, num_classes, ignore_label, out, invalid):
    """Adds the counts of device y against device t into out (when None, a new zeroed
    matrix: a torch tensor for torch y, else a CuPy array) and the out-of-range count into ``invalid`` (a 0-d int64
    device array; when None such samples are only left out). Returns out."""
    torch_in = is_torch_tensor(y)
    if torch_in:  # a pending negation would flip the argmax: read the values it stands for
        y = torch_readable(y)
    if is_torch_tensor(t):
        t = torch_readable(t)
    yd, td = describe(y, "y"), describe(t, "t")
    if yd.device_id != td.device_id:
        raise ValueError("y and t must be on the same device; got y on GPU %d and t on GPU %d"
                         % (yd.device_id, td.device_id))
    plan = _plan(yd, td, num_classes, ignore_label)
    shape = (num_classes, num_classes)
    # Checked before the copies below as well: a refused out or invalid queues nothing.
    out_ptr = None if out is None else _device_ptr(out, shape, yd.device_id, "out")
    invalid_ptr = 0 if invalid is None else _device_ptr(invalid, (), yd.device_id, "invalid")
    if isinstance(plan, _layout.View) and (torch_in or is_torch_tensor(t)):  # torch copies on its own stream
        y = y.contiguous() if plan.y_contiguous_copy else y
        t = t.contiguous() if plan.t_contiguous_copy else t
        return counts(y, t, num_classes, ignore_label, out, invalid)
    if isinstance(plan, _layout.View):  # axes that cannot be walked as one: copy, then count
        # The copies run on y's stream, after t's (a foreign array's data is ready
        # there, not on CuPy's current stream); they are then CuPy arrays on it.
        cupy = require_cupy()
        wait_for(td.stream_ptr, yd.stream_ptr, yd.device_id)
        with on_stream(cupy, yd.stream_ptr, yd.device_id):
            y = cupy.ascontiguousarray(y) if plan.y_contiguous_copy else y
            t = cupy.ascontiguousarray(t) if plan.t_contiguous_copy else t
            return counts(y, t, num_classes, ignore_label, out, invalid)
    if out is None and torch_in:  # torch users need no CuPy; zeroed on torch's current stream, the launch's
        import torch

        out = torch.zeros(shape, dtype=torch.int64, device=y.device)
        out_ptr = out.data_ptr()
    elif out is None:
        out = zeros(shape, yd.device_id, yd.stream_ptr)
        out_ptr = out.data.ptr
    wait_for(td.stream_ptr, yd.stream_ptr, yd.device_id)  # labels ready on another stream: order, never sync
    plan.launch(yd.ptr, td.ptr, out_ptr, invalid_ptr, yd.device_id, yd.stream_ptr)
    return out
