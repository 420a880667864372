"""Whole Trainer runs: ours against Chainer's, lifecycle with errors, snapshot and resume."""
import json
import os
import warnings

import numpy
import pytest

chainer = pytest.importorskip('chainer')
import chainer.functions as F  # noqa: E402
import chainer.links as L  # noqa: E402
from chainer import training  # noqa: E402
from chainer.training import extensions as chainer_extensions  # noqa: E402

from fusedmetrics import extensions  # noqa: E402
from fusedmetrics.datasets import train_test  # noqa: E402
from fusedmetrics.links import Classifier  # noqa: E402

N_TRAIN, N_TEST, BATCH = 96, 45, 8   # 45 = 5 * 8 + 5: a short last batch


class MLP(chainer.Chain):
    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.l1 = L.Linear(16, 12)
            self.l2 = L.Linear(12, 5)

    def forward(self, x):
        return self.l2(F.relu(self.l1(x)))


class ChainerCountingClassifier(L.Classifier):
    """Chainer's Classifier plus correct/total computed independently with numpy."""

    def forward(self, x, t):
        loss = super().forward(x, t)
        pred = self.y.array.argmax(axis=1)
        chainer.report({'correct': int((pred == t).sum()), 'total': len(t)}, self)
        return loss


def datasets():
    (xa, ta), (xb, tb) = train_test(N_TRAIN, N_TEST, seed=3)
    return (chainer.datasets.TupleDataset(xa, ta),
            chainer.datasets.TupleDataset(xb, tb), (xb, tb))


def make_model(ours):
    numpy.random.seed(0)
    predictor = MLP()
    return Classifier(predictor) if ours else ChainerCountingClassifier(predictor)


class ExactAccuracy(training.Extension):
    """Reports the validation accuracy computed from scratch with numpy."""
    trigger = 1, 'epoch'
    priority = training.PRIORITY_WRITER - 1   # after the Evaluator

    def __init__(self, model, x, t):
        self.model, self.x, self.t = model, x, t

    def __call__(self, trainer):
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            pred = self.model.predictor(self.x).array.argmax(axis=1)
        chainer.report({'exact_accuracy': float((pred == self.t).sum()) / len(self.t)})


def build_trainer(ours, out, stop=(3, 'epoch'), ext_module=None):
    ext = ext_module or (extensions if ours else chainer_extensions)
    train, test, (xb, tb) = datasets()
    model = make_model(ours)
    opt = chainer.optimizers.Adam(alpha=0.02)
    opt.setup(model)
    train_iter = chainer.iterators.SerialIterator(train, BATCH, shuffle=False)
    test_iter = chainer.iterators.SerialIterator(test, BATCH, repeat=False, shuffle=False)
    updater = training.updaters.StandardUpdater(train_iter, opt)
    trainer = training.Trainer(updater, stop, out=str(out))
    trainer.extend(ext.Evaluator(test_iter, model))
    trainer.extend(ext.MicroAverage('main/correct', 'main/total', 'main/accuracy_micro'))
    trainer.extend(ext.MicroAverage('validation/main/correct', 'validation/main/total',
                                    'validation/main/accuracy_micro'))
    trainer.extend(ExactAccuracy(model, xb, tb))
    trainer.extend(chainer_extensions.LogReport())
    return trainer, model, test_iter


def read_log(out):
    with open(os.path.join(str(out), 'log')) as f:
        entries = json.load(f)
    for e in entries:
        e.pop('elapsed_time')
    return entries


def test_differential_run_against_chainer(tmp_path):
    numpy.random.seed(1)
    trainer, _, _ = build_trainer(True, tmp_path / 'ours')
    trainer.run()
    numpy.random.seed(1)
    trainer, _, _ = build_trainer(False, tmp_path / 'chainer')
    trainer.run()
    ours, theirs = read_log(tmp_path / 'ours'), read_log(tmp_path / 'chainer')
    assert len(ours) == len(theirs) == 3
    macro_differs = False
    for o, t in zip(ours, theirs):
        assert list(o) == list(t)
        for key in o:
            assert o[key] == pytest.approx(t[key], rel=1e-6, abs=1e-7), key
        # Our micro accuracy is the exact count ratio, independently computed.
        exact = o['exact_accuracy']
        assert o['validation/main/accuracy_micro'] == pytest.approx(exact, rel=1e-12)
        macro_differs |= abs(o['validation/main/accuracy'] - exact) > 1e-9
    # The per-batch mean is not the exact accuracy (short last batch).
    assert macro_differs


def test_lifecycle_with_an_exception_during_evaluation(tmp_path):
    events = []

    class Recording(extensions.Evaluator):
        def initialize(self, trainer):
            events.append('initialize')

        def __call__(self, trainer=None):
            events.append('call')
            return super().__call__(trainer)

        def on_error(self, trainer, exc, tb):
            events.append(('on_error', str(exc)))
            super().on_error(trainer, exc, tb)

        def finalize(self):
            events.append('finalize')
            super().finalize()

    class Flaky(Classifier):
        fail = False
        evaluated = 0

        def forward(self, x, t):
            if not chainer.config.train:
                self.evaluated += 1
                if self.fail and self.evaluated == 2:
                    raise RuntimeError('boom in eval')
            return super().forward(x, t)

    train, test, _ = datasets()

    def make(out):
        model = Flaky(MLP())
        opt = chainer.optimizers.Adam()
        opt.setup(model)
        test_iter = chainer.iterators.SerialIterator(test, BATCH, repeat=False,
                                                     shuffle=False)
        updater = training.updaters.StandardUpdater(
            chainer.iterators.SerialIterator(train, BATCH, shuffle=False), opt)
        trainer = training.Trainer(updater, (3, 'epoch'), out=str(out))
        ev = Recording(test_iter, model)
        trainer.extend(ev)
        trainer.extend(extensions.snapshot(), trigger=(1, 'epoch'))
        return trainer, model, ev, test_iter

    numpy.random.seed(0)
    trainer, model, ev, test_iter = make(tmp_path)
    finalized = []
    test_iter.finalize = lambda: finalized.append(True)

    def arm(trainer):
        model.fail = True
        model.evaluated = 0
    trainer.extend(arm, trigger=(2, 'epoch'), priority=training.PRIORITY_WRITER + 1)

    reporters_before = len(chainer.reporter._get_reporters())
    with pytest.raises(RuntimeError, match='boom in eval'):
        trainer.run(show_loop_exception_msg=False)
    assert events == ['initialize', 'call', 'call', ('on_error', 'boom in eval'), 'finalize']
    assert finalized == [True]
    assert len(chainer.reporter._get_reporters()) == reporters_before
    assert chainer.config.train is True
    assert (test_iter.current_position, test_iter.epoch) == (0, 0)   # reset by on_error

    # The evaluator is usable again and gives the same result as a fresh one.
    model.fail = False
    reporter = chainer.Reporter()
    with reporter:
        again = ev()
        other = extensions.Evaluator(
            chainer.iterators.SerialIterator(test, BATCH, repeat=False, shuffle=False),
            model)
        other.name = ev.name
        fresh = other()
    assert again == pytest.approx(fresh)

    # Training resumes from the epoch-1 snapshot in a new Trainer.
    assert os.path.exists(tmp_path / 'snapshot_iter_12')
    events.clear()
    trainer2, model2, _, _ = make(tmp_path / 'resumed')
    chainer.serializers.load_npz(str(tmp_path / 'snapshot_iter_12'), trainer2)
    trainer2.run()
    assert trainer2.updater.epoch == 3
    assert events == ['initialize', 'call', 'call', 'finalize']
    assert model2.evaluated == 2 * 6


def snapshot_resume_logs(tmp_path, ext_module):
    """Uninterrupted log vs. log of a run stopped mid-epoch and resumed."""
    tag = ext_module.__name__.replace('.', '_')
    numpy.random.seed(5)
    full, _, _ = build_trainer(True, tmp_path / (tag + 'full'), ext_module=ext_module)
    full.run()

    numpy.random.seed(5)
    first, _, _ = build_trainer(True, tmp_path / (tag + 'first'), stop=(15, 'iteration'),
                                ext_module=ext_module)
    first.extend(extensions.snapshot(filename='snap'), trigger=(15, 'iteration'))
    first.run()

    numpy.random.seed(123)   # different initial weights: the snapshot must restore them
    second, _, _ = build_trainer(True, tmp_path / (tag + 'first'), ext_module=ext_module)
    chainer.serializers.load_npz(str(tmp_path / (tag + 'first') / 'snap'), second)
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)
        second.run()
    return read_log(tmp_path / (tag + 'full')), read_log(tmp_path / (tag + 'first'))


def test_snapshot_mid_epoch_then_resume_equals_uninterrupted(tmp_path):
    full, resumed = snapshot_resume_logs(tmp_path, extensions)
    assert len(full) == len(resumed) == 3
    for a, b in zip(full, resumed):
        assert list(a) == list(b)
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-9), key


def test_chainer_micro_average_breaks_on_resume(tmp_path):
    # Control: Chainer's MicroAverage forgets its averaging trigger, fires at the
    # first iteration after the resume and splits epoch 2's average in two.
    full, resumed = snapshot_resume_logs(tmp_path, chainer_extensions)
    assert full[1]['main/accuracy_micro'] != pytest.approx(
        resumed[1]['main/accuracy_micro'], rel=1e-9)
