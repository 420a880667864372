"""fusedmetrics.links.Classifier against chainer.links.Classifier."""
import functools
import warnings

import numpy
import pytest

chainer = pytest.importorskip('chainer')
import chainer.functions as F  # noqa: E402
import chainer.links as L  # noqa: E402

import fusedmetrics  # noqa: E402
from fusedmetrics.links import Classifier  # noqa: E402


class Identity(chainer.Link):
    """Predictor returning its input: the logits are chosen by the test."""

    def forward(self, x, scale=1):
        return chainer.as_variable(x * scale)


def run(model, *args, **kwargs):
    reporter = chainer.Reporter()
    reporter.add_observer('main', model)
    observation = {}
    with reporter.scope(observation):
        loss = model(*args, **kwargs)
    return loss, observation


def logits_labels(n=37, c=5, dtype=numpy.float32, seed=0):
    rng = numpy.random.RandomState(seed)
    y = rng.normal(size=(n, c)).astype(dtype)
    t = rng.randint(0, c, size=n).astype(numpy.int32)
    return y, t


@pytest.mark.parametrize('dtype', [numpy.float16, numpy.float32, numpy.float64])
def test_same_reports_as_chainer_plus_counts(dtype):
    y, t = logits_labels(dtype=dtype)
    ours, theirs = Classifier(Identity()), L.Classifier(Identity())
    loss_o, obs_o = run(ours, y, t)
    loss_t, obs_t = run(theirs, y, t)
    assert list(obs_o) == ['main/loss', 'main/accuracy', 'main/correct', 'main/total']
    assert list(obs_t) == ['main/loss', 'main/accuracy']
    assert loss_o.array == loss_t.array
    assert obs_o['main/accuracy'].dtype == obs_t['main/accuracy'].dtype == dtype
    assert obs_o['main/accuracy'].array == obs_t['main/accuracy'].array
    correct = int((y.argmax(axis=1) == t).sum())
    assert int(obs_o['main/correct']) == correct
    assert int(obs_o['main/total']) == len(t)
    assert numpy.issubdtype(numpy.asarray(obs_o['main/correct']).dtype, numpy.integer)
    for attr in ('y', 'loss', 'accuracy'):
        assert isinstance(getattr(ours, attr), chainer.Variable), attr
    assert ours.accuracy.array == theirs.accuracy.array
    assert isinstance(ours, L.Classifier)


def test_one_counts_call_per_batch(monkeypatch):
    calls = []
    real = fusedmetrics.accuracy_counts

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError('accuracy() must not be called: use the counts')
    monkeypatch.setattr(fusedmetrics, 'accuracy_counts', counting)
    monkeypatch.setattr(F, 'accuracy', forbidden)
    model = Classifier(Identity(), accfun=fusedmetrics.accuracy)
    y, t = logits_labels()
    run(model, y, t)
    run(model, y, t)
    assert len(calls) == 2


@pytest.mark.parametrize('label_key,args,kwargs', [
    (-1, ('Y', 'T'), {}),
    (0, ('T', 'Y'), {}),
    (1, ('Y', 'T', 2), {}),
    (-2, ('Y', 'T', 2), {}),
    ('t', ('Y',), {'t': 'T', 'scale': 2}),
])
def test_label_key_forms(label_key, args, kwargs):
    y, t = logits_labels()
    fill = {'Y': y, 'T': t}
    a = tuple(fill.get(v, v) for v in args)
    kw = {k: fill.get(v, v) for k, v in kwargs.items()}
    _, obs_o = run(Classifier(Identity(), label_key=label_key), *a, **kw)
    _, obs_t = run(L.Classifier(Identity(), label_key=label_key), *a, **kw)
    assert obs_o['main/loss'].array == obs_t['main/loss'].array
    assert obs_o['main/accuracy'].array == obs_t['main/accuracy'].array


@pytest.mark.parametrize('label_key,args,kwargs,message', [
    (2, ('y', 't'), {}, 'Label key 2 is out of bounds'),
    (-3, ('y', 't'), {}, 'Label key -3 is out of bounds'),
    ('t', ('y',), {}, 'Label key "t" is not found'),
])
def test_label_key_errors(label_key, args, kwargs, message):
    for cls in (Classifier, L.Classifier):
        with pytest.raises(ValueError, match=message):
            run(cls(Identity(), label_key=label_key), *args, **kwargs)
    for cls in (Classifier, L.Classifier):
        with pytest.raises(TypeError, match='label_key must be int or str'):
            cls(Identity(), label_key=1.5)


def test_ignore_label_partial_is_fused():
    y, t = logits_labels()
    t[::3] = -1
    acc = functools.partial(F.accuracy, ignore_label=-1)
    _, obs_o = run(Classifier(Identity(), accfun=acc), y, t)
    _, obs_t = run(L.Classifier(Identity(), lossfun=lambda y, t: F.sum(y), accfun=acc), y, t)
    assert obs_o['main/accuracy'].array == obs_t['main/accuracy'].array
    mask = t != -1
    assert int(obs_o['main/total']) == int(mask.sum())
    assert int(obs_o['main/correct']) == int((y.argmax(1) == t)[mask].sum())


def test_empty_batches_follow_f_accuracy():
    y = numpy.zeros((0, 3), numpy.float32)
    t = numpy.zeros((0,), numpy.int32)
    model = Classifier(Identity(), lossfun=lambda y, t: F.sum(y))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        _, obs = run(model, y, t)
        expected = F.accuracy(y, t).array
    assert numpy.isnan(obs['main/accuracy'].array) and numpy.isnan(expected)
    y, t = logits_labels(n=4)
    t[:] = -1
    model = Classifier(Identity(), lossfun=lambda y, t: F.sum(y),
                       accfun=functools.partial(F.accuracy, ignore_label=-1))
    _, obs = run(model, y, t)
    assert obs['main/accuracy'].array == 0.0
    assert (int(obs['main/correct']), int(obs['main/total'])) == (0, 0)


def test_custom_accfun_is_called_and_no_counts():
    seen = []

    def accfun(y, t):
        seen.append(1)
        return F.accuracy(y, t)
    y, t = logits_labels()
    model = Classifier(Identity(), accfun=accfun)
    _, obs = run(model, y, t)
    assert seen == [1] and list(obs) == ['main/loss', 'main/accuracy']


def test_compute_accuracy_off():
    y, t = logits_labels()
    model = Classifier(Identity())
    model.compute_accuracy = False
    _, obs = run(model, y, t)
    assert list(obs) == ['main/loss'] and model.accuracy is None


def test_multidimensional_labels():
    rng = numpy.random.RandomState(1)
    y = rng.normal(size=(4, 3, 5, 2)).astype(numpy.float32)
    t = rng.randint(0, 3, size=(4, 5, 2)).astype(numpy.int32)
    _, obs_o = run(Classifier(Identity()), y, t)
    _, obs_t = run(L.Classifier(Identity()), y, t)
    assert obs_o['main/accuracy'].array == obs_t['main/accuracy'].array
    assert int(obs_o['main/total']) == t.size
