"""What the Chainer examples share: their common command-line options and the
iterators / updater / trainer around a model (not an example itself).

The examples import it as a sibling module: ``python examples/x.py`` and
``python -m mpi4py examples/x.py`` both put the script's folder first on sys.path.
"""
import argparse

import chainer
from chainer import training


def example_parser(doc, *, epoch, batchsize, n_train, n_test):
    """The options every example takes, with that example's defaults; add its own."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument('--device', '-d', default='-1',
                   help='device specifier: -1 or @numpy (CPU), @cupy:0 (GPU)')
    p.add_argument('--epoch', '-e', type=int, default=epoch)
    p.add_argument('--batchsize', '-b', type=int, default=batchsize)
    p.add_argument('--n-train', type=int, default=n_train)
    p.add_argument('--n-test', type=int, default=n_test)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', '-o', default='result')
    return p


def make_trainer(args, train, test, optimizer, device):
    """A Trainer for ``args.epoch`` epochs over ``train`` (shuffled batches) writing to
    ``args.out``, and the iterator of one ordered pass over ``test`` for an evaluator."""
    train_iter = chainer.iterators.SerialIterator(train, args.batchsize)
    test_iter = chainer.iterators.SerialIterator(
        test, args.batchsize, repeat=False, shuffle=False)
    updater = training.updaters.StandardUpdater(
        train_iter, optimizer, device=device)
    trainer = training.Trainer(updater, (args.epoch, 'epoch'), out=args.out)
    return trainer, test_iter
