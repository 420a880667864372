"""The harness' torch, ppe and TorchMetrics baselines in a tiny mode: present where importable, checked
by the guard, skipped with a note otherwise, and off in the default quick run. No timing is asserted."""
import json

import numpy as np
import pytest

from fusedmetrics.bench import hooks
from fusedmetrics.bench.__main__ import main
from fusedmetrics.bench.optional import try_import

torch = pytest.importorskip("torch")
pytest.importorskip("fusedmetrics.summary")
HAVE_PPE = try_import("pytorch_pfn_extras.reporting")[0] is not None
HAVE_TORCHMETRICS = try_import("torchmetrics.classification")[0] is not None
TINY = ["--repeat", "1", "--warmup", "0", "--shapes", "512x10,64x300", "--no-progress", "--mode", "back-to-back"]


def _run(tmp_path, extra):
    path = tmp_path / "out.json"
    rc = main(TINY + list(extra) + ["--json", str(path)])
    with open(path) as f:
        return rc, json.load(f)


@pytest.fixture(scope="module")
def torch_doc(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("bench_torch"), ["--quick", "--torch", "--suite", "accuracy,summary"])


def test_accuracy_torch_candidates(torch_doc):
    rc, doc = torch_doc
    assert rc == 0, doc["suites"]
    assert doc["options"]["torch"] is True
    results = doc["suites"]["accuracy"]["results"]
    assert {(r["N"], r["C"]) for r in results} == {(512, 10), (64, 300)}
    for r in results:
        t = r["time_s"]
        assert "ours_torch" in t
        assert r["torch_input_ratio"] == pytest.approx(t["ours_torch"] / t["ours"], rel=1e-12)
        # TorchMetrics is compared with ours on the same tensors, and kept out of the numpy ratios.
        assert "torchmetrics" not in r["speedup"]
        if HAVE_TORCHMETRICS:
            assert r["speedup_torch"]["torchmetrics"] == pytest.approx(t["torchmetrics"] / t["ours_torch"],
                                                                       rel=1e-12)
        else:
            assert r["speedup_torch"] == {}


def test_summary_torch_case(torch_doc):
    _, doc = torch_doc
    torch_rows = [r for r in doc["suites"]["summary"]["results"] if r["values"] == "torch 0-d"]
    assert len(torch_rows) == 1 and torch_rows[0]["keys"] == 8
    expected = ({"ppe"} if HAVE_PPE else set()) | ({"torchmetrics"} if HAVE_TORCHMETRICS else set())
    r = torch_rows[0]
    assert set(r["speedup"]) == expected   # Chainer does not take torch tensors
    for k, ratio in r["speedup"].items():
        assert ratio == pytest.approx(r["time_s"][k] / r["time_s"]["ours"], rel=1e-12)


def test_quick_run_leaves_the_accuracy_torch_variant_out(tmp_path):
    rc, doc = _run(tmp_path, ["--quick", "--suite", "accuracy"])
    assert rc == 0 and doc["options"]["torch"] is False
    assert all("ours_torch" not in r["time_s"] for r in doc["suites"]["accuracy"]["results"])


def test_torch_off(tmp_path):
    rc, doc = _run(tmp_path, ["--torch", "off", "--suite", "accuracy", "--repeat", "1"])
    assert rc == 0 and doc["options"]["torch"] is False


def test_guard_checks_ours_on_torch_input(tmp_path):
    import fusedmetrics

    def wrong_on_torch(y, t, *args, **kwargs):
        counts = fusedmetrics.accuracy_counts(y, t)
        if isinstance(y, torch.Tensor):
            counts = counts.clone()
            counts[0] -= 1
        return counts

    with hooks.override("accuracy_counts", wrong_on_torch):
        rc, doc = _run(tmp_path, ["--quick", "--torch", "--suite", "accuracy"])
    acc = doc["suites"]["accuracy"]
    assert rc == 1 and "torch tensors" in acc["error"] and acc["results"] == []


def test_guard_checks_summary_means_on_torch_values(tmp_path):
    from fusedmetrics.summary import DictSummary

    class SkewedOnTorch(DictSummary):
        def add(self, d):
            if any(isinstance(v, torch.Tensor) for v in d.values()):
                d = {k: float(v) * (1 + 1e-5) + 1e-5 for k, v in d.items()}
            return super().add(d)

    with hooks.override("DictSummary", SkewedOnTorch):
        rc, doc = _run(tmp_path, ["--quick", "--suite", "summary"])
    s = doc["suites"]["summary"]
    assert rc == 1 and "DictSummary mean" in s["error"] and "torch 0-d" in s["error"]


def test_missing_baselines_are_notes(tmp_path, monkeypatch):
    import fusedmetrics.bench.suite_accuracy as suite_accuracy
    import fusedmetrics.bench.suite_summary as suite_summary

    real = suite_accuracy.try_import

    def hidden(name):
        if name.startswith(("torchmetrics", "pytorch_pfn_extras")):
            return None, f"{name} not importable (hidden by the test)"
        return real(name)

    monkeypatch.setattr(suite_accuracy, "try_import", hidden)
    monkeypatch.setattr(suite_summary, "try_import", hidden)
    rc, doc = _run(tmp_path, ["--quick", "--torch", "--suite", "accuracy,summary", "--shapes", "256x10"])
    assert rc == 0
    for r in doc["suites"]["accuracy"]["results"]:
        assert "ours_torch" in r["time_s"] and "torchmetrics" not in r["time_s"]
    row = [r for r in doc["suites"]["summary"]["results"] if r["values"] == "torch 0-d"][0]
    assert set(row["time_s"]) == {"ours"}
    assert sum("hidden by the test" in n for n in doc["notes"]) == 3


def test_table_renders_torch_columns(torch_doc):
    from fusedmetrics.bench import report, runner
    _, doc = torch_doc
    text = report.render(doc, runner.SUITES)
    assert "torch/numpy input" in text and "torch 0-d" in text
    if HAVE_PPE:
        assert "ppe us/add" in text
    assert np.isfinite([r["torch_input_ratio"] for r in doc["suites"]["accuracy"]["results"]]).all()
