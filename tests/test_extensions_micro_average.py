"""MicroAverage: Chainer 7.8.1's observed behaviour (spec section 2), our fixes, serialization."""
import sys
import types
import warnings

import numpy
import pytest

chainer = pytest.importorskip('chainer')
from chainer import training  # noqa: E402
from chainer.serializers import load_npz, save_npz  # noqa: E402
from chainer.training import extensions as chainer_extensions  # noqa: E402

import fusedmetrics  # noqa: E402
from fusedmetrics import extensions  # noqa: E402

IMPLEMENTATIONS = {
    'chainer': chainer_extensions.MicroAverage,
    'fusedmetrics': extensions.MicroAverage,
}


class CountingModel(chainer.Link):
    """Reports correct = count(x >= 2) and total = len(x) (spec section 2's model)."""

    def __init__(self, report_on=None, as_type=int):
        super().__init__()
        with self.init_scope():
            self.w = chainer.Parameter(numpy.zeros((), numpy.float32))
        self.report_on = report_on
        self.as_type = as_type
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.report_on is None or self.calls in self.report_on:
            x = numpy.asarray(x)
            chainer.report({'correct': self.as_type((x >= 2).sum()),
                            'total': self.as_type(len(x))}, self)
        return chainer.functions.sum(self.w * 0.0)


class Recorder(training.Extension):
    """Reads `key` from the observation on every iteration."""
    priority = training.PRIORITY_READER

    def __init__(self, key):
        self.key = key
        self.seen = {}

    def __call__(self, trainer):
        if self.key in trainer.observation:
            self.seen[trainer.updater.iteration] = trainer.observation[self.key]


def run_spec_trainer(cls, out, report_on=None, averaging=(1, 'epoch'),
                     ext_trigger=None, stop=(2, 'epoch'), as_type=int):
    data = numpy.arange(5, dtype=numpy.float32)
    it = chainer.iterators.SerialIterator(data, 2, shuffle=False)
    model = CountingModel(report_on, as_type)
    opt = chainer.optimizers.SGD()
    opt.setup(model)
    updater = training.updaters.StandardUpdater(
        it, opt, converter=lambda batch, device: numpy.asarray(batch))
    trainer = training.Trainer(updater, stop, out=str(out))
    ext = cls('main/correct', 'main/total', 'main/micro_acc', averaging)
    trainer.extend(ext, trigger=ext_trigger)
    rec = Recorder('main/micro_acc')
    trainer.extend(rec)
    trainer.run()
    return ext, rec.seen


SPEC_TABLE = [
    (dict(), {3: 0.5, 5: 0.75}),
    (dict(report_on={2, 5}), {5: 1.0}),
    (dict(averaging=(2, 'iteration')), {2: 0.5, 4: 0.5}),
    (dict(ext_trigger=(1, 'epoch')), {3: 0.5, 5: 1.0}),
]


@pytest.mark.parametrize('impl', sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize('kwargs,expected', SPEC_TABLE)
def test_spec_table(impl, kwargs, expected, tmp_path):
    ext, seen = run_spec_trainer(IMPLEMENTATIONS[impl], tmp_path, **kwargs)
    assert seen == expected
    assert all(type(v) is float for v in seen.values())


@pytest.mark.parametrize('impl', sorted(IMPLEMENTATIONS))
def test_leftover_state_stays_integer(impl, tmp_path):
    ext, _ = run_spec_trainer(IMPLEMENTATIONS[impl], tmp_path, averaging=(2, 'iteration'))
    assert (ext._numerator, ext._denominator) == (2, 2)
    assert type(ext._numerator) is int and type(ext._denominator) is int


def test_numpy_integers_stay_integers(tmp_path):
    ext, seen = run_spec_trainer(extensions.MicroAverage, tmp_path,
                                 averaging=(2, 'iteration'),
                                 as_type=numpy.int64)
    assert seen == {2: 0.5, 4: 0.5}
    assert isinstance(ext._numerator, numpy.integer)
    assert int(ext._numerator) == 2


def test_class_attributes_match_chainer():
    ours = extensions.MicroAverage('a', 'b', 'c')
    theirs = chainer_extensions.MicroAverage('a', 'b', 'c')
    assert isinstance(ours, training.Extension)
    for attr in ('priority', 'trigger', 'name', 'default_name'):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert ours.priority == training.PRIORITY_EDITOR
    assert ours.trigger == (1, 'iteration')
    assert ours.default_name == 'MicroAverage'


def test_duplicate_names_and_bad_trigger_unit(tmp_path):
    updater = types.SimpleNamespace(
        iteration=0, epoch_detail=0.0, connect_trainer=lambda t: None,
        get_all_optimizers=lambda: {})
    trainer = training.Trainer(updater, (1, 'iteration'), out=str(tmp_path))
    a, b = extensions.MicroAverage('a', 'b', 'c'), extensions.MicroAverage('a', 'b', 'c')
    trainer.extend(a)
    trainer.extend(b)
    assert (a.name, b.name) == ('MicroAverage', 'MicroAverage_1')
    with pytest.raises(ValueError, match='Trigger unit'):
        extensions.MicroAverage('a', 'b', 'c', trigger=(1, 'day'))


class FakeTrainer:
    """Enough of a Trainer for MicroAverage: an observation and an updater."""

    def __init__(self):
        self.observation = {}
        self.updater = types.SimpleNamespace(iteration=0, epoch_detail=0.0,
                                             previous_epoch_detail=None)

    def step(self, ext, values, epoch_detail):
        self.updater.iteration += 1
        self.updater.epoch_detail = epoch_detail
        self.observation = dict(values)
        reporter = chainer.Reporter()
        with reporter.scope(self.observation):
            ext(self)
        return self.observation


def test_variables_are_summed_by_their_arrays():
    ext = extensions.MicroAverage('n', 'd', 'r', trigger=(2, 'iteration'))
    tr = FakeTrainer()
    tr.step(ext, {'n': chainer.Variable(numpy.array(1, numpy.float32)), 'd': 2}, 0.1)
    out = tr.step(ext, {'n': chainer.Variable(numpy.array(2, numpy.float32)), 'd': 2}, 0.2)
    assert out['r'] == 0.75
    # Chainer's raises here: float() of a Variable.
    theirs = chainer_extensions.MicroAverage('n', 'd', 'r', trigger=(1, 'iteration'))
    with pytest.raises(TypeError):
        FakeTrainer().step(theirs, {'n': chainer.Variable(numpy.array(1, numpy.float32)), 'd': 2}, 0.1)


@pytest.mark.parametrize('impl', sorted(IMPLEMENTATIONS))
def test_zero_denominator_like_chainer(impl):
    ext = IMPLEMENTATIONS[impl]('n', 'd', 'r', trigger=(1, 'iteration'))
    with pytest.raises(ZeroDivisionError):
        FakeTrainer().step(ext, {'n': 0, 'd': 0}, 0.1)
    ext = IMPLEMENTATIONS[impl]('n', 'd', 'r', trigger=(1, 'iteration'))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        out = FakeTrainer().step(ext, {'n': numpy.int64(0), 'd': numpy.int64(0)}, 0.1)
    assert numpy.isnan(out['r']) and isinstance(out['r'], numpy.float64)


def test_comm_allreduces_at_the_trigger_only(monkeypatch):
    calls = []

    def allreduce_pair(comm, a, b):
        calls.append((comm, a, b))
        return a * 3, b * 4   # a fake "other ranks" contribution

    fake = types.ModuleType('fusedmetrics.multi_node')
    fake.allreduce_pair = allreduce_pair
    monkeypatch.setitem(sys.modules, 'fusedmetrics.multi_node', fake)
    monkeypatch.setattr(fusedmetrics, 'multi_node', fake, raising=False)

    comm = object()
    ext = extensions.MicroAverage('n', 'd', 'r', trigger=(2, 'iteration'), comm=comm)
    tr = FakeTrainer()
    tr.step(ext, {'n': 1, 'd': 2}, 0.1)
    assert calls == []
    out = tr.step(ext, {'n': 2, 'd': 2}, 0.2)
    assert calls == [(comm, 3, 4)]
    assert out['r'] == 9 / 16
    assert (ext._numerator, ext._denominator) == (0, 0)


# --- serialization -------------------------------------------------------

def advanced(cls, values, trigger=(3, 'iteration')):
    ext = cls('n', 'd', 'r', trigger=trigger)
    tr = FakeTrainer()
    for i, (n, d) in enumerate(values):
        tr.step(ext, {'n': n, 'd': d}, 0.1 * (i + 1))
    return ext


def test_round_trip_with_trigger_state(tmp_path):
    ext = advanced(extensions.MicroAverage, [(1, 2), (2, 3)])
    path = str(tmp_path / 'ma.npz')
    save_npz(path, ext)
    keys = set(numpy.load(path).files)
    assert {'_numerator', '_denominator', '_trigger_saved',
            '_trigger/previous_iteration',
            '_trigger/previous_epoch_detail'} <= keys

    fresh = extensions.MicroAverage('n', 'd', 'r', trigger=(3, 'iteration'))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        load_npz(path, fresh)
    assert (fresh._numerator, fresh._denominator) == (3, 5)
    assert type(fresh._numerator) is int
    assert fresh._trigger._previous_iteration == 2
    assert fresh._trigger._previous_epoch_detail == pytest.approx(0.2)

    # The restored trigger fires at iteration 3, not earlier.
    tr = FakeTrainer()
    tr.updater.iteration = 2
    out = tr.step(fresh, {'n': 1, 'd': 1}, 0.3)
    assert out['r'] == 4 / 6


def test_float_numerator_round_trip(tmp_path):
    ext = advanced(extensions.MicroAverage, [(0.5, 1), (0.25, 1)])
    path = str(tmp_path / 'ma.npz')
    save_npz(path, ext)
    fresh = extensions.MicroAverage('n', 'd', 'r', trigger=(3, 'iteration'))
    load_npz(path, fresh)
    assert fresh._numerator == 0.75 and type(fresh._numerator) is float
    assert fresh._denominator == 2 and type(fresh._denominator) is int
    # Chainer cannot load the same snapshot (spec section 2).
    with pytest.raises(TypeError, match='Cannot safely deserialize'):
        load_npz(path, chainer_extensions.MicroAverage('n', 'd', 'r'))


def test_loads_chainer_snapshot_with_fresh_trigger(tmp_path):
    theirs = advanced(chainer_extensions.MicroAverage, [(1, 2), (2, 3)])
    path = str(tmp_path / 'chainer.npz')
    save_npz(path, theirs)
    assert set(numpy.load(path).files) == {'_numerator', '_denominator'}

    ours = advanced(extensions.MicroAverage, [(7, 7)])  # trigger advanced
    assert ours._trigger._previous_iteration == 1
    with warnings.catch_warnings():
        warnings.simplefilter('error')   # no "previous value not saved" warning
        load_npz(path, ours)
    assert (ours._numerator, ours._denominator) == (3, 5)
    assert ours._trigger._previous_iteration == 0
    assert ours._trigger._previous_epoch_detail == 0.0


def test_chainer_loads_our_snapshot(tmp_path):
    ours = advanced(extensions.MicroAverage, [(1, 2), (2, 3)])
    path = str(tmp_path / 'ours.npz')
    save_npz(path, ours)
    theirs = chainer_extensions.MicroAverage('n', 'd', 'r')
    load_npz(path, theirs)
    assert (theirs._numerator, theirs._denominator) == (3, 5)


def test_missing_keys_raise_in_strict_mode(tmp_path):
    path = str(tmp_path / 'empty.npz')
    numpy.savez(path, unrelated=numpy.zeros(1))
    with pytest.raises(KeyError):
        load_npz(path, extensions.MicroAverage('n', 'd', 'r'))
    ext = extensions.MicroAverage('n', 'd', 'r')
    ext._numerator = 4
    load_npz(path, ext, strict=False)
    assert ext._numerator == 4


def test_untriggerable_custom_trigger_serializes(tmp_path):
    ext = extensions.MicroAverage('n', 'd', 'r', trigger=lambda trainer: False)
    tr = FakeTrainer()
    tr.step(ext, {'n': 1, 'd': 2}, 0.1)
    path = str(tmp_path / 'custom.npz')
    save_npz(path, ext)
    assert bool(numpy.load(path)['_trigger_saved']) is False
    fresh = extensions.MicroAverage('n', 'd', 'r', trigger=lambda trainer: False)
    load_npz(path, fresh)
    assert (fresh._numerator, fresh._denominator) == (1, 2)
