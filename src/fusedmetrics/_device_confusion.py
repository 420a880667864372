"""Confusion-matrix counts on device arrays: one cached ``_cuda.ConfusionPlan`` per
call shape, checked with the host path's rules; one launch on y's stream, no host
synchronisation (see ``_device_accuracy``). Every argument is checked before
anything is queued, so a refused call changes nothing; when t's stream differs
from y's, the launch stream first waits on it (an event), and a matrix this call
allocates is zeroed on the launch stream."""
import numpy as np

from . import _confusion_host, _layout
from ._device_inputs import count_on_copies, readable_pair
from ._device_inputs import out_ptr as device_out_ptr
from ._device_streams import wait_for, zeros
from ._interop import cuda_module, is_torch_tensor

_PLANS = _layout.PlanCache()


def _plan(yd, td, num_classes, ignore_label):
    """The plan for these array descriptions, or the ``_layout.View`` of the copies needed first."""
    key = (yd.dtype, yd.shape, yd.strides, td.dtype, td.shape, td.strides, num_classes, ignore_label) \
        if _layout.plain_ignore(ignore_label) else None
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
    _PLANS.put(key, plan)
    return plan


def counts(y, t, num_classes, ignore_label, out, invalid):
    """Adds the counts of device y against device t into out (when None, a new zeroed
    matrix: a torch tensor for torch y, else a CuPy array) and the out-of-range count into ``invalid`` (a 0-d int64
    device array; when None such samples are only left out). Returns out."""
    torch_in = is_torch_tensor(y)
    y, t, yd, td = readable_pair(y, t)
    plan = _plan(yd, td, num_classes, ignore_label)
    shape = (num_classes, num_classes)
    # Checked before any copy below as well: a refused out or invalid queues nothing.
    out_ptr = None if out is None else device_out_ptr(out, shape, yd.device_id)
    invalid_ptr = 0 if invalid is None else device_out_ptr(invalid, (), yd.device_id, "invalid")
    if isinstance(plan, _layout.View):  # axes that cannot be walked as one: copy, then count
        return count_on_copies(plan, y, t, yd, td,
                               lambda y, t: counts(y, t, num_classes, ignore_label, out, invalid))
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
