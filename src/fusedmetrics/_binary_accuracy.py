"""Binary accuracy with ``chainer.functions.binary_accuracy``'s rule, from exact counts.

Rule: a score ``y >= 0`` predicts 1, anything else (a negative score, NaN) predicts
0; a sample is correct when its label equals the prediction; label -1 is ignored;
any other label (2, -2, ...) is counted and never correct. ``y.shape == t.shape``.
"""
import numpy as np

from . import _dtypes
from ._interop import is_device_array, unwrap

IGNORE_LABEL = -1


def _check(y, t):
    if y.shape != t.shape:
        raise ValueError("y and t must have the same shape; got y.shape %s and t.shape %s"
                         % (tuple(y.shape), tuple(t.shape)))
    if _dtypes.logit_code(y.dtype) is None:
        raise TypeError("y must hold float16, bfloat16, float32 or float64 scores; got y.dtype %s" % y.dtype)
    if _dtypes.label_code(t.dtype) is None:
        raise TypeError("t must hold integer labels; got t.dtype %s" % t.dtype)


def binary_accuracy_counts(y, t, *, out=None):
    """An int64 array ``[correct, total]`` with ``F.binary_accuracy``'s rule.

    ``total`` counts the samples whose label is not -1. With ``out`` (int64 (2,) on
    y's device) the counts are ADDED into it and it is returned. numpy in, numpy
    out; CuPy in, CuPy out without a host synchronisation. Unlike Chainer, unsigned
    label dtypes are accepted (they have no -1: nothing is ignored).
    """
    y, t = unwrap(y), unwrap(t)
    device = is_device_array(y)
    if device != is_device_array(t):
        raise ValueError("y and t must be on the same device")
    if device:
        import cupy as xp
        y, t = xp.asarray(y), xp.asarray(t)
    else:
        xp = np
        y, t = np.asarray(y), np.asarray(t)
    _check(y, t)
    signed = t.dtype.kind == "i"
    # (y >= 0) == t compares the bool prediction as 0/1 with the label.
    correct = xp.count_nonzero((y >= 0) == t)
    total = xp.count_nonzero(t != IGNORE_LABEL) if signed else t.size
    counts = xp.stack([xp.asarray(correct, dtype=xp.int64), xp.asarray(total, dtype=xp.int64)])
    if out is None:
        return counts
    if is_device_array(out) != device or out.dtype != np.int64 or tuple(out.shape) != (2,):
        raise ValueError("out must be an int64 array of shape (2,) on y's device")
    out += counts
    return out


def binary_accuracy_from_counts(counts, dtype):
    """``correct / max(total, 1)`` as a 0-d array of dtype on the counts' device
    (no host synchronisation for device counts)."""
    if is_device_array(counts):
        import cupy
        value = counts[0].astype(cupy.float64) / cupy.maximum(counts[1], 1).astype(cupy.float64)
        return value.astype(dtype)
    return np.asarray(int(counts[0]) / max(int(counts[1]), 1), dtype=dtype)


def binary_accuracy(y, t):
    """What ``chainer.functions.binary_accuracy(y, t).array`` returns: a 0-d array of
    y's dtype, ``correct / max(total, 1)`` (all ignored or empty gives 0.0), computed
    from the exact counts (Chainer too divides integer counts, in float64)."""
    y = unwrap(y)
    if not (is_device_array(y) or isinstance(y, np.ndarray)):
        y = np.asarray(y)
    return binary_accuracy_from_counts(binary_accuracy_counts(y, t), y.dtype)
