"""The few lines a training script needs to run data-parallel under ``mpiexec``."""
from ._comm import resolve_comm
from ._evaluator import create_multi_node_evaluator
from ._scatter import scatter_dataset


class MultiNodeSetup:
    """What a script needs after ``setup_example()``: the communicator and helpers bound to it.

    Attributes: ``comm`` (ChainerMN communicator), ``mpi_comm`` (mpi4py), ``rank``, ``size``,
    ``intra_rank`` (rank within the node: the GPU id to use), ``is_root`` (rank 0: the rank that
    logs and prints).
    """

    def __init__(self, comm):
        self.comm = comm
        self.mpi_comm = resolve_comm(comm, "comm")
        self.rank = self.mpi_comm.Get_rank()
        self.size = self.mpi_comm.Get_size()
        self.intra_rank = getattr(comm, "intra_rank", self.rank)
        self.is_root = self.rank == 0

    def scatter(self, dataset, shuffle=False, seed=None):
        """This rank's duplicate-free shard (``fusedmetrics.multi_node.scatter_dataset``)."""
        return scatter_dataset(dataset, self.comm, shuffle=shuffle, seed=seed)

    def optimizer(self, optimizer):
        """ChainerMN's gradient-allreducing optimizer wrapper."""
        import chainermn
        return chainermn.create_multi_node_optimizer(optimizer, self.comm)

    def evaluator(self, evaluator):
        """The exact multi-node evaluator (``create_multi_node_evaluator``)."""
        return create_multi_node_evaluator(evaluator, self.comm)


def setup_example(communicator="naive"):
    """Creates a ChainerMN communicator (``'naive'`` works on CPUs) and returns a MultiNodeSetup.

    Run the script with ``mpiexec -n 2 python script.py ...``; every rank executes it.
    """
    try:
        import chainermn
    except ImportError as exc:  # pragma: no cover - chainermn ships inside chainer 7.8.1
        raise ImportError("multi-node training needs chainer (with chainermn) and mpi4py: "
                          "pip install 'fusedmetrics[chainer,mpi]'") from exc
    return MultiNodeSetup(chainermn.create_communicator(communicator))
