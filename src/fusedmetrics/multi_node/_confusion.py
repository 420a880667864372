"""``allreduce_confusion``: the exact cross-rank sum of confusion-matrix counts.

Every rank contributes its host int64 (c, c) counts, its count of invalid samples and whether its
own evaluation failed. With a known, common C that is ONE ``Allreduce`` (SUM) of
``C*C + 1 + size`` int64: the counts, the invalid count and one failure slot per rank (so a rank
whose evaluation raised still joins, every rank learns which ranks failed, and nobody is left
waiting). When C is grown from the labels seen (``grow=True``), one small ``Allreduce`` (MAX) of
``1 + size`` int64 first agrees on C (and carries the failure slots), then the counts follow.
"""
import numpy as np

from ._aggregate import RemoteEvaluationError
from ._comm import resolve_comm


def _check_failures(slots, rank, size, local_failure):
    failed = [r for r in range(size) if slots[r]]
    if not failed:
        return
    if local_failure is not None:
        raise local_failure
    raise RemoteEvaluationError(failed, size)


def allreduce_confusion(comm, matrix, invalid, num_classes=None, local_failure=None):
    """Sums confusion counts over all ranks of ``comm``; returns ``(matrix, invalid)`` on every rank.

    ``matrix``: this rank's host int64 (c, c) counts (ignored when ``local_failure`` is set).
    ``invalid``: this rank's count of non-ignored samples with a label outside [0, c).
    ``local_failure``: the exception this rank's evaluation raised, or None; when any rank failed,
    every rank raises after the collective (that rank its own exception, the others
    :class:`RemoteEvaluationError` naming the failed ranks).
    ``num_classes``: the C every rank uses; ``None`` when each rank grew its matrix to its largest
    label (then the ranks agree on the largest c first and pad with zeros).
    """
    from mpi4py import MPI
    mpi = resolve_comm(comm, "comm")
    rank, size = mpi.Get_rank(), mpi.Get_size()
    failed = local_failure is not None
    local = None if failed else np.asarray(matrix, dtype=np.int64)
    if num_classes is not None:
        c = int(num_classes)
        if local is not None and local.shape != (c, c):
            raise ValueError(f"matrix has shape {local.shape}; expected ({c}, {c})")
    else:
        c = 0 if local is None else local.shape[0]

    if num_classes is None:
        head = np.zeros(1 + size, dtype=np.int64)
        head[0] = c
        head[1 + rank] = int(failed)
        mpi.Allreduce(MPI.IN_PLACE, head, op=MPI.MAX)
        _check_failures(head[1:], rank, size, local_failure)
        c_global = int(head[0])
        if c < c_global:
            padded = np.zeros((c_global, c_global), dtype=np.int64)
            padded[:c, :c] = local
            local = padded
        c = c_global

    buf = np.zeros(c * c + 1 + size, dtype=np.int64)
    if not failed:
        buf[:c * c] = local.reshape(-1)
        buf[c * c] = int(invalid)
    buf[c * c + 1 + rank] = int(failed)
    mpi.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    _check_failures(buf[c * c + 1:], rank, size, local_failure)
    return buf[:c * c].reshape(c, c), int(buf[c * c])
