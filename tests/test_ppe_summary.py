"""fusedmetrics.ppe.Summary / DictSummary against pytorch-pfn-extras' own classes."""
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ppe = pytest.importorskip("pytorch_pfn_extras")

from fusedmetrics import ppe as fmppe  # noqa: E402


def _feed(summaries, rng, n=200):
    for _ in range(n):
        d = {"loss": float(rng.normal(2.0, 0.5)), "acc": (torch.tensor(float(rng.random()), dtype=torch.float64), int(rng.integers(1, 5))),
             "t": torch.tensor(float(rng.normal()), dtype=torch.float64), "lazy": (lambda v=float(rng.random()): v)}
        for s in summaries:
            s.add(d)


def test_means_and_stds_match_ppe_on_benign_data():
    ours, theirs = fmppe.DictSummary(), ppe.reporting.DictSummary()
    _feed([ours, theirs], np.random.default_rng(0))
    a, b = ours.make_statistics(), theirs.make_statistics()
    assert list(a) == list(b)
    for k in a:
        assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-12 if "." not in k else 1e-9), k


def test_std_exact_where_ppe_cancels():
    ours, theirs = fmppe.DictSummary(), ppe.reporting.DictSummary()
    for _ in range(1000):
        v = torch.tensor(1e4 + 0.1, dtype=torch.float32)
        ours.add({"x": v})
        theirs.add({"x": v})
    assert ours.make_statistics()["x.std"] == 0.0
    assert float(theirs.make_statistics()["x.std"]) != 0.0  # NaN or noise from x2/n - mean**2


def test_deferred_values_called_once():
    calls = []
    ours = fmppe.DictSummary()

    def fn():
        calls.append(1)
        return 2.0

    ours.add({"x": fn, "y": 1.0})
    assert ours.compute_mean() == {"y": 1.0, "x": 2.0}
    assert ours.make_statistics()["x"] == 2.0
    ours.state_dict()
    assert len(calls) == 1
    s = fmppe.Summary()
    s.add(lambda: 3.0, weight=2)
    s.add(1.0)
    assert s.compute_mean() == pytest.approx(7 / 3)


def test_a_failing_deferred_value_keeps_those_after_it_and_raises_again():
    calls = {"a": 0, "b": 0}

    def counted(key, value):
        def fn():
            calls[key] += 1
            return value
        return fn

    c_results = ["not a number", "still not", 3.0]   # fails twice, then gives a number
    ours = fmppe.DictSummary()
    ours.add({"a": counted("a", 1.0)})
    ours.add({"c": lambda: c_results.pop(0)})
    ours.add({"b": counted("b", 2.0)})
    ours.add({"d": 4.0})
    for _ in range(2):  # ppe raises on every read too
        with pytest.raises(TypeError, match="'c'"):
            ours.compute_mean()
    assert calls == {"a": 1, "b": 0}   # a added once; b still waits behind c
    assert ours.compute_mean() == {"d": 4.0, "a": 1.0, "c": 3.0, "b": 2.0} and calls == {"a": 1, "b": 1}
    single = fmppe.Summary()
    single.add(lambda: 1.0)
    single.add(lambda: 1 / 0)
    single.add(lambda: 5.0, weight=3)
    with pytest.raises(ZeroDivisionError):
        single.compute_mean()
    assert [w for _, w in single._deferred] == [1, 3]


@pytest.mark.parametrize("state, error, message", [
    ({"x": {"_x": 1.0}}, ValueError, r"state of 'x' lacks _x2, _n"),
    ([1, 2], TypeError, "must be a dict"),
    ({"x": 3.0}, TypeError, "state of 'x' must be a dict"),
])
def test_malformed_ppe_state_raises_naming_the_field_and_changes_nothing(state, error, message):
    ours = fmppe.DictSummary()
    ours.add({"y": 2.0})
    with pytest.raises(error, match=message):
        ours.load_state_dict(state)
    assert ours.compute_mean() == {"y": 2.0}


def test_snapshot_both_ways_and_weights_only_load():
    ours, theirs = fmppe.DictSummary(), ppe.reporting.DictSummary()
    _feed([ours, theirs], np.random.default_rng(1), n=50)
    buf = io.BytesIO()
    torch.save(ours.state_dict(), buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    back = fmppe.DictSummary()
    back.load_state_dict(loaded)
    assert back.make_statistics() == ours.make_statistics()  # our exact state preferred: same bits
    assert isinstance(loaded["acc"]["_n"], int)  # integer weights stay integers
    p = ppe.reporting.DictSummary()
    p.load_state_dict(loaded)  # ppe reads ours (ignores our extra entries)
    for k, v in p.compute_mean().items():
        assert float(v) == pytest.approx(float(theirs.compute_mean()[k]), rel=1e-12)
    ours2 = fmppe.DictSummary()
    ours2.load_state_dict(theirs.state_dict())  # we read ppe's
    for k, v in ours2.compute_mean().items():
        assert v == pytest.approx(float(theirs.compute_mean()[k]), rel=1e-12)


def test_float_weights_round_trip():
    ours = fmppe.DictSummary()
    ours.add({"x": (1.0, 0.25), "y": (2.0, 1.5)})
    back = fmppe.DictSummary()
    back.load_state_dict(ours.state_dict())
    assert back.exact_state_dict()["moments"].tolist() == ours.exact_state_dict()["moments"].tolist()


def test_add_and_sum():
    parts = [fmppe.DictSummary() for _ in range(3)]
    whole = fmppe.DictSummary()
    rng = np.random.default_rng(2)
    for i, p in enumerate(parts):
        for _ in range(10 + i):
            d = {"x": float(rng.random()), f"k{i}": 1.0}
            p.add(d)
            whole.add(d)
    total = sum(parts, fmppe.DictSummary())
    assert sum(parts).compute_mean() == total.compute_mean()
    for k, v in whole.compute_mean().items():
        assert total.compute_mean()[k] == pytest.approx(v, rel=1e-14)
    s = fmppe.Summary()
    s.add(1.0)
    t = fmppe.Summary()
    t.add(3.0)
    assert (s + t).compute_mean() == 2.0


def test_summary_state_dict_ppe_layout():
    s = fmppe.Summary()
    s.add(2.0, 2)
    s.add(4.0)
    sd = s.state_dict()
    assert (sd["_x"], sd["_x2"], sd["_n"]) == (8.0, 24.0, 3)
    p = ppe.reporting.Summary()
    p.load_state_dict(sd)
    assert p.compute_mean() == pytest.approx(8 / 3)
    back = fmppe.Summary()
    back.load_state_dict({"_x": 8.0, "_x2": 24.0, "_n": 3})
    assert back.compute_mean() == pytest.approx(8 / 3)


def test_install_ppe_reporter_is_idempotent():
    original = ppe.reporting.DictSummary
    fmppe.install_ppe_reporter()
    fmppe.install_ppe_reporter()
    try:
        assert ppe.reporting.DictSummary is fmppe.DictSummary
        assert ppe.reporting.Summary is fmppe.Summary
    finally:
        fmppe.uninstall_ppe_reporter()
        fmppe.uninstall_ppe_reporter()
    assert ppe.reporting.DictSummary is original
