"""ClassificationEvaluator: the Evaluator's reports plus per-class scores equal to scikit-learn's
over the whole pass (and to Chainer's Evaluator on the usual keys)."""
import warnings

import numpy
import pytest

chainer = pytest.importorskip('chainer')
sklearn_metrics = pytest.importorskip('sklearn.metrics')
import chainer.functions as F  # noqa: E402
import chainer.links as L  # noqa: E402
from chainer import training  # noqa: E402
from chainer.training import extensions as chainer_extensions  # noqa: E402

from fusedmetrics import extensions  # noqa: E402
from fusedmetrics.datasets import train_test  # noqa: E402
from fusedmetrics.links import Classifier  # noqa: E402
from trainer_run import train_and_log  # noqa: E402

C = 5
N_TEST, BATCH = 45, 8


class MLP(chainer.Chain):
    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.l1 = L.Linear(16, 12)
            self.l2 = L.Linear(12, C)

    def forward(self, x):
        return self.l2(F.relu(self.l1(x)))


class KeepsY(chainer.Chain):
    """Keeps the scores as target.y and computes no loss: Chainer's own loss would fail on an
    out-of-range label (IndexError) before the evaluator sees it."""

    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.predictor = MLP()

    def forward(self, x, t):
        self.y = self.predictor(x)


def data(seed=3, n_test=N_TEST):
    (xa, ta), (xb, tb) = train_test(96, n_test, seed=seed)
    return (chainer.datasets.TupleDataset(xa, ta), (xb, tb))


def it(x, t, batch=BATCH):
    return chainer.iterators.SerialIterator(chainer.datasets.TupleDataset(x, t), batch,
                                            repeat=False, shuffle=False)


def evaluate(ev):
    ev.name = 'validation'
    with chainer.Reporter():
        return ev()


def sklearn_scores(t, pred, average=None):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return sklearn_metrics.precision_recall_fscore_support(
            t, pred, labels=list(range(C)), average=average, zero_division=numpy.nan)


def predictions(predictor, x):
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        return predictor(x).array.argmax(axis=1)


def same(got, want):
    if numpy.isnan(want):
        return numpy.isnan(got)
    return got == pytest.approx(want, rel=1e-14, abs=0)


def check_scores(result, t, pred, names, prefix='validation/main/'):
    p, r, f, _ = sklearn_scores(t, pred)
    for i, name in enumerate(names):
        assert same(result[prefix + 'precision/' + name], p[i])
        assert same(result[prefix + 'recall/' + name], r[i])
        assert same(result[prefix + 'f1/' + name], f[i])
    mp, mr, mf, _ = sklearn_scores(t, pred, 'macro')
    assert same(result[prefix + 'macro_precision'], mp)
    assert same(result[prefix + 'macro_recall'], mr)
    assert same(result[prefix + 'macro_f1'], mf)


@pytest.mark.parametrize('ours_classifier', [True, False])
@pytest.mark.parametrize('label_names', [None, ('a', 'b', 'c', 'd', 'e')])
def test_matches_sklearn_and_chainer_evaluator(ours_classifier, label_names):
    _, (x, t) = data()
    t = t.copy()
    t[t == 3] = 4  # class 3 never true: recall NaN, macro means skip it
    numpy.random.seed(0)
    predictor = MLP()
    make = Classifier if ours_classifier else L.Classifier
    model = make(predictor)
    ev = extensions.ClassificationEvaluator(it(x, t), model, C, label_names)
    result = evaluate(ev)
    names = label_names or [str(i) for i in range(C)]
    check_scores(result, t, predictions(predictor, x), names)
    # the usual keys are the Evaluator's, with Chainer's values
    chainer_result = evaluate(chainer_extensions.Evaluator(it(x, t), L.Classifier(predictor)))
    for key in ('validation/main/loss', 'validation/main/accuracy'):
        assert result[key] == pytest.approx(float(chainer_result[key]), rel=1e-6)
    expected = {'validation/main/{}/{}'.format(k, n) for k in ('precision', 'recall', 'f1')
                for n in names}
    expected |= {'validation/main/macro_' + k for k in ('precision', 'recall', 'f1')}
    assert expected <= set(result)
    assert ev.confusion.compute().sum() == len(t)


def test_ignore_label_and_a_pass_resets_the_matrix():
    _, (x, t) = data(seed=5)
    t = t.copy()
    t[::3] = -1
    numpy.random.seed(1)
    predictor = MLP()
    ev = extensions.ClassificationEvaluator(it(x, t), L.Classifier(predictor), C,
                                            ignore_label=-1)
    first = evaluate(ev)
    second = evaluate(ev)
    assert first.keys() == second.keys()
    keep = t != -1
    check_scores(second, t[keep], predictions(predictor, x)[keep], [str(i) for i in range(C)])
    assert ev.confusion.compute().sum() == keep.sum()


def test_a_label_outside_the_classes_raises():
    _, (x, t) = data()
    t = t.copy()
    t[4] = C
    ev = extensions.ClassificationEvaluator(it(x, t), KeepsY(), C)
    with pytest.raises(ValueError, match='outside'):
        evaluate(ev)


def test_target_without_y_and_argument_errors():
    class NoY(chainer.Link):
        def forward(self, x, t):
            chainer.report({'loss': 0.0}, self)

    _, (x, t) = data()
    with pytest.raises(ValueError, match='target.y'):
        evaluate(extensions.ClassificationEvaluator(it(x, t), NoY(), C))
    with pytest.raises(ValueError, match='label_names'):
        extensions.ClassificationEvaluator(it(x, t), NoY(), C, ['a'])
    with pytest.raises(ValueError, match='num_classes'):
        extensions.ClassificationEvaluator(it(x, t), NoY(), -1)


def test_an_eval_func_that_leaves_target_y_unchanged_is_refused():
    """A training step leaves target.y; an eval_func that does not call the target would
    have those scores counted against the validation labels."""
    _, (x, t) = data()
    model = Classifier(MLP())
    model(x[:3], t[:3])   # what the last training iteration leaves in model.y

    def eval_func(x, t):   # reports something, never calls the model
        chainer.report({'dummy': 1.0}, model)

    with pytest.raises(ValueError, match='target.y, which is unchanged'):
        evaluate(extensions.ClassificationEvaluator(it(x, t), model, C, eval_func=eval_func))


def test_dict_batches_take_the_last_value_as_labels():
    _, (x, t) = data()
    numpy.random.seed(2)
    predictor = MLP()

    def converter(batch, device=None):
        xs, ts = chainer.dataset.concat_examples(batch, device)
        return {'x': xs, 't': ts}

    ev = extensions.ClassificationEvaluator(it(x, t), L.Classifier(predictor, label_key='t'), C,
                                            converter=converter)
    check_scores(evaluate(ev), t, predictions(predictor, x), [str(i) for i in range(C)])


def test_class_attributes():
    ext = extensions.ClassificationEvaluator
    assert ext.trigger == (1, 'epoch') and ext.default_name == 'validation'
    assert ext.priority == training.PRIORITY_WRITER
    assert issubclass(ext, extensions.Evaluator)


class ReferenceScores(training.Extension):
    trigger = 1, 'epoch'
    priority = training.PRIORITY_WRITER - 1

    def __init__(self, predictor, x, t):
        self.predictor, self.x, self.t = predictor, x, t

    def __call__(self, trainer):
        pred = predictions(self.predictor, self.x)
        p, r, f, _ = sklearn_scores(self.t, pred)
        mp, mr, mf, _ = sklearn_scores(self.t, pred, 'macro')
        report = {'ref/macro_precision': mp, 'ref/macro_recall': mr, 'ref/macro_f1': mf}
        for i in range(C):
            report.update({'ref/precision/%d' % i: p[i], 'ref/recall/%d' % i: r[i],
                           'ref/f1/%d' % i: f[i]})
        chainer.report(report)


def test_in_a_trainer(tmp_path):
    train, (x, t) = data()
    numpy.random.seed(0)
    predictor = MLP()
    model = Classifier(predictor)
    opt = chainer.optimizers.Adam(alpha=0.02)
    opt.setup(model)
    log = train_and_log(tmp_path, opt, chainer.iterators.SerialIterator(train, BATCH, shuffle=False),
                        extensions.ClassificationEvaluator(it(x, t), model, C), ReferenceScores(predictor, x, t))
    for entry in log:
        for key, want in entry.items():
            if key.startswith('ref/'):
                got = entry['validation/main/' + key[4:]]
                assert (numpy.isnan(got) and numpy.isnan(want)) or \
                    got == pytest.approx(want, rel=1e-14)
        assert 'validation/main/accuracy' in entry and 'validation/main/loss' in entry


# --- multi-node: create_multi_node_evaluator with a thread-backed fake communicator ----------

def _multi_node_results(monkeypatch, x, t, sizes, label_names=None, broken_rank=None):
    """Each rank evaluates its own shard (its own copy of one model); the per-rank results."""
    import copy

    from fake_mpi import patch_resolve, run_ranks
    from fusedmetrics.multi_node import create_multi_node_evaluator

    patch_resolve(monkeypatch)
    numpy.random.seed(2)
    predictor = MLP()
    edges = numpy.concatenate([[0], numpy.cumsum(sizes)])

    def rank_fn(comm):
        lo, hi = edges[comm.rank], edges[comm.rank + 1]
        ev = extensions.ClassificationEvaluator(it(x[lo:hi], t[lo:hi]), Classifier(copy.deepcopy(predictor)), C,
                                                label_names, ignore_label=-1)
        if comm.rank == broken_rank:
            def broken():
                raise RuntimeError('deliberate failure reading the counts')
            ev.confusion.state_dict = broken
        return evaluate(create_multi_node_evaluator(ev, comm))

    results, group = run_ranks(len(sizes), rank_fn)
    return results, group, predictions(predictor, x)


@pytest.mark.parametrize('sizes', [(45,), (20, 25), (1, 30, 14), (8, 8, 8, 21)])
@pytest.mark.parametrize('label_names', [None, ('a', 'b', 'c', 'd', 'e')])
def test_multi_node_per_class_keys_are_exact_over_all_ranks(monkeypatch, sizes, label_names):
    _, (x, t) = data(seed=7)
    t = t.copy()
    t[t == 2] = 1   # class 2 never true: recall NaN, skipped by the macro means
    t[5::7] = -1    # ignored samples
    results, group, pred = _multi_node_results(monkeypatch, x, t, sizes, label_names)
    for r in results:
        assert not isinstance(r, BaseException), repr(r)
    keep = t != -1
    names = label_names or [str(i) for i in range(C)]
    for r in results:
        check_scores(r, t[keep], pred[keep], names)
        assert {'validation/main/loss', 'validation/main/accuracy'} <= set(r)
        assert r.keys() == results[0].keys()
        assert all(r[k] == results[0][k] or (numpy.isnan(r[k]) and numpy.isnan(results[0][k])) for k in r)
    counts = [n for op, n in group.calls if op == 'SUM']
    assert counts == [C * C + 1 + len(sizes)]  # one int64 Allreduce of the C*C counts per pass


def test_multi_node_failure_reading_the_counts_raises_on_every_rank(monkeypatch, capsys):
    from fusedmetrics.multi_node import RemoteEvaluationError

    _, (x, t) = data(seed=8)
    results, _, _ = _multi_node_results(monkeypatch, x, t, (15, 15, 15), broken_rank=1)
    assert isinstance(results[1], RuntimeError) and 'deliberate' in str(results[1])
    for r in (0, 2):
        assert isinstance(results[r], RemoteEvaluationError) and results[r].failed_ranks == [1]
    assert 'rank 1 of 3' in capsys.readouterr().err


def test_multi_node_out_of_range_label_on_one_rank_raises_on_every_rank(monkeypatch):
    from fake_mpi import patch_resolve, run_ranks
    from fusedmetrics.multi_node import RemoteEvaluationError, create_multi_node_evaluator

    patch_resolve(monkeypatch)
    _, (x, t) = data(seed=9)
    t = t.copy()
    t[20] = C

    def rank_fn(comm):
        lo, hi = 15 * comm.rank, 15 * comm.rank + 15
        ev = extensions.ClassificationEvaluator(it(x[lo:hi], t[lo:hi]), KeepsY(), C)
        return evaluate(create_multi_node_evaluator(ev, comm))

    results, _ = run_ranks(3, rank_fn)  # on the host the update raises: rank 1's pass fails
    assert isinstance(results[1], ValueError) and 'outside' in str(results[1])
    assert all(isinstance(results[r], RemoteEvaluationError) for r in (0, 2))


def test_multi_node_invalid_counts_of_any_rank_raise_on_every_rank(monkeypatch):
    """On a GPU out-of-range samples are counted, not raised: the summed count decides, on every rank."""
    from fake_mpi import patch_resolve, run_ranks

    patch_resolve(monkeypatch)
    _, (x, t) = data(seed=9)

    def rank_fn(comm):
        ev = extensions.ClassificationEvaluator(it(x, t), L.Classifier(MLP()), C)
        matrix = numpy.full((C, C), comm.rank, numpy.int64)
        ev.confusion.load_state_dict({'num_classes': C, 'matrix': matrix, 'invalid': int(comm.rank == 2)})
        reporter = chainer.Reporter()
        reporter.add_observer('validation/main', ev.get_target('main'))
        with reporter:
            return ev.multi_node_observation(comm)

    results, group = run_ranks(3, rank_fn)
    for r in results:
        assert isinstance(r, ValueError) and '1 non-ignored samples over all ranks' in str(r), repr(r)
    assert [op for op, _ in group.calls] == ['SUM']
