"""GPU: evaluation on cupy arrays, equal to the CPU run, and no host sync in the metric path."""
import threading

import numpy
import pytest

chainer = pytest.importorskip('chainer')
import chainer.functions as F  # noqa: E402
import chainer.links as L  # noqa: E402

from fusedmetrics import extensions  # noqa: E402
from fusedmetrics.datasets import make_classification  # noqa: E402
from fusedmetrics.links import Classifier  # noqa: E402


# conftest skips gpu tests without a GPU; Chainer must also be able to use this CuPy.
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not chainer.backends.cuda.available, reason="chainer cannot use CuPy here")]


N, C, BATCH = 203, 7, 16   # a short last batch


def dataset():
    x, t = make_classification(N, n_features=12, n_classes=C, seed=4)
    return chainer.datasets.TupleDataset(x, t)


def evaluate(device):
    numpy.random.seed(0)
    predictor = L.Linear(12, C)
    model = Classifier(predictor)
    model.to_device(device)
    it = chainer.iterators.SerialIterator(dataset(), BATCH, repeat=False, shuffle=False)
    ev = extensions.Evaluator(it, model, device=device)
    ev.name = 'validation'
    reporter = chainer.Reporter()
    with reporter:
        return ev()


def test_gpu_results_equal_cpu():
    cpu = evaluate('@numpy')
    gpu = evaluate('@cupy:0')
    assert list(cpu) == list(gpu)
    for key in cpu:
        assert float(gpu[key]) == pytest.approx(float(cpu[key]), rel=1e-5), key
    ratio = float(gpu['validation/main/correct']) / float(gpu['validation/main/total'])
    ratio_cpu = float(cpu['validation/main/correct']) / float(cpu['validation/main/total'])
    assert ratio == pytest.approx(ratio_cpu, rel=1e-12)


class _DeviceBlocker:
    """Holds the current stream in a spinning kernel until released.

    Any host synchronisation with the stream (or device) while it spins blocks
    the host; a watchdog releases it after `timeout` seconds so a failing test
    ends, and `released_by_watchdog` then says so.
    """

    def __init__(self, timeout=20.0):
        import cupy
        self._cupy = cupy
        self._mem = cupy.cuda.alloc_pinned_memory(4)
        self._flag = numpy.frombuffer(self._mem, numpy.int32, 1)
        self._flag[0] = 0
        self._kernel = cupy.RawKernel(r'''
extern "C" __global__ void fm_spin(volatile int* flag) {
    while (*flag == 0) { __nanosleep(1000); }
}''', 'fm_spin')
        self._timeout = timeout
        self.released_by_watchdog = False

    def __enter__(self):
        self._timer = threading.Timer(self._timeout, self._watchdog)
        self._timer.start()
        self._kernel((1,), (1,), (numpy.uint64(self._mem.ptr),))
        return self

    def _watchdog(self):
        self.released_by_watchdog = True
        self._flag[0] = 1

    def __exit__(self, *exc):
        self._timer.cancel()
        self._flag[0] = 1
        self._cupy.cuda.Device().synchronize()


def _prebatched_device_iterator():
    import cupy
    x, t = make_classification(N, n_features=C, n_classes=C, seed=5)
    batches = [(cupy.asarray(x[i:i + BATCH]), cupy.asarray(t[i:i + BATCH]))
               for i in range(0, N, BATCH)]
    return chainer.iterators.SerialIterator(batches, 1, repeat=False, shuffle=False), (x, t)


class Replay(chainer.Link):
    def forward(self, x):
        return chainer.as_variable(x)


def test_no_host_sync_per_batch_in_metric_path():
    import cupy
    it, (x, t) = _prebatched_device_iterator()
    model = Classifier(Replay(), lossfun=lambda y, t: F.sum(y))
    ev = extensions.Evaluator(it, model, converter=lambda batch, device: batch[0])
    reporter = chainer.Reporter()
    reporter.add_observer('main', model)
    with reporter:
        ev.evaluate_summary()   # warm-up: kernels compiled, memory pool filled
        with _DeviceBlocker() as blocker:
            summary = ev.evaluate_summary()
        assert not blocker.released_by_watchdog, 'the evaluation loop synchronised'
        result = summary.compute_mean()
    assert float(result['main/correct']) / float(result['main/total']) == pytest.approx(
        float((x.argmax(1) == t).sum()) / len(t), rel=1e-12)
    # Device keys stay on the device, as Chainer's DictSummary returns them.
    assert isinstance(result['main/correct'], cupy.ndarray)


def test_micro_average_accumulates_on_device_without_sync():
    import cupy
    import types
    ext = extensions.MicroAverage('n', 'd', 'r', trigger=(4, 'iteration'))
    trainer = types.SimpleNamespace(observation={}, updater=types.SimpleNamespace(
        iteration=0, epoch_detail=0.0))
    values = [(cupy.asarray(3, dtype=cupy.int64), cupy.asarray(4, dtype=cupy.int64))
              for _ in range(4)]
    with _DeviceBlocker() as blocker:
        for n, d in values[:3]:
            trainer.updater.iteration += 1
            trainer.observation = {'n': n, 'd': d}
            ext(trainer)
    assert not blocker.released_by_watchdog, 'MicroAverage synchronised'
    assert isinstance(ext._numerator, cupy.ndarray) and ext._numerator.dtype == cupy.int64
    trainer.updater.iteration += 1
    trainer.observation = {'n': values[3][0], 'd': values[3][1]}
    reporter = chainer.Reporter()
    with reporter.scope(trainer.observation):
        ext(trainer)
    assert trainer.observation['r'] == 0.75
    assert type(trainer.observation['r']) in (float, numpy.float64)
