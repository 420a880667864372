"""Fuzz target: accuracy_counts.

Property: for any scores/labels (dtypes incl. float16/float64 and wrong ones; shapes
incl. empty, broadcast, strided, reversed, Fortran-ordered, byte-swapped, unaligned),
any ignore label and any k, the result equals tests/reference.py's top_k_counts
(added to `out` when given), or the call raises TypeError/ValueError with a message
and leaves `out` unchanged. A k that is not an integer in [1, 2**63 - 1] (the kernels'
int64) must never be accepted. Anything else is a finding.
"""
import sys

import numpy as np

import _harness
from _harness import Finding, atheris

with atheris.instrument_imports(include=["fusedmetrics"]):
    import fusedmetrics as fm

from reference import top_k_counts  # noqa: E402

KNOWN = {}  # no accuracy defects are being fixed elsewhere

SCORES = [np.float16, np.float32, np.float64]
WRONG_SCORES = [np.int8, np.int64, np.bool_, np.complex64, object]
LABELS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
WRONG_LABELS = [np.float32, np.bool_, object]


def pick(fdp, options):
    return options[fdp.ConsumeIntInRange(0, len(options) - 1)]


def fill(fdp, shape, dtype, small):
    """An array of `shape`: raw fuzzer bytes (every NaN, inf, subnormal), or small
    integers in [lo, hi] (ties, labels near [0, C))."""
    size = int(np.prod(shape))
    if dtype is object:
        return np.zeros(shape, dtype=object)
    dtype = np.dtype(dtype)
    if small is None:
        raw = fdp.ConsumeBytes(size * dtype.itemsize).ljust(size * dtype.itemsize, b"\0")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    lo, hi = small
    values = [fdp.ConsumeIntInRange(lo, hi) for _ in range(size)]
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.array(values, dtype=np.int64).astype(dtype).reshape(shape)
    if dtype.kind == "f" and size and fdp.ConsumeBool():
        out.flat[fdp.ConsumeIntInRange(0, size - 1)] = np.nan
    return out


def relayout(fdp, a):
    """The same values in another memory layout (what the kernels must not care about)."""
    if a.ndim == 0 or a.dtype == object:
        return a
    how = fdp.ConsumeIntInRange(0, 7)
    axis = fdp.ConsumeIntInRange(0, a.ndim - 1)
    if how == 1:  # reversed along an axis
        return np.flip(a, axis)
    if how == 2:  # strided: every other element of a twice-as-long array
        wide = np.repeat(a, 2, axis=axis)
        return wide[(slice(None),) * axis + (slice(None, None, 2),)]
    if how == 3:
        return np.asfortranarray(a)
    if how == 4:  # broadcast: one slice repeated with stride 0
        if a.shape[axis] == 0:
            return a
        return np.broadcast_to(np.take(a, [0], axis=axis), a.shape)
    if how == 5 and a.dtype.itemsize > 1:  # byte-swapped
        return a.astype(a.dtype.newbyteorder())
    if how == 6 and a.dtype.itemsize > 1:  # unaligned: the same bytes one byte in
        buf = np.zeros(a.nbytes + 1, dtype=np.uint8)
        out = buf[1:].view(a.dtype).reshape(a.shape)
        out[...] = a
        return out
    return a


def make_case(fdp):
    c = pick(fdp, [0, 1, 2, 3, 4, 5, 8, 10, 33, 100])
    n = fdp.ConsumeIntInRange(0, 9)
    trailing = tuple(fdp.ConsumeIntInRange(0, 3) for _ in range(fdp.ConsumeIntInRange(0, 2)))
    y_shape = (n, c) + trailing
    if fdp.ConsumeIntInRange(0, 15) == 0:  # too few axes
        y_shape = y_shape[:fdp.ConsumeIntInRange(0, 1)]
    t_shape = (n,) + trailing
    if trailing and fdp.ConsumeBool():  # drop trailing axes (allowed when they are 1)
        t_shape = t_shape[:len(t_shape) - fdp.ConsumeIntInRange(1, len(trailing))]
    if fdp.ConsumeIntInRange(0, 15) == 0:
        t_shape = tuple(fdp.ConsumeIntInRange(0, 4) for _ in range(fdp.ConsumeIntInRange(0, 3)))
    y_dtype = pick(fdp, WRONG_SCORES) if fdp.ConsumeIntInRange(0, 9) == 0 else pick(fdp, SCORES)
    t_dtype = pick(fdp, WRONG_LABELS) if fdp.ConsumeIntInRange(0, 9) == 0 else pick(fdp, LABELS)
    y = fill(fdp, y_shape, y_dtype, None if fdp.ConsumeBool() else (-2, 2))
    t = fill(fdp, t_shape, t_dtype, None if fdp.ConsumeIntInRange(0, 4) == 0 else (-2, max(c, 1) + 1))
    y, t = relayout(fdp, y), relayout(fdp, t)
    ignore = pick(fdp, [None, None, -1, 0, 1, 255, 2 ** 63, -2 ** 63 - 1, np.int64(-1), np.uint8(1),
                        True, 1.5, "x", fdp.ConsumeIntInRange(-2 ** 65, 2 ** 65)])
    k = pick(fdp, [1, 1, 2, 3, 5, max(c, 1), c + 1, 0, -1, 2 ** 62, 2 ** 63 - 1, 2 ** 63, 2 ** 64, np.int32(2),
                   np.uint64(2 ** 63), 1.0, True])
    out = None
    if fdp.ConsumeIntInRange(0, 3) == 0:
        out = np.array([fdp.ConsumeIntInRange(0, 1000), fdp.ConsumeIntInRange(0, 1000)], dtype=np.int64)
    return y, t, ignore, k, out


def reference_ignore(ignore, t_dtype):
    """The label value the kernels must ignore: an integer the dtype can hold; None otherwise."""
    if ignore is None:
        return None
    value = int(ignore.__index__())  # the call accepted it, so it has __index__
    info = np.iinfo(t_dtype)
    return value if info.min <= value <= info.max else None


def check(case):
    y, t, ignore, k, out = case
    before = None if out is None else out.copy()
    try:
        got = fm.accuracy_counts(y, t, ignore, k=k, out=out)
    except (TypeError, ValueError) as error:
        if not str(error):
            raise Finding(f"{type(error).__name__} without a message")
        if out is not None and not np.array_equal(out, before):
            raise Finding(f"a failed call changed out: {before} -> {out}")
        return
    if not hasattr(k, "__index__") or not 1 <= int(k.__index__()) <= 2 ** 63 - 1:
        raise Finding(f"accepted k={k!r} (documented: an integer in [1, 2**63 - 1]); returned {got}")
    try:
        expected = top_k_counts(y, t, reference_ignore(ignore, t.dtype), min(int(k), 10 ** 6))
    except Exception as error:  # noqa: BLE001 - the call accepted what the reference cannot count
        raise Finding(f"accepted an input the reference rejects ({error!r}); returned {got}")
    if before is not None:
        expected = before + expected
        if got is not out:
            raise Finding("out= given but another array returned")
    if got.dtype != np.int64 or got.shape != (2,) or not np.array_equal(got, expected):
        raise Finding(f"counts {got!r} != reference {expected!r}")


if __name__ == "__main__":
    _harness.main("accuracy", make_case, check)
