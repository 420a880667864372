"""Top-k accuracy for several k at once: ``accuracy_counts(y, t, ignore_label, k=(1, 5))``.

On the CPU one pass over the scores: the kernels rank each row's target (up to
the largest k, capped at C) into a histogram, and correct(k) = rows of rank < k.
Device arrays take one accuracy pass per k, each launched on y's stream straight
into its row of the result (no host synchronisation, nothing on another stream).
"""
import numpy as np

from . import _accuracy, _core, _layout
from ._accuracy import host_view
from ._interop import is_device_array, is_torch_tensor, torch_host_view, torch_out_view, unwrap

_PLANS = _layout.PlanCache()  # one plan per call shape, as for accuracy


def _check_out(out, n_k):
    if out is None:
        return None
    if is_device_array(out) or out.dtype != np.int64 or tuple(out.shape) != (n_k, 2):
        raise ValueError("out must be an int64 array of shape (%d, 2) on y's device; got %s"
                         % (n_k, "dtype %s, shape %s" % (out.dtype, tuple(out.shape))
                            if hasattr(out, "dtype") else type(out).__name__))
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    if _layout.overlaps_itself(out):
        raise ValueError("out must not overlap itself; got an int64 %s view with strides %s"
                         % (tuple(out.shape), out.strides))
    return out


class _Device:
    __slots__ = ("id",)

    def __init__(self, device_id):
        self.id = device_id


class _CounterRow:
    """One row of the device result, seen as the (2,) int64 counter the single-k path adds into."""

    __slots__ = ("ptr", "device")

    def __init__(self, ptr, device_id):
        self.ptr, self.device = ptr, _Device(device_id)

    @property
    def __cuda_array_interface__(self):
        return {"shape": (2,), "typestr": "<i8", "strides": None, "data": (self.ptr, False), "version": 3}


def _device_counts(y, t, ignore_label, ks, out):
    """Row i of out += [correct for ks[i], total], one launch per k on y's stream. A new
    result is zeroed on that stream (a torch tensor for torch input); every argument is
    checked before the first launch."""
    from . import _device_accuracy
    from ._device_inputs import out_ptr
    from ._device_streams import zeros
    from ._interop import describe, is_torch_tensor
    torch_in = is_torch_tensor(y)
    yd = describe(y, "y")
    if out is None and torch_in:
        import torch
        out = torch.zeros((len(ks), 2), dtype=torch.int64, device=y.device)
    elif out is None:
        out = zeros((len(ks), 2), yd.device_id, yd.stream_ptr)
    base = out_ptr(out, (len(ks), 2), yd.device_id)
    for i, k in enumerate(ks):
        _device_accuracy.counts(y, t, ignore_label, k, _CounterRow(base + 16 * i, yd.device_id))
    return out


def _histogram(y, t, ignore_label, kmax, y_dtype=None):
    """y_dtype: the scores' dtype when y is a view of another one (torch bfloat16 as int16)."""
    key = None
    if _layout.cacheable(y, t, ignore_label):
        key = (y.dtype if y_dtype is None else y_dtype, y.shape, y.strides, t.dtype, t.shape, t.strides,
               ignore_label, kmax)
        plan = _PLANS.get(key)
        if plan is not None:
            return plan.count(y, t)
    y, t, y_code, t_code, view, has_ignore, ignore, copied = host_view(y, t, ignore_label, y_dtype)
    # A rank is at most C - 1: bins beyond C would stay empty.
    kmax = max(1, min(kmax, view.C))
    plan = _core.RankHistogramPlan(y_code, view.N, view.C, view.M, view.y_strides, t_code, view.t_strides,
                                   has_ignore, ignore, kmax)
    _PLANS.put(None if copied else key, plan)
    return plan.count(y, t)


def counts(y, t, ignore_label, ks, out):
    """int64 (len(ks), 2): row i = [correct for ks[i], total]; ADDED into out if given."""
    if not ks:
        raise ValueError("k must be an integer >= 1 or a non-empty sequence of them; got an empty sequence")
    y, t = unwrap(y), unwrap(t)
    device = is_device_array(y)
    if device != is_device_array(t):
        raise ValueError("y and t must be on the same device")
    if device:
        return _device_counts(y, t, ignore_label, ks, out)
    if is_torch_tensor(y):
        return _torch_host_counts(y, t, ignore_label, ks, out)
    return _host_counts(y, t, ignore_label, ks, out)


def _host_counts(y, t, ignore_label, ks, out, y_dtype=None):
    out = _check_out(out, len(ks))
    hist = _histogram(y, t, ignore_label, max(ks), y_dtype)
    total = hist[-1]
    below = np.concatenate([[0], np.cumsum(hist[:-1])])  # below[r] = rows of rank < r
    result = np.array([[below[min(k, len(below) - 2)], total] for k in ks], dtype=np.int64)
    if out is None:
        return result
    out += result
    return out


def _torch_histogram_plan(y, t, ignore_label, kmax):
    """The RankHistogramPlan of a torch (y, t) layout, False when the layout needs copies,
    None when these tensors are misaligned (others of this layout may not be). Raises the
    usual errors for bad dtypes and shapes."""
    y_view, y_dtype = torch_host_view(y, "y")
    t_view = torch_host_view(t, "t")[0]
    _, _, y_code, t_code, view, has_ignore, ignore, copied = host_view(y_view, t_view, ignore_label, y_dtype)
    if copied:
        return False if y_view.flags.aligned and t_view.flags.aligned else None
    return _core.RankHistogramPlan(y_code, view.N, view.C, view.M, view.y_strides, t_code, view.t_strides,
                                   has_ignore, ignore, max(1, min(kmax, view.C)))


def _torch_host_counts(y, t, ignore_label, ks, out):
    """CPU tensors (requires_grad, bfloat16 and strided ones included), as for a single k: a
    torch int64 result, or the counts added into a torch (or numpy) int64 (len(ks), 2) out
    on the host. Read in place through torch's DLPack exchange table where it serves the
    call (see _accuracy.torch_exchange), else through numpy views of their memory."""
    import torch  # already imported: y is a tensor

    exchange = _accuracy.torch_exchange(torch) if type(y) is torch.Tensor else False
    if exchange is not False:
        counts = exchange.topk(y, t, ignore_label, ks, out)
        if counts is None:  # a layout not seen yet
            kmax = max(ks)
            plan = _torch_histogram_plan(y, t, ignore_label, kmax)
            if plan is not None:
                exchange.remember_topk(y, t, ignore_label, kmax, plan)
                counts = exchange.topk(y, t, ignore_label, ks, out)
        if counts is not None and counts is not False:
            return counts
    y_view, y_dtype = torch_host_view(y, "y")
    t_view = torch_host_view(t, "t")[0] if is_torch_tensor(t) else t
    if out is None:
        return torch.from_numpy(_host_counts(y_view, t_view, ignore_label, ks, None, y_dtype))
    if not is_torch_tensor(out):
        return _host_counts(y_view, t_view, ignore_label, ks, out, y_dtype)
    if out.device.type != "cpu" or out.dtype != torch.int64 or tuple(out.shape) != (len(ks), 2):
        raise ValueError("out must be an int64 array of shape (%d, 2) on y's device (the host); got dtype %s, "
                         "shape %s on %s" % (len(ks), out.dtype, tuple(out.shape), out.device))
    _host_counts(y_view, t_view, ignore_label, ks, torch_out_view(out), y_dtype)  # adds in place
    return out
