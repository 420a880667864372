"""Whatever the input, accuracy_counts returns the reference counts or raises a
TypeError/ValueError: it never crashes the interpreter or returns garbage."""
import numpy as np
from hypothesis import event, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fusedmetrics as fm

from reference import top_k_counts

WRONG_DTYPE = st.sampled_from([np.bool_, np.complex64, object, np.float16, np.int8])
SCORE_DTYPE = st.one_of(st.sampled_from([np.float16, np.float32, np.float64]), WRONG_DTYPE)
LABEL_DTYPE = st.one_of(st.sampled_from([np.int8, np.int32, np.int64, np.uint8, np.uint64]), WRONG_DTYPE)


@st.composite
def anything(draw):
    y_shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
    if draw(st.integers(0, 3)) and len(y_shape) >= 2:  # mostly a matching label shape
        t_shape = (y_shape[0],) + y_shape[2:len(y_shape) - draw(st.integers(0, max(0, len(y_shape) - 2)))]
    else:
        t_shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    y_dtype, t_dtype = draw(SCORE_DTYPE), draw(LABEL_DTYPE)
    y = np.zeros(y_shape, dtype=y_dtype) if y_dtype is object else draw(hnp.arrays(y_dtype, y_shape))
    t = np.zeros(t_shape, dtype=t_dtype) if t_dtype is object else draw(hnp.arrays(t_dtype, t_shape))
    if draw(st.booleans()) and y.ndim:
        y = y[::-1]
    ignore = draw(st.one_of(st.none(), st.just(-1), st.integers(-2 ** 70, 2 ** 70), st.floats()))
    k = draw(st.one_of(st.integers(1, 6), st.integers(-3, 0), st.just(2 ** 62)))
    return y, t, ignore, k


@settings(max_examples=1000, deadline=None)
@given(anything())
def test_counts_or_clear_error(case):
    y, t, ignore, k = case
    try:
        got = fm.accuracy_counts(y, t, ignore, k=k)
    except (TypeError, ValueError) as error:
        assert str(error)  # a message, naming what is wrong
        event("rejected: %s" % type(error).__name__)
        return
    event("counted")
    # An ignore label the label dtype cannot hold ignores nothing.
    fits = isinstance(ignore, int) and np.iinfo(t.dtype).min <= ignore <= np.iinfo(t.dtype).max
    ignore_value = ignore if fits else None
    np.testing.assert_array_equal(got, top_k_counts(y, t, ignore_value, min(k, 10 ** 6)))
