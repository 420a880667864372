"""Exact streaming mean and standard deviation: drop-in ``Summary`` / ``DictSummary``.

Same API and acceptance rules as ``chainer.reporter.Summary`` / ``DictSummary``
(Chainer 7.8.1), with the accumulation done in C++ (host values: one call per
``add()``) and CUDA (device values: one kernel launch per ``add()``).

Where we deliberately differ from Chainer:

* State per key is float64 ``(W, mean, M2)`` updated with the weighted
  Welford/West rule and merged with Chan's formula, whatever the input dtype.
  Chainer sums ``x`` and ``x**2`` in the input's dtype, so its std can be NaN or
  garbage (a constant float32 series gives NaN there, exactly 0.0 here). The
  variance is clamped at 0. The mean is the running mean, rounded at each
  update: its last bit can differ from a correctly rounded ``sum / n`` (e.g.
  1, 1, 3 gives 1.6666666666666665 where Chainer's exact integer sum gives
  ...67), and adds from several threads fold in whichever order they arrive.
* Host means and stds are ``numpy.float64`` (Chainer returns a Python float for
  Python-number inputs; ``numpy.float64`` is a float subclass, so ``float()`` and
  ``json`` behave the same). Device keys give 0-d float64 CuPy arrays (Chainer:
  arrays of the input dtype); torch CUDA values give 0-d float64 torch tensors.
* Zero weights are skipped and create no entry (Chainer creates an entry whose
  mean is 0/0). Negative, NaN and infinite weights raise ``ValueError``
  (Chainer accumulates them). Complex values raise ``TypeError`` naming the key
  (Chainer accepts them); strings and other non-real numbers (``Decimal``)
  raise ``TypeError`` naming the key, as Chainer's ``+=`` does. Invalid input never changes the state: every item of a
  dict is validated before any is added.
* A total weight that would overflow float64 raises ``OverflowError`` naming the
  key, in ``add`` and in merges, with the state unchanged (Chainer's becomes inf
  and its mean silently wrong).
* ``Summary.add`` accepts scalars and 0-d arrays only (Chainer's accumulates
  arrays of any shape element-wise); the weight must be a scalar.
* Device weights that are negative or NaN cannot raise without a host
  synchronisation: they poison that key's device state to NaN instead.
* ``serialize`` writes Chainer's keys (so Chainer can read our snapshots) plus
  our exact state under ``_fm_moments`` / ``_fm_integer_weights``, which we
  prefer when present; float weights therefore round-trip (Chainer's own
  snapshots with float weights cannot be loaded by Chainer). On load, a key whose
  statistics are missing is dropped with Chainer's warning instead of being kept
  half-loaded; a ``Summary`` whose statistics are missing keeps its contents
  (Chainer overwrites the fields it could read before the missing one). A
  Chainer key whose total weight is 0 (it only saw weight 0) loads as no entry,
  as ``add`` creates none for zero weights, and a fresh Chainer ``Summary``
  (``_n == 0``) loads as an empty one (Chainer loads both, then its
  ``compute_mean`` divides by zero).
* Loading (``serialize``, ``load_state_dict``, ``from_state_dict``) validates
  everything before changing anything and raises ``TypeError`` / ``ValueError``
  naming the key or field: weights must be finite and >= 0, M2 not negative, a
  weight of 0 needs mean and M2 of 0, a NaN or infinite mean needs a NaN M2 (as
  ``add`` leaves after a NaN or infinite value, so every ``state_dict()`` loads
  back); names must be a list of distinct str, moments real, integer weights
  bool. Chainer loads such garbage (and a complex ``_x``) without a word.
"""
import numpy

from . import _core, _snapshot
from ._interop import describe, is_device_array, is_torch_tensor

__all__ = ["Summary", "DictSummary"]

_SUMMARY_KEY = "Summary"  # the single key of a Summary (appears in error messages)


class _SummaryBase:
    """State shared by Summary and DictSummary: the C++ host state plus, once a
    device value arrives, a DeviceMomentStore holding the device parts."""

    __slots__ = ("_state", "_store")

    def __init__(self):
        self._state = _core.DictSummaryState()
        self._store = None

    # -- device values ------------------------------------------------------
    def _add_device(self, slots, values, weights):
        # The C++ state validated the whole batch and holds it pending: commit
        # only after the launch succeeded, so a failure loses nothing.
        try:
            from ._device_moments import DeviceMomentStore

            values = [_as_device_value(v, weights[i]) for i, v in enumerate(values)]
            if self._store is None:
                self._store = DeviceMomentStore.for_value(values[0])
            self._store.add(slots, values, weights)
        except BaseException:
            self._state.discard_pending()
            raise
        self._state.commit_pending()

    def _device_statistics(self):
        """[(slot, mean, std)] for the keys with a device part (0-d device arrays)."""
        slots = self._state.device_slots()
        if not slots:
            return []
        host = numpy.ascontiguousarray(self._state.moments()[slots])
        means, stds = self._store.statistics(slots, host)
        return [(slot, means[i], stds[i]) for i, slot in enumerate(slots)]

    def _merged_moments(self):
        """Host (K, 3) float64 moments with the device parts merged in (syncs once)."""
        if self._store is None:
            return self._state.moments()
        return self._state.merged_moments(numpy.asarray(self._store.to_host(), dtype=numpy.float64))

    def _replace(self, names, moments, integer_weights):
        self._state.combine(names, moments, integer_weights, False)
        self._store = None


def _as_device_value(value, weight):
    """Device launches take device values; a host value with a device weight is
    copied to that weight's device (rare: Chainer would compute on the device too)."""
    if is_device_array(value):
        return value
    if is_torch_tensor(weight):
        import torch  # already imported: weight is a tensor

        return torch.tensor(float(value), dtype=torch.float64, device=weight.device)
    import cupy

    # describe() finds the device of any __cuda_array_interface__ weight; a
    # torch tensor's .device has .index, not CuPy's .id.
    with cupy.cuda.Device(describe(weight).device_id):
        return cupy.asarray(numpy.asarray(value, dtype=numpy.float64))


class Summary(_SummaryBase):
    """Online weighted mean and population std of one stream of scalars.

    Drop-in for ``chainer.reporter.Summary``; see the module docstring for where
    it deliberately differs. ``compute_mean()`` / ``make_statistics()`` on an
    empty Summary raise ``ZeroDivisionError``, as Chainer's do.
    """

    __slots__ = ()

    def add(self, value, weight=1):
        """Adds a scalar (Python/NumPy number, 0-d array, Variable of one) with a
        scalar weight >= 0."""
        pending = self._state.add_item(_SUMMARY_KEY, value, weight)
        if pending is not None:
            self._add_device(*pending)

    def _statistics(self):
        if self._store is not None:
            for _, mean, std in self._device_statistics():
                return mean, std
        if len(self._state) == 0:
            raise ZeroDivisionError("float division by zero")
        return self._state.statistics_of(0)

    def compute_mean(self):
        """The weighted mean (numpy.float64; a 0-d CuPy array for device values)."""
        return self._statistics()[0]

    def make_statistics(self):
        """(mean, std): weighted mean and population standard deviation."""
        return self._statistics()

    def merge(self, other):
        """Adds the statistics of another Summary in place (Chan's formula); returns self."""
        if not isinstance(other, Summary):
            raise TypeError("Summary.merge expects a Summary; got {}".format(type(other).__name__))
        names = other._state.names()
        self._state.combine(names, other._merged_moments(), other._state.integer_weights(), True)
        return self

    def __add__(self, other):
        if not isinstance(other, Summary):
            return NotImplemented
        out = Summary()
        out.merge(self)
        return out.merge(other)

    def serialize(self, serializer):
        """Chainer's keys `_x`, `_x2`, `_n` plus our exact state (`_fm_moments` (3,),
        `_fm_integer_weights` ()), preferred when present."""
        if _snapshot.is_writer(serializer):
            if len(self._state):
                row = self._merged_moments()[0]
                integer = bool(self._state.integer_weights()[0])
            else:
                row, integer = numpy.zeros(3), True
            _snapshot.write_summary(serializer, row, integer)
            return
        read = _snapshot.read_summary(serializer, _SUMMARY_KEY)
        if read is not None:  # validated: no data gives no names, hence an empty Summary
            self._replace(*read)


class DictSummary(_SummaryBase):
    """Online weighted mean and population std of a stream of dicts of scalars.

    Drop-in for ``chainer.reporter.DictSummary``: ``add`` accepts dicts whose
    values are Python/NumPy scalars, 0-d NumPy or CuPy arrays, Chainer Variables
    of those, or ``(value, weight)`` tuples; other values are skipped silently
    and create no entry. Keys keep their first-seen order. See the module
    docstring for where it deliberately differs from Chainer.

    Beyond Chainer's API: ``merge(other)`` / ``+`` (Chan's formula),
    ``state_dict()``, ``load_state_dict(sd)`` and ``from_state_dict(sd)``.

    Device values never synchronise, so ``add`` can be captured in a CUDA graph
    (``cupy.cuda.Stream.begin_capture``). Two rules then: every key must have been
    added once before capture (a new key may grow the device table, and a replay
    would write to freed memory), and host values in the dict are folded in once,
    at capture time, not on each replay. One summary is meant for one stream.

    Threads: ``add`` is atomic with respect to other threads (all of one call or
    none, even when converting a value runs Python code that lets the GIL switch);
    a thread that finds another inside waits with the GIL released. Reads
    (``compute_mean``, ``state_dict``, ...) see whole ``add`` calls only. Calling
    ``add``/``merge``/``load_state_dict`` on the same summary from inside one of its
    own ``add`` calls (a key's ``__hash__``, a value's ``__float__``) raises
    RuntimeError and changes nothing; so does a dict changed during ``add``.
    """

    __slots__ = ()

    def add(self, d):
        """Adds a dict of scalars (one call into C++; device values: one launch)."""
        pending = self._state.add(d)
        if pending is not None:
            self._add_device(*pending)

    def compute_mean(self):
        """{key: weighted mean} in first-seen order."""
        out = self._state.compute_mean()
        if self._store is not None:
            names = self._state.names()
            for slot, mean, _ in self._device_statistics():
                out[names[slot]] = mean
        return out

    def make_statistics(self):
        """{key: mean, key + '.std': population std} in first-seen order."""
        out = self._state.make_statistics()
        if self._store is not None:
            names = self._state.names()
            for slot, mean, std in self._device_statistics():
                out[names[slot]] = mean
                out[names[slot] + ".std"] = std
        return out

    # -- combining and state ------------------------------------------------
    def state_dict(self):
        """{'names': [...], 'moments': float64 (K, 3) [W, mean, M2], 'integer_weights':
        bool (K,)}, all on the host (device parts merged in with one transfer)."""
        if self._store is None:  # read at one moment: consistent while other threads add
            names, moments, integer = self._state.snapshot()
            return {"names": names, "moments": moments, "integer_weights": integer}
        return {
            "names": self._state.names(),
            "moments": self._merged_moments(),
            "integer_weights": self._state.integer_weights(),
        }

    def load_state_dict(self, state_dict):
        """Replaces the contents with a state_dict(); validated first (see the module
        docstring), so an error leaves the contents unchanged. Rows of weight 0 load as
        no entry, as add() creates none."""
        self._replace(*_snapshot.check_state_dict(state_dict))

    @classmethod
    def from_state_dict(cls, state_dict):
        out = cls()
        out.load_state_dict(state_dict)
        return out

    def merge(self, other):
        """Adds another DictSummary's statistics in place (Chan's formula per key;
        new keys appended in other's order); returns self."""
        if not isinstance(other, DictSummary):
            raise TypeError("DictSummary.merge expects a DictSummary; got {}".format(type(other).__name__))
        sd = other.state_dict()
        self._state.combine(sd["names"], sd["moments"], sd["integer_weights"], True)
        return self

    def __add__(self, other):
        """A new DictSummary with both (host state; device parts are merged in)."""
        if not isinstance(other, DictSummary):
            return NotImplemented
        return type(self).from_state_dict(self.state_dict()).merge(other)

    def __reduce__(self):
        return (type(self).from_state_dict, (self.state_dict(),))

    # -- Chainer serialization ----------------------------------------------
    def serialize(self, serializer):
        """Writes Chainer's layout (`_names`, `_summaries/<i>/_x`, `_x2`, `_n`) plus
        `_fm_moments` (K, 3) and `_fm_integer_weights` (K,); reads either, preferring
        ours. Loading replaces the contents."""
        if _snapshot.is_writer(serializer):
            sd = self.state_dict()  # one consistent copy, even while other threads add
            _snapshot.write_dict_summary(serializer, sd["names"], sd["moments"], sd["integer_weights"])
            return
        self._replace(*_snapshot.read_dict_summary(serializer))
