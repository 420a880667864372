"""Fuzz target: DictSummary.load_state_dict and DictSummary.serialize (loading).

Cases start from a valid state (a few random adds): either its state_dict(), or the
Chainer snapshot dict that serialize() writes (Chainer's DictionarySerializer;
mostly without our exact `_fm_*` keys, as Chainer itself writes it). Then random
mutations: keys dropped or retyped, names not str / duplicated / a JSON object or
string, arrays reshaped, complex or object dtype, weights NaN/inf/negative/zero,
means and sums non-finite.

Property: the load raises TypeError/ValueError and leaves the summary's state
unchanged (it held another state before), or it succeeds and then
(a) every key has a finite weight > 0 (a state add() can reach: means and M2 may
    be NaN, as after adding NaN values), the names are str and, for a snapshot,
    are the JSON list it holds;
(b) state_dict() -> load_state_dict() and serialize() -> serialize() round-trip
    to the same state (NaN equal to NaN).
"""
import json
import warnings

import numpy as np

import _harness
from _harness import Finding, atheris

from chainer.serializers import DictionarySerializer, NpzDeserializer  # noqa: E402 - not instrumented

with atheris.instrument_imports(include=["fusedmetrics"]):
    import fusedmetrics as fm

KNOWN = {
    "weight": "load_state_dict accepting NaN/inf weights",
    "zero": "weight 0 with nonzero mean",
    "complex": "complex moments",
    "names": "_names as a JSON object/string (or a list of non-str)",
    "zerodiv": "Chainer snapshots with weight-0 entries raising ZeroDivisionError",
}
KEYS = ["a", "b", "c"]
ODD = [np.nan, np.inf, -np.inf, -1.0, 0.0, 1e308, 5e-324, 1j, "x", None, True, [], [1.0, 2.0]]


def base_summary(fdp):
    s = fm.DictSummary()
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        s.add({KEYS[fdp.ConsumeIntInRange(0, 2)]: (fdp.ConsumeIntInRange(-9, 9) / 4, fdp.ConsumeIntInRange(1, 3))})
    if fdp.ConsumeIntInRange(0, 5) == 0:
        s.add({"f": (0.5, 0.25)})  # a float weight
    return s


def odd(fdp):
    return ODD[fdp.ConsumeIntInRange(0, len(ODD) - 1)] if fdp.ConsumeBool() else fdp.ConsumeFloat()


def mutate_array(fdp, a):
    try:
        return _mutate_array(fdp, np.array(a))
    except (TypeError, ValueError):  # a conversion numpy refuses, e.g. "x" to complex
        return a


def _cast(a, dtype):
    """a as dtype, or a unchanged when an earlier mutation left values dtype cannot hold
    (a huge int, a string): the case generator itself must never raise."""
    try:
        return a.astype(dtype)
    except (OverflowError, TypeError, ValueError):
        return a


def _mutate_array(fdp, a):
    how = fdp.ConsumeIntInRange(0, 6)
    if how == 0 and a.size:
        a = _cast(a, object if fdp.ConsumeBool() else complex)
        try:
            a.flat[fdp.ConsumeIntInRange(0, a.size - 1)] = odd(fdp)
        except (TypeError, ValueError):  # "x" into a complex array
            pass
        return a
    if how == 1 and a.size:
        a = _cast(a, np.float64) if a.dtype != bool else a
        try:
            a.flat[fdp.ConsumeIntInRange(0, a.size - 1)] = odd(fdp)
        except (TypeError, ValueError):
            pass
        return a
    if how == 2:
        return a.reshape(-1)
    if how == 3:
        return a[: fdp.ConsumeIntInRange(0, max(len(a), 1))] if a.ndim else a
    if how == 4:
        return _cast(a, np.float32 if fdp.ConsumeBool() else np.int64)
    if how == 5:
        return odd(fdp)
    return a


def mutate_names(fdp, names):
    if not isinstance(names, list):  # mutated already
        return names
    how = fdp.ConsumeIntInRange(0, 5)
    if how == 0 and names:
        return names + [names[0]]  # duplicate
    if how == 1 and names:
        return [1] + names[1:]
    if how == 2:
        return "".join(map(str, names))
    if how == 3:
        return {n: 0 for n in names}
    if how == 4:
        return names[::-1]
    return names


def make_state_dict_case(fdp):
    sd = base_summary(fdp).state_dict()
    sd = {"names": list(sd["names"]), "moments": sd["moments"], "integer_weights": sd["integer_weights"]}
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        field = fdp.ConsumeIntInRange(0, 4)
        name = ["names", "moments", "integer_weights", None, None][field]
        if name in sd:
            sd[name] = mutate_names(fdp, sd[name]) if field == 0 else mutate_array(fdp, sd[name])
        if field == 3:
            sd.pop(["names", "moments", "integer_weights"][fdp.ConsumeIntInRange(0, 2)], None)
        elif fdp.ConsumeIntInRange(0, 3) == 0:
            sd = [sd] if fdp.ConsumeBool() else None
            break
    return "state_dict", sd


def make_snapshot_case(fdp):
    d = DictionarySerializer()
    base_summary(fdp).serialize(d)
    target = dict(d.target)
    if fdp.ConsumeIntInRange(0, 3):  # mostly as Chainer writes it: no exact state
        target.pop("_fm_moments", None)
        target.pop("_fm_integer_weights", None)
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        keys = sorted(target)
        if not keys:
            break
        key = keys[fdp.ConsumeIntInRange(0, len(keys) - 1)]
        how = fdp.ConsumeIntInRange(0, 3)
        if how == 0:
            del target[key]
        elif key == "_names":
            try:
                names = mutate_names(fdp, json.loads(str(target[key])))
            except ValueError:  # mutated already
                continue
            target[key] = np.array(json.dumps(names) if fdp.ConsumeIntInRange(0, 5) else "[not json")
        elif key.endswith("/_n") and how == 1:
            target[key] = np.array(0 if fdp.ConsumeBool() else 0.0)  # a key that saw weight 0 only
        else:
            target[key] = mutate_array(fdp, target[key])
    return "snapshot", target


def make_case(fdp):
    return make_snapshot_case(fdp) if fdp.ConsumeBool() else make_state_dict_case(fdp)


def state(s):
    sd = s.state_dict()
    return list(sd["names"]), np.array(sd["moments"]), np.array(sd["integer_weights"])


def same(a, b):
    return a[0] == b[0] and np.array_equal(a[1], b[1], equal_nan=True) and np.array_equal(a[2], b[2])


def load(kind, data, summary):
    if kind == "state_dict":
        summary.load_state_dict(data)
    else:
        summary.serialize(NpzDeserializer(data))


def classify(kind, data, moments):
    """The known defect an accepted bad input is, judged from the input."""
    raw = None
    if isinstance(data, dict):
        raw = data.get("moments" if kind == "state_dict" else "_fm_moments")
    if raw is not None and any(isinstance(v, complex) for v in np.asarray(raw, dtype=object).flat):
        return KNOWN["complex"]
    w = moments[:, 0] if len(moments) else np.zeros(0)
    if np.any(~np.isfinite(w)):
        return KNOWN["weight"]
    if np.any(w == 0):
        return KNOWN["zero"]
    return None


def check(case):
    kind, data = case
    summary = fm.DictSummary()
    summary.add({"z": 2.5, "a": (1.0, 3)})
    before = state(summary)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Chainer's "not saved" warnings, numpy's ComplexWarning
        try:
            load(kind, data, summary)
        except (TypeError, ValueError) as exc:
            if not same(before, state(summary)):
                raise Finding(f"load raised {exc!r} and changed the state")
            return
        except ZeroDivisionError as exc:
            raise Finding(f"load raised {exc!r}", KNOWN["zerodiv"])
    names, moments, integer = state(summary)
    if kind == "snapshot" and "_names" in data:
        stored = json.loads(str(data["_names"]))
        if not (isinstance(stored, list) and all(isinstance(n, str) for n in stored)):
            raise Finding(f"_names {data['_names']!r} loaded as {names!r}", KNOWN["names"])
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise Finding(f"loaded names {names!r}")
    if len(moments) and not (np.all(np.isfinite(moments[:, 0]) & (moments[:, 0] > 0))
                             and np.all(~(moments[:, 2] < 0))):
        raise Finding(f"loaded moments {moments.tolist()} (W must be finite > 0, M2 >= 0)",
                      classify(kind, data, moments))
    again = fm.DictSummary.from_state_dict(summary.state_dict())
    if not same(state(summary), state(again)):
        raise Finding(f"state_dict round trip: {state(summary)} -> {state(again)}")
    d = DictionarySerializer()
    summary.serialize(d)
    back = fm.DictSummary()
    back.serialize(NpzDeserializer(d.target))
    if not same(state(summary), state(back)):
        raise Finding(f"serialize round trip: {state(summary)} -> {state(back)}")


if __name__ == "__main__":
    _harness.main("state_load", make_case, check)
