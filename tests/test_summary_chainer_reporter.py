"""install_chainer_reporter(): Chainer's LogReport / Evaluator run on our
DictSummary and log the same values as with Chainer's own."""
import io
import json

import numpy as np
import pytest

chainer = pytest.importorskip("chainer")
import chainer.links as L  # noqa: E402
from chainer import training  # noqa: E402
from chainer.training import extensions  # noqa: E402

from fusedmetrics.chainer_compat import install_chainer_reporter, uninstall_chainer_reporter  # noqa: E402
from fusedmetrics.summary import DictSummary, Summary  # noqa: E402


@pytest.fixture
def restore():
    yield
    uninstall_chainer_reporter()


def test_install_uninstall_idempotent(restore):
    original_dict, original = chainer.reporter.DictSummary, chainer.reporter.Summary
    install_chainer_reporter()
    install_chainer_reporter()
    assert chainer.reporter.DictSummary is DictSummary and chainer.DictSummary is DictSummary
    assert chainer.reporter.Summary is Summary and chainer.Summary is Summary
    uninstall_chainer_reporter()
    uninstall_chainer_reporter()
    assert chainer.reporter.DictSummary is original_dict and chainer.DictSummary is original_dict
    assert chainer.reporter.Summary is original and chainer.Summary is original


def make_trainer(out):
    rng = np.random.RandomState(0)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    t = (x.sum(axis=1) > 0).astype(np.int32)
    data = chainer.datasets.TupleDataset(x, t)
    model = L.Classifier(L.Linear(5, 2, initialW=np.linspace(-1, 1, 10, dtype=np.float32).reshape(2, 5)))
    optimizer = chainer.optimizers.SGD(lr=0.1)
    optimizer.setup(model)
    train_iter = chainer.iterators.SerialIterator(data, 10, shuffle=False)
    valid_iter = chainer.iterators.SerialIterator(data, 7, repeat=False, shuffle=False)
    updater = training.updaters.StandardUpdater(train_iter, optimizer)
    trainer = training.Trainer(updater, (3, "epoch"), out=out)
    trainer.extend(extensions.Evaluator(valid_iter, model))
    trainer.extend(extensions.LogReport(trigger=(5, "iteration"), filename=None))
    return trainer


def run_log(out):
    trainer = make_trainer(out)
    trainer.run()
    return trainer, trainer.get_extension("LogReport").log


def test_trainer_log_matches_chainers(tmp_path, restore):
    _, reference = run_log(str(tmp_path / "chainer"))
    install_chainer_reporter()
    trainer, ours = run_log(str(tmp_path / "ours"))
    assert isinstance(trainer.get_extension("LogReport")._summary, DictSummary)
    assert len(ours) == len(reference) > 0
    for a, b in zip(ours, reference):
        assert list(a) == list(b)
        for k in b:
            if k == "elapsed_time":
                continue
            assert a[k] == pytest.approx(b[k], rel=1e-6, abs=1e-7), k
    assert {"main/loss", "main/accuracy", "validation/main/loss", "validation/main/accuracy"} <= set().union(*ours)
    json.dumps(ours)  # LogReport's values are plain JSON numbers


def test_log_report_serialize_with_installed_reporter(tmp_path, restore):
    install_chainer_reporter()
    trainer = make_trainer(str(tmp_path))
    log_report = trainer.get_extension("LogReport")
    trainer.run()
    log_report._summary.add({"main/loss": 1.5, "w": (2.0, 0.5)})  # something pending mid-interval
    buf = io.BytesIO()
    chainer.serializers.save_npz(buf, trainer)
    buf.seek(0)
    fresh = make_trainer(str(tmp_path))
    chainer.serializers.load_npz(buf, fresh)
    restored = fresh.get_extension("LogReport")
    assert restored.log == log_report.log
    assert restored._summary.compute_mean() == log_report._summary.compute_mean()
    # and Chainer's own LogReport reads the summary written by ours (integer weights only)
    uninstall_chainer_reporter()
    log_report._summary.load_state_dict({"names": ["main/loss"], "moments": np.array([[4.0, 1.5, 0.0]]),
                                         "integer_weights": [True]})
    buf = io.BytesIO()
    chainer.serializers.save_npz(buf, trainer)
    buf.seek(0)
    plain = make_trainer(str(tmp_path))
    chainer.serializers.load_npz(buf, plain)
    assert plain.get_extension("LogReport")._summary.compute_mean() == {"main/loss": 1.5}
