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

import numpy

MOMENTS_KEY = "_fm_moments"
INTEGER_KEY = "_fm_integer_weights"


class StateDictError(TypeError, ValueError):
    """Not a state dict at all (not a mapping, or keys missing). Both a TypeError and a
    ValueError: ``load_state_dict`` has always raised ValueError for it and the
    multi-node gather TypeError."""


def check_state_dict(state_dict, where="state_dict"):
    """(names, moments (K, 3) float64, integer_weights (K,) bool) of a state dict, or an
    error naming ``where``. Duplicate names and negative weights are left to the C++
    state, which refuses them before changing anything."""
    try:
        names = list(state_dict["names"])
        moments = numpy.asarray(state_dict["moments"], dtype=numpy.float64)
        integer = numpy.asarray(state_dict["integer_weights"], dtype=bool)
    except (KeyError, TypeError) as exc:
        raise StateDictError(f"{where}: a state dict must have 'names', 'moments' and 'integer_weights'; "
                             f"got {type(state_dict).__name__} ({exc})") from exc
    k = len(names)
    if k == 0 and moments.size == 0:
        moments = moments.reshape(0, 3)
    if moments.shape != (k, 3) or integer.shape != (k,):
        raise ValueError(f"{where}: {k} names but moments of shape {moments.shape} and integer_weights of "
                         f"shape {integer.shape}; expected ({k}, 3) and ({k},)")
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"{where}: names must be str")
    return names, moments, integer


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


def _read_triplet(serializer):
    """((W, mean, M2), integer) from Chainer's `_x`, `_x2`, `_n`, or None (with
    Chainer's warning) when they are missing. M2 is clamped at 0 (the sums may cancel)."""
    try:
        x = serializer("_x", None)
        x2 = serializer("_x2", None)
        n = serializer("_n", None)
    except KeyError:
        x = None
    if x is None or x2 is None or n is None:
        warnings.warn("The previous statistics are not saved.")
        return None
    n = numpy.asarray(n)
    w, x, x2 = float(n), float(x), float(x2)
    if w == 0:
        # A fresh Chainer Summary, or a key that only saw weight 0: no data. Our add()
        # creates no entry for zero weights, so the callers load no entry for it.
        return (0.0, 0.0, 0.0), n.dtype.kind in "iub"
    mean = x / w
    return (w, mean, max(x2 - w * mean * mean, 0.0)), n.dtype.kind in "iub"


def write_summary(serializer, row, integer):
    """A Summary's snapshot: Chainer's `_x`, `_x2`, `_n` plus our (3,) and () keys."""
    _write_triplet(serializer, row, integer)
    serializer(MOMENTS_KEY, numpy.array(row, dtype=numpy.float64))
    serializer(INTEGER_KEY, numpy.array(integer))


def read_summary(serializer):
    """(row (3,), integer) from a Summary snapshot, ours preferred; None when its
    statistics are missing (the caller then keeps its contents)."""
    moments = _read_optional(serializer, MOMENTS_KEY)
    if moments is None:
        return _read_triplet(serializer)
    if moments.shape != (3,):
        raise ValueError("snapshot key {} has shape {}, expected (3,)".format(MOMENTS_KEY, moments.shape))
    integer = _read_optional(serializer, INTEGER_KEY)
    row = numpy.array(moments, dtype=numpy.float64)
    integer = bool(row[0] == numpy.floor(row[0])) if integer is None else bool(integer)
    return row, integer


def write_dict_summary(serializer, names, moments, integer):
    """A DictSummary's snapshot: Chainer's layout plus `_fm_moments` (K, 3) and `_fm_integer_weights` (K,)."""
    serializer("_names", json.dumps(names))
    summaries = serializer["_summaries"]
    for index in range(len(names)):
        _write_triplet(summaries[str(index)], moments[index], integer[index])
    serializer(MOMENTS_KEY, moments)
    serializer(INTEGER_KEY, integer)


def _read_exact(serializer, count):
    """Our exact state, or None when the snapshot was written by Chainer."""
    moments = _read_optional(serializer, MOMENTS_KEY)
    if moments is None:
        return None
    if moments.shape != (count, 3):
        raise ValueError("snapshot key {} has shape {}, expected ({}, 3) for {} names".format(
            MOMENTS_KEY, moments.shape, count, count))
    moments = numpy.array(moments, dtype=numpy.float64)
    integer = _read_optional(serializer, INTEGER_KEY)
    if integer is None:
        integer = numpy.floor(moments[:, 0]) == moments[:, 0]
    elif integer.shape != (count,):
        raise ValueError("snapshot key {} has shape {}, expected ({},)".format(
            INTEGER_KEY, integer.shape, count))
    return moments, numpy.array(integer, dtype=bool)


def read_dict_summary(serializer):
    """(names, moments, integer_weights) from a DictSummary snapshot, ours preferred.

    Missing names give an empty state with Chainer's warning; a key whose
    statistics are missing is dropped with Chainer's warning, and keys that only
    saw weight 0 are dropped (we never hold those).
    """
    try:
        names_json = serializer("_names", "")
    except KeyError:
        names_json = ""
    if names_json is None or str(names_json) == "":
        warnings.warn("The names of statistics are not saved.")
        return [], numpy.zeros((0, 3)), numpy.zeros(0, dtype=bool)
    names = json.loads(str(names_json))
    exact = _read_exact(serializer, len(names))
    if exact is not None:
        return names, exact[0], exact[1]
    kept, rows, integer = [], [], []
    summaries = serializer["_summaries"]
    for index, name in enumerate(names):
        read = _read_triplet(summaries[str(index)])
        if read is None:
            continue
        row, is_integer = read
        if row[0] < 0:
            raise ValueError("snapshot has a negative total weight {} for {!r}".format(row[0], name))
        if row[0] == 0:
            continue
        kept.append(name)
        rows.append(row)
        integer.append(is_integer)
    return kept, numpy.array(rows, dtype=numpy.float64).reshape(-1, 3), numpy.array(integer, dtype=bool)
