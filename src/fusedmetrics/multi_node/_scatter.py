"""``scatter_dataset``: contiguous, duplicate-free shards."""
import numpy as np

from ._comm import resolve_comm


def shard_bounds(n, size, rank):
    """[start, stop) of ``rank``'s shard: contiguous, sizes differ by at most one (larger last)."""
    return n * rank // size, n * (rank + 1) // size


def scatter_dataset(dataset, comm, shuffle=False, seed=None, root=0, *, force_equal_length=False):
    """Returns this rank's shard of ``dataset``: no example duplicated, the union is the dataset.

    Every rank passes the same dataset (e.g. each loads it from disk); nothing but its length and,
    with ``shuffle``, a permutation goes over MPI. Rank r gets examples
    ``[N*r//P, N*(r+1)//P)`` (of the permutation when ``shuffle``), so shard sizes differ by at
    most one. With ``shuffle=True`` the root draws ``numpy.random.RandomState(seed).permutation(N)``
    and broadcasts it, so the shards are disjoint even with ``seed=None``.

    Returns a ``chainer.datasets.SubDataset`` when Chainer is importable, else a light indexable
    view (``len``, integer indexing, slices, iteration).

    Collectives: one ``Allgather`` of the lengths (every rank checks they agree and raises the
    same ValueError otherwise), plus one ``Bcast`` of the permutation when ``shuffle``.

    ``force_equal_length=True`` is for TRAINING data: every shard gets ceil(N/P) examples, the
    short ones continuing into the next rank's (wrapping to the first), so that every rank's epoch
    has the same number of iterations. Synchronous data-parallel training needs that: with
    uneven shards the epoch triggers (an evaluator, ``MicroAverage(comm=...)``) fire on different
    iterations on different ranks and their collectives meet the optimizer's allreduce, a
    deadlock. The shard is then a ``ShardView``.

    Deliberate difference from ``chainermn.scatter_dataset``: ChainerMN sends the examples from
    the root and, by default (``force_equal_length=True``), pads the shards with duplicated
    examples so that all have ceil(N/P) items, which biases evaluation. Here the default is
    ``False``: shards never overlap; use a non-repeating iterator per rank, and an exact
    multi-node evaluator.
    """
    mpi_comm = resolve_comm(comm, "comm")
    size, rank = mpi_comm.Get_size(), mpi_comm.Get_rank()
    if not isinstance(root, (int, np.integer)) or not 0 <= root < size:
        raise ValueError(f"root must be a rank in [0, {size}), got {root!r}")
    try:
        n = len(dataset)
    except TypeError:
        n = -1  # still join the collective, so that no other rank is left waiting

    lengths = np.empty(size, dtype=np.int64)
    mpi_comm.Allgather(np.array([n], dtype=np.int64), lengths)
    if n < 0:
        raise TypeError(f"dataset must support len() and indexing, got {type(dataset).__qualname__}")
    if (lengths < 0).any():
        raise ValueError(f"scatter_dataset: the dataset has no len() on rank(s) "
                         f"{np.flatnonzero(lengths < 0).tolist()}")
    if (lengths != lengths[0]).any():
        raise ValueError(f"scatter_dataset: every rank must pass the same dataset; lengths per rank: "
                         f"{lengths.tolist()}")

    order = None
    if shuffle:
        order = np.empty(n, dtype=np.int64)
        if rank == root:
            order[:] = np.random.RandomState(seed).permutation(n)
        mpi_comm.Bcast(order, root=int(root))
    start, stop = shard_bounds(n, size, rank)
    if force_equal_length and n and stop - start < -(-n // size):
        base = np.arange(n) if order is None else order
        return ShardView(dataset, 0, -(-n // size), base[np.arange(start, start + -(-n // size)) % n])
    return _make_view(dataset, start, stop, order)


def _make_view(dataset, start, stop, order):
    try:
        from chainer.datasets import SubDataset
    except ImportError:
        return ShardView(dataset, start, stop, order)
    return SubDataset(dataset, start, stop, order)


class ShardView:
    """``dataset[order[start:stop]]`` without copying (used when Chainer is not installed)."""

    def __init__(self, dataset, start, stop, order=None):
        self._dataset, self._start, self._stop, self._order = dataset, start, stop, order

    def __len__(self):
        return self._stop - self._start

    def _source_index(self, i):
        j = self._start + i
        return int(self._order[j]) if self._order is not None else j

    def __getitem__(self, index):
        n = len(self)
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(n))]
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int or a slice, got {type(index).__qualname__}")
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for a shard of length {n}")
        return self._dataset[self._source_index(int(index))]

    def __iter__(self):
        return (self[i] for i in range(len(self)))
