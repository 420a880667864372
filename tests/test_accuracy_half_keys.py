"""The float16/bfloat16 top-1 kernels that compare 16-bit order keys
(avx2/half_blocked_rows): every one of the 65,536 bit patterns of each dtype, each
placed against pivots (signed zeros, infinities, NaNs of both signs and payloads,
subnormals, the extremes) before and after the target, checked against the float64
sorting reference with every candidate kernel of the call."""
import numpy as np
import pytest

from fusedmetrics import _core
from reference import FLOATS
from test_accuracy_candidates import check_every_candidate

HALF_DTYPES = [d for d in FLOATS if np.dtype(d).itemsize == 2]
HALF_BLOCKED_CLASS_COUNTS = [4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32]


def pivot_bits(dtype):
    """Bit patterns that sit on the order keys' edges in this 16-bit format."""
    inf = int(np.array(np.inf, dtype).view(np.uint16))
    return np.array([0x0000, 0x8000, 0x0001, 0x8001, inf, 0x8000 | inf, inf + 1, 0x8000 | (inf + 1), 0x7fff,
                     0xffff, inf - 1, 0x8000 | (inf - 1), 0x3c00, 0xbc00], dtype=np.uint16)


def rows_of_every_pattern(dtype, C, rng):
    """Rows of C scores: one of the 65,536 patterns, one pivot, the rest drawn from the
    patterns and pivots, shuffled so that each sits before and after the other."""
    patterns = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    pivots = pivot_bits(dtype)
    n = len(patterns)
    rows = rng.choice(np.concatenate([patterns, np.repeat(pivots, 2000)]), size=(n, C)).astype(np.uint16)
    rows[:, 0] = patterns
    rows[:, 1] = rng.choice(pivots, size=n)
    rows = rng.permuted(rows, axis=1)
    return rows.view(dtype)


@pytest.mark.parametrize("C", HALF_BLOCKED_CLASS_COUNTS)
@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_bit_pattern_against_pivots(dtype, C):
    rng = np.random.default_rng(C)
    y = rows_of_every_pattern(dtype, C, rng)
    with np.errstate(invalid="ignore"):
        best = y.astype(np.float64).argmax(axis=1)
    # Half the labels are the row's argmax, the others a random class; some ignored.
    t = np.where(rng.random(len(y)) < 0.5, best, rng.integers(0, C, size=len(y))).astype(np.int32)
    names = check_every_candidate(y, t, None, 1)
    if "avx2" in _core.usable_isas():
        assert "avx2/half_blocked_rows" in names, names
    check_every_candidate(y, t.astype(np.int64), 3, 1)
    # Targets next to each pivot: the pattern-and-pivot columns, both orders.
    for column in range(C):
        check_every_candidate(y[: 4096], np.full(4096, column, np.int16), None, 1)


@pytest.mark.parametrize("C", HALF_BLOCKED_CLASS_COUNTS)
@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=lambda d: np.dtype(d).name)
def test_ties_between_every_pair_of_equal_keys(dtype, C):
    """-0.0/+0.0 and NaNs of different signs and payloads tie: the first one wins."""
    inf = int(np.array(np.inf, dtype).view(np.uint16))
    equal_groups = [[0x0000, 0x8000], [inf + 1, 0x8000 | (inf + 1), 0x7fff, 0xffff, inf + 3]]
    rows, labels = [], []
    for group in equal_groups:
        for a in group:
            for b in group:
                for i in range(C):
                    for j in range(C):
                        if i == j:
                            continue
                        row = np.full(C, 0xbc00, np.uint16)  # -1.0 below both
                        row[i], row[j] = a, b
                        rows.append(row)
                        labels.append(i)
    y = np.array(rows, np.uint16).view(dtype)
    check_every_candidate(y, np.array(labels, np.int32), None, 1)
