"""Loading snapshots and state dicts: what Chainer 7.8.1 writes loads, garbage is
refused with an error naming the field, and a failed load changes nothing."""
import numpy as np
import pytest

from fusedmetrics.summary import DictSummary, Summary

chainer = pytest.importorskip("chainer")
from chainer.serializers import DictionarySerializer, NpzDeserializer  # noqa: E402


def saved(obj):
    d = DictionarySerializer()
    d.save(obj)
    return d.target


def load(target, snapshot):
    NpzDeserializer(snapshot).load(target)
    return target


# ------------------------------------------------ Chainer snapshots with weight 0
def test_chainer_dict_summary_with_a_weight_zero_entry_loads_without_it():
    theirs = chainer.reporter.DictSummary()
    theirs.add({"acc": (0.5, 0)})
    theirs.add({"loss": 2.0})
    theirs.add({"loss": 4.0})
    snapshot = saved(theirs)
    load(chainer.reporter.DictSummary(), snapshot)  # Chainer loads it
    ours = DictSummary()
    ours.add({"old": 1.0})
    load(ours, snapshot)
    # Our add() skips zero weights and creates no entry: a weight-0 key loads as none.
    assert ours.compute_mean() == {"loss": 3.0}
    assert ours.make_statistics() == {"loss": 3.0, "loss.std": 1.0}
    assert ours.state_dict()["names"] == ["loss"]


def test_chainer_dict_summary_with_only_weight_zero_loads_empty():
    theirs = chainer.reporter.DictSummary()
    theirs.add({"acc": (0.5, 0)})
    ours = load(DictSummary(), saved(theirs))
    assert ours.compute_mean() == {}


def test_fresh_chainer_summary_loads_as_empty():
    snapshot = saved(chainer.reporter.Summary())
    load(chainer.reporter.Summary(), snapshot)  # Chainer loads it
    ours = Summary()
    ours.add(5.0)
    load(ours, snapshot)
    with pytest.raises(ZeroDivisionError):
        ours.compute_mean()
    ours.add(2.0, 2)
    assert ours.make_statistics() == (2.0, 0.0)


# ------------------------------------------------ malformed state dicts
nan, inf = float("nan"), float("inf")


def filled():
    s = DictSummary()
    s.add({"a": 1.0, "b": (2.0, 3)})
    s.add({"a": 2.0, "b": (5.0, 1)})
    return s


def good_state(**changes):
    sd = {"names": ["a", "b"], "moments": np.array([[2.0, 1.5, 0.5], [3.0, 2.0, 1.0]]),
          "integer_weights": np.array([True, True])}
    sd.update(changes)
    return sd


def moments_with(row, col, value, dtype=float):
    m = np.array([[2.0, 1.5, 0.5], [3.0, 2.0, 1.0]], dtype=dtype)
    m[row, col] = value
    return m


def assert_unchanged(s, before_stats, before_sd):
    after = s.state_dict()
    assert after["names"] == before_sd["names"]
    np.testing.assert_array_equal(after["moments"], before_sd["moments"])
    np.testing.assert_array_equal(after["integer_weights"], before_sd["integer_weights"])
    assert s.make_statistics() == before_stats


MALFORMED_STATES = [
    # (id, state dict, error type, words the message must contain)
    ("weight-nan", good_state(moments=moments_with(0, 0, nan)), ValueError, ["moments", "'a'", "weight"]),
    ("weight-inf", good_state(moments=moments_with(1, 0, inf)), ValueError, ["moments", "'b'", "weight"]),
    ("weight-negative", good_state(moments=moments_with(1, 0, -1.0)), ValueError, ["moments", "'b'", "weight"]),
    ("weight-0-mean", good_state(moments=np.array([[0.0, 1.0, 0.0], [3.0, 2.0, 1.0]])), ValueError,
     ["moments", "'a'", "weight of 0"]),
    ("weight-0-m2", good_state(moments=np.array([[2.0, 1.5, 0.5], [0.0, 0.0, 2.0]])), ValueError,
     ["moments", "'b'", "weight of 0"]),
    ("m2-negative", good_state(moments=moments_with(0, 2, -0.5)), ValueError, ["moments", "'a'", "M2"]),
    ("m2-minus-inf", good_state(moments=moments_with(0, 2, -inf)), ValueError, ["moments", "'a'", "M2"]),
    ("mean-nan", good_state(moments=moments_with(0, 1, nan)), ValueError, ["moments", "'a'", "mean"]),
    ("mean-inf", good_state(moments=moments_with(1, 1, inf)), ValueError, ["moments", "'b'", "mean"]),
    ("mean-and-m2-inf", good_state(moments=np.array([[2.0, inf, inf], [3.0, 2.0, 1.0]])), ValueError,
     ["moments", "'a'", "mean"]),
    ("complex-moments", good_state(moments=moments_with(0, 1, 1.5 + 2j, complex)), TypeError, ["moments"]),
    ("string-moments", good_state(moments=[["2", "1.5", "0.5"], ["3", "2", "1"]]), TypeError, ["moments"]),
    ("names-str", good_state(names="ab"), TypeError, ["names"]),
    ("names-str-abc", good_state(names="abc", moments=np.ones((3, 3)), integer_weights=np.ones(3, bool)),
     TypeError, ["names"]),
    ("names-dict", good_state(names={"a": 0, "b": 1}), TypeError, ["names"]),
    ("names-ints", good_state(names=[1, 2]), TypeError, ["names"]),
    ("names-duplicate", good_state(names=["a", "a"]), ValueError, ["names", "'a'"]),
    ("integer-weights-strings", good_state(integer_weights=["False", "True"]), TypeError, ["integer_weights"]),
    ("integer-weights-floats", good_state(integer_weights=[0.5, 1.0]), TypeError, ["integer_weights"]),
    ("shape", good_state(moments=np.ones((1, 3))), ValueError, ["moments", "(2, 3)"]),
    ("missing-key", {"names": ["a"], "moments": np.ones((1, 3))}, ValueError, ["integer_weights"]),
    ("not-a-mapping", [("names", ["a"])], TypeError, ["state dict"]),
]


@pytest.mark.parametrize("sd,exc,words", [c[1:] for c in MALFORMED_STATES], ids=[c[0] for c in MALFORMED_STATES])
def test_malformed_state_dict_is_refused_and_changes_nothing(sd, exc, words):
    s = filled()
    before_stats, before_sd = s.make_statistics(), s.state_dict()
    with pytest.raises(exc) as info:
        s.load_state_dict(sd)
    for word in words:
        assert word in str(info.value)
    assert_unchanged(s, before_stats, before_sd)
    with pytest.raises(exc):
        DictSummary.from_state_dict(sd)


def test_weight_zero_row_loads_as_no_entry():
    s = DictSummary.from_state_dict(good_state(moments=np.array([[0.0, 0.0, 0.0], [3.0, 2.0, 1.0]])))
    assert s.state_dict()["names"] == ["b"]
    assert s.make_statistics() == {"b": 2.0, "b.std": np.sqrt(1.0 / 3.0)}


@pytest.mark.parametrize("values", [[nan], [inf], [-inf, 1.0], [1e200, -1e200], [1.0, nan, 2.0]],
                         ids=["nan", "inf", "-inf-then-1", "overflowed-variance", "nan-among-values"])
def test_every_state_that_add_leaves_loads_back(values):
    # A NaN loss must not make the snapshot or the pickle unloadable: NaN M2 (with any
    # mean) and +inf M2 are states add() itself produces, so they load.
    s = DictSummary()
    for v in values:
        s.add({"k": v, "ok": 1.0})
    sd = s.state_dict()
    t = DictSummary.from_state_dict(sd)
    np.testing.assert_array_equal(t.state_dict()["moments"], sd["moments"])
    u = load(DictSummary(), saved(s))
    np.testing.assert_array_equal(u.state_dict()["moments"], sd["moments"])


# ------------------------------------------------ malformed snapshots
def ours_snapshot(**changes):
    snap = saved(filled())
    snap.update(changes)
    return snap


def chainer_snapshot(**changes):
    snap = {k: v for k, v in saved(filled()).items() if not k.startswith("_fm_")}
    snap.update(changes)
    return snap


MALFORMED_SNAPSHOTS = [
    ("fm-weight-nan", ours_snapshot(_fm_moments=moments_with(0, 0, nan)), ValueError, ["_fm_moments", "'a'"]),
    ("fm-weight-negative", ours_snapshot(_fm_moments=moments_with(1, 0, -2.0)), ValueError,
     ["_fm_moments", "'b'"]),
    ("fm-m2-nan-weight-0", ours_snapshot(_fm_moments=np.array([[0.0, 0.0, nan], [3.0, 2.0, 1.0]])),
     ValueError, ["_fm_moments", "'a'"]),
    ("fm-mean-inf", ours_snapshot(_fm_moments=moments_with(0, 1, inf)), ValueError, ["_fm_moments", "'a'"]),
    ("fm-complex", ours_snapshot(_fm_moments=moments_with(0, 1, 1 + 1j, complex)), TypeError, ["_fm_moments"]),
    ("fm-integer-strings", ours_snapshot(_fm_integer_weights=np.array(["False", "True"])), TypeError,
     ["_fm_integer_weights"]),
    ("names-object", ours_snapshot(_names=np.array('{"a": 0, "b": 1}')), TypeError, ["_names"]),
    ("names-string", ours_snapshot(_names=np.array('"ab"')), TypeError, ["_names"]),
    ("names-ints", ours_snapshot(_names=np.array("[1, 2]")), TypeError, ["_names"]),
    ("names-not-json", ours_snapshot(_names=np.array("[a, b")), ValueError, ["_names"]),
    ("names-not-json-chainer", chainer_snapshot(_names=np.array("{")), ValueError, ["_names"]),
    ("chainer-n-nan", chainer_snapshot(**{"_summaries/1/_n": np.array(nan)}), ValueError, ["_summaries/1/_n"]),
    ("chainer-n-inf", chainer_snapshot(**{"_summaries/0/_n": np.array(inf)}), ValueError, ["_summaries/0/_n"]),
    ("chainer-n-negative", chainer_snapshot(**{"_summaries/0/_n": np.array(-2)}), ValueError,
     ["_summaries/0/_n"]),
    ("chainer-n-0-sums", chainer_snapshot(**{"_summaries/0/_n": np.array(0)}), ValueError,
     ["_summaries/0/_x"]),
    ("chainer-complex-x", chainer_snapshot(**{"_summaries/0/_x": np.array(3 + 1j)}), TypeError,
     ["_summaries/0/_x"]),
    ("chainer-mean-inf-finite-x2", chainer_snapshot(**{"_summaries/0/_x": np.array(inf)}), ValueError,
     ["'a'", "mean"]),
]


@pytest.mark.parametrize("snap,exc,words", [c[1:] for c in MALFORMED_SNAPSHOTS],
                         ids=[c[0] for c in MALFORMED_SNAPSHOTS])
def test_malformed_dict_summary_snapshot_is_refused_and_changes_nothing(snap, exc, words):
    s = filled()
    before_stats, before_sd = s.make_statistics(), s.state_dict()
    with pytest.raises(exc) as info:
        load(s, snap)
    for word in words:
        assert word in str(info.value)
    assert_unchanged(s, before_stats, before_sd)


def summary_snapshot(**changes):
    s = Summary()
    s.add(1.0)
    s.add(3.0, 3)
    snap = saved(s)
    snap.update(changes)
    return snap


MALFORMED_SUMMARY_SNAPSHOTS = [
    ("fm-weight-negative", summary_snapshot(_fm_moments=np.array([-1.0, 2.0, 0.0])), ValueError,
     ["_fm_moments", "weight"]),
    ("fm-weight-nan", summary_snapshot(_fm_moments=np.array([nan, 2.0, 0.0])), ValueError,
     ["_fm_moments", "weight"]),
    ("fm-m2-negative", summary_snapshot(_fm_moments=np.array([2.0, 2.0, -1.0])), ValueError,
     ["_fm_moments", "M2"]),
    ("fm-complex", summary_snapshot(_fm_moments=np.array([2.0, 2.0 + 1j, 0.0])), TypeError, ["_fm_moments"]),
    ("fm-integer-string", summary_snapshot(_fm_integer_weights=np.array("False")), TypeError,
     ["_fm_integer_weights"]),
    ("chainer-n-nan", {"_x": np.array(1.0), "_x2": np.array(1.0), "_n": np.array(nan)}, ValueError, ["_n"]),
    ("chainer-n-0-sums", {"_x": np.array(1.0), "_x2": np.array(1.0), "_n": np.array(0)}, ValueError, ["_x"]),
]


@pytest.mark.parametrize("snap,exc,words", [c[1:] for c in MALFORMED_SUMMARY_SNAPSHOTS],
                         ids=[c[0] for c in MALFORMED_SUMMARY_SNAPSHOTS])
def test_malformed_summary_snapshot_is_refused_and_changes_nothing(snap, exc, words):
    s = Summary()
    s.add(2.0)
    s.add(4.0)
    with pytest.raises(exc) as info:
        load(s, snap)
    for word in words:
        assert word in str(info.value)
    assert s.make_statistics() == (3.0, 1.0)
