"""Summary state on the way out and back in: the state-dict validator and Chainer's
snapshot layout.

A state dict is what ``DictSummary.state_dict()`` returns:
``{'names': [str], 'moments': float64 (K, 3) [W, mean, M2], 'integer_weights': bool (K,)}``.

Chainer's ``DictSummary`` snapshot holds ``_names`` (JSON) and ``_summaries/<i>/_x``,
``_x2``, ``_n`` (sums of x, x**2 and the weight); a ``Summary`` holds ``_x``, ``_x2``,
``_n`` itself. We write those (so Chainer can read our snapshots) plus our exact
state under ``_fm_moments`` / ``_fm_integer_weights``, which we prefer when present.
"""
import json
import sys
import warnings
from collections.abc import Mapping, Set

import numpy

MOMENTS_KEY = "_fm_moments"
INTEGER_KEY = "_fm_integer_weights"


class StateDictError(TypeError, ValueError):
    """Not a state dict at all (not a mapping, or keys missing). Both a TypeError and a
    ValueError: ``load_state_dict`` has always raised ValueError for it and the
    multi-node gather TypeError."""


STATE_FIELDS = ("names", "moments", "integer_weights")
SNAPSHOT_FIELDS = ("_names", MOMENTS_KEY, INTEGER_KEY)


def check_state_dict(state_dict, where="state_dict"):
    """(names, moments (K, 3) float64, integer_weights (K,) bool) of a state dict, or an
    error naming ``where`` and the field; see ``check_state``."""
    try:
        fields = [state_dict[field] for field in STATE_FIELDS]
    except (KeyError, TypeError) as exc:
        raise StateDictError(f"{where}: a state dict must have 'names', 'moments' and 'integer_weights'; "
                             f"got {type(state_dict).__name__} ({exc})") from exc
    return check_state(*fields, where=where)


def check_state(names, moments, integer, where, labels=STATE_FIELDS):
    """The one validator of loaded summary state. ``labels`` name the three fields in
    messages (state-dict keys, or snapshot keys).

    Rules: names a list (not a str or a mapping) of distinct str; moments real numbers of
    shape (K, 3) [W, mean, M2]; integer_weights bools of shape (K,). Per row: W finite and
    >= 0; M2 not negative; W == 0 only with mean == M2 == 0, and such a row is dropped (add()
    creates no entry for zero weights); a NaN or infinite mean only with a NaN M2, which is
    what add() leaves after a NaN or infinite value (so state_dict() always loads back).
    NaN M2 and +inf M2 (an overflowed variance) are accepted for the same reason.
    Returns (names, moments, integer_weights) of the rows kept; raises TypeError or
    ValueError naming the field before anything is changed.
    """
    names_label, moments_label, integer_label = (f"{where}: {label}" for label in labels)
    names = _check_names(names, names_label)
    moments = _real_array(moments, moments_label)
    integer = _bool_array(integer, integer_label)
    k = len(names)
    if k == 0 and moments.size == 0:
        moments = moments.reshape(0, 3)
    if moments.shape != (k, 3) or integer.shape != (k,):
        raise ValueError(f"{where}: {k} names but moments of shape {moments.shape} and integer_weights of "
                         f"shape {integer.shape}; expected ({k}, 3) and ({k},)")
    w, mean, m2 = moments[:, 0], moments[:, 1], moments[:, 2]
    with numpy.errstate(invalid="ignore"):
        problems = (
            (~(numpy.isfinite(w) & (w >= 0)), "the weight W must be finite and >= 0"),
            (m2 < 0, "M2 must not be negative"),
            ((w == 0) & ((mean != 0) | (m2 != 0)), "a weight of 0 needs mean 0 and M2 0"),
            (~numpy.isfinite(mean) & ~numpy.isnan(m2), "a NaN or infinite mean needs a NaN M2"),
        )
    for bad, rule in problems:
        if bad.any():
            i = int(numpy.flatnonzero(bad)[0])
            raise ValueError(f"{moments_label}[{i}] for {names[i]!r} is (W, mean, M2) = "
                             f"{tuple(moments[i].tolist())}: {rule}")
    keep = w > 0
    if not keep.all():
        names = [n for n, kept in zip(names, keep) if kept]
        moments, integer = moments[keep], integer[keep]
    return names, moments, integer


def _check_names(names, label):
    if isinstance(names, (str, bytes, Mapping, Set)) or not hasattr(names, "__iter__"):
        raise TypeError(f"{label} must be a list of str; got {type(names).__name__}")
    names = list(names)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{label} must be a list of str; got an item of type {type(name).__name__}")
    if len(set(names)) != len(names):
        seen = set()
        duplicate = next(n for n in names if n in seen or seen.add(n))
        raise ValueError(f"{label} contains {duplicate!r} more than once")
    return names


def _real_array(value, label):
    """float64 array of real numbers; complex, str, bool and object input is refused
    (numpy would drop an imaginary part or parse strings)."""
    try:
        array = numpy.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{label} must be an array of real numbers ({exc})") from exc
    if array.dtype.kind not in "fiu" and array.size:
        raise TypeError(f"{label} must hold real numbers; got dtype {array.dtype}")
    return numpy.array(array, dtype=numpy.float64)


def _bool_array(value, label):
    """bool array; strings, numbers and objects are refused (bool("False") is True)."""
    try:
        array = numpy.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{label} must be an array of bools ({exc})") from exc
    if array.dtype.kind != "b" and array.size:
        raise TypeError(f"{label} must hold bools; got dtype {array.dtype}")
    return numpy.array(array, dtype=bool)


def is_writer(serializer):
    """Chainer's test ``isinstance(serializer, chainer.serializer.Serializer)``,
    without importing Chainer when nobody else has."""
    module = sys.modules.get("chainer.serializer")
    if module is not None:
        return isinstance(serializer, module.Serializer)
    for cls in type(serializer).__mro__:
        if cls.__name__ == "Deserializer":
            return False
        if cls.__name__ == "Serializer":
            return True
    raise TypeError(
        "serialize() needs a chainer Serializer or Deserializer; got {}".format(type(serializer).__name__))


def _chainer_triplet(row, integer):
    """Chainer's (_x, _x2, _n) for one key: x = W*mean, x2 = M2 + W*mean^2."""
    weight, mean, m2 = (float(v) for v in row)
    n = int(weight) if integer and weight == weight and weight == int(weight) else weight
    return weight * mean, m2 + weight * mean * mean, n


def _write_triplet(serializer, row, integer):
    x, x2, n = _chainer_triplet(row, integer)
    serializer("_x", x)
    serializer("_x2", x2)
    serializer("_n", n)


def _read_optional(serializer, key):
    """The stored array for key, or None when the snapshot does not have it."""
    try:
        value = serializer(key, None)
    except KeyError:
        return None
    return None if value is None else numpy.asarray(value)


def _read_triplet(serializer, label):
    """((W, mean, M2), integer) from Chainer's `_x`, `_x2`, `_n`, or None (with
    Chainer's warning) when they are missing. M2 is clamped at 0 (the sums may cancel).
    ``label`` names the keys' prefix in errors."""
    try:
        x = serializer("_x", None)
        x2 = serializer("_x2", None)
        n = serializer("_n", None)
    except KeyError:
        x = None
    if x is None or x2 is None or n is None:
        warnings.warn("The previous statistics are not saved.")
        return None
    x, x2, n = (_real_scalar(v, label + key) for v, key in ((x, "_x"), (x2, "_x2"), (n, "_n")))
    w, x, x2 = float(n), float(x), float(x2)
    if not (w >= 0 and w != float("inf")):
        raise ValueError(f"snapshot key {label}_n is {w}: the total weight must be finite and >= 0")
    if w == 0:
        # A fresh Chainer Summary, or a key that only saw weight 0: no data. Our add()
        # creates no entry for zero weights, so the callers load no entry for it. Weight-0
        # sums are 0, or NaN from 0 * NaN; anything else needed a negative weight.
        if not all(v == 0 or v != v for v in (x, x2)):
            raise ValueError(f"snapshot keys {label}_x, {label}_x2 are {x}, {x2} with a total weight of 0")
        return (0.0, 0.0, 0.0), n.dtype.kind in "iub"
    mean = x / w
    return (w, mean, max(x2 - w * mean * mean, 0.0)), n.dtype.kind in "iub"


def _real_scalar(value, label):
    """A 0-d real array (Chainer writes 0-d float64 / int64); complex and str refused."""
    array = numpy.asarray(value)
    if array.shape != () or array.dtype.kind not in "fiub":
        raise TypeError(f"snapshot key {label} must be a real scalar; got {array.dtype} of shape {array.shape}")
    return array


def write_summary(serializer, row, integer):
    """A Summary's snapshot: Chainer's `_x`, `_x2`, `_n` plus our (3,) and () keys."""
    _write_triplet(serializer, row, integer)
    serializer(MOMENTS_KEY, numpy.array(row, dtype=numpy.float64))
    serializer(INTEGER_KEY, numpy.array(integer))


def read_summary(serializer, name):
    """(names, moments, integer_weights) of a Summary snapshot under the key ``name``
    (ours preferred; no names when it holds no data), validated; None when its
    statistics are missing (the caller then keeps its contents)."""
    moments = _read_optional(serializer, MOMENTS_KEY)
    if moments is None:
        read = _read_triplet(serializer, "")
        if read is None:
            return None
        row, integer = read
    else:
        if moments.shape != (3,):
            raise ValueError("snapshot key {} has shape {}, expected (3,)".format(MOMENTS_KEY, moments.shape))
        row = _real_array(moments, "snapshot key " + MOMENTS_KEY)
        integer = _read_optional(serializer, INTEGER_KEY)
        if integer is None:
            integer = bool(row[0] == numpy.floor(row[0]))
        elif integer.shape != ():
            raise ValueError("snapshot key {} has shape {}, expected ()".format(INTEGER_KEY, integer.shape))
    return check_state([name], [row], [integer], "snapshot", SNAPSHOT_FIELDS)


def write_dict_summary(serializer, names, moments, integer):
    """A DictSummary's snapshot: Chainer's layout plus `_fm_moments` (K, 3) and `_fm_integer_weights` (K,)."""
    serializer("_names", json.dumps(names))
    summaries = serializer["_summaries"]
    for index in range(len(names)):
        _write_triplet(summaries[str(index)], moments[index], integer[index])
    serializer(MOMENTS_KEY, moments)
    serializer(INTEGER_KEY, integer)


def _read_exact(serializer, names):
    """Our exact state, validated, or None when the snapshot was written by Chainer."""
    moments = _read_optional(serializer, MOMENTS_KEY)
    if moments is None:
        return None
    count = len(names)
    if moments.shape != (count, 3):
        raise ValueError("snapshot key {} has shape {}, expected ({}, 3) for {} names".format(
            MOMENTS_KEY, moments.shape, count, count))
    moments = _real_array(moments, "snapshot key " + MOMENTS_KEY)
    integer = _read_optional(serializer, INTEGER_KEY)
    if integer is None:
        integer = numpy.floor(moments[:, 0]) == moments[:, 0]
    elif integer.shape != (count,):
        raise ValueError("snapshot key {} has shape {}, expected ({},)".format(
            INTEGER_KEY, integer.shape, count))
    return check_state(names, moments, integer, "snapshot", SNAPSHOT_FIELDS)


def _read_names(serializer):
    """The `_names` list, [] with Chainer's warning when missing; errors name `_names`."""
    try:
        names_json = serializer("_names", "")
    except KeyError:
        names_json = ""
    if names_json is None or str(names_json) == "":
        warnings.warn("The names of statistics are not saved.")
        return None
    try:
        names = json.loads(str(names_json))
    except ValueError as exc:
        raise ValueError(f"snapshot key _names is not JSON: {exc}") from exc
    if not isinstance(names, list):
        raise TypeError(f"snapshot key _names must be a JSON list of str; got a JSON {type(names).__name__}")
    return names


def read_dict_summary(serializer):
    """(names, moments, integer_weights) from a DictSummary snapshot, ours preferred,
    validated by ``check_state`` before the caller changes anything.

    Missing names give an empty state with Chainer's warning; a key whose
    statistics are missing is dropped with Chainer's warning, and keys that only
    saw weight 0 are dropped (we never hold those).
    """
    names = _read_names(serializer)
    if names is None:
        return [], numpy.zeros((0, 3)), numpy.zeros(0, dtype=bool)
    _check_names(names, "snapshot: _names")  # before any name is used
    exact = _read_exact(serializer, names)
    if exact is not None:
        return exact
    kept, rows, integer = [], [], []
    summaries = serializer["_summaries"]
    for index, name in enumerate(names):
        read = _read_triplet(summaries[str(index)], f"_summaries/{index}/")
        if read is None:
            continue
        kept.append(name)
        rows.append(read[0])
        integer.append(read[1])
    return check_state(kept, numpy.array(rows, dtype=numpy.float64).reshape(-1, 3), integer, "snapshot",
                       ("_names", "_summaries/<i>/_x, _x2, _n", "_summaries/<i>/_n"))
