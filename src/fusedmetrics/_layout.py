"""Shape checks and the (N, C, M) view that every accuracy kernel reads.

y has shape (N, C, d1, ..., dk, 1, ..., 1) and t has shape (N, d1, ..., dk), as in
chainer.functions.accuracy. The kernels see y as (N, C, M) and t as (N, M) with
M = d1 * ... * dk and strides in elements, so any layout numpy can express works
without a copy as long as the d axes can be walked as one axis.
"""
from collections import namedtuple

import numpy as np

from . import _dtypes

View = namedtuple("View", "N C M y_strides t_strides y_contiguous_copy t_contiguous_copy")


def _describe(name, shape, dtype):
    return "%s.shape %s, %s.dtype %s" % (name, tuple(shape), name, dtype)


def check_dtypes(y_dtype, t_dtype, y_shape, t_shape):
    """Returns (y_code, t_code) or raises TypeError naming the argument."""
    y_code = _dtypes.logit_code(y_dtype)
    if y_code is None:
        raise TypeError(
            "y must hold float16, bfloat16, float32 or float64 scores; got %s" % _describe("y", y_shape, y_dtype))
    t_code = _dtypes.label_code(t_dtype)
    if t_code is None:
        raise TypeError(
            "t must hold integer labels (signed or unsigned); got %s" % _describe("t", t_shape, t_dtype))
    return y_code, t_code


def check_shapes(y_shape, t_shape):
    """Raises ValueError unless y (N, C, d..., 1...) matches t (N, d...)."""
    y_shape, t_shape = tuple(y_shape), tuple(t_shape)
    problem = None
    if len(y_shape) < 2:
        problem = "y needs at least 2 axes (N, C, ...)"
    elif len(t_shape) < 1:
        problem = "t needs at least 1 axis (N, ...)"
    elif len(y_shape) < len(t_shape) + 1:
        problem = "y needs one axis more than t (the class axis, axis 1)"
    elif y_shape[0] != t_shape[0]:
        problem = "y.shape[0] and t.shape[0] (the batch size) differ"
    elif y_shape[2:len(t_shape) + 1] != t_shape[1:]:
        problem = "y.shape[2:] must equal t.shape[1:] (then only size-1 axes)"
    elif any(n != 1 for n in y_shape[len(t_shape) + 1:]):
        problem = "axes of y beyond t.ndim + 1 must have size 1"
    if problem:
        raise ValueError("%s; got y.shape %s and t.shape %s" % (problem, y_shape, t_shape))


def _walk_stride(shape, strides):
    """The one stride that walks these axes (row-major) as a single axis, or None."""
    axes = [(n, s) for n, s in zip(shape, strides) if n != 1]
    for (_, outer), (n_inner, inner) in zip(axes, axes[1:]):
        if outer != inner * n_inner:
            return None
    return axes[-1][1] if axes else 0


def _elements(byte_stride, itemsize):
    return None if byte_stride is None or byte_stride % itemsize else byte_stride // itemsize


def normalise(y_shape, y_strides, y_itemsize, t_shape, t_strides, t_itemsize):
    """The (N, C, M) view of y and (N, M) view of t; strides in bytes in, elements out.

    An array whose d axes cannot be walked as one axis (or whose strides are not
    multiples of its item size) is marked for a contiguous copy; the caller makes it
    and calls again.
    """
    k = len(t_shape) - 1
    N, C = y_shape[0], y_shape[1]
    M = 1
    for n in t_shape[1:]:
        M *= n
    ys_m = _elements(_walk_stride(y_shape[2:2 + k], y_strides[2:2 + k]), y_itemsize)
    ys_n = _elements(y_strides[0], y_itemsize)
    ys_c = _elements(y_strides[1], y_itemsize)
    ts_m = _elements(_walk_stride(t_shape[1:], t_strides[1:]), t_itemsize)
    ts_n = _elements(t_strides[0], t_itemsize)
    # An empty array is never read, and a copy would keep its odd strides (numpy and
    # CuPy take an empty array as contiguous already): any strides walk it.
    if 0 in tuple(y_shape):
        ys_n, ys_c, ys_m = 0, 0, 0
    if 0 in tuple(t_shape):
        ts_n, ts_m = 0, 0
    y_copy = None in (ys_n, ys_c, ys_m)
    t_copy = None in (ts_n, ts_m)
    return View(N, C, M, (ys_n, ys_c, ys_m), (ts_n, ts_m), y_copy, t_copy)


def overlaps_itself(a):
    """Whether two elements of ndarray ``a`` share bytes (a zero stride, or strides that
    interleave): counts added into such an ``out`` would land in several cells."""
    if a.size <= 1 or a.flags.c_contiguous or a.flags.f_contiguous:
        return False
    offsets = np.zeros((), np.int64)
    for n, stride in zip(a.shape, a.strides):
        offsets = np.add.outer(offsets, np.arange(n, dtype=np.int64) * stride)
    return bool((np.diff(np.sort(offsets, axis=None)) < a.itemsize).any())


def ignore_value(ignore_label, t_dtype):
    """(has_ignore, value as the kernels compare it) for a label dtype.

    An ignore label that the dtype cannot hold never matches. uint64 values are
    reinterpreted as int64 bits, as the kernels read uint64 labels.
    """
    if ignore_label is None:
        return False, 0
    try:
        value = int(ignore_label.__index__())
    except (AttributeError, TypeError):
        raise TypeError("ignore_label must be None or an integer; got %r (%s)"
                        % (ignore_label, type(ignore_label).__name__)) from None
    import numpy as np
    info = np.iinfo(t_dtype)
    if not info.min <= value <= info.max:
        return False, 0
    if value >= 2 ** 63:
        value -= 2 ** 64
    return True, value


def cacheable(y, t, ignore_label):
    """Whether a host call's plan may be cached under its dtypes, shapes and strides:
    plain, aligned, native-order ndarrays and an int (or no) ignore label. Anything else
    is copied or converted first, and a plan would describe the copies."""
    return (type(y) is np.ndarray and type(t) is np.ndarray and plain_ignore(ignore_label)
            and y.flags.aligned and t.flags.aligned and y.dtype.isnative and t.dtype.isnative)


def plain_ignore(ignore_label):
    """Whether a plan may be cached under this ignore label as given: None or an int.
    Anything else (a numpy integer, a 0-d array, which is not hashable) is converted afresh."""
    return ignore_label is None or type(ignore_label) is int


class PlanCache:
    """Plans for the call shapes seen so far: a training loop repeats a few shapes, and a
    cached plan skips every check that depends only on dtypes, shapes and strides.
    Bounded: emptied when full (a loop that keeps changing shapes gains nothing anyway)."""

    def __init__(self, limit=256):
        self._plans = {}
        self._limit = limit

    def get(self, key):
        return self._plans.get(key)

    def __len__(self):
        return len(self._plans)

    def values(self):
        return self._plans.values()

    def put(self, key, plan):
        if key is None:
            return
        if len(self._plans) >= self._limit:
            self._plans.clear()
        self._plans[key] = plan
