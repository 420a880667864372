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
