"""The benchmark harness in a tiny mode: every suite reported, every figure finite and positive, the
ratios taken from the same run, and the correctness guard aborting a suite on a wrong implementation.
Performance itself is never asserted here (benchmarks measure it)."""
import json
import math
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest

from fusedmetrics.bench import hooks
from fusedmetrics.bench.__main__ import main
from fusedmetrics.bench.data import parse_shapes
from fusedmetrics.bench.optional import try_import
from fusedmetrics.bench.timing import Candidate, measure

HAVE_CHAINER = try_import("chainer")[0] is not None
HAVE_SUMMARY = try_import("fusedmetrics.summary")[0] is not None
HAVE_TORCH = try_import("torch")[0] is not None
HAVE_EXTENSIONS = HAVE_CHAINER and try_import("fusedmetrics.extensions")[0] is not None
TINY = ["--quick", "--repeat", "1", "--warmup", "0", "--shapes", "4096x10,96x300", "--no-progress"]


def _run(tmp_path, extra=(), name="out.json"):
    path = tmp_path / name
    rc = main(TINY + list(extra) + ["--json", str(path)])
    with open(path) as f:
        return rc, json.load(f)


def _numbers(obj, where="results"):
    """Every number in a result tree, with its path (booleans are flags, not figures)."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return
    if isinstance(obj, (int, float)):
        yield where, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, f"{where}[{i}]")


@pytest.fixture(scope="module")
def tiny_doc(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    return _run(tmp, ["--dtype", "float32,float16"])


def test_every_suite_reported(tiny_doc):
    rc, doc = tiny_doc
    assert rc == 0, doc["suites"]
    assert set(doc["suites"]) == {"accuracy", "summary", "evaluator", "bandwidth", "confusion"}
    # A suite is skipped only when what it measures cannot be imported here.
    expected = {"accuracy": True, "bandwidth": True, "summary": HAVE_SUMMARY, "evaluator": HAVE_EXTENSIONS,
                "confusion": True}
    for name, runs in expected.items():
        if runs:
            assert doc["suites"][name]["status"] == "ok", doc["suites"][name]
            assert doc["suites"][name]["results"]
        else:
            assert doc["suites"][name]["status"] == "skipped", doc["suites"][name]
    acc = doc["suites"]["accuracy"]["results"]
    assert {(r["N"], r["C"], r["dtype"]) for r in acc} == {
        (4096, 10, "float32"), (96, 300, "float32"), (4096, 10, "float16"), (96, 300, "float16")}
    m = doc["machine"]
    for key in ("cpu_model", "cpu_cores_usable", "last_level_cache_bytes", "versions", "fusedmetrics_build_info"):
        assert key in m
    assert m["versions"]["numpy"] == np.__version__


def test_every_figure_finite_and_positive(tiny_doc):
    _, doc = tiny_doc
    count = 0
    for name, suite in doc["suites"].items():
        for where, value in _numbers(suite["results"], name):
            count += 1
            assert math.isfinite(value) and value > 0, (where, value)
    assert count > 50


def test_ratios_come_from_the_same_run(tiny_doc):
    _, doc = tiny_doc
    for r in doc["suites"]["accuracy"]["results"]:
        t = r["time_s"]
        expected = {"numpy"} | ({"chainer"} if HAVE_CHAINER else set())
        assert set(r["speedup"]) == expected
        for k, ratio in r["speedup"].items():
            assert ratio == pytest.approx(t[k] / t["ours"], rel=1e-12)
        for k, v in t.items():
            assert v == pytest.approx(statistics.median(r["samples_s"][k]), rel=1e-12)
            sp = r["spread_s"][k]
            assert sp["min"] <= sp["p25"] <= sp["median"] == v <= sp["p75"] <= sp["max"]
            nbytes = r["bytes"] if k != "ceiling" else r["bytes"] // 4 * 4   # float32 sum over the same bytes
            assert r["gbps"][k] == pytest.approx(nbytes / v / 1e9, rel=1e-12)
        assert r["bytes"] == r["N"] * r["C"] * np.dtype(r["dtype"]).itemsize + r["N"] * 4
        assert r["pct_of_ceiling"] == pytest.approx(100 * r["gbps"]["ours"] / r["gbps"]["ceiling"], rel=1e-12)
        best_mt = (r["bytes"] // 4 * 4) / min(r["samples_s"]["ceiling_mt"]) / 1e9
        assert r["ceiling_mt_best_gbps"] == pytest.approx(best_mt, rel=1e-12)
        assert r["pct_of_ceiling_mt"] == pytest.approx(100 * r["gbps"]["ours"] / best_mt, rel=1e-12)
    confusion = doc["suites"]["confusion"]["results"]
    for r in confusion:
        t = r["time_s"]
        for k, ratio in r["speedup"].items():
            assert ratio == pytest.approx(t[k] / t["ours"], rel=1e-12)
        assert r["gbps"]["ours"] == pytest.approx(r["bytes"] / t["ours"] / 1e9, rel=1e-12)
        if r["kind"] == "scores":
            # The read ceiling over the same bytes, from the same run.
            assert set(r["speedup"]) == {"numpy", "accuracy"}
            assert r["gbps"]["ceiling"] == pytest.approx((r["bytes"] // 4 * 4) / t["ceiling"] / 1e9, rel=1e-12)
            read = max(r["gbps"]["ceiling"], r["gbps"]["ceiling_mt"])
            assert r["pct_of_read_ceiling"] == pytest.approx(100 * r["gbps"]["ours"] / read, rel=1e-12)
        else:
            assert "ceiling" not in t and "pct_of_ceiling" not in r
    labels = {(r["C"], r["dtype"]) for r in confusion if r["kind"] == "labels"}
    assert {(19, "int32/int64"), (19, "uint8/int64"), (1000, "int32/int64"), (19, "int64")} <= labels
    assert (1000, "uint8/int64") not in labels   # uint8 truth cannot hold 1000 classes
    for r in doc["suites"]["summary"]["results"]:
        for k, ratio in r["speedup"].items():
            assert ratio == pytest.approx(r["time_s"][k] / r["time_s"]["ours"], rel=1e-12)
    if HAVE_SUMMARY:
        assert {(r["keys"], r["values"]) for r in doc["suites"]["summary"]["results"]} == {
            (k, v) for k in (1, 8, 64) for v in ("python float", "numpy float32")} | (
            {(8, "torch 0-d")} if HAVE_TORCH else set())
    for r in doc["suites"]["evaluator"]["results"]:
        pb = r["time_per_batch_s"]
        assert r["speedup"]["chainer"] == pytest.approx(pb["chainer"] / pb["ours"], rel=1e-12)
    for r in doc["suites"]["bandwidth"]["results"]:
        assert r["gbps"]["read"] == pytest.approx(r["bytes"] / r["time_s"]["read"] / 1e9, rel=1e-12)
        assert r["gbps"]["copy"] == pytest.approx(2 * r["bytes"] / r["time_s"]["copy"] / 1e9, rel=1e-12)
        assert r["gbps"]["read_mt"] == pytest.approx(r["bytes"] / r["time_s"]["read_mt"] / 1e9, rel=1e-12)


def test_guard_aborts_accuracy_on_wrong_counts(tmp_path):
    import fusedmetrics

    def off_by_one(y, t, *args, **kwargs):
        counts = np.array(fusedmetrics.accuracy_counts(y, t), copy=True)
        counts[0] += 1
        return counts

    with hooks.override("accuracy_counts", off_by_one):
        rc, doc = _run(tmp_path, ["--suite", "accuracy,bandwidth"])
    assert rc == 1
    acc = doc["suites"]["accuracy"]
    assert acc["status"] == "error" and "correctness guard" in acc["error"]
    assert "accuracy_counts mismatch" in acc["error"]
    assert acc["results"] == []          # a fast wrong answer is never reported
    assert doc["suites"]["bandwidth"]["status"] == "ok"   # other suites still run


def test_guard_catches_an_implementation_that_counts_every_row(tmp_path):
    # With the default argmax labels every timed row is correct; the guard's extra half-correct
    # label set must still expose an implementation that never looks at the scores.
    def all_correct(y, t, *args, **kwargs):
        return np.array([t.shape[0], t.shape[0]], dtype=np.int64)

    with hooks.override("accuracy_counts", all_correct):
        rc, doc = _run(tmp_path, ["--suite", "accuracy"])
    assert rc == 1 and "accuracy_counts mismatch" in doc["suites"]["accuracy"]["error"]


def test_label_modes_are_recorded(tmp_path):
    rc, doc = _run(tmp_path, ["--suite", "accuracy", "--labels", "random"])
    assert rc == 0 and doc["options"]["labels"] == "random"
    assert all(r["labels"] == "random" for r in doc["suites"]["accuracy"]["results"])


@pytest.mark.skipif(not HAVE_SUMMARY, reason="fusedmetrics.summary not built yet")
def test_guard_aborts_summary_on_wrong_means(tmp_path):
    from fusedmetrics.summary import DictSummary

    class Skewed(DictSummary):
        def add(self, d):
            return super().add({k: float(np.asarray(getattr(v, "array", v))) * (1 + 1e-5) + 1e-5
                                for k, v in d.items()})

    with hooks.override("DictSummary", Skewed):
        rc, doc = _run(tmp_path, ["--suite", "summary"])
    assert rc == 1
    s = doc["suites"]["summary"]
    assert s["status"] == "error" and "DictSummary mean" in s["error"] and s["results"] == []


@pytest.mark.skipif(not HAVE_EXTENSIONS, reason="the evaluator suite needs Chainer and fusedmetrics.extensions")
def test_guard_aborts_evaluator_on_wrong_accuracy(tmp_path):
    import fusedmetrics

    def wrong_accuracy(y, t, ignore_label=None):
        return fusedmetrics.accuracy(y, t[::-1].copy())

    with hooks.override("accuracy", wrong_accuracy):
        rc, doc = _run(tmp_path, ["--suite", "evaluator"])
    assert rc == 1
    ev = doc["suites"]["evaluator"]
    assert ev["status"] == "error" and "accuracy" in ev["error"] and ev["results"] == []


def test_missing_chainer_is_a_note_not_a_crash(tmp_path, monkeypatch):
    import fusedmetrics.bench.context as context

    real = context.try_import

    def no_chainer(name):
        return (None, "chainer not importable (hidden by the test)") if name == "chainer" else real(name)

    monkeypatch.setattr(context, "try_import", no_chainer)
    rc, doc = _run(tmp_path, ["--suite", "accuracy,summary,evaluator"])
    assert rc == 0
    assert doc["suites"]["evaluator"]["status"] == "skipped"
    for r in doc["suites"]["accuracy"]["results"]:
        assert set(r["speedup"]) == {"numpy"}
    for r in doc["suites"]["summary"]["results"]:
        if r["values"] != "torch 0-d":   # ppe and TorchMetrics are its baselines, not Chainer
            assert r["speedup"] == {} and set(r["time_s"]) == {"ours"}
    assert any("hidden by the test" in n for n in doc["notes"])


def test_console_entry_point_subprocess(tmp_path):
    import fusedmetrics

    env = dict(os.environ)   # the child imports the same fusedmetrics as this process
    root = os.path.dirname(os.path.dirname(os.path.abspath(fusedmetrics.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    png = tmp_path / "b.png"
    proc = subprocess.run(
        [sys.executable, "-m", "fusedmetrics.bench", "--suite", "accuracy,bandwidth", "--quick", "--repeat", "1",
         "--warmup", "0", "--shapes", "2048x10", "--threads", "1", "--plot", str(png),
         "--markdown", str(tmp_path / "r.md")],
        capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "== accuracy" in proc.stdout and "== bandwidth" in proc.stdout
    assert "2048x10" in proc.stdout
    md = (tmp_path / "r.md").read_text()
    assert "Command: `fusedmetrics-bench --suite accuracy,bandwidth" in md and "== accuracy" in md
    assert "fusedmetrics threads: 1" in md
    if try_import("matplotlib")[0] is not None:
        assert png.stat().st_size > 1000
    else:
        assert "--plot skipped" in proc.stderr and not png.exists()


def test_bad_arguments_exit_with_usage():
    with pytest.raises(SystemExit) as exc:
        main(["--shapes", "10by3"])
    assert exc.value.code == 2
    with pytest.raises(ValueError, match="NxC"):
        parse_shapes("12x")
    assert parse_shapes("1048576x10, 16384x1000") == [(1048576, 10), (16384, 1000)]


def test_measure_interleaves_and_takes_medians():
    order = []
    cands = [Candidate(n, (lambda n: lambda i: order.append((n, i)))(n)) for n in "abc"]
    res = measure(cands, repeat=3, warmup=1, min_sample_s=0.0, max_calls=1)
    assert set(res) == {"a", "b", "c"}
    # Per candidate a first call, a calibration call and a check call, then 4 rounds in rotating
    # order; the call index is one shared counter.
    names = [n for n, _ in order]
    assert names[:9] == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    assert names[9:12] == ["a", "b", "c"] and names[12:15] == ["b", "c", "a"] and names[15:18] == ["c", "a", "b"]
    assert [i for _, i in order] == list(range(len(order)))
    for t in res.values():
        assert len(t.samples_s) == 3 and t.median_s == statistics.median(t.samples_s)


def test_bfloat16_scores_through_ml_dtypes(tmp_path):
    pytest.importorskip("ml_dtypes")
    rc, doc = _run(tmp_path, ["--suite", "accuracy", "--dtype", "bfloat16", "--torch", "on" if HAVE_TORCH else "off"])
    results = doc["suites"]["accuracy"]["results"]
    assert rc == 0 and results and all(r["dtype"] == "bfloat16" for r in results)
    # The guard compared ours with numpy's argmax on the same bfloat16 buffers before timing.
    assert all(r["time_s"]["ours"] > 0 and r["time_s"]["numpy"] > 0 for r in results)
    if HAVE_TORCH:
        assert all("ours_torch" in r["time_s"] for r in results)


def test_accuracy_waits_for_the_planner_and_records_its_choice(tmp_path):
    import fusedmetrics
    mode = fusedmetrics.get_planner()
    try:
        fusedmetrics.set_planner("measure")
        fusedmetrics.clear_planner_wisdom()
        # 2.8 MB per call: above the planner's 1 MiB threshold, so the plan measures its candidates.
        rc, doc = _run(tmp_path, ["--suite", "accuracy", "--shapes", "65536x10", "--torch", "off"])
        results = doc["suites"]["accuracy"]["results"]
        assert rc == 0 and results
        decision = results[0]["planner"]
        assert decision is not None and decision["planning_calls"] > 0
        assert decision["kernel"] in {d["kernel"] for d in fusedmetrics.planner_decisions().values()}

        fusedmetrics.set_planner("heuristic")
        rc, doc = _run(tmp_path, ["--suite", "accuracy", "--shapes", "65536x10", "--torch", "off"], name="h.json")
        assert rc == 0 and all(r["planner"] is None for r in doc["suites"]["accuracy"]["results"])
    finally:
        fusedmetrics.clear_planner_wisdom()
        fusedmetrics.set_planner(mode)
