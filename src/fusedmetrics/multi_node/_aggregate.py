"""Combining the ranks' DictSummary states: the collectives and the key registry.

Every rank keeps the same key registry (the union of the names, rank order, first-seen order
within a rank). Per evaluation every rank makes, in this order:

1. one ``Allgather`` of a float64 table of K + 1 rows per rank, K = registry size: rows
   ``[W, mean, M2, flags]`` for the registry's keys (see ``_states``) and one header row
   ``[tag, my local evaluation failed, I reported a name outside the registry, 0]``;
2. only when some rank flagged new names: one object ``allgather`` of the names, after which every
   rank rebuilds the same registry, and one more packed ``Allgather`` with the new size.

Then every rank merges the tables in rank order with Chan's formula, so all get bit-identical
results. In the common case (keys unchanged since the last evaluation) that is ONE collective per
evaluation, whatever the number of keys; the first evaluation, or one where some rank saw a new
key, costs three. The header row doubles as the error-status exchange: a failing rank still makes
the collective, every rank sees the failure and raises, and nobody is left blocked.

Why the header rides in the data collective instead of a separate fixed-size collective (e.g.
an allgather of a hash of the names): the table size must be the same on every rank, and every
rank already knows the agreed registry size, so an optimistic send at that size is always
well-formed; a rank with new names just sends rows nobody reads and the exchange is redone.
"""
import sys
import traceback

import numpy as np

from .._snapshot import check_state_dict
from . import _states

_TAG = 0x464D4D4E  # "FMMN": catches ranks that reached different collectives on this comm


class RemoteEvaluationError(RuntimeError):
    """Raised on the ranks whose own part succeeded when another rank's failed (a multi-node
    evaluation, or ``allreduce_pair`` with an invalid value on some rank)."""

    def __init__(self, failed_ranks, size, operation="multi-node evaluation"):
        self.failed_ranks = list(failed_ranks)
        where = ("their error is printed on stderr by those ranks" if operation == "multi-node evaluation"
                 else "those ranks raise their own error")
        super().__init__(f"{operation} failed on rank(s) {self.failed_ranks} of {size}; {where}")


def report_local_failure(exc, rank, size):
    """Prints the failing rank's traceback to stderr (before any collective) and tags the error."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    sys.stderr.write(f"[fusedmetrics.multi_node] rank {rank} of {size}: local evaluation failed:\n"
                     f"{text}")
    sys.stderr.flush()
    if hasattr(exc, "add_note"):  # Python >= 3.11
        exc.add_note(f"(raised on MPI rank {rank} of {size} during multi-node evaluation)")


class StateAggregator:
    """Keeps the shared key registry of one communicator and merges the ranks' states."""

    def __init__(self, mpi_comm):
        self.comm = mpi_comm
        self.registry = []   # identical on every rank
        self.index = {}
        self.names_exchanges = 0  # how often step 2 ran (tests and benchmarks look at it)
        self._last_names = None   # the local names of the last pack, and their registry rows
        self._last_rows = None

    def aggregate(self, local_state, failure=None):
        """Returns the merged state dict of all ranks (bit-identical on every rank).

        ``local_state``: this rank's state dict, or None when ``failure`` (the exception of this
        rank's local evaluation) is given. Every rank must call this the same number of times.
        On a failure anywhere, every rank raises: the failing rank its own exception, the others
        ``RemoteEvaluationError``.
        """
        comm = self.comm
        size = comm.Get_size()
        names, moments, integer, need_names = [], None, None, False
        if failure is None:
            try:
                names, moments, integer = check_state_dict(local_state, "local DictSummary")
            except (TypeError, ValueError) as exc:  # still join the collective below
                report_local_failure(exc, comm.Get_rank(), size)
                failure = exc
            else:
                need_names = names != self._last_names and any(n not in self.index for n in names)

        k = len(self.registry)
        send = np.zeros((k + 1, _states.COLUMNS), dtype=np.float64)
        send[k, :3] = (_TAG, failure is not None, need_names)
        if failure is None and not need_names:
            send[:k] = self._pack(names, moments, integer)
        recv = np.empty((size, k + 1, _states.COLUMNS), dtype=np.float64)
        comm.Allgather(send, recv)

        headers = recv[:, k, :3]
        if (headers[:, 0] != _TAG).any():  # (only possible when ranks mismatched collectives)
            raise RuntimeError("multi-node evaluation: ranks reached different collectives on this "
                               "communicator (is the evaluator wrapped on every rank?)")
        if headers[:, 1:].any():
            return self._slow_path(headers, recv, names, moments, integer, failure)
        return _states.unpack(_states.merge_tables(recv[:, :k, :]), self.registry)

    def _slow_path(self, headers, recv, names, moments, integer, failure):
        """A rank failed (everyone raises) or some rank has new names (exchange, then resend)."""
        comm, size, k = self.comm, self.comm.Get_size(), len(self.registry)
        failed = np.flatnonzero(headers[:, 1])
        if failed.size:
            if failure is not None:
                raise failure
            raise RemoteEvaluationError(failed.tolist(), size)
        if headers[:, 2].any():
            self._rebuild_registry(comm.allgather(names))
            k = len(self.registry)
            send = self._pack(names, moments, integer)
            recv = np.empty((size, k, _states.COLUMNS), dtype=np.float64)
            comm.Allgather(send, recv)
        tables = recv[:, :k, :]
        return _states.unpack(_states.merge_tables(tables), self.registry)

    def _pack(self, names, moments, integer):
        if names != self._last_names:  # a C-level list comparison; usually equal
            self._last_rows = np.fromiter((self.index[n] for n in names), dtype=np.intp,
                                          count=len(names))
            self._last_names = names
        return _states.pack_rows(self._last_rows, moments, integer, len(self.registry))

    def _rebuild_registry(self, names_per_rank):
        registry, index = [], {}
        for names in names_per_rank:
            for n in names:
                if n not in index:
                    index[n] = len(registry)
                    registry.append(n)
        self.registry, self.index = registry, index
        self._last_names = self._last_rows = None
        self.names_exchanges += 1
