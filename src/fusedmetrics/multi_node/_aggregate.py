"""Combining the ranks' DictSummary states: the collectives and the key registry.

Per evaluation every rank makes, in this order:

1. one fixed-size ``Allgather`` of three int64 (the header): a protocol tag, "my local evaluation
   failed", and "I reported a name that is not in the shared key registry". It doubles as the
   error-status exchange, so a failing rank can never leave the others blocked in the data
   collective: they all see the failure in the header and raise;
2. only when some rank flagged new names: one object ``allgather`` of the names (a few hundred
   bytes), after which every rank rebuilds the same registry (union of the names, rank order,
   first-seen order within a rank);
3. one ``Allgather`` of a float64 (K, 4) table per rank, K = registry size, rows
   ``[W, mean, M2, flags]`` (see ``_states``), then a Chan merge in rank order on every rank.

Why a header rather than hashing the names into the data collective: the data collective needs
the same table size on every rank, so every rank must know whether the registry changes before
it is made; the header is the cheapest collective that tells them (and it is needed anyway for
the error status). In the common case (keys unchanged since the last evaluation) that is one
tiny collective plus one data collective, whatever the number of keys.
"""
import sys
import traceback

import numpy as np

from . import _states

_TAG = 0x464D4D4E  # "FMMN": catches ranks that reached different collectives on this comm


class RemoteEvaluationError(RuntimeError):
    """Raised on the ranks whose own evaluation succeeded when another rank's failed."""

    def __init__(self, failed_ranks, size):
        self.failed_ranks = list(failed_ranks)
        super().__init__(
            f"multi-node evaluation failed on rank(s) {self.failed_ranks} of {size}; "
            "their error is printed on stderr by those ranks")


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

    def aggregate(self, local_state, failure=None):
        """Returns the merged state dict of all ranks (bit-identical on every rank).

        ``local_state``: this rank's state dict, or None when ``failure`` (the exception of this
        rank's local evaluation) is given. Every rank must call this the same number of times.
        On a failure anywhere, every rank raises: the failing rank its own exception, the others
        ``RemoteEvaluationError``.
        """
        comm = self.comm
        size = comm.Get_size()
        if failure is None:
            names, moments, integer = _states.check_state_dict(local_state, "local DictSummary")
            need_names = any(n not in self.index for n in names)
        else:
            names, need_names = [], False

        header = np.array([_TAG, failure is not None, need_names], dtype=np.int64)
        headers = np.empty((size, 3), dtype=np.int64)
        comm.Allgather(header, headers)
        if (headers[:, 0] != _TAG).any():
            raise RuntimeError("multi-node evaluation: ranks reached different collectives on this "
                               "communicator (is the evaluator wrapped on every rank?)")
        failed = np.flatnonzero(headers[:, 1])
        if failed.size:
            if failure is not None:
                raise failure
            raise RemoteEvaluationError(failed.tolist(), size)

        if headers[:, 2].any():
            self._rebuild_registry(comm.allgather(names))
        k = len(self.registry)
        if k == 0:
            return {"names": [], "moments": np.zeros((0, 3)), "integer_weights": np.zeros(0, bool)}
        table = _states.pack(names, moments, integer, self.index, k)
        tables = np.empty((size, k, _states.COLUMNS), dtype=np.float64)
        comm.Allgather(table, tables)
        return _states.unpack(_states.merge_tables(tables), self.registry)

    def _rebuild_registry(self, names_per_rank):
        registry, index = [], {}
        for names in names_per_rank:
            for n in names:
                if n not in index:
                    index[n] = len(registry)
                    registry.append(n)
        self.registry, self.index = registry, index
        self.names_exchanges += 1
