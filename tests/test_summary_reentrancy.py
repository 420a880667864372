"""Hardening: user code that runs during add() (a key's __hash__, a value's
__float__) must not corrupt a Summary / DictSummary: re-entrant calls raise
RuntimeError, a dict mutated during add() raises RuntimeError, and in every case
the state is left exactly as it was (or holds exactly the outer batch)."""
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from fusedmetrics import DictSummary, Summary


class ZeroD:
    """A 0-d "array" read through float(): runs `hook` when converted."""

    ndim = 0

    def __init__(self, value, hook=None):
        self.value = value
        self.hook = hook

    def __float__(self):
        if self.hook is not None:
            self.hook()
        return float(self.value)


def snapshot(s):
    sd = s.state_dict()
    return list(sd["names"]), np.array(sd["moments"]).tolist(), np.array(sd["integer_weights"]).tolist()


def evil_key_class(s, inner_errors, reraise):
    """A str subclass whose __hash__, once ``armed``, calls s.add() (a re-entrant add)
    and records the RuntimeError it gets; ``reraise`` passes it on, else swallows it."""
    class EvilKey(str):
        armed = False

        def __hash__(self):
            if EvilKey.armed:
                try:
                    s.add({"inner%d" % i: 1.0 for i in range(1000)})
                except RuntimeError as e:
                    inner_errors.append(e)
                    if reraise:
                        raise
            return str.__hash__(self)

    return EvilKey


def test_reentrant_add_from_key_hash_raises_and_keeps_state():
    s = DictSummary()
    s.add({"old": 1.0})
    before = snapshot(s)
    inner_errors = []
    EvilKey = evil_key_class(s, inner_errors, reraise=True)

    d = {EvilKey("evil"): 2.0, "other": 3.0}
    EvilKey.armed = True
    with pytest.raises(RuntimeError, match="re-entrant"):
        s.add(d)
    EvilKey.armed = False
    assert inner_errors and "re-entrant" in str(inner_errors[0])
    assert snapshot(s) == before
    s.add({"old": 3.0})  # still usable
    assert s.compute_mean()["old"] == 2.0


def test_reentrant_add_from_key_hash_swallowed_adds_only_the_outer_batch():
    s = DictSummary()
    inner_errors = []
    EvilKey = evil_key_class(s, inner_errors, reraise=False)

    d = {"first": 1.0, EvilKey("evil"): 2.0}
    EvilKey.armed = True
    s.add(d)
    EvilKey.armed = False
    assert inner_errors
    assert s._state.names() == ["first", "evil"]
    assert s.compute_mean() == {"first": 1.0, "evil": 2.0}
    assert np.array(s.state_dict()["moments"])[:, 0].tolist() == [1.0, 1.0]


def test_reentrant_add_from_value_float_raises_and_keeps_state():
    s = DictSummary()
    s.add({"old": 1.0})
    before = snapshot(s)
    with pytest.raises(RuntimeError, match="re-entrant"):
        s.add({"first": 1.0, "v": ZeroD(2.0, lambda: s.add({"z": 5.0}))})
    assert snapshot(s) == before


def test_reentrant_add_from_value_float_swallowed_keeps_the_outer_first_key():
    s = DictSummary()
    inner_errors = []

    def hook():
        try:
            s.add({"z": 5.0})
        except RuntimeError as e:
            inner_errors.append(e)

    s.add({"first": 1.0, "v": ZeroD(2.0, hook)})
    assert inner_errors
    assert s.compute_mean() == {"first": 1.0, "v": 2.0}


@pytest.mark.parametrize("method", ["clear", "merge", "load_state_dict"])
def test_reentrant_mutators_raise(method):
    s = DictSummary()
    s.add({"old": 1.0})
    before = snapshot(s)
    other = DictSummary()
    other.add({"x": 1.0})
    calls = {
        "clear": lambda: s._state.clear(),
        "merge": lambda: s.merge(other),
        "load_state_dict": lambda: s.load_state_dict(other.state_dict()),
    }
    with pytest.raises(RuntimeError, match="re-entrant"):
        s.add({"v": ZeroD(2.0, calls[method])})
    assert snapshot(s) == before


def test_reading_during_add_from_the_same_thread_is_allowed():
    s = DictSummary()
    s.add({"a": 1.0})
    seen = []
    s.add({"a": ZeroD(3.0, lambda: seen.append(dict(s.compute_mean())))})
    assert seen == [{"a": 1.0}]
    assert s.compute_mean() == {"a": 2.0}


def test_summary_reentrant_add_raises_and_keeps_state():
    s = Summary()
    s.add(1.0)
    with pytest.raises(RuntimeError, match="re-entrant"):
        s.add(ZeroD(5.0, lambda: s.add(100.0)))
    assert s.compute_mean() == 1.0
    inner = []

    def hook():
        try:
            s.add(100.0)
        except RuntimeError as e:
            inner.append(e)

    s.add(ZeroD(3.0, hook))
    assert inner and s.compute_mean() == 2.0


def test_dict_mutated_during_add_raises_and_never_duplicates():
    s = DictSummary()
    s.add({"old": 1.0})
    before = snapshot(s)
    d = {}

    def reinsert():
        v = d.pop("a")
        d["".join(["a"])] = v  # an equal key, a different object, at the end

    d["a"] = 1.0
    d["b"] = ZeroD(2.0, reinsert)
    d["c"] = 3.0
    with pytest.raises(RuntimeError, match="changed"):
        s.add(d)
    assert snapshot(s) == before
    names = s._state.names()
    assert len(names) == len(set(names))


def test_dict_growing_during_add_raises():
    s = DictSummary()
    d = {"a": 1.0}
    d["b"] = ZeroD(2.0, lambda: d.__setitem__("new", 1.0))
    with pytest.raises(RuntimeError, match="changed size"):
        s.add(d)
    assert len(s._state) == 0


def test_decimal_value_raises_type_error_naming_key_and_type():
    s = DictSummary()
    with pytest.raises(TypeError) as info:
        s.add({"a": Decimal("1.5")})
    msg = str(info.value)
    assert "'a'" in msg and "Decimal" in msg and "complex" not in msg
    assert len(s._state) == 0
    s.add({"f": Fraction(3, 2)})  # a numbers.Real: Chainer accepts it
    assert s.compute_mean() == {"f": 1.5}
