"""``Summary`` / ``DictSummary`` with pytorch-pfn-extras 0.9's API on our exact state.

Same API as ``ppe.reporting.Summary`` / ``DictSummary``: callables are deferred
values (each called once, when statistics or the state are next asked for),
``state_dict()`` / ``load_state_dict()`` in ppe's layout
``{key: {"_x", "_x2", "_n"}}``, ``+`` and ``sum(summaries, DictSummary())``.
Everything else (what is accepted, how it is read) is ``fusedmetrics.DictSummary``.

Deliberate differences from ppe:

* Exact float64 (W, mean, M2) state (Welford/Chan) instead of sums of ``x`` and
  ``x**2`` in the input's type: no cancellation, a constant series has std 0.
* Results are ``numpy.float64`` (a ``float``) for host values and 0-d float64
  tensors on the device for CUDA values (ppe: the input's type).
* ``state_dict()`` adds our exact state to each key's entry (``_fm_moments``:
  ``[W, mean, M2]`` as Python floats, ``_fm_integer_weights``), which
  ``load_state_dict`` prefers when present; ppe ignores the extra entries, so it
  loads our snapshots and we load its. Everything is a Python number, so
  ``torch.load(..., weights_only=True)`` reads it. ``_n`` is an ``int`` when all
  weights were integers, else a float (ppe always writes ``int(_n)``, losing float
  weights).
* ``DictSummary + DictSummary`` keeps first-seen key order (ppe sorts the keys).
* A key whose only values so far are deferred appears after keys with data
  (ppe: in first-seen order). When a deferred value raises (or is not a number),
  the values deferred before it stay added, once; it and those after it stay queued
  and the next read raises again (ppe adds the ones before it again on every read). Zero weights create no key; negative or non-finite
  weights and complex or string values raise (see ``fusedmetrics.summary``).
"""
import numpy

from .. import summary as _fm
from .._snapshot import check_state_dict

__all__ = ["DictSummary", "Summary"]


def _number(value):
    """A Python number from a state entry (float, int, numpy or torch scalar)."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _ppe_entry(row, integer):
    """ppe's {"_x", "_x2", "_n"} for one [W, mean, M2] row, plus our exact row."""
    w, mean, m2 = (float(v) for v in row)
    return {
        "_x": w * mean,
        "_x2": m2 + w * mean * mean,
        "_n": int(w) if integer else w,
        "_fm_moments": [w, mean, m2],
        "_fm_integer_weights": bool(integer),
    }


def _row_from_entry(key, entry):
    """([W, mean, M2], integer) from an entry: ours when present, else from ppe's sums."""
    if not isinstance(entry, dict):
        raise TypeError("state of %r must be a dict with _x, _x2, _n; got %s" % (key, type(entry).__name__))
    if "_fm_moments" in entry:
        row = [float(_number(v)) for v in entry["_fm_moments"]]
        return row, bool(_number(entry.get("_fm_integer_weights", False)))
    missing = [k for k in ("_x", "_x2", "_n") if k not in entry]
    if missing:
        raise ValueError("state of %r lacks %s (has %s)" % (key, ", ".join(missing), sorted(entry)))
    x, x2, n = (_number(entry[k]) for k in ("_x", "_x2", "_n"))
    integer = isinstance(n, (int, numpy.integer)) and not isinstance(n, bool)
    w = float(n)
    if w == 0.0:
        return [0.0, 0.0, 0.0], integer
    mean = float(x) / w
    return [w, mean, max(float(x2) - float(x) * mean, 0.0)], integer


def _weight_is_scalar(w):
    return numpy.isscalar(w) or getattr(w, "ndim", -1) == 0


def _requeue(summary, rest):
    """After a deferred value failed: it and those after it wait for the next read (which
    raises again, as ppe's does), ahead of any queued meanwhile; those before it stay added."""
    summary._deferred[:0] = rest


class _ReadsFlush:
    """Adds the deferred callables (ppe's lazy values, see ``add``) before any read."""

    __slots__ = ()

    def compute_mean(self):
        self._flush()
        return super().compute_mean()

    def make_statistics(self):
        self._flush()
        return super().make_statistics()


class Summary(_ReadsFlush, _fm.Summary):
    """ppe's ``Summary``: deferred callables, ppe's ``state_dict`` layout, ``+``."""

    __slots__ = ("_deferred",)

    def __init__(self):
        super().__init__()
        self._deferred = []

    def add(self, value, weight=1):
        if callable(value):
            self._deferred.append((value, weight))
            return
        super().add(value, weight)

    def _flush(self):
        deferred, self._deferred = self._deferred, []  # a callable that reads this summary sees none
        for i, (fn, weight) in enumerate(deferred):
            try:
                super().add(fn(), weight)
            except BaseException:
                _requeue(self, deferred[i:])
                raise

    def state_dict(self):
        self._flush()
        if len(self._state) == 0:
            return _ppe_entry([0.0, 0.0, 0.0], True)
        return _ppe_entry(self._merged_moments()[0], self._state.integer_weights()[0])

    def load_state_dict(self, to_load):
        self._deferred = []
        row, integer = _row_from_entry("Summary", to_load)
        sd = {"names": [_fm._SUMMARY_KEY], "moments": numpy.array([row], dtype=numpy.float64),
              "integer_weights": numpy.array([integer])}
        self._replace(*check_state_dict(sd, "Summary state"))  # a weight-0 row loads as empty

    def __add__(self, other):
        if not isinstance(other, _fm.Summary):
            return NotImplemented
        out = Summary()
        out.merge(self)
        out.merge(other)
        out._deferred = list(self._deferred) + list(getattr(other, "_deferred", []))
        return out

    def merge(self, other):
        if isinstance(other, Summary):
            other._flush()
        return super().merge(other)


class DictSummary(_ReadsFlush, _fm.DictSummary):
    """ppe's ``DictSummary``: deferred callables, ppe's ``state_dict`` layout, ``+``, ``sum()``."""

    __slots__ = ("_deferred",)

    def __init__(self):
        super().__init__()
        self._deferred = []  # (key, fn, weight) in add order

    def add(self, d):
        for v in d.values():  # the common case has no callable: one C++ call
            if callable(v) or (type(v) is tuple and len(v) == 2 and callable(v[0])):
                break
        else:
            return super().add(d)
        now = {}
        for k, v in d.items():
            w, fn = 1, v
            if isinstance(v, tuple):
                fn, w = v
            if callable(fn):
                if not _weight_is_scalar(w):
                    raise ValueError("Given weight to {} was not scalar.".format(k))
                self._deferred.append((k, fn, w))
            else:
                now[k] = v
        super().add(now)

    def _flush(self):
        deferred, self._deferred = self._deferred, []  # a callable that reads this summary sees none
        for i, (key, fn, weight) in enumerate(deferred):
            try:
                super().add({key: (fn(), weight)})
            except BaseException:
                _requeue(self, deferred[i:])
                raise

    # -- state --------------------------------------------------------------
    def exact_state_dict(self):
        """``fusedmetrics.DictSummary.state_dict()``: names, (K, 3) moments, integer flags."""
        self._flush()
        return _fm.DictSummary.state_dict(self)

    def state_dict(self):
        """ppe's ``{key: {"_x", "_x2", "_n"}}`` plus our exact row per key (Python numbers)."""
        sd = self.exact_state_dict()
        return {name: _ppe_entry(row, integer)
                for name, row, integer in zip(sd["names"], sd["moments"], sd["integer_weights"])}

    def load_state_dict(self, to_load):
        """Loads ppe's layout (ours preferred per key when present); validated before any change."""
        if not isinstance(to_load, dict):
            raise TypeError("DictSummary state must be a dict {key: {_x, _x2, _n}}; got %s" % type(to_load).__name__)
        names, rows, integer = [], [], []
        for key, entry in to_load.items():  # weight-0 rows load as no entry (the validator)
            row, is_int = _row_from_entry(key, entry)
            names.append(key)
            rows.append(row)
            integer.append(is_int)
        self._deferred = []
        _fm.DictSummary.load_state_dict(self, {
            "names": names, "moments": numpy.array(rows, dtype=numpy.float64).reshape(len(rows), 3),
            "integer_weights": numpy.array(integer, dtype=bool)})

    @classmethod
    def from_exact_state_dict(cls, sd):
        out = cls()
        _fm.DictSummary.load_state_dict(out, sd)
        return out

    def merge(self, other):
        if not isinstance(other, _fm.DictSummary):
            raise TypeError("DictSummary.merge expects a DictSummary; got {}".format(type(other).__name__))
        sd = other.exact_state_dict() if isinstance(other, DictSummary) else other.state_dict()
        self._flush()
        self._state.combine(sd["names"], sd["moments"], sd["integer_weights"], True)
        return self

    def __add__(self, other):
        if not isinstance(other, _fm.DictSummary):
            return NotImplemented
        return type(self).from_exact_state_dict(self.exact_state_dict()).merge(other)

    def __radd__(self, other):  # sum(summaries) with the default start 0
        if isinstance(other, int) and other == 0:
            return type(self).from_exact_state_dict(self.exact_state_dict())
        return NotImplemented

    def __reduce__(self):
        return (type(self).from_exact_state_dict, (self.exact_state_dict(),))
