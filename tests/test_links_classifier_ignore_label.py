"""A float ignore_label, as chainer.functions.accuracy compares it (``t == ignore_label``):
Classifier and fusedmetrics.accuracy give Chainer's value."""
import functools

import numpy
import pytest

chainer = pytest.importorskip('chainer')
import chainer.functions as F  # noqa: E402
import chainer.links as L  # noqa: E402

import fusedmetrics  # noqa: E402
from fusedmetrics.links import Classifier  # noqa: E402


class Identity(chainer.Link):
    def forward(self, x):
        return chainer.as_variable(x)


def observe(model, y, t):
    reporter = chainer.Reporter()
    reporter.add_observer('main', model)
    observation = {}
    with reporter.scope(observation):
        model(y, t)
    return observation


def batch(n=41, c=4, seed=3):
    rng = numpy.random.RandomState(seed)
    y = rng.normal(size=(n, c)).astype(numpy.float32)
    t = rng.randint(-1, c, size=n).astype(numpy.int32)  # about a fifth are -1
    return y, t


LABELS = [-1.0, numpy.float32(-1.0), numpy.float64(2.0), -1.5, float('nan'), 1e30]


@pytest.mark.parametrize('ignore_label', LABELS, ids=repr)
@pytest.mark.parametrize('n', [41, 0])
@pytest.mark.parametrize('base', [F.accuracy, fusedmetrics.accuracy], ids=['F.accuracy', 'fusedmetrics'])
def test_classifier_float_ignore_label_matches_chainer(ignore_label, n, base):
    y, t = batch(n=n)
    ours = Classifier(Identity(), accfun=functools.partial(base, ignore_label=ignore_label))
    theirs = L.Classifier(Identity(), accfun=functools.partial(F.accuracy, ignore_label=ignore_label))
    with numpy.errstate(invalid='ignore', divide='ignore'):
        obs_o = observe(ours, y, t)
        obs_t = observe(theirs, y, t)
    a_o, a_t = obs_o['main/accuracy'].array, obs_t['main/accuracy'].array
    assert a_o.dtype == a_t.dtype
    numpy.testing.assert_array_equal(a_o, a_t)
    kept = t != ignore_label
    assert int(obs_o['main/total']) == int(kept.sum())
    assert int(obs_o['main/correct']) == int((y.argmax(axis=1) == t)[kept].sum())


@pytest.mark.parametrize('ignore_label', LABELS, ids=repr)
def test_accuracy_float_ignore_label_matches_chainer(ignore_label):
    y, t = batch()
    numpy.testing.assert_array_equal(fusedmetrics.accuracy(y, t, ignore_label),
                                     F.accuracy(y, t, ignore_label=ignore_label).array)


def test_accuracy_counts_still_wants_an_integer():
    y, t = batch()
    with pytest.raises(TypeError, match='ignore_label'):
        fusedmetrics.accuracy_counts(y, t, ignore_label=-1.0)
