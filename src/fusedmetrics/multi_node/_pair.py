"""``allreduce_pair``: the cross-rank sums behind ``MicroAverage(comm=...)``."""
import math
import numbers

import numpy as np

from .._interop import is_device_array, to_host, unwrap
from ._aggregate import RemoteEvaluationError
from ._comm import resolve_comm

_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_FAILED = 1 << 2  # header bit: this rank's values were invalid (bits 0 and 1 mark float values)


def allreduce_pair(comm, a, b):
    """Sums ``a`` and ``b`` over all ranks of ``comm`` in one collective; returns ``(sum_a, sum_b)``.

    Each value may be a Python/numpy number, a 0-d (or size-1) numpy array, or a device array
    (cupy; brought to the host here, which synchronises: call it at the averaging trigger only).

    One ``Allgather`` of three int64 per rank carries each value either as an exact int64 or as the
    bit pattern of a float64, with a kind flag. So ranks need not agree on the types (a rank that
    saw no batch may still hold the int 0 while others hold floats). A sum whose every term is an
    integer is returned as an exact Python ``int``; otherwise it is returned as a Python ``float``
    computed with ``math.fsum`` (correctly rounded, independent of rank order), identical on every
    rank.

    Errors: a rank whose ``a`` or ``b`` is invalid still joins the collective, with a failure
    flag, so no rank is left waiting; then every rank raises: the failing rank its own
    TypeError/ValueError, the others ``RemoteEvaluationError`` naming the failed ranks.
    """
    mpi_comm = resolve_comm(comm, "comm")
    record = np.zeros(3, dtype=np.int64)
    failure = None
    try:
        for slot, (value, name) in enumerate(((a, "a"), (b, "b"))):
            number = _host_number(value, name)
            if isinstance(number, int):
                record[1 + slot] = number
            else:
                record[0] |= 1 << slot
                record[1 + slot] = np.float64(number).view(np.int64)
    except Exception as exc:  # every rank must still reach the collective below
        failure = exc
        record[:] = 0
        record[0] = _FAILED
    gathered = np.empty((mpi_comm.Get_size(), 3), dtype=np.int64)
    mpi_comm.Allgather(record, gathered)
    failed = np.flatnonzero(gathered[:, 0] & _FAILED)
    if failure is not None:
        raise failure
    if failed.size:
        raise RemoteEvaluationError(failed.tolist(), mpi_comm.Get_size(), "allreduce_pair")
    return tuple(_sum_column(gathered, slot) for slot in (0, 1))


def _sum_column(gathered, slot):
    is_float = (gathered[:, 0] >> slot) & 1
    raw = gathered[:, 1 + slot]
    if not is_float.any():
        return sum(int(v) for v in raw)  # Python ints: exact, no overflow
    as_float = raw.view(np.float64)
    return math.fsum(float(as_float[r]) if is_float[r] else float(int(raw[r]))
                     for r in range(len(raw)))


def _host_number(x, name):
    """Returns x as a Python int (integer kinds) or float; raises TypeError/ValueError naming it."""
    x = unwrap(x)
    if is_device_array(x):
        x = to_host(x)
    if isinstance(x, (bool, np.bool_)):
        return int(x)
    if isinstance(x, numbers.Integral):
        return _checked_int(int(x), name)
    if isinstance(x, numbers.Real):
        return float(x)
    if isinstance(x, (np.ndarray, np.generic)):
        arr = np.asarray(x)
        if arr.size != 1:
            raise ValueError(f"{name} must be a scalar (0-d or size-1 array), got shape {arr.shape}")
        kind = arr.dtype.kind
        if kind in "biu":
            return _checked_int(int(arr.reshape(())), name)
        if kind == "f":
            return float(arr.reshape(()))
        raise TypeError(f"{name} must be an integer or real number, got an array of dtype {arr.dtype}")
    raise TypeError(f"{name} must be a number or a 0-d array, got {type(x).__module__}."
                    f"{type(x).__qualname__}")


def _checked_int(v, name):
    if not _INT64_MIN <= v <= _INT64_MAX:
        raise ValueError(f"{name}={v} does not fit in int64")
    return v

