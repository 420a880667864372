#!/usr/bin/env python
"""Train a small MLP on fusedmetrics' synthetic dataset with a Chainer Trainer.

The validation metrics come from fusedmetrics: its Evaluator (exact float64
accumulation), its Classifier (fused accuracy plus correct/total counts) and
MicroAverage (the exact accuracy over the whole validation set, while the
per-batch mean `validation/main/accuracy` weighs the short last batch like a
full one).

    python examples/train_classifier.py                      # CPU
    python examples/train_classifier.py --device @cupy:0     # GPU
    mpiexec -n 2 python examples/train_classifier.py --multi-node
"""
import sys

import numpy

import chainer
import chainer.functions as F
import chainer.links as L
from chainer.training import extensions as chainer_extensions

from fusedmetrics import extensions
from fusedmetrics.datasets import train_test
from fusedmetrics.links import Classifier

from _common import example_parser, make_trainer


class MLP(chainer.Chain):
    def __init__(self, n_units, n_out):
        super().__init__()
        with self.init_scope():
            self.l1 = L.Linear(None, n_units)
            self.l2 = L.Linear(None, n_units)
            self.l3 = L.Linear(None, n_out)

    def forward(self, x):
        h = F.relu(self.l1(x))
        h = F.relu(self.l2(h))
        return self.l3(h)


def parse_args(argv=None):
    p = example_parser(__doc__, epoch=5, batchsize=64, n_train=4000, n_test=1003)
    p.add_argument('--unit', '-u', type=int, default=64)
    p.add_argument('--progress-bar', action='store_true',
                   help="show the evaluator's progress bar")
    p.add_argument('--multi-node', action='store_true',
                   help='data-parallel over MPI (run under mpiexec)')
    return p.parse_args(argv)


def setup_multi_node():
    """Returns ``(comm, multi_node module)`` for --multi-node, else exits."""
    try:
        from fusedmetrics import multi_node
        import chainermn
        comm = chainermn.create_communicator('naive')
    except ImportError as e:
        raise SystemExit(
            '--multi-node needs fusedmetrics.multi_node, mpi4py and an MPI '
            'library (pip install fusedmetrics[mpi]); import failed: '
            '{}'.format(e))
    return comm, multi_node


def _seed_everything(seed, device):
    numpy.random.seed(seed)  # weight initialisers and shuffling
    if device.xp is not numpy:
        device.xp.random.seed(seed)


def main(argv=None):
    args = parse_args(argv)
    device = chainer.get_device(args.device)
    comm = multi_node = None
    if args.multi_node:
        comm, multi_node = setup_multi_node()
    is_writer = comm is None or comm.rank == 0

    (x_train, t_train), (x_test, t_test) = train_test(
        args.n_train, args.n_test, seed=args.seed)
    train = chainer.datasets.TupleDataset(x_train, t_train)
    test = chainer.datasets.TupleDataset(x_test, t_test)
    if comm is not None:
        # Training shards of equal length: every rank's epoch ends on the same iteration.
        train = multi_node.scatter_dataset(train, comm, shuffle=True,
                                           seed=args.seed, force_equal_length=True)
        test = multi_node.scatter_dataset(test, comm)

    _seed_everything(args.seed, device)
    model = Classifier(MLP(args.unit, int(t_train.max()) + 1))
    model.to_device(device)
    device.use()

    optimizer = chainer.optimizers.Adam()
    if comm is not None:
        import chainermn
        optimizer = chainermn.create_multi_node_optimizer(optimizer, comm)
    optimizer.setup(model)

    trainer, test_iter = make_trainer(args, train, test, optimizer, device)

    evaluator = extensions.Evaluator(test_iter, model, device=device,
                                     progress_bar=args.progress_bar)
    if comm is not None:
        evaluator = multi_node.create_multi_node_evaluator(evaluator, comm)
    trainer.extend(evaluator)
    # Both MicroAverages must run every iteration (their default extension
    # trigger); they emit once per epoch (their averaging trigger).
    trainer.extend(extensions.MicroAverage(
        'main/correct', 'main/total', 'main/accuracy_micro', comm=comm))
    trainer.extend(extensions.MicroAverage(
        'validation/main/correct', 'validation/main/total',
        'validation/main/accuracy_micro'))
    if is_writer:
        trainer.extend(chainer_extensions.LogReport())
        trainer.extend(chainer_extensions.PrintReport(
            ['epoch', 'main/loss', 'main/accuracy_micro',
             'validation/main/loss', 'validation/main/accuracy',
             'validation/main/accuracy_micro', 'elapsed_time']))
    trainer.run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
