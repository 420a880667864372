"""Exact classification accuracy counts: one fused pass over the scores.

Semantics (shared by the CPU and CUDA kernels, csrc/semantics/accuracy_rule.h):
numpy's argmax order, i.e. the first maximum wins ties, NaN counts as the maximum
and the first NaN wins; a label outside [0, C) that is not the ignore label is
wrong but counted; rows whose label equals ``ignore_label`` are not counted.
"""
import sys as _sys

import numpy as np

from . import _core, _layout
from ._interop import from_dlpack as _from_dlpack
from ._interop import is_device_array as _is_device
from ._interop import is_torch_tensor as _is_torch
from ._interop import torch_host_view as _torch_host_view
from ._interop import torch_out_view as _torch_out_view
from ._interop import unwrap as _unwrap


def _host_array(x, name):
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(x)
    except Exception as exc:  # noqa: BLE001 - re-raised with the argument's name
        raise TypeError("%s must be an array (numpy, cupy, buffer protocol or __cuda_array_interface__); "
                        "got %s" % (name, type(x).__name__)) from exc


_MAX_K = 2**63 - 1  # the kernels take k as int64


def _check_k(k):
    try:
        k = int(k.__index__())
    except (AttributeError, TypeError):
        raise TypeError("k must be an integer >= 1; got %r" % (k,)) from None
    if k < 1 or k > _MAX_K:
        raise ValueError("k must be an integer in [1, 2**63 - 1]; got %d" % k)
    return k


def _host_out(out):
    if out is None:
        return np.zeros(2, dtype=np.int64)
    if (isinstance(out, np.ndarray) and out.dtype == np.int64 and out.shape == (2,) and out.flags.writeable
            and not _layout.overlaps_itself(out)):
        return out
    if _is_device(out):
        raise ValueError("out must be on the same device as y (the host); got a device array")
    if not isinstance(out, np.ndarray) or out.dtype != np.int64 or out.shape != (2,):
        raise ValueError("out must be an int64 array of shape (2,); got %s"
                         % (("dtype %s, shape %s" % (out.dtype, out.shape)) if isinstance(out, np.ndarray)
                            else type(out).__name__))
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    # A zero stride makes both counters one int64: the sum would land in both (_layout.overlaps_itself).
    raise ValueError("out must not overlap itself; got an int64 (2,) view with strides %s" % (out.strides,))


def _count_into(plan, y, t, out):
    """Adds the plan's counts into out. The kernels write through an aligned int64
    pointer: a misaligned out (a view into a byte buffer) is filled through an
    aligned temporary, so its contents are never read or written misaligned in C++."""
    if out.flags.aligned:
        plan.count(y, t, out)
    else:
        counts = np.zeros(2, dtype=np.int64)
        plan.count(y, t, counts)
        out += counts


_PLANS = _layout.PlanCache()


def kernel_ready(y, t, view_of):
    """(y, t, view, copied): y and t in native byte order and aligned (the kernels
    read through typed pointers), and ``view_of(y, t)`` (a ``_layout.View``) of
    them, with contiguous copies of the arrays whose axes it cannot walk as one.
    ``copied`` says whether anything was copied (a cached plan would then describe
    the copies, not the caller's arrays)."""
    copied = False
    if not (y.dtype.isnative and t.dtype.isnative):
        copied = True
        y = y if y.dtype.isnative else y.astype(y.dtype.newbyteorder("="))
        t = t if t.dtype.isnative else t.astype(t.dtype.newbyteorder("="))
    if not (y.flags.aligned and t.flags.aligned):
        copied = True
        y = y if y.flags.aligned else y.copy()
        t = t if t.flags.aligned else t.copy()
    view = view_of(y, t)
    if view.y_contiguous_copy or view.t_contiguous_copy:
        copied = True
        y = np.ascontiguousarray(y) if view.y_contiguous_copy else y
        t = np.ascontiguousarray(t) if view.t_contiguous_copy else t
        view = view_of(y, t)
    return y, t, view, copied


def host_view(y, t, ignore_label, y_dtype=None):
    """Checked host arrays and the kernels' view of them: (y, t, y_code, t_code, view,
    has_ignore, ignore, copied); see ``kernel_ready``. y_dtype: the scores' dtype when y
    is a view of another one (torch bfloat16 read as int16)."""
    y, t = _host_array(y, "y"), _host_array(t, "t")
    y_code, t_code = _layout.check_dtypes(y.dtype if y_dtype is None else y_dtype, t.dtype, y.shape, t.shape)
    _layout.check_shapes(y.shape, t.shape)
    has_ignore, ignore = _layout.ignore_value(ignore_label, t.dtype)
    y, t, view, copied = kernel_ready(
        y, t, lambda y, t: _layout.normalise(y.shape, y.strides, y.itemsize, t.shape, t.strides, t.itemsize))
    return y, t, y_code, t_code, view, has_ignore, ignore, copied


def _host_counts(y, t, ignore_label, k, out, y_dtype=None):
    """y_dtype: the scores' dtype when y is a view of another one (torch bfloat16 as int16)."""
    key = None
    if _layout.cacheable(y, t, ignore_label):
        key = (y.dtype if y_dtype is None else y_dtype, y.shape, y.strides, t.dtype, t.shape, t.strides,
               ignore_label, k)
        plan = _PLANS.get(key)
        if plan is not None:
            out = _host_out(out)
            _count_into(plan, y, t, out)
            return out
    y, t, y_code, t_code, view, has_ignore, ignore, copied = host_view(y, t, ignore_label, y_dtype)
    out = _host_out(out)
    if copied:
        key = None  # the plan would describe the copies, not these arrays
    plan = _core.AccuracyPlan(y_code, view.N, view.C, view.M, view.y_strides, t_code, view.t_strides,
                              has_ignore, ignore, k)
    _PLANS.put(key, plan)
    _count_into(plan, y, t, out)
    return out


def accuracy_counts(y, t, ignore_label=None, *, k=1, out=None):
    """Counts correct and total samples: an int64 array ``[correct, total]``.

    Args:
        y: scores of shape (N, C, d1, ...), float16/bfloat16/float32/float64; the
            class axis is axis 1 and trailing size-1 axes are allowed.
        t: integer labels of shape (N, d1, ...), any signed or unsigned dtype.
        ignore_label: a label value whose samples are left out, or None.
        k: top-k: a sample is correct when fewer than k classes rank above its
            label (a greater score, NaN being greatest, or an equal score at a
            smaller class index). A tuple or list of k gives an int64 array of
            shape (len(k), 2), row i = [correct for k[i], total], from one pass
            over the scores (on the CPU; a GPU makes one pass per k).
        out: an int64 array of shape (2,) (or (len(k), 2)) on the same device; the
            counts are ADDED into it and it is returned, so running totals need no
            synchronisation.

    numpy (or buffer-protocol) input gives a numpy result; cupy (or
    ``__cuda_array_interface__``) input gives a device result computed on the
    current stream without a host synchronisation. torch tensors (CPU or CUDA,
    any ``requires_grad``) are read in place and give a torch int64 tensor on
    their device; CUDA ones run on ``torch.cuda.current_stream()`` and need no
    CuPy. Other ``__dlpack__`` producers (JAX, ...) give numpy on the host and
    CuPy on a GPU. To capture device calls in a CUDA graph, pass ``out``: a new
    result is allocated, and an allocation may break the capture or be recorded in it.

    On the CPU the kernel and thread count of each call shape are chosen by
    ``fusedmetrics.planner``: by default timed on the first calls of a shape that
    reads at least 1 MiB (the counts never depend on the choice);
    ``set_planner("heuristic")`` fixes the choice.
    """
    if type(k) is not int or not 1 <= k <= _MAX_K:
        if isinstance(k, (tuple, list)):
            from . import _accuracy_multi_k
            return _accuracy_multi_k.counts(y, t, ignore_label, [_check_k(v) for v in k], out)
        k = _check_k(k)
    if type(y) is np.ndarray and type(t) is np.ndarray:
        return _host_counts(y, t, ignore_label, k, out)
    counts = _UNASKED
    if type(y) is _EXCHANGE_TENSOR:  # torch.Tensor, once torch's exchange table is in use
        counts = _EXCHANGE_COUNT(y, t, ignore_label, k, out)
        if counts is not None and counts is not False:
            return counts
    torch = _sys.modules.get("torch")
    if torch is not None and type(y) is torch.Tensor:
        counts = _torch_cpu_counts(torch, y, t, ignore_label, k, out, counts)
        if counts is not None:
            return counts
    return _general_counts(y, t, ignore_label, k, out)


def _general_counts(y, t, ignore_label, k, out):
    y, t = _unwrap(y), _unwrap(t)
    if _is_torch(y) and not y.is_cuda:
        return _torch_host_counts(y, t, ignore_label, k, out)
    y, t = _from_dlpack(y), _from_dlpack(t)
    y_dev, t_dev = _is_device(y), _is_device(t)
    if y_dev != t_dev:
        raise ValueError("y and t must be on the same device; got y on %s and t on %s"
                         % ("a GPU" if y_dev else "the host", "a GPU" if t_dev else "the host"))
    if y_dev:
        from . import _device_accuracy
        return _device_accuracy.counts(y, t, ignore_label, k, out)
    return _host_counts(y, t, ignore_label, k, out)


_UNASKED = object()


def _torch_cpu_counts(torch, y, t, ignore_label, k, out, exchange_said):
    """Counts of a torch.Tensor y read in place on the CPU, or None (the general path then
    takes the call). exchange_said: the exchange cache's answer to this call (None: no plan
    for this layout yet; False: declined), or _UNASKED."""
    exchange = torch_exchange(torch)
    if exchange is not False:
        if exchange_said is _UNASKED:
            exchange_said = exchange.count(y, t, ignore_label, k, out)
        if exchange_said is None:
            exchange_said = _torch_exchange_first_count(exchange, y, t, ignore_label, k, out)
        if exchange_said is not False:
            return exchange_said
    if out is None:
        return _torch_in_place_counts(torch, y, t, ignore_label, k)
    return None


# torch CPU tensors through torch's DLPack C exchange API (csrc/bindings/torch_accuracy_cache.cpp):
# one C++ call reads both layouts, finds the plan, counts in place and makes the result tensor,
# about a third of the cost of the Python attribute reads of the data_ptr path below.
# _TORCH_EXCHANGE: the cache; None until the first torch call; False where torch has no usable
# exchange table (the data_ptr path then serves). While it is a cache, _EXCHANGE_TENSOR is
# torch.Tensor and _EXCHANGE_COUNT its count_fast (the hot path reads just these two).
_TORCH_EXCHANGE = None
_EXCHANGE_TENSOR = None
_EXCHANGE_COUNT = None


def torch_exchange(torch):
    """The exchange cache (made on first use), or False where torch has no exchange table."""
    if _TORCH_EXCHANGE is None:
        capsule = getattr(torch.Tensor, "__dlpack_c_exchange_api__", None)
        try:
            cache = False if capsule is None else _core.TorchAccuracyCache(torch.Tensor, capsule)
        except (TypeError, ValueError):  # not a capsule, or another DLPack major version
            cache = False
        install_torch_exchange(cache, torch.Tensor)
    return _TORCH_EXCHANGE


def install_torch_exchange(cache, tensor_type=None):
    """Makes cache (a TorchAccuracyCache for tensor_type) the one in use; False: none (the
    data_ptr path serves); None: made again on the next torch call. Returns the previous
    state, for install_torch_exchange(*state)."""
    global _TORCH_EXCHANGE, _EXCHANGE_TENSOR, _EXCHANGE_COUNT
    previous = (_TORCH_EXCHANGE, _EXCHANGE_TENSOR)
    in_use = cache is not None and cache is not False
    _TORCH_EXCHANGE = cache
    _EXCHANGE_TENSOR = tensor_type if in_use else None
    _EXCHANGE_COUNT = cache.count_fast if in_use else None
    return previous


def _torch_exchange_first_count(exchange, y, t, ignore_label, k, out):
    """The first call of a layout: the plan comes from the data_ptr path's cache (built, with
    its checks and error messages, when new), then the exchange cache counts with it."""
    key = (y.dtype, y.shape, y.stride(), t.dtype, t.shape, t.stride(), ignore_label, k)
    plan = _TORCH_PLANS.get(key)
    if plan is None:
        plan = _torch_plan(y, t, ignore_label, k, key)
    exchange.remember(y, t, ignore_label, k, plan)
    counts = exchange.count(y, t, ignore_label, k, out)
    return False if counts is None else counts  # None: emptied meanwhile (a full cache)


# torch CPU plans: (y dtype, shape, stride, t dtype, shape, stride, ignore_label, k) -> plan.
# A hit reads the tensors in place through data_ptr (C++ checks every read against the
# storage's bounds): no numpy views and no from_numpy, which cost more than the kernel
# on small batches.
_TORCH_PLANS = _layout.PlanCache()


def _torch_in_place_counts(torch, y, t, ignore_label, k):
    """Counts of CPU tensors read in place through a cached plan, or None where that path
    does not apply (the general path then takes the call)."""
    Tensor = torch.Tensor
    # Exact Tensors only (subclasses may redefine what they hold); the neg bit means the
    # memory holds the negated values; other devices (meta, ...) have no host memory.
    if not (type(t) is Tensor and (ignore_label is None or type(ignore_label) is int)
            and y.is_cpu and t.is_cpu and not (y.is_neg() or t.is_neg())):
        return None
    key = (y.dtype, y.shape, y.stride(), t.dtype, t.shape, t.stride(), ignore_label, k)
    plan = _TORCH_PLANS.get(key)
    if plan is None:
        plan = _torch_plan(y, t, ignore_label, k, key)
    if plan is False:
        return None
    counts = torch.zeros(2, dtype=torch.int64)
    if plan.count_torch(y.untyped_storage(), y.data_ptr(), t.untyped_storage(), t.data_ptr(), counts.data_ptr()):
        return counts
    return None


def _torch_plan(y, t, ignore_label, k, key):
    """The plan of a (y, t) call shape for the in-place path, or False when the tensors
    need a copy first (byte order, alignment, axes no stride walks): cached either way,
    except for misaligned tensors (the next tensors of this shape may well be aligned)."""
    y_view, y_dtype = _torch_host_view(y, "y")
    t_view = _torch_host_view(t, "t")[0]
    _, _, y_code, t_code, view, has_ignore, ignore, copied = host_view(y_view, t_view, ignore_label, y_dtype)
    if copied and not (y_view.flags.aligned and t_view.flags.aligned):
        return False
    plan = False if copied else _core.AccuracyPlan(y_code, view.N, view.C, view.M, view.y_strides, t_code,
                                                   view.t_strides, has_ignore, ignore, k)
    _TORCH_PLANS.put(key, plan)
    return plan


def _torch_host_counts(y, t, ignore_label, k, out):
    """CPU tensors through numpy views of their memory: same plans, same kernels."""
    y_view, y_dtype = _torch_host_view(y, "y")
    if _is_torch(t):
        if t.is_cuda:
            raise ValueError("y and t must be on the same device; got y on the host and t on %s" % t.device)
        t_view = _torch_host_view(t, "t")[0]
    else:
        t_view = _from_dlpack(t)
    import torch  # already imported: y is a tensor

    if out is None:
        return torch.from_numpy(_host_counts(y_view, t_view, ignore_label, k, None, y_dtype))
    if _is_torch(out):
        if out.device.type != "cpu" or out.dtype != torch.int64:
            raise ValueError("out must be an int64 tensor of shape (2,) on the host; got dtype %s on %s"
                             % (out.dtype, out.device))
        _host_counts(y_view, t_view, ignore_label, k, _torch_out_view(out), y_dtype)  # adds in place
        return out
    return _host_counts(y_view, t_view, ignore_label, k, out, y_dtype)


def accuracy(y, t, ignore_label=None):
    """What ``chainer.functions.accuracy(y, t, ignore_label).array`` returns, exactly.

    A 0-d array of y's dtype (on y's device), computed from the exact integer
    counts. Deliberate difference: without ``ignore_label`` Chainer takes the mean
    in y's dtype, so its float16 result overflows to inf beyond 65504 correct
    samples and its float32 result drifts once a batch has more than 2**24 samples
    (e.g. large segmentation batches); ours is then the correctly rounded ratio.
    All samples ignored gives 0.0 and an empty batch without ``ignore_label``
    gives NaN, as in Chainer. A float ``ignore_label`` behaves as Chainer's does
    (see ``chainer_ignore_label``); ``accuracy_counts`` wants an integer.
    """
    y = _from_dlpack(_unwrap(y))
    if _is_device(y):  # the division runs on the launch stream; the dtype from the interface
        from . import _device_accuracy

        t = _from_dlpack(_unwrap(t))
        if not _is_device(t):
            raise ValueError("y and t must be on the same device; got y on a GPU and t on the host")
        return _device_accuracy.accuracy_value(
            y, t, chainer_ignore_label(ignore_label),
            lambda counts, dtype: accuracy_from_counts(counts, dtype, ignore_label))
    if not (_is_torch(y) or isinstance(y, np.ndarray)):
        y = _host_array(y, "y")  # buffer-protocol input has no .dtype
    return accuracy_from_counts(accuracy_counts(y, t, chainer_ignore_label(ignore_label)), y.dtype, ignore_label)


def chainer_ignore_label(ignore_label):
    """The integer label that Chainer's ``t == ignore_label`` matches, for accuracy_counts.

    ``F.accuracy`` accepts a float ignore label: one equal to an integer ignores that
    label, any other (-1.5, NaN, inf) ignores nothing, yet an empty or all-ignored batch
    still gives 0.0 (the ignore-label branch). So a float equal to an integer becomes
    that integer and any other float None; the caller keeps the original for
    ``accuracy_from_counts``. (Chainer compares int64 labels beyond 2**53 in float64;
    here they compare exactly.) Anything else is returned as is.
    """
    if isinstance(ignore_label, (float, np.floating)):
        value = float(ignore_label)
        return int(value) if value.is_integer() else None
    return ignore_label


def accuracy_from_counts(counts, dtype, ignore_label=None):
    """``correct / total`` of a counts array as a 0-d array of ``dtype``, as Chainer returns it.

    No samples counted gives 0.0 when an ``ignore_label`` was in use (all ignored)
    and NaN otherwise (an empty batch), as ``chainer.functions.accuracy`` does.
    Device counts give a device result without a host synchronisation.
    """
    empty_value = 0.0 if ignore_label is not None else float("nan")
    if _is_torch(counts):
        import torch

        if counts.is_cuda:  # stays on the device: no synchronisation
            total = counts[1]
            value = counts[0].double() / total.clamp(min=1).double()
            return torch.where(total == 0, empty_value, value).to(dtype)
        correct, total = (int(v) for v in counts.tolist())
        return torch.tensor(correct / total if total else empty_value, dtype=dtype)
    if _is_device(counts):
        import cupy
        total = counts[1]
        value = counts[0].astype(cupy.float64) / cupy.maximum(total, 1).astype(cupy.float64)
        return cupy.where(total == 0, empty_value, value).astype(dtype)
    correct, total = int(counts[0]), int(counts[1])
    return np.asarray(correct / total if total else empty_value, dtype=dtype)
