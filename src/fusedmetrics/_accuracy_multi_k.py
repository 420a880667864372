"""Top-k accuracy for several k at once: ``accuracy_counts(y, t, ignore_label, k=(1, 5))``.

On the CPU one pass over the scores: the kernels rank each row's target (up to
the largest k, capped at C) into a histogram, and correct(k) = rows of rank < k.
Device arrays take one accuracy pass per k (no host synchronisation either way).
"""
import numpy as np

from . import _core, _layout
from ._accuracy import host_view
from ._interop import is_device_array, unwrap

_PLANS = _layout.PlanCache()  # one plan per call shape, as for accuracy


def _check_out(out, n_k, device):
    if out is None:
        return None
    if is_device_array(out) != device or out.dtype != np.int64 or tuple(out.shape) != (n_k, 2):
        raise ValueError("out must be an int64 array of shape (%d, 2) on y's device; got %s"
                         % (n_k, "dtype %s, shape %s" % (out.dtype, tuple(out.shape))
                            if hasattr(out, "dtype") else type(out).__name__))
    if not device and not out.flags.writeable:
        raise ValueError("out must be writeable")
    return out


def _histogram(y, t, ignore_label, kmax):
    key = None
    if _layout.cacheable(y, t, ignore_label):
        key = (y.dtype, y.shape, y.strides, t.dtype, t.shape, t.strides, ignore_label, kmax)
        plan = _PLANS.get(key)
        if plan is not None:
            return plan.count(y, t)
    y, t, y_code, t_code, view, has_ignore, ignore, copied = host_view(y, t, ignore_label)
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
    out = _check_out(out, len(ks), device)
    if device:
        from ._accuracy import accuracy_counts
        import cupy
        result = cupy.stack([accuracy_counts(y, t, ignore_label, k=k) for k in ks])
    else:
        hist = _histogram(y, t, ignore_label, max(ks))
        total = hist[-1]
        below = np.concatenate([[0], np.cumsum(hist[:-1])])  # below[r] = rows of rank < r
        result = np.array([[below[min(k, len(below) - 2)], total] for k in ks], dtype=np.int64)
    if out is None:
        return result
    out += result
    return out
