"""A short Chainer training run for the evaluator tests (needs Chainer; imported only by
modules that skip without it)."""
import json
import warnings

from chainer import training

from fusedmetrics import extensions


def train_and_log(out_dir, optimizer, train_iter, *trainer_extensions, epochs=3):
    """Trains `epochs` epochs with these extensions and a LogReport; returns the log (one
    entry per epoch). Chainer's own warnings (deprecations, empty batches) are muted."""
    updater = training.updaters.StandardUpdater(train_iter, optimizer)
    trainer = training.Trainer(updater, (epochs, 'epoch'), out=str(out_dir))
    for extension in trainer_extensions:
        trainer.extend(extension)
    trainer.extend(extensions.LogReport())
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        trainer.run()
    log = json.loads((out_dir / 'log').read_text())
    assert len(log) == epochs
    return log
