"""accuracy_counts with several k: one pass, (len(k), 2), against single-k calls and
the sorting reference, on every ISA and layout."""
import numpy as np
import pytest

import fusedmetrics as fm

from reference import top_k_counts

FLOATS = [np.float16, np.float32, np.float64]


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(200, 10), (6, 7, 5, 9), (50, 1), (20, 300)])
def test_matches_single_k_every_backend(backend, dtype, shape):
    rng = np.random.default_rng(0)
    y = np.round(rng.standard_normal(shape) * 2).astype(dtype)
    y[rng.random(shape) < 0.05] = np.nan
    t_shape = (shape[0],) + shape[2:]
    t = rng.integers(-1, shape[1] + 1, t_shape)
    ks = (1, 5, 2, 1000, 3)
    got = backend.accuracy_counts(y, t, -1, k=ks)
    assert got.dtype == np.int64 and got.shape == (len(ks), 2)
    for row, k in zip(got, ks):
        np.testing.assert_array_equal(row, backend.accuracy_counts(y, t, -1, k=k))
        np.testing.assert_array_equal(row, top_k_counts(y, t, -1, k=k))


def test_class_strided_view_and_out():
    rng = np.random.default_rng(1)
    y = rng.standard_normal((4, 6, 8, 8))[:, ::-1]
    t = rng.integers(0, 6, (4, 8, 8))
    out = np.ones((2, 2), np.int64)
    assert fm.accuracy_counts(y, t, k=[1, 5], out=out) is out
    np.testing.assert_array_equal(out - 1, np.stack([top_k_counts(y, t, k=1), top_k_counts(y, t, k=5)]))
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        fm.accuracy_counts(y, t, k=(1, 5), out=np.zeros(2, np.int64))
    with pytest.raises(ValueError):
        fm.accuracy_counts(y, t, k=(0, 5))
    with pytest.raises(ValueError):
        fm.accuracy_counts(y, t, k=())
    np.testing.assert_array_equal(fm.accuracy_counts(y, t, k=1), top_k_counts(y, t, k=1))
