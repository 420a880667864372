"""Evaluator: every argument form of Chainer 7.8.1 (spec section 3), ours against Chainer's."""
import copy
import io
import re
import sys
import warnings

import numpy
import pytest

chainer = pytest.importorskip('chainer')
from chainer import training  # noqa: E402
from chainer.training import extensions as chainer_extensions  # noqa: E402

from fusedmetrics import extensions  # noqa: E402
from fusedmetrics.bench.replay import Replay, ReplayOnce  # noqa: E402
from fusedmetrics.summary import DictSummary  # noqa: E402

IMPLEMENTATIONS = {
    'chainer': chainer_extensions.Evaluator,
    'fusedmetrics': extensions.Evaluator,
}
impls = pytest.mark.parametrize('impl', sorted(IMPLEMENTATIONS))

DATA = numpy.arange(5, dtype=numpy.float32)   # batches [0,1] [2,3] [4] at size 2


class Sub(chainer.Link):
    def forward(self, x):
        chainer.report({'max': float(numpy.max(x))}, self)


class MeanModel(chainer.Chain):
    """Reports the batch mean, the config it ran under, and a sublink value."""

    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.sub = Sub()
        self.seen = []

    def forward(self, x):
        x = numpy.asarray(x)
        self.seen.append((x.tolist(), chainer.config.train,
                          chainer.config.enable_backprop))
        chainer.report({'mean_x': x.mean()}, self)
        self.sub(x)


def serial(repeat=False, data=DATA, batch=2):
    return chainer.iterators.SerialIterator(data, batch, repeat=repeat,
                                            shuffle=False)


def to_array(batch, device):
    return numpy.asarray(batch)


def run_standalone(ev, name=None):
    ev.name = name
    outer = chainer.Reporter()
    observation = {}
    with outer.scope(observation):
        result = ev()
    return result, observation


def assert_results_equal(a, b):
    assert list(a) == list(b)
    for k in a:
        assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-12), k


# --- construction --------------------------------------------------------

def test_class_attributes_match_chainer():
    ours, theirs = extensions.Evaluator, chainer_extensions.Evaluator
    assert issubclass(ours, training.Extension)
    for attr in ('trigger', 'default_name', 'priority', 'name'):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert ours.priority == training.PRIORITY_WRITER


@impls
def test_unexpected_keyword(impl):
    with pytest.raises(TypeError, match=re.escape(
            "__init__() got unexpected keyword argument(s) 'foo'")):
        IMPLEMENTATIONS[impl](serial(), MeanModel(), foo=1)


@impls
@pytest.mark.parametrize('spec,expected', [
    (None, None), (-1, chainer.backend.CpuDevice()),
    (numpy.int64(-3), chainer.backend.CpuDevice()),
    ('@numpy', chainer.backend.CpuDevice()), ('-1', chainer.backend.CpuDevice()),
])
def test_device_specs(impl, spec, expected):
    ev = IMPLEMENTATIONS[impl](serial(), MeanModel(), device=spec)
    assert ev.device == expected


@impls
def test_device_instance_and_errors(impl):
    cls = IMPLEMENTATIONS[impl]
    dev = chainer.backend.CpuDevice()
    assert cls(serial(), MeanModel(), device=dev).device is dev
    with pytest.raises(TypeError, match='Device specifier must be'):
        cls(serial(), MeanModel(), device=1.5)
    with pytest.raises(ValueError, match="starting with '@'"):
        cls(serial(), MeanModel(), device='@foo')


@impls
def test_single_objects_become_main_and_accessors_copy(impl):
    it, model = serial(), MeanModel()
    ev = IMPLEMENTATIONS[impl](it, model)
    assert ev.get_iterator('main') is it and ev.get_target('main') is model
    assert ev.get_all_iterators() == {'main': it}
    assert ev.get_all_targets() == {'main': model}
    ev.get_all_iterators()['x'] = it
    ev.get_all_targets()['x'] = model
    assert list(ev.get_all_iterators()) == ['main']
    assert list(ev.get_all_targets()) == ['main']
    with pytest.raises(KeyError):
        ev.get_iterator('other')
    with pytest.raises(KeyError):
        ev.get_target('other')
    assert ev.converter is chainer.dataset.concat_examples
    assert ev.eval_hook is None and ev.eval_func is None


@impls
def test_list_iterator_fails_at_construction(impl):
    with pytest.raises(AttributeError, match="'list' object has no attribute 'items'"):
        IMPLEMENTATIONS[impl]([serial()], MeanModel())


def collect_warnings(fn):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        fn()
    return [(x.category, str(x.message)) for x in w]


def test_repeat_warning_text_and_count_match_chainer():
    def build(cls):
        return lambda: cls({'main': serial(repeat=True), 'b': serial(),
                            'c': serial(repeat=True)}, MeanModel())
    ours = collect_warnings(build(extensions.Evaluator))
    theirs = collect_warnings(build(chainer_extensions.Evaluator))
    assert ours == theirs
    assert ours == [(UserWarning, 'The `repeat` property of the iterator {} ')] * 2


# --- evaluation ----------------------------------------------------------

@pytest.mark.parametrize('name,prefix', [(None, ''), ('validation', 'validation/'),
                                         ('eval', 'eval/')])
def test_keys_values_and_config_match_chainer(name, prefix):
    results = {}
    for impl, cls in IMPLEMENTATIONS.items():
        model = MeanModel()
        ev = cls(serial(), model, converter=to_array)
        result, outer = run_standalone(ev, name)
        results[impl] = result
        assert outer == result           # re-reported without an observer
        assert model.seen == [([0, 1], False, False), ([2, 3], False, False),
                              ([4], False, False)]
    assert_results_equal(results['fusedmetrics'], results['chainer'])
    assert list(results['fusedmetrics']) == [prefix + 'main/mean_x',
                                             prefix + 'main/sub/max']
    # Mean of per-batch means (spec 3.5): (0.5 + 2.5 + 4) / 3.
    assert float(results['fusedmetrics'][prefix + 'main/mean_x']) == pytest.approx(7 / 3)


@impls
def test_registered_name_gives_prefix_in_trainer(impl, tmp_path):
    updater = _NullUpdater()
    trainer = training.Trainer(updater, (1, 'iteration'), out=str(tmp_path))
    ev1 = IMPLEMENTATIONS[impl](serial(), MeanModel(), converter=to_array)
    ev2 = IMPLEMENTATIONS[impl](serial(), MeanModel(), converter=to_array)
    trainer.extend(ev1)
    trainer.extend(ev2)
    assert (ev1.name, ev2.name) == ('validation', 'validation_1')


class _NullUpdater:
    iteration = 0
    epoch_detail = 0.0

    def connect_trainer(self, trainer):
        pass

    def get_all_optimizers(self):
        return {}


@impls
def test_evaluate_alone_keeps_train_mode_and_needs_reporter(impl):
    model = MeanModel()
    ev = IMPLEMENTATIONS[impl](serial(), model, converter=to_array)
    with pytest.raises(IndexError):
        ev.evaluate()
    reporter = chainer.Reporter()
    reporter.add_observer('main', model)
    reporter.add_observers('main', model.namedlinks(skipself=True))
    with reporter:
        ev.evaluate()
    assert [s[1:] for s in model.seen] == [(True, False)] * 3


@impls
def test_backprop_is_enabled_in_the_converter(impl):
    states = []

    def conv(batch, device):
        states.append((chainer.config.enable_backprop, chainer.config.train))
        return numpy.asarray(batch)
    ev = IMPLEMENTATIONS[impl](serial(), MeanModel(), converter=conv)
    run_standalone(ev)
    assert states == [(True, False)] * 3


@impls
def test_unprefixed_keys_from_eval_func(impl):
    model = MeanModel()

    def eval_func(x):
        chainer.report({'custom': numpy.asarray(x).sum()})
        model(x)
    ev = IMPLEMENTATIONS[impl](serial(), model, converter=to_array,
                               eval_func=eval_func)
    result, _ = run_standalone(ev, 'validation')
    assert list(result) == ['custom', 'validation/main/mean_x',
                            'validation/main/sub/max']
    assert float(result['custom']) == pytest.approx(10 / 3)


@impls
def test_unregistered_observer_raises(impl):
    stranger = MeanModel()
    ev = IMPLEMENTATIONS[impl](serial(), MeanModel(), converter=to_array,
                               eval_func=stranger)
    with pytest.raises(KeyError, match='not registered'):
        run_standalone(ev)


@impls
def test_falsy_eval_func_falls_back_and_hook_gets_evaluator(impl):
    model = MeanModel()
    hooked = []
    ev = IMPLEMENTATIONS[impl](serial(), model, converter=to_array,
                               eval_func=0, eval_hook=hooked.append)
    run_standalone(ev)
    assert hooked == [ev] and len(model.seen) == 3


@impls
@pytest.mark.parametrize('kind', ['tuple', 'dict', 'list', 'array'])
def test_batch_calling_rules(impl, kind):
    calls = []

    def eval_func(*args, **kwargs):
        calls.append((args, kwargs))
    conv = {
        'tuple': lambda b, d: (len(b), 'x'),
        'dict': lambda b, d: {'n': len(b), 'tag': 'x'},
        'list': lambda b, d: [len(b), 'x'],
        'array': lambda b, d: numpy.asarray(b),
    }[kind]
    ev = IMPLEMENTATIONS[impl](serial(), MeanModel(), converter=conv,
                               eval_func=eval_func)
    run_standalone(ev)
    first = calls[0]
    if kind == 'tuple':
        assert first == ((2, 'x'), {})
    elif kind == 'dict':
        assert first == ((), {'n': 2, 'tag': 'x'})
    elif kind == 'list':
        assert first == (([2, 'x'],), {})
    else:
        assert len(first[0]) == 1 and first[0][0].tolist() == [0, 1]


@impls
@pytest.mark.parametrize('device,expected', [(None, None), (-1, -1), ('@numpy', -1)])
def test_legacy_converter_device_argument(impl, device, expected):
    got = []

    def legacy(batch, device):
        got.append(device)
        return numpy.asarray(batch)
    ev = IMPLEMENTATIONS[impl](serial(), MeanModel(), converter=legacy,
                               device=device)
    run_standalone(ev)
    assert got == [expected] * 3


@impls
def test_new_style_converter_gets_device_object(impl):
    got = []

    @chainer.dataset.converter()
    def conv(batch, device):
        got.append(device)
        return numpy.asarray(batch)
    ev = IMPLEMENTATIONS[impl](serial(), MeanModel(), converter=conv, device=-1)
    run_standalone(ev)
    assert got == [chainer.backend.CpuDevice()] * 3


@impls
def test_iterator_is_reset_and_consumed(impl):
    it = serial()
    it.next()
    model = MeanModel()
    ev = IMPLEMENTATIONS[impl](it, model, converter=to_array)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        run_standalone(ev)
        run_standalone(ev)   # a second pass works because of the reset
    assert len(model.seen) == 6 and model.seen[0][0] == [0, 1]
    assert it.epoch == 1


@impls
def test_iterator_without_reset_is_copied_with_deprecation(impl):
    it = ReplayOnce([[0.0, 1.0], [2.0]])
    model = MeanModel()
    ev = IMPLEMENTATIONS[impl](it, model, converter=to_array)
    w = collect_warnings(lambda: run_standalone(ev))
    assert [c for c, _ in w] == [DeprecationWarning]
    assert 'does not have the reset method' in w[0][1]
    assert it.position == 0
    with pytest.warns(DeprecationWarning):
        result, _ = run_standalone(ev)   # the original is untouched
    assert float(result['main/mean_x']) == pytest.approx(1.25)


@impls
def test_empty_iterator_gives_empty_dict(impl):
    ev = IMPLEMENTATIONS[impl](Replay([]), MeanModel(), converter=to_array)
    assert run_standalone(ev)[0] == {}
    # Chainer needs a current reporter only once there is a batch to observe
    # (report_scope runs per batch), so evaluate() of nothing works without one.
    assert ev.evaluate() == {}


def test_evaluate_summary_is_our_summary():
    ev = extensions.Evaluator(serial(), MeanModel(), converter=to_array)
    reporter = chainer.Reporter()
    model = ev.get_target('main')
    reporter.add_observer('main', model)
    reporter.add_observers('main', model.namedlinks(skipself=True))
    with reporter:
        summary = ev.evaluate_summary()
        again = ev.evaluate()
    assert isinstance(summary, DictSummary)
    assert_results_equal(summary.compute_mean(), again)


def test_weighted_reports_give_the_exact_mean():
    class Weighted(chainer.Link):
        def forward(self, x):
            chainer.report({'mean_x': (numpy.mean(x), len(x))}, self)
    ev = extensions.Evaluator(serial(), Weighted(), converter=to_array)
    assert float(run_standalone(ev)[0]['main/mean_x']) == pytest.approx(2.0)


@impls
def test_finalize_finalizes_every_iterator(impl):
    finalized = []

    class Tracked(chainer.iterators.SerialIterator):
        def finalize(self):
            finalized.append(self)
    its = {'main': Tracked(DATA, 2, repeat=False), 'b': Tracked(DATA, 2, repeat=False)}
    ev = IMPLEMENTATIONS[impl](its, MeanModel())
    ev.finalize()
    assert finalized == [its['main'], its['b']]


# --- errors ---------------------------------------------------------------

class Failing(MeanModel):
    def __init__(self, fail_at):
        super().__init__()
        self.fail_at = fail_at

    def forward(self, x):
        super().forward(x)
        if len(self.seen) == self.fail_at:
            raise RuntimeError('model failed')


def test_exception_restores_reporter_and_config():
    model = Failing(fail_at=2)
    ev = extensions.Evaluator(serial(), model, converter=to_array,
                              progress_bar=True)
    outer = chainer.Reporter()
    observation = {'before': 1}
    stack_before = len(chainer.reporter._get_reporters())
    out = io.StringIO()
    sys_stdout, sys.stdout = sys.stdout, out
    try:
        with outer.scope(observation):
            with pytest.raises(RuntimeError, match='model failed'):
                ev()
            assert chainer.get_current_reporter() is outer
            assert outer.observation is observation
    finally:
        sys.stdout = sys_stdout
    assert len(chainer.reporter._get_reporters()) == stack_before
    assert chainer.config.train is True and chainer.config.enable_backprop is True
    assert observation == {'before': 1}
    assert out.getvalue().endswith('\033[J')   # the bar was closed
    it = ev.get_iterator('main')
    assert it.current_position == 4            # stopped after two batches
    ev.on_error(None, RuntimeError('x'), None)
    assert (it.current_position, it.epoch) == (0, 0)


# --- progress bar -----------------------------------------------------------

FRAME = re.compile(
    r'\x1b\[J(?P<label>\S+) \[(?P<bar>[#.]{50})\] +(?P<pct>[\d.]+)%\n'
    r' *(?P<count>\d+) / 5 iterations\n'
    r' *(?P<speed>\S+) iters/sec\. Estimated time to finish: (?P<eta>[^\n]*)\.\n'
    r'\x1b\[3A')


@pytest.mark.parametrize('name,label', [(None, 'validation'), ('validation', 'validation'),
                                        ('val_set', 'val_set')])
def test_progress_bar_layout(capsys, name, label):
    ev = extensions.Evaluator(serial(), MeanModel(), converter=to_array,
                              progress_bar=True)
    run_standalone(ev, name)
    out = capsys.readouterr().out
    frames = list(FRAME.finditer(out))
    assert len(frames) == 3 and out.endswith('\033[3A\033[J')
    assert [f['label'] for f in frames] == [label] * 3
    assert [f['pct'] for f in frames] == ['40.00', '80.00', '100.00']
    assert [f['count'] for f in frames] == ['2', '4', '5']
    assert [f['bar'].count('#') for f in frames] == [20, 40, 50]
    assert frames[0]['speed'] == 'inf' and frames[0]['eta'] == '0:00:00'
    assert all(float(f['speed']) >= 0 for f in frames)


def test_chainer_progress_bar_for_comparison(capsys):
    ev = chainer_extensions.Evaluator(serial(), MeanModel(), converter=to_array,
                                      progress_bar=True)
    run_standalone(ev, 'val_set')
    frames = list(FRAME.finditer(capsys.readouterr().out))
    # Same layout; Chainer's label is fixed and its count wraps to 0.
    assert [f['pct'] for f in frames] == ['40.00', '80.00', '100.00']
    assert [f['label'] for f in frames] == ['validation'] * 3
    assert [f['count'] for f in frames] == ['2', '4', '0']


def test_progress_bar_without_epoch_detail(capsys):
    it = ReplayOnce([[0.0, 1.0], [2.0, 3.0], [4.0]])
    ev = extensions.Evaluator(it, MeanModel(), converter=to_array,
                              progress_bar=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        result, _ = run_standalone(ev, 'validation')
    out = capsys.readouterr().out
    assert '%' not in out and '[' not in out.replace('\033[', '')
    counts = re.findall(r'validation\n +(\d+) iterations\n +\S+ iters/sec\.\n', out)
    assert counts == ['2', '4', '5']
    assert float(result['validation/main/mean_x']) == pytest.approx(7 / 3)
    # Chainer refuses such an iterator.
    with pytest.raises(TypeError, match='current_position, epoch_detail'):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', DeprecationWarning)
            run_standalone(chainer_extensions.Evaluator(
                copy.copy(it), MeanModel(), converter=to_array, progress_bar=True))


@impls
def test_function_target_fails_only_when_called(impl):
    ev = IMPLEMENTATIONS[impl](serial(), lambda x: None)
    with pytest.raises(AttributeError):
        run_standalone(ev)


def test_module_forwards_other_chainer_extensions():
    assert extensions.LogReport is chainer_extensions.LogReport
    assert extensions.snapshot is chainer_extensions.snapshot
    with pytest.raises(AttributeError, match='NoSuchExtension'):
        extensions.NoSuchExtension


def test_dict_iterators_and_targets_match_chainer():
    results = {}
    for impl, cls in IMPLEMENTATIONS.items():
        main, aux = MeanModel(), MeanModel()

        def eval_func(x, main=main, aux=aux):
            main(x)
            aux(x * 2)
        ev = cls({'main': serial(), 'extra': serial(batch=3)},
                 {'main': main, 'aux': aux}, converter=to_array,
                 eval_func=eval_func)
        results[impl], _ = run_standalone(ev, 'validation')
        assert set(ev.get_all_iterators()) == {'main', 'extra'}
        assert len(main.seen) == 3   # only the 'main' iterator is evaluated
    assert_results_equal(results['fusedmetrics'], results['chainer'])
    assert list(results['fusedmetrics']) == [
        'validation/main/mean_x', 'validation/main/sub/max',
        'validation/aux/mean_x', 'validation/aux/sub/max']
