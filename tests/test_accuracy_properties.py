"""Property tests: splitting a batch, top-k bounds, adversarial values."""
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fusedmetrics as fm
from fusedmetrics import _core

from reference import top_k_counts

VALUES = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 2.0, 0.5])


@st.composite
def batches(draw):
    C = draw(st.integers(1, 40))
    N = draw(st.integers(0, 60))
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    y = draw(hnp.arrays(dtype, (N, C), elements=VALUES))
    t = draw(hnp.arrays(np.int64, (N,), elements=st.integers(-2, C + 1)))
    ignore = draw(st.sampled_from([None, -1, 0, -2]))
    k = draw(st.integers(1, C + 2))
    isa = draw(st.sampled_from(_core.usable_isas()))
    return y, t, ignore, k, isa


# The backend stays the same across examples, so a function-scoped fixture is fine here.
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches(), st.data())
def test_split_batch_adds_up_and_matches_reference(backend, batch, data):
    y, t, ignore, k, _ = batch  # the backend, not the drawn ISA, says where it runs
    whole = backend.accuracy_counts(y, t, ignore, k=k)
    np.testing.assert_array_equal(whole, top_k_counts(y, t, ignore, k))
    cut = data.draw(st.integers(0, len(t)))
    acc = backend.asarray(np.zeros(2, np.int64))
    fm.accuracy_counts(backend.asarray(y[:cut]), backend.asarray(t[:cut]), ignore, k=k, out=acc)
    fm.accuracy_counts(backend.asarray(y[cut:]), backend.asarray(t[cut:]), ignore, k=k, out=acc)
    np.testing.assert_array_equal(backend.asnumpy(acc), whole)


@settings(max_examples=150, deadline=None)
@given(batches())
def test_top_k_at_least_C_counts_every_kept_in_range_row(batch):
    y, t, ignore, _, _ = batch
    C = y.shape[1]
    kept = t if ignore is None else t[t != ignore]
    in_range = int(((kept >= 0) & (kept < C)).sum())
    np.testing.assert_array_equal(fm.accuracy_counts(y, t, ignore, k=C), [in_range, len(kept)])


@settings(max_examples=150, deadline=None)
@given(batches())
def test_counts_grow_with_k(batch):
    y, t, ignore, k, _ = batch
    assert fm.accuracy_counts(y, t, ignore, k=k)[0] <= fm.accuracy_counts(y, t, ignore, k=k + 1)[0]


@st.composite
def strided_batches(draw):
    """(N, C, d1, d2) scores viewed through random slices (possibly reversed) and a
    random axis order in memory, with labels of shape (N, d1, d2)."""
    N, C, d1, d2 = (draw(st.integers(1, 6)) for _ in range(4))
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    order = draw(st.permutations(range(4)))
    base_shape = [(N, C, d1, d2)[i] * 2 for i in order]
    base = draw(hnp.arrays(dtype, base_shape, elements=VALUES))
    y = np.transpose(base, np.argsort(order))  # logical (2N, 2C, 2d1, 2d2), memory order `order`
    slices = tuple(slice(None, None, draw(st.sampled_from([1, 2, -1, -2]))) for _ in range(4))
    y = y[slices][:N, :C, :d1, :d2]
    t = draw(hnp.arrays(np.int32, (N, d1, d2), elements=st.integers(-1, C)))
    if draw(st.booleans()):
        t = np.ascontiguousarray(np.transpose(t, (0, 2, 1))).transpose(0, 2, 1)  # non-contiguous labels
    return y, t, draw(st.sampled_from([None, -1])), draw(st.integers(1, C + 1)), draw(st.sampled_from(_core.usable_isas()))


@settings(max_examples=300, deadline=None)
@given(strided_batches())
def test_any_layout_matches_reference(batch):
    y, t, ignore, k, isa = batch
    before = _core.active_isa()
    _core.set_active_isa(isa)
    try:
        np.testing.assert_array_equal(fm.accuracy_counts(y, t, ignore, k=k), top_k_counts(y, t, ignore, k))
    finally:
        _core.set_active_isa(before)
