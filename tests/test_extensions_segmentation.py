"""SemanticSegmentationEvaluator: ChainerCV's reports and values from streamed counts.

The reference is ChainerCV 0.13's eval_semantic_segmentation re-derived from its documentation
(tests/chainercv_reference.py) over every label map of the pass at once.
"""
import numpy
import pytest

chainer = pytest.importorskip('chainer')
import chainer.functions as F  # noqa: E402
import chainer.links as L  # noqa: E402
from chainer import training  # noqa: E402

from chainercv_reference import chainercv_reference  # noqa: E402
from fake_mpi import patch_resolve, run_ranks  # noqa: E402
from fusedmetrics import extensions  # noqa: E402
from fusedmetrics.multi_node import RemoteEvaluationError  # noqa: E402
from trainer_run import train_and_log  # noqa: E402

C = 4
NAMES = ('sky', 'road', 'car', 'tree')


class SegNet(chainer.Chain):
    def __init__(self, n_class=C):
        super().__init__()
        with self.init_scope():
            self.conv = L.Convolution2D(3, n_class, 3, pad=1)

    def forward(self, x):
        return self.conv(x)

    def predict(self, imgs):
        """ChainerCV's contract: a list of (3, H, W) images in, a list of (H, W) int32 maps out."""
        out = []
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            for img in imgs:
                score = self.forward(self.xp.asarray(img)[None]).array[0]
                out.append(score.argmax(axis=0).astype(numpy.int32))
        return out


class FixedPredictor(chainer.Link):
    """predict returns stored maps, in order (exercises exact label layouts)."""

    def __init__(self, maps, as_tuple=False):
        super().__init__()
        self.maps, self.i, self.as_tuple = maps, 0, as_tuple

    def predict(self, imgs):
        out = self.maps[self.i:self.i + len(imgs)]
        self.i += len(imgs)
        return (out,) if self.as_tuple else out


def make_data(n, seed, size=(6, 7), vary=False, absent=(), ignore_p=0.1, ignore_label=-1):
    rng = numpy.random.RandomState(seed)
    present = [c for c in range(C) if c not in absent]
    data = []
    for _ in range(n):
        h, w = (rng.randint(3, 9), rng.randint(3, 9)) if vary else size
        label = rng.choice(present, size=(h, w)).astype(numpy.int32)
        img = rng.randn(3, h, w).astype(numpy.float32) * 0.5
        img[label % 3, numpy.arange(h)[:, None], numpy.arange(w)] += 1.5
        label[rng.rand(h, w) < ignore_p] = ignore_label
        data.append((img, label))
    return data


def iterator(data, batch=3):
    return chainer.iterators.SerialIterator(data, batch, repeat=False, shuffle=False)


class EmptyIterator(chainer.dataset.Iterator):
    """No batches (Chainer's SerialIterator divides by zero on an empty dataset)."""
    repeat = False

    def reset(self):
        pass

    def __next__(self):
        raise StopIteration


def evaluate(ev, name='validation'):
    ev.name = name
    reporter = chainer.Reporter()
    with reporter:
        return ev()


def reference(model, data):
    preds = model.predict([img for img, _ in data])
    return chainercv_reference(preds, [numpy.where(lab < 0, -1, lab) for _, lab in data])


def assert_value(got, want):
    if numpy.isnan(want):
        assert numpy.isnan(got)
    else:
        assert got == pytest.approx(want, rel=1e-14, abs=0)


def assert_matches(result, want, prefix='validation/main/', names=None):
    for key in ('miou', 'pixel_accuracy', 'mean_class_accuracy'):
        assert_value(result[prefix + key], want[key])
    if names is not None:
        n = len(want['iou'])
        for i, name in enumerate(names):
            assert_value(result[prefix + 'iou/' + name],
                         want['iou'][i] if i < n else numpy.nan)
            assert_value(result[prefix + 'class_accuracy/' + name],
                         want['class_accuracy'][i] if i < n else numpy.nan)


@pytest.mark.parametrize('config', ['label_names', 'num_classes', 'grown'])
@pytest.mark.parametrize('absent', [(), (2,), (3,)])
def test_values_and_keys_match_chainercv(config, absent):
    numpy.random.seed(1)
    model = SegNet()
    data = make_data(10, seed=5, vary=True, absent=absent)
    kwargs = {'label_names': NAMES} if config == 'label_names' else \
        {'num_classes': C} if config == 'num_classes' else {}
    ev = extensions.SemanticSegmentationEvaluator(iterator(data), model, **kwargs)
    result = evaluate(ev)
    want = reference(model, data)
    expected_keys = {'validation/main/' + k for k in ('miou', 'pixel_accuracy',
                                                      'mean_class_accuracy')}
    if config == 'label_names':
        expected_keys |= {'validation/main/{}/{}'.format(kind, n)
                          for kind in ('iou', 'class_accuracy') for n in NAMES}
    assert set(result) == expected_keys
    assert_matches(result, want, names=NAMES if config == 'label_names' else None)
    matrix = ev.evaluate_matrix()
    assert matrix.dtype == numpy.int64
    assert matrix.shape == ((C, C) if config != 'grown' else (len(want['iou']),) * 2)


def test_label_names_beyond_the_labels_seen_are_nan():
    maps = [numpy.array([[0, 1], [1, 1]], numpy.int32)]
    data = [(numpy.zeros((3, 2, 2), numpy.float32), numpy.array([[0, 1], [-1, 0]], numpy.int32))]
    names = ('a', 'b', 'c')
    for kwargs in ({'label_names': names}, {'label_names': names, 'num_classes': 2}):
        ev = extensions.SemanticSegmentationEvaluator(iterator(data), FixedPredictor(maps),
                                                      **kwargs)
        result = evaluate(ev)
        assert numpy.isnan(result['validation/main/iou/c'])
        assert numpy.isnan(result['validation/main/class_accuracy/c'])
        assert_matches(result, chainercv_reference(maps, [data[0][1]]), names=names)


def test_predict_may_return_a_one_tuple_and_iterator_is_reset_between_passes():
    data = make_data(7, seed=2)
    maps = [lab.clip(0) for _, lab in data]
    model = FixedPredictor(maps * 2, as_tuple=True)
    ev = extensions.SemanticSegmentationEvaluator(iterator(data, 2), model, num_classes=C)
    first = evaluate(ev)
    second = evaluate(ev)
    assert first == second
    assert_matches(first, chainercv_reference(maps, [lab for _, lab in data]))


def test_ignore_label_255_and_invalid_labels():
    data = make_data(6, seed=3, ignore_label=255, ignore_p=0.3)
    maps = [numpy.where(lab == 255, 0, lab).astype(numpy.int32) for _, lab in data]
    want = chainercv_reference(maps, [numpy.where(lab == 255, -1, lab) for _, lab in data])
    for kwargs in ({'num_classes': C}, {}):  # 255 never grows C
        ev = extensions.SemanticSegmentationEvaluator(
            iterator(data), FixedPredictor(list(maps)), ignore_label=255, **kwargs)
        result = evaluate(ev)
        assert_matches(result, want)
        assert ev.evaluate_matrix is not None
    # -1 is not ignored when ignore_label=255: an error, not a silent skip
    bad = [(img, numpy.where(lab == 255, -1, lab).astype(numpy.int32)) for img, lab in data]
    ev = extensions.SemanticSegmentationEvaluator(iterator(bad), FixedPredictor(list(maps)),
                                                  ignore_label=255, num_classes=C)
    with pytest.raises(ValueError, match='outside'):
        evaluate(ev)
    # a prediction >= num_classes is an error too
    maps_bad = [m.copy() for m in maps]
    maps_bad[2][0, 0] = C
    ev = extensions.SemanticSegmentationEvaluator(iterator(data), FixedPredictor(maps_bad),
                                                  ignore_label=255, num_classes=C)
    with pytest.raises(ValueError, match='outside'):
        evaluate(ev)


def test_class_attributes_and_constructor():
    ext = extensions.SemanticSegmentationEvaluator
    assert ext.trigger == (1, 'epoch') and ext.default_name == 'validation'
    assert ext.priority == training.PRIORITY_WRITER
    ev = ext(EmptyIterator(), SegNet(), NAMES)
    assert ev.label_names == NAMES and ev.num_classes == C and ev.comm is None
    result = evaluate(ev)  # an empty pass: NaN, no warnings
    assert numpy.isnan(result['validation/main/miou'])
    with pytest.raises(ValueError):
        ext(iterator([]), SegNet(), num_classes=-1)
    with pytest.raises(TypeError):
        ext(iterator([]), SegNet(), None, object())


# --- multi-node with a thread-backed fake communicator ---------------------------------------

def shards(data, sizes):
    edges = numpy.concatenate([[0], numpy.cumsum(sizes)])
    return [data[edges[r]:edges[r + 1]] for r in range(len(sizes))]


@pytest.mark.parametrize('kwargs', [{'label_names': NAMES}, {}])
@pytest.mark.parametrize('sizes', [(5, 5), (9, 1), (10, 0), (4, 3, 3)])
def test_fake_comm_matches_one_process(monkeypatch, kwargs, sizes):
    patch_resolve(monkeypatch)
    numpy.random.seed(0)
    model = SegNet()
    data = make_data(10, seed=9, vary=True, absent=(1,))
    want = reference(model, data)
    parts = shards(data, sizes)

    def rank_fn(comm):
        part = parts[comm.rank]
        it = iterator(part) if part or comm.rank % 2 == 0 else None  # None: evaluates nothing
        ev = extensions.SemanticSegmentationEvaluator(it, model, comm=comm, **kwargs)
        return evaluate(ev)

    results, group = run_ranks(len(sizes), rank_fn)
    for r in results:
        assert not isinstance(r, BaseException), repr(r)
        assert r == results[0] or all(
            (numpy.isnan(r[k]) and numpy.isnan(results[0][k])) or r[k] == results[0][k]
            for k in r)
        assert_matches(r, want, names=kwargs.get('label_names'))
    ops = [op for op, _ in group.calls]
    assert ops == (['SUM'] if kwargs else ['MAX', 'SUM'])
    c = C if kwargs else len(want['iou'])
    assert group.calls[-1][1] == c * c + 1 + len(sizes)


def test_fake_comm_failure_on_one_rank_raises_everywhere(monkeypatch, capsys):
    patch_resolve(monkeypatch)
    data = make_data(6, seed=1)

    class Broken(SegNet):
        def predict(self, imgs):
            raise RuntimeError('deliberate failure')

    def rank_fn(comm, kwargs):
        model = Broken() if comm.rank == 1 else SegNet()
        ev = extensions.SemanticSegmentationEvaluator(iterator(data), model, comm=comm, **kwargs)
        return evaluate(ev)

    for kwargs in ({'num_classes': C}, {}):
        results, _ = run_ranks(3, lambda comm: rank_fn(comm, kwargs))
        assert isinstance(results[1], RuntimeError) and 'deliberate' in str(results[1])
        for r in (0, 2):
            assert isinstance(results[r], RemoteEvaluationError), repr(results[r])
            assert results[r].failed_ranks == [1]
    assert 'rank 1 of 3' in capsys.readouterr().err


def test_one_rank_real_comm_self():
    mpi4py = pytest.importorskip('mpi4py')
    from mpi4py import MPI  # noqa: F401
    numpy.random.seed(0)
    model = SegNet()
    data = make_data(5, seed=4)
    for kwargs in ({'num_classes': C}, {}):
        ev = extensions.SemanticSegmentationEvaluator(iterator(data), model, comm=MPI.COMM_SELF,
                                                      **kwargs)
        assert_matches(evaluate(ev), reference(model, data))
    assert mpi4py


def test_growing_c_keeps_the_invalid_count_of_the_matrix_it_replaces():
    """Device maps count out-of-range labels in ``invalid`` instead of raising (simulated
    here: the counter the kernel would set); a later growth of C must not drop them."""
    from fusedmetrics.extensions._label_counts import LabelCounts
    counts = LabelCounts(None, ignore_label=-1)
    counts.update(numpy.array([[0, 1]]), numpy.array([[0, 1]]))           # C = 2
    counts._cm._invalid = numpy.array(1, dtype=numpy.int64)                # a truth of -3 on a GPU
    counts.update(numpy.array([[5, 1]]), numpy.array([[1, 1]]))           # grows C to 6
    counts.update(numpy.array([[7]]), numpy.array([[2]]))                 # and to 8
    assert counts.num_classes == 8 and counts.invalid == 1
    assert counts.counts().sum() == 5


def test_create_multi_node_evaluator_gives_it_the_comm_instead_of_patching():
    """Patching would call evaluate() from evaluate_summary() and back (a RecursionError on
    every rank); the evaluator counts over the ranks itself once it has the communicator."""
    pytest.importorskip('mpi4py')
    from mpi4py import MPI
    from fusedmetrics.multi_node import create_multi_node_evaluator, is_multi_node_evaluator
    numpy.random.seed(0)
    model = SegNet()
    data = make_data(5, seed=4)
    ev = extensions.SemanticSegmentationEvaluator(iterator(data), model, num_classes=C)
    assert create_multi_node_evaluator(ev, MPI.COMM_SELF) is ev
    assert ev.comm is MPI.COMM_SELF and not is_multi_node_evaluator(ev)
    assert_matches(evaluate(ev), reference(model, data))
    assert create_multi_node_evaluator(ev, MPI.COMM_SELF) is ev   # again: the same comm is fine


# --- inside a real Trainer --------------------------------------------------------------------

class TrainChain(chainer.Chain):
    def __init__(self, net):
        super().__init__()
        with self.init_scope():
            self.net = net

    def forward(self, x, t):
        loss = F.softmax_cross_entropy(self.net(x), t)
        chainer.report({'loss': loss}, self)
        return loss


class ReferenceScores(training.Extension):
    """After the evaluator: ChainerCV's numbers from every map of the pass at once."""
    trigger = 1, 'epoch'
    priority = training.PRIORITY_WRITER - 1

    def __init__(self, net, data):
        self.net, self.data = net, data

    def __call__(self, trainer):
        want = reference(self.net, self.data)
        chainer.report({'ref/' + k: want[k]
                        for k in ('miou', 'pixel_accuracy', 'mean_class_accuracy')})
        chainer.report({'ref/iou/' + n: want['iou'][i] for i, n in enumerate(NAMES)
                        if i < len(want['iou'])})


def test_in_a_trainer_matches_all_maps_at_once(tmp_path):
    numpy.random.seed(0)
    net = SegNet()
    train = make_data(24, seed=11)
    val = make_data(11, seed=12, vary=True, absent=(3,))
    opt = chainer.optimizers.Adam(alpha=0.05)
    opt.setup(TrainChain(net))
    train_iter = chainer.iterators.SerialIterator(train, 8, shuffle=False)
    log = train_and_log(tmp_path, opt, train_iter,
                        extensions.SemanticSegmentationEvaluator(iterator(val, 4), net, NAMES), ReferenceScores(net, val))
    for entry in log:
        for key in ('miou', 'pixel_accuracy', 'mean_class_accuracy'):
            assert entry['validation/main/' + key] == pytest.approx(entry['ref/' + key],
                                                                    rel=1e-12)
        for name in NAMES[:3]:
            got, want = entry['validation/main/iou/' + name], entry.get('ref/iou/' + name)
            if want is None or numpy.isnan(want):
                assert got is None or numpy.isnan(got)
            else:
                assert got == pytest.approx(want, rel=1e-12)
    assert log[-1]['validation/main/pixel_accuracy'] > 0.5  # it learned something


# --- real mpiexec -------------------------------------------------------------------------------

@pytest.mark.mpi
def test_under_mpiexec_every_rank_reports_the_global_values():
    import os
    import subprocess
    import sys
    from pathlib import Path
    from test_multi_node_mpi import SKIP, find_mpiexec
    if SKIP is not None:
        pytest.skip(SKIP)
    import fusedmetrics
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (str(Path(fusedmetrics.__file__).resolve().parent.parent),
                    env.get('PYTHONPATH')) if p)
    env.setdefault('OMP_NUM_THREADS', '1')
    worker = Path(__file__).parent / 'mpi' / 'seg_worker.py'
    for n in (2, 3):
        proc = subprocess.run([find_mpiexec(), '-n', str(n), sys.executable, str(worker)],
                              capture_output=True, text=True, timeout=120, env=env)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
        assert proc.returncode == 0 and lines, proc.stderr[-3000:]
        assert lines[-1] == 'RESULT pass', lines[-1]
