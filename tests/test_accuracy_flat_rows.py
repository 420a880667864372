"""Flat rows (one sample per row, classes contiguous) for every class count the
one-register and few-register kernels cover, in every row layout those kernels
accept: rows back to back, padded rows, reversed rows and one broadcast row. The
last rows of a view are the ones read with masked loads, so small views are used."""
import numpy as np
import pytest

import fusedmetrics as fm

from reference import top_k_counts


def scores(rng, shape, dtype):
    """Few distinct levels (many ties), NaN, +-inf and -0.0."""
    y = np.round(rng.standard_normal(shape) * 2) / 2
    special = rng.random(shape) < 0.15
    y[special] = rng.choice([np.nan, np.inf, -np.inf, -0.0, 0.0], size=int(special.sum()))
    return y.astype(dtype)


def layouts(rng, N, C, dtype):
    base = scores(rng, (N, C), dtype)
    padded = scores(rng, (N, C + 5), dtype)[:, 2:2 + C]
    yield "contiguous", base
    yield "padded", padded
    yield "reversed", base[::-1]
    yield "broadcast", np.broadcast_to(base[:1], (N, C))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_every_class_count_up_to_65(isa, dtype):
    rng = np.random.default_rng(65)
    for C in range(1, 66):
        for N in (1, 3, 19):
            for name, y in layouts(rng, N, C, dtype):
                t = rng.integers(-1, C + 1, size=N).astype(np.int32)  # -1 ignored, C out of range
                hits = rng.random(N) < 0.5  # half the labels at numpy's argmax: correct rows too
                t[hits] = np.asarray(y, np.float64).argmax(1)[hits]
                for k in (1, 2):
                    got = fm.accuracy_counts(y, t, ignore_label=-1, k=k)
                    want = top_k_counts(y, t, ignore_label=-1, k=k)
                    assert got.tolist() == want.tolist(), (isa, dtype.__name__, C, N, name, k)


def test_nan_target_in_every_position(backend):
    for C in (3, 9, 24, 40, 64):
        y = np.zeros((C, C), np.float32)
        y[np.arange(C), np.arange(C)] = np.nan  # row i: a NaN at class i, the target
        t = np.arange(C, dtype=np.int64)
        assert backend.accuracy_counts(y, t).tolist() == [C, C]
        y[:, 0] = np.nan  # now an earlier NaN beats every target but class 0
        assert backend.accuracy_counts(y, t).tolist() == [1, C]
