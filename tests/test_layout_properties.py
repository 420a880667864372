"""Property tests over layouts that may be empty: any axis may have size 0 (C too), views are
sliced, reversed and permuted in memory, so an empty view can carry strides no copy would fix.
accuracy_counts and confusion_matrix must then agree with numpy references or refuse with
ValueError (an out-of-range label for confusion), never reach the kernels with bad strides."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fusedmetrics as fm
from fusedmetrics import _core

from reference import top_k_counts

VALUES = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 2.0])


def _view(draw, dtype, elements, logical_shape):
    """An array of ``logical_shape`` seen through a random memory order of its axes, random
    step signs and sizes: a view into a larger array (axes n -> 2n + 1)."""
    ndim = len(logical_shape)
    order = draw(st.permutations(range(ndim)))   # memory axis i holds logical axis order[i]
    memory = draw(hnp.arrays(dtype, [2 * logical_shape[a] + 1 for a in order], elements=elements))
    view = np.transpose(memory, np.argsort(order))
    steps = tuple(slice(None, None, draw(st.sampled_from([1, 2, -1, -2]))) for _ in range(ndim))
    return view[steps][tuple(slice(0, n) for n in logical_shape)]


@st.composite
def layouts(draw):
    N, C, d1, d2 = draw(st.integers(0, 4)), draw(st.integers(0, 5)), draw(st.integers(0, 3)), draw(st.integers(0, 3))
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    # Two trailing axes: a view whose d1, d2 no one stride walks needs a copy (or, empty, none).
    y = _view(draw, dtype, VALUES, (N, C, d1, d2))
    t = _view(draw, np.int32, st.integers(-1, max(C, 1)), (N, d1, d2))
    return y, t, draw(st.sampled_from([None, -1])), draw(st.sampled_from(_core.usable_isas()))


def _confusion_reference(y, t, C, ignore):
    """(matrix, whether some kept label is out of range) from float64 argmax + bincount."""
    keep = np.ones(t.shape, bool) if ignore is None else t != ignore
    if C == 0:
        return np.zeros((0, 0), np.int64), bool(keep.any())
    p = np.argmax(y.astype(np.float64), axis=1)[keep]
    tk = t[keep].astype(np.int64)
    if ((tk < 0) | (tk >= C)).any():
        return None, True
    return np.bincount(C * tk + p, minlength=C * C).reshape(C, C), False


@settings(max_examples=250, deadline=None)
@given(layouts())
def test_any_layout_even_empty_matches_the_references(case):
    y, t, ignore, isa = case
    C = y.shape[1]
    before = _core.active_isa()
    _core.set_active_isa(isa)
    try:
        np.testing.assert_array_equal(fm.accuracy_counts(y, t, ignore), top_k_counts(y, t, ignore, 1))
        expected, refused = _confusion_reference(y, t, C, ignore)
        if refused:
            with pytest.raises(ValueError, match="outside"):
                fm.confusion_matrix(y, t, C, ignore)
        else:
            np.testing.assert_array_equal(fm.confusion_matrix(y, t, C, ignore), expected)
    finally:
        _core.set_active_isa(before)
