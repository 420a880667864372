"""Accuracy counts on device arrays: one cached ``_cuda.AccuracyPlan`` per call shape.

Every argument is checked once, here, with the same ``_layout`` rules as the host
path; the plan (built once per dtypes/shapes/strides/ignore/k) holds the result of
those checks, so a repeated call shape costs one ``describe`` per array and one
launch. Nothing synchronises with the host: the counts stay on the device and the
launch goes to y's stream (see ``_interop``), which lets a caller capture the call
in a CUDA graph (with ``out`` given: a new counter is an allocation). When t's stream differs, the launch stream first waits on it (an
event, no host sync), so labels produced there are complete before they are read.
"""
import numpy as np

from . import _layout
from ._device_inputs import count_on_copies, readable_pair
from ._device_inputs import out_ptr as device_out_ptr
from ._device_streams import on_stream, wait_for, zeros
from ._interop import cuda_module, describe, is_torch_tensor, require_cupy

# As for the host plans in _accuracy: a training loop repeats a few call shapes.
_PLANS = _layout.PlanCache()


def _plan(yd, td, ignore_label, k):
    """The plan for these array descriptions, or the ``_layout.View`` of the copies needed first."""
    key = (yd.dtype, yd.shape, yd.strides, td.dtype, td.shape, td.strides, ignore_label, k) \
        if _layout.plain_ignore(ignore_label) else None
    plan = _PLANS.get(key)
    if plan is not None:
        return plan
    y_code, t_code = _layout.check_dtypes(yd.dtype, td.dtype, yd.shape, td.shape)
    _layout.check_shapes(yd.shape, td.shape)
    has_ignore, ignore = _layout.ignore_value(ignore_label, td.dtype)
    view = _layout.normalise(yd.shape, yd.strides, yd.dtype.itemsize, td.shape, td.strides, td.dtype.itemsize)
    if view.y_contiguous_copy or view.t_contiguous_copy:
        return view
    plan = cuda_module().AccuracyPlan(y_code, view.N, view.C, view.M, view.y_strides, t_code, view.t_strides,
                                      has_ignore, ignore, k)
    _PLANS.put(key, plan)
    return plan


def counts(y, t, ignore_label, k, out):
    """Adds [correct, total] of device scores y against device labels t into out
    (a zeroed counter on y's stream when out is None); returns out.

    torch tensors need no CuPy: the counter is a torch tensor, allocated and zeroed
    on torch's current stream, which is also the launch stream."""
    torch_in = is_torch_tensor(y)
    y, t, yd, td = readable_pair(y, t)
    plan = _plan(yd, td, ignore_label, k)
    # Checked before any copy below as well: a refused out queues nothing.
    out_ptr = None if out is None else device_out_ptr(out, (2,), yd.device_id)
    if isinstance(plan, _layout.View):  # axes that cannot be walked as one: copy, then count
        return count_on_copies(plan, y, t, yd, td, lambda y, t: counts(y, t, ignore_label, k, out))
    if out is None and torch_in:
        import torch

        out = torch.zeros(2, dtype=torch.int64, device=y.device)
        out_ptr = out.data_ptr()
    elif out is None:
        out = zeros(2, yd.device_id, yd.stream_ptr)
        out_ptr = out.data.ptr
    wait_for(td.stream_ptr, yd.stream_ptr, yd.device_id)  # labels ready on another stream: order, never sync
    plan.launch(yd.ptr, td.ptr, out_ptr, yd.device_id, yd.stream_ptr)
    return out


def accuracy_value(y, t, ignore_label, value_of):
    """``value_of(counts, dtype)`` for device y and t, on the stream the counts were
    launched on: for a foreign ``__cuda_array_interface__`` array that is the
    interface's stream, not CuPy's current one, and the division must follow the
    launch there. The dtype comes from the interface (y may have no ``.dtype``)."""
    if is_torch_tensor(y):
        return value_of(counts(y, t, ignore_label, 1, None), y.dtype)
    yd = describe(y, "y")
    got = counts(y, t, ignore_label, 1, None)
    with on_stream(require_cupy(), yd.stream_ptr, yd.device_id):
        return value_of(got, yd.dtype)
