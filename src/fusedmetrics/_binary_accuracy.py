"""Binary accuracy with ``chainer.functions.binary_accuracy``'s rule, from exact counts.

Rule: a score ``y >= 0`` predicts 1, anything else (a negative score, NaN) predicts
0; a sample is correct when its label equals the prediction; label -1 is ignored;
any other label (2, -2, ...) is counted and never correct. ``y.shape == t.shape``.
"""
import numpy as np

from . import _dtypes
from ._interop import from_dlpack, is_device_array, is_torch_tensor, loaded_torch, torch_readable, unwrap

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
    out; CuPy in, CuPy out without a host synchronisation; torch tensors (CPU or
    CUDA, any ``requires_grad``, bfloat16 too) in, a torch int64 tensor out on
    their device, counted by torch's own operations on its current stream (no
    CuPy, no synchronisation). Unlike Chainer, unsigned label dtypes are accepted
    (they have no -1: nothing is ignored).
    """
    y, t = from_dlpack(unwrap(y)), from_dlpack(unwrap(t))
    if is_torch_tensor(y) or is_torch_tensor(t):
        return _torch_counts(y, t, out)
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
    if is_device_array(out) != device:
        raise ValueError("out must be an int64 array of shape (2,) on y's device")
    if device:
        if out.dtype != np.int64 or tuple(out.shape) != (2,):
            raise ValueError("out must be an int64 array of shape (2,) on y's device")
        out += counts
    else:
        _add_host(out, counts)
    return out


def _add_host(out, counts):
    if not isinstance(out, np.ndarray) or out.dtype != np.int64 or out.shape != (2,):
        raise ValueError("out must be an int64 array of shape (2,) on y's device; got %s" % (
            ("dtype %s, shape %s" % (out.dtype, out.shape)) if isinstance(out, np.ndarray) else type(out).__name__))
    out += counts


def _as_tensor(x, torch, device):
    if is_torch_tensor(x):
        return torch_readable(x)  # detached: no autograd error, no copy
    if is_device_array(x) or device.type != "cpu":
        raise ValueError("y and t must be on the same device (one a torch tensor on %s)" % device)
    return torch.from_numpy(np.asarray(x))


def _torch_counts(y, t, out):
    """binary_accuracy_counts on torch tensors (a numpy partner on the host is viewed
    as one), with torch's operations: the same rule, on the tensors' device."""
    torch = loaded_torch()
    device = (y if is_torch_tensor(y) else t).device
    y, t = _as_tensor(y, torch, device), _as_tensor(t, torch, device)
    if y.device != t.device:
        raise ValueError("y and t must be on the same device; got y on %s and t on %s" % (y.device, t.device))
    if tuple(y.shape) != tuple(t.shape):
        raise ValueError("y and t must have the same shape; got y.shape %s and t.shape %s"
                         % (tuple(y.shape), tuple(t.shape)))
    if not y.is_floating_point():
        raise TypeError("y must hold float16, bfloat16, float32 or float64 scores; got y.dtype %s" % y.dtype)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError("t must hold integer labels; got t.dtype %s" % t.dtype)
    signed = t.dtype.is_signed
    if t.dtype not in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8):
        t = t.to(torch.int64)  # uint16-64 lack comparisons on some devices; values wrap, none equals 0 or 1 wrongly
    # (y >= 0) == t compares the bool prediction as 0/1 with the label.
    correct = torch.count_nonzero((y >= 0) == t)
    total = torch.count_nonzero(t != IGNORE_LABEL) if signed else correct.new_full((), t.numel())
    counts = torch.stack([correct, total]).to(torch.int64)
    if out is None:
        return counts
    if isinstance(out, np.ndarray) and y.device.type == "cpu":  # a numpy total beside CPU tensors
        _add_host(out, counts.numpy())
        return out
    if not is_torch_tensor(out) or out.device != y.device or out.dtype != torch.int64 or tuple(out.shape) != (2,):
        raise ValueError("out must be an int64 tensor of shape (2,) on %s; got %s" % (
            y.device, ("dtype %s, shape %s on %s" % (out.dtype, tuple(out.shape), out.device))
            if is_torch_tensor(out) else type(out).__name__))
    out += counts
    return out


def binary_accuracy_from_counts(counts, dtype):
    """``correct / max(total, 1)`` as a 0-d array of dtype on the counts' device
    (no host synchronisation for device counts; a torch tensor for torch counts)."""
    if is_torch_tensor(counts):
        torch = loaded_torch()
        value = counts[0].to(torch.float64) / counts[1].clamp(min=1).to(torch.float64)
        return value.to(dtype)
    if is_device_array(counts):
        import cupy
        value = counts[0].astype(cupy.float64) / cupy.maximum(counts[1], 1).astype(cupy.float64)
        return value.astype(dtype)
    return np.asarray(int(counts[0]) / max(int(counts[1]), 1), dtype=dtype)


def binary_accuracy(y, t):
    """What ``chainer.functions.binary_accuracy(y, t).array`` returns: a 0-d array of
    y's dtype, ``correct / max(total, 1)`` (all ignored or empty gives 0.0), computed
    from the exact counts (Chainer too divides integer counts, in float64)."""
    y = from_dlpack(unwrap(y))
    if not (is_device_array(y) or is_torch_tensor(y) or isinstance(y, np.ndarray)):
        y = np.asarray(y)
    return binary_accuracy_from_counts(binary_accuracy_counts(y, t), y.dtype)
