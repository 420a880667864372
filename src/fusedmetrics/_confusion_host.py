"""Confusion-matrix counts on host arrays: argument checks, the (N, C, M) view and a
cached ``_core.ConfusionPlan`` per call shape (as ``_accuracy`` does for accuracy)."""
import numpy as np

from . import _core, _dtypes, _layout
from ._accuracy import _host_array, kernel_ready
from ._interop import is_device_array

_PLANS = _layout.PlanCache()  # one plan per call shape, as for accuracy


def check_num_classes(num_classes):
    try:
        c = int(num_classes.__index__())
    except (AttributeError, TypeError):
        raise TypeError("num_classes must be an integer >= 0; got %r" % (num_classes,)) from None
    if c < 0:
        raise ValueError("num_classes must be an integer >= 0; got %d" % c)
    return c


def check_arrays(y_dtype, y_shape, t_dtype, t_shape, num_classes):
    """(pred_code, y_code, t_code): pred_code >= 0 for integer predictions."""
    t_code = _dtypes.label_code(t_dtype)
    if t_code is None:
        raise TypeError("t must hold integer labels (signed or unsigned); got t.shape %s, t.dtype %s"
                        % (tuple(t_shape), t_dtype))
    pred_code = _dtypes.label_code(y_dtype)
    if pred_code is not None:
        if tuple(y_shape) != tuple(t_shape):
            raise ValueError("integer predictions y must have t's shape; got y.shape %s and t.shape %s"
                             % (tuple(y_shape), tuple(t_shape)))
        return pred_code, 0, t_code
    if _dtypes.logit_code(y_dtype) is None:
        raise TypeError("y must hold scores (float16, bfloat16, float32 or float64, shape (N, C, ...)) or integer "
                        "predictions (t's shape); got y.shape %s, y.dtype %s" % (tuple(y_shape), y_dtype))
    y_code, _ = _layout.check_dtypes(y_dtype, t_dtype, y_shape, t_shape)
    _layout.check_shapes(y_shape, t_shape)
    if y_shape[1] != num_classes:
        raise ValueError("y holds scores for %d classes (y.shape[1]) but num_classes is %d; got y.shape %s"
                         % (y_shape[1], num_classes, tuple(y_shape)))
    return -1, y_code, t_code


def as_rows(shape, strides):
    """Integer predictions or labels of any shape as (N, d...) with N >= 1 axis."""
    if len(shape) == 0:
        return (1,), (0,)
    return tuple(shape), tuple(strides)


def normalise(pred_code, y_shape, y_strides, y_itemsize, t_shape, t_strides, t_itemsize):
    """The kernels' view; integer predictions are viewed as scores of one class with
    class stride 0, so the one ``_layout.normalise`` serves both."""
    t_shape, t_strides = as_rows(t_shape, t_strides)
    if pred_code >= 0:
        y_shape, y_strides = as_rows(y_shape, y_strides)
        y_shape = (y_shape[0], 1) + y_shape[1:]
        y_strides = (y_strides[0], 0) + y_strides[1:]
    return _layout.normalise(y_shape, y_strides, y_itemsize, t_shape, t_strides, t_itemsize)


def _check_out(out, num_classes):
    shape = (num_classes, num_classes)
    if out is None:
        return np.zeros(shape, dtype=np.int64)
    if is_device_array(out):
        raise ValueError("out must be on the same device as y (the host); got a device array")
    if not isinstance(out, np.ndarray) or out.dtype != np.int64 or out.shape != shape:
        raise ValueError("out must be an int64 array of shape %s; got %s" % (
            shape, ("dtype %s, shape %s" % (out.dtype, out.shape)) if isinstance(out, np.ndarray)
            else type(out).__name__))
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    if _layout.overlaps_itself(out):
        raise ValueError("out must not overlap itself; got an int64 %s view with strides %s" % (shape, out.strides))
    return out


def _count_into(plan, y, t, out):
    """The kernels add into a C-contiguous aligned matrix; any other out (a view, a
    transposed or overlapping array) receives the counts through a temporary, so an
    error leaves it unchanged either way."""
    if out.flags.c_contiguous and out.flags.aligned:
        plan.count(y, t, out)
    else:
        counts = np.zeros(out.shape, dtype=np.int64)
        plan.count(y, t, counts)
        out += counts


def counts(y, t, num_classes, ignore_label, out, y_dtype=None):
    """Adds the (C, C) counts of host y against host t into out (new when None).
    y_dtype: what y holds when it is a view of another dtype (torch bfloat16 read as
    int16), else None."""
    key = None
    if _layout.cacheable(y, t, ignore_label):
        key = (y.dtype if y_dtype is None else y_dtype, y.shape, y.strides, t.dtype, t.shape, t.strides,
               num_classes, ignore_label)
        plan = _PLANS.get(key)
        if plan is not None:
            out = _check_out(out, num_classes)
            _count_into(plan, y, t, out)
            return out
    y, t = _host_array(y, "y"), _host_array(t, "t")
    pred_code, y_code, t_code = check_arrays(y.dtype if y_dtype is None else y_dtype, y.shape, t.dtype, t.shape,
                                             num_classes)
    has_ignore, ignore = _layout.ignore_value(ignore_label, t.dtype)
    out = _check_out(out, num_classes)
    y, t, view, copied = kernel_ready(
        y, t, lambda y, t: normalise(pred_code, y.shape, y.strides, y.itemsize, t.shape, t.strides, t.itemsize))
    if copied:
        key = None  # the plan would describe the copies, not these arrays
    plan = _core.ConfusionPlan(y_code, pred_code, view.N, num_classes, view.M, view.y_strides, t_code,
                               view.t_strides, has_ignore, ignore)
    _PLANS.put(key, plan)
    _count_into(plan, y, t, out)
    return out
