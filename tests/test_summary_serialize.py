"""serialize(): Chainer's snapshot layout both ways (save_npz / load_npz and the
dictionary serializers), plus our exact state in extra keys."""
import io
import json

import numpy as np
import pytest

from fusedmetrics.summary import DictSummary, Summary

chainer = pytest.importorskip("chainer")
from chainer.serializers import DictionarySerializer, NpzDeserializer, load_npz, save_npz  # noqa: E402

ChainerDictSummary = chainer.reporter.DictSummary


def npz_round_trip(source, target, **load_kwargs):
    buf = io.BytesIO()
    save_npz(buf, source)
    buf.seek(0)
    load_npz(buf, target, **load_kwargs)
    return target


def fill(summary, seed=0, steps=100, float_weights=False):
    rng = np.random.default_rng(seed)
    for i in range(steps):
        d = {"main/loss": np.float32(rng.normal(2.3, 0.1)), "main/accuracy": (float(rng.random()), 32)}
        if i % 3 == 0:
            d["sparse"] = float(rng.normal(100.0, 5.0))
        if float_weights:
            d["fw"] = (float(rng.normal()), float(rng.random() + 0.1))
        summary.add(d)
    return summary


def assert_same_stats(got, want, rtol=1e-12):
    assert list(got) == list(want)
    for k in want:
        np.testing.assert_allclose(float(got[k]), float(want[k]), rtol=rtol, atol=1e-12, err_msg=k)


def test_written_layout_is_chainers():
    ours = fill(DictSummary())
    theirs = fill(ChainerDictSummary())
    d_ours, d_theirs = DictionarySerializer(), DictionarySerializer()
    d_ours.save(ours)
    d_theirs.save(theirs)
    t_ours, t_theirs = d_ours.target, d_theirs.target
    assert str(t_ours["_names"]) == str(t_theirs["_names"]) == json.dumps(["main/loss", "main/accuracy", "sparse"])
    for key, value in t_theirs.items():
        assert key in t_ours
        assert t_ours[key].dtype == value.dtype and t_ours[key].shape == value.shape, key
        if key.endswith("_n"):
            assert t_ours[key] == value
    assert set(t_ours) - set(t_theirs) == {"_fm_moments", "_fm_integer_weights"}
    assert t_ours["_fm_moments"].shape == (3, 3) and t_ours["_fm_moments"].dtype == np.float64


def test_ours_to_chainer_through_npz():
    ours = fill(DictSummary())
    loaded = npz_round_trip(ours, ChainerDictSummary())
    assert_same_stats(loaded.compute_mean(), ours.compute_mean())
    with np.errstate(invalid="ignore"):  # Chainer's own std is what it is; check the finite ones
        stats = loaded.make_statistics()
    for k, v in ours.make_statistics().items():
        if k.endswith(".std") and np.isfinite(stats[k]):
            np.testing.assert_allclose(stats[k], v, rtol=1e-5)


def test_chainer_to_ours_through_npz():
    theirs = fill(ChainerDictSummary(), seed=4)
    loaded = npz_round_trip(theirs, DictSummary())
    assert_same_stats(loaded.compute_mean(), theirs.compute_mean())
    stats = loaded.make_statistics()
    ref = theirs.make_statistics()
    for k in ref:
        if k.endswith(".std"):
            np.testing.assert_allclose(stats[k], ref[k], rtol=1e-6)
    assert loaded.state_dict()["integer_weights"].tolist() == [True, True, True]


def test_chainer_float_weight_snapshot_loads_into_ours():
    theirs = ChainerDictSummary()
    theirs.add({"k": (2.0, 0.5)})
    theirs.add({"k": (4.0, 1.5)})
    loaded = npz_round_trip(theirs, DictSummary())
    assert loaded.compute_mean() == {"k": 3.5}
    assert loaded.state_dict()["integer_weights"].tolist() == [False]


def test_float_weights_round_trip_exactly():
    ours = fill(DictSummary(), float_weights=True)
    loaded = npz_round_trip(ours, DictSummary())
    a, b = ours.state_dict(), loaded.state_dict()
    assert a["names"] == b["names"]
    np.testing.assert_array_equal(a["moments"], b["moments"])
    np.testing.assert_array_equal(a["integer_weights"], b["integer_weights"])
    assert a["integer_weights"].tolist() == [True, True, True, False]
    # Chainer cannot load the float `_n` of that key (its limitation, kept):
    with pytest.raises(TypeError):
        npz_round_trip(ours, ChainerDictSummary())


def test_exact_state_survives_where_chainer_sums_would_not():
    ours = DictSummary()
    for _ in range(1000):
        ours.add({"k": np.float32(10000.1)})
    loaded = npz_round_trip(ours, DictSummary())
    assert loaded.make_statistics()["k.std"] == 0.0


def test_loading_replaces_contents():
    source = DictSummary()
    source.add({"new": 1.0})
    target = DictSummary()
    target.add({"old": 5.0, "new": 100.0})
    npz_round_trip(source, target)
    assert target.compute_mean() == {"new": 1.0}
    target.add({"old": 2.0})
    assert list(target.compute_mean()) == ["new", "old"]


def test_missing_names_warns_and_leaves_empty():
    target = DictSummary()
    target.add({"old": 1.0})
    with pytest.warns(UserWarning, match="The names of statistics are not saved."):
        target.serialize(NpzDeserializer({}))
    assert target.compute_mean() == {}
    # Chainer behaves the same way.
    theirs = ChainerDictSummary()
    with pytest.warns(UserWarning, match="The names of statistics are not saved."):
        theirs.serialize(NpzDeserializer({}))


def test_dictionary_serializer_and_non_strict_load():
    ours = fill(DictSummary(), seed=2)
    d = DictionarySerializer()
    d.save(ours)
    strict = DictSummary()
    NpzDeserializer(d.target).load(strict)
    assert_same_stats(strict.make_statistics(), ours.make_statistics(), rtol=0)
    # Without our extra keys (as Chainer wrote them), strict and non-strict loads use Chainer's.
    chainer_only = {k: v for k, v in d.target.items() if not k.startswith("_fm_")}
    for strict_flag in (True, False):
        t = DictSummary()
        NpzDeserializer(chainer_only, strict=strict_flag).load(t)
        assert_same_stats(t.compute_mean(), ours.compute_mean())


def test_nested_path_as_in_log_report():
    ours = fill(DictSummary(), seed=5)
    d = DictionarySerializer()
    ours.serialize(d["updater"]["_summary"])
    assert "updater/_summary/_summaries/0/_x" in d.target
    t = DictSummary()
    t.serialize(NpzDeserializer(d.target)["updater"]["_summary"])
    assert_same_stats(t.compute_mean(), ours.compute_mean(), rtol=0)


def test_bad_exact_state_shape_raises():
    ours = fill(DictSummary())
    d = DictionarySerializer()
    d.save(ours)
    d.target["_fm_moments"] = np.zeros((2, 3))
    with pytest.raises(ValueError, match="_fm_moments"):
        NpzDeserializer(d.target).load(DictSummary())


def test_empty_round_trip():
    loaded = npz_round_trip(DictSummary(), DictSummary())
    assert loaded.compute_mean() == {}
    assert npz_round_trip(DictSummary(), ChainerDictSummary()).compute_mean() == {}


def test_summary_serialize_both_ways():
    ours, theirs = Summary(), chainer.reporter.Summary()
    for x, w in [(1.0, 1), (2.0, 3), (4.5, 2)]:
        ours.add(x, w)
        theirs.add(x, w)
    to_chainer = npz_round_trip(ours, chainer.reporter.Summary())
    assert to_chainer.compute_mean() == pytest.approx(float(ours.compute_mean()), rel=1e-15)
    assert isinstance(to_chainer._n, int) and to_chainer._n == 6
    from_chainer = npz_round_trip(theirs, Summary())
    assert from_chainer.compute_mean() == pytest.approx(theirs.compute_mean(), rel=1e-15)
    exact = npz_round_trip(ours, Summary())
    assert exact.make_statistics() == ours.make_statistics()
    with pytest.warns(UserWarning, match="The previous statistics are not saved."):
        Summary().serialize(NpzDeserializer({}))
