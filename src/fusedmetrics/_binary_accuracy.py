"""Binary accuracy with ``chainer.functions.binary_accuracy``'s rule, from exact counts.

Rule (csrc/semantics/binary_rule.h): a score ``y >= 0`` predicts 1, anything else
(a negative score, NaN) predicts 0; a sample is correct when its label equals the
prediction; label -1 is ignored; any other label (2, -2, ...) is counted and never
correct. ``y.shape == t.shape``.

Where it runs: host arrays (numpy, CPU torch tensors, buffers) in one fused pass of
the C++ kernel, read in place when both are C-contiguous (or both F-contiguous);
CuPy arrays with CuPy's operations and CUDA torch tensors with torch's, on their
current stream, without a host synchronisation.
"""
import numpy as np

from . import _core, _dtypes
from ._interop import (from_dlpack, host_readable, is_device_array, is_torch_tensor, loaded_torch, torch_readable,
                       unwrap)

IGNORE_LABEL = -1


def _check(y_dtype, y_shape, t_dtype, t_shape):
    if tuple(y_shape) != tuple(t_shape):
        raise ValueError("y and t must have the same shape; got y.shape %s and t.shape %s"
                         % (tuple(y_shape), tuple(t_shape)))
    if _dtypes.logit_code(y_dtype) is None:
        raise TypeError("y must hold float16, bfloat16, float32 or float64 scores; got y.dtype %s" % y_dtype)
    if _dtypes.label_code(t_dtype) is None:
        raise TypeError("t must hold integer labels; got t.dtype %s" % t_dtype)


def binary_accuracy_counts(y, t, *, out=None):
    """An int64 array ``[correct, total]`` with ``F.binary_accuracy``'s rule.

    ``total`` counts the samples whose label is not -1. With ``out`` (int64 (2,) on
    y's device) the counts are ADDED into it and it is returned. numpy in, numpy
    out; CuPy in, CuPy out without a host synchronisation; a torch tensor y (CPU or
    CUDA, any ``requires_grad``, bfloat16 too) in, a torch int64 tensor out on its
    device (CUDA ones counted by torch's operations on its current stream: no CuPy,
    no synchronisation). Unlike Chainer, unsigned label dtypes are accepted (they
    have no -1: nothing is ignored).
    """
    y, t = from_dlpack(unwrap(y)), from_dlpack(unwrap(t))
    device = is_device_array(y)
    if device != is_device_array(t):
        raise ValueError("y and t must be on the same device; got y on %s and t on %s"
                         % ("a GPU" if device else "the host", "the host" if device else "a GPU"))
    if device and (is_torch_tensor(y) or is_torch_tensor(t)):
        return _torch_counts(y, t, out)
    if device:
        return _cupy_counts(y, t, out)
    counts = _host_counts(y, t)
    if is_torch_tensor(y):
        return _torch_result(counts, out)
    if out is None:
        return counts
    _add_host(out, counts)
    return out


def _host_counts(y, t):
    """The fused C++ count of host inputs, read in place where the layouts allow."""
    y, y_dtype = host_readable(y, "y")
    t, t_dtype = host_readable(t, "t")
    y, t = np.asarray(y), np.asarray(t)
    y_dtype = y.dtype if y_dtype is None else y_dtype
    _check(y_dtype, y.shape, t.dtype, t.shape)
    if y.ndim > 1 and y.flags.f_contiguous and t.flags.f_contiguous:
        y, t = y.T, t.T  # the same element order, now C-contiguous views
    counts = np.zeros(2, dtype=np.int64)
    _core.binary_accuracy_counts(_kernel_ready(y), _dtypes.logit_code(y_dtype), _kernel_ready(t),
                                 _dtypes.label_code(t.dtype), counts)
    return counts


def _kernel_ready(a):
    """a, or an aligned C-contiguous copy in native byte order (the kernel reads
    typed elements one after another)."""
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if not (a.flags.c_contiguous and a.flags.aligned):
        a = np.array(a, order="C", copy=True)
    return a


def _torch_result(counts, out):
    """Host counts for a CPU torch y: a torch tensor, or added into out (torch or numpy)."""
    torch = loaded_torch()
    if out is None:
        return torch.from_numpy(counts)
    if isinstance(out, np.ndarray):
        _add_host(out, counts)
        return out
    _check_torch_out(out, torch, torch.device("cpu"))
    out += torch.from_numpy(counts)
    return out


def _add_host(out, counts):
    if not isinstance(out, np.ndarray) or out.dtype != np.int64 or out.shape != (2,):
        raise ValueError("out must be an int64 array of shape (2,) on y's device; got %s" % (
            ("dtype %s, shape %s" % (out.dtype, out.shape)) if isinstance(out, np.ndarray) else type(out).__name__))
    out += counts


def _check_torch_out(out, torch, device):
    if not is_torch_tensor(out) or out.device != device or out.dtype != torch.int64 or tuple(out.shape) != (2,):
        raise ValueError("out must be an int64 tensor of shape (2,) on %s; got %s" % (
            device, ("dtype %s, shape %s on %s" % (out.dtype, tuple(out.shape), out.device))
            if is_torch_tensor(out) else type(out).__name__))


def _cupy_counts(y, t, out):
    import cupy
    y, t = cupy.asarray(y), cupy.asarray(t)
    _check(y.dtype, y.shape, t.dtype, t.shape)
    # (y >= 0) == t compares the bool prediction as 0/1 with the label.
    correct = cupy.count_nonzero((y >= 0) == t)
    total = cupy.count_nonzero(t != IGNORE_LABEL) if t.dtype.kind == "i" else t.size
    counts = cupy.stack([cupy.asarray(correct, dtype=cupy.int64), cupy.asarray(total, dtype=cupy.int64)])
    if out is None:
        return counts
    if not is_device_array(out) or out.dtype != np.int64 or tuple(out.shape) != (2,):
        raise ValueError("out must be an int64 array of shape (2,) on y's device")
    out += counts
    return out


def _torch_counts(y, t, out):
    """binary_accuracy_counts on torch tensors with torch's operations: the same rule,
    on the tensors' device and torch's current stream (CUDA tensors take this path;
    tests run it on CPU tensors too)."""
    torch = loaded_torch()
    if not (is_torch_tensor(y) and is_torch_tensor(t)):
        raise ValueError("y and t must both be torch tensors on the device; got %s and %s"
                         % (type(y).__name__, type(t).__name__))
    y, t = torch_readable(y), torch_readable(t)  # detached: no autograd error, no copy
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
        t = t.to(torch.int64)  # uint16-64 lack comparisons on some devices; no value becomes 0, 1 or -1
    # (y >= 0) == t compares the bool prediction as 0/1 with the label.
    correct = torch.count_nonzero((y >= 0) == t)
    total = torch.count_nonzero(t != IGNORE_LABEL) if signed else correct.new_full((), t.numel())
    counts = torch.stack([correct, total]).to(torch.int64)
    if out is None:
        return counts
    _check_torch_out(out, torch, y.device)
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
