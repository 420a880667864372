"""Multi-node (MPI) evaluation with exact results however the data is split.

Nothing here imports mpi4py or Chainer at import time: importing ``mpi4py.MPI`` initialises MPI.
They are imported on first use, when a communicator already exists.

- ``create_multi_node_evaluator(evaluator, comm)``: one evaluation over the union of all ranks'
  batches, bit-identical on every rank.
- ``scatter_dataset(dataset, comm, shuffle=False, seed=None, root=0)``: contiguous shards, no
  duplicates.
- ``allreduce_pair(comm, a, b)``: the cross-rank sums used by ``MicroAverage(comm=...)``.
- ``allreduce_confusion(comm, matrix, invalid, num_classes=None)``: exact confusion counts over all
  ranks (``SemanticSegmentationEvaluator(comm=...)``).

Run training scripts as ``mpiexec -n 2 python -m mpi4py script.py``: ``-m mpi4py`` turns an
uncaught exception on any rank into an abort of the whole job (a failed evaluation already makes
every rank raise; an error elsewhere would otherwise leave the other ranks waiting).
"""
from ._aggregate import RemoteEvaluationError, StateAggregator
from ._confusion import allreduce_confusion
from ._evaluator import create_multi_node_evaluator, is_multi_node_evaluator
from ._pair import allreduce_pair
from ._scatter import ShardView, scatter_dataset, shard_bounds
from ._states import merge_tables

__all__ = [
    "RemoteEvaluationError",
    "ShardView",
    "StateAggregator",
    "allreduce_confusion",
    "allreduce_pair",
    "create_multi_node_evaluator",
    "is_multi_node_evaluator",
    "merge_tables",
    "scatter_dataset",
    "shard_bounds",
]
