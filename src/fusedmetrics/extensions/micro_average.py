"""MicroAverage: the ratio of summed numerators to summed denominators, as a trainer extension."""
import copy

import numpy

import chainer
from chainer import reporter
from chainer.training import extension
from chainer.training import util as training_util

from .._interop import is_device_array, to_host, unwrap

_TRIGGER_MARKER = '_trigger_saved'
_TRIGGER_PATH = '_trigger'


def _to_host(value):
    """A host copy of an accumulator (this is where a device sync happens)."""
    return to_host(value) if is_device_array(value) else value


def _python_scalar(loaded):
    """Converts a deserialized 0-d array to a Python int or float.

    Chainer converts into the type of the current accumulator (a fresh one is
    int 0), so a float numerator cannot be loaded there; we take the type
    from the snapshot instead.
    """
    arr = numpy.asarray(loaded)
    if arr.ndim != 0:
        return arr
    if arr.dtype.kind in 'iub':
        return int(arr)
    if arr.dtype.kind == 'f':
        return float(arr)
    return arr[()]


class MicroAverage(extension.Extension):
    """Micro-average ratio ``sum(numerator) / sum(denominator)`` over a period.

    Drop-in replacement for ``chainer.training.extensions.MicroAverage``:
    same priority (``PRIORITY_EDITOR``), same inherited extension trigger
    (every iteration: register it with that trigger, otherwise only the
    iterations on which it fires are counted), same default name, and the
    same accumulation: when either key is missing from the observation the
    iteration is skipped *and* the averaging trigger is not consulted; at the
    averaging trigger ``float(numerator) / denominator`` is reported without
    an observer and both sums restart at ``0``.

    Values are summed with ``+`` in their own type, so integers stay exact
    integers and device (cupy) values are summed on their device without
    any host synchronisation until the averaging trigger fires.

    Args:
        numerator_key (str): observation key of the numerator (e.g. the
            number of correct predictions).
        denominator_key (str): observation key of the denominator (e.g. the
            number of examples).
        result_key (str): key under which the ratio is reported.
        trigger: averaging trigger (``(1, 'epoch')`` by default), separate
            from the extension's own trigger; a tuple becomes an
            ``IntervalTrigger``, ``None`` never fires.
        comm: optional communicator (mpi4py or ChainerMN). When given, the
            sums are added across all ranks with
            ``fusedmetrics.multi_node.allreduce_pair`` when the averaging
            trigger fires, so the ratio is global. Every rank must then see
            both keys on the same iterations (the trigger call is collective).

    Differences from Chainer 7.8.1, on purpose:

    * ``serialize`` also saves the averaging trigger's state (under
      ``_trigger/...`` plus a ``_trigger_saved`` marker). Chainer forgets it,
      so after a resume its trigger fires at the first iteration and emits a
      partial ratio. Snapshots written by Chainer (no marker) load with a
      fresh trigger: what a resumed Chainer run has (loading into a live
      instance, Chainer would keep that instance's trigger state; we reset
      it, so the result does not depend on what ran before the load).
    * Loading takes the accumulator type from the snapshot, so a float
      numerator (e.g. from float-valued reports) loads; Chainer raises
      ``TypeError`` there.
    * A ``chainer.Variable`` observation is summed by its array (Chainer's
      ``float()`` of a Variable raises ``TypeError``).
    * When the denominator sum is a device array, the reported ratio is a
      host ``numpy.float64`` (Chainer would report a 0-d cupy array).
    """

    priority = extension.PRIORITY_EDITOR

    def __init__(self, numerator_key, denominator_key, result_key,
                 trigger=(1, 'epoch'), comm=None):
        self._trigger = training_util.get_trigger(trigger)
        # Pristine copy to restore when a snapshot carries no trigger state.
        try:
            self._initial_trigger = copy.deepcopy(self._trigger)
        except Exception:  # an exotic trigger object: keep it on load
            self._initial_trigger = None
        self._numerator_key = numerator_key
        self._denominator_key = denominator_key
        self._result_key = result_key
        self._comm = comm
        self._numerator = 0
        self._denominator = 0

    def __call__(self, trainer):
        observation = trainer.observation
        if not (self._numerator_key in observation
                and self._denominator_key in observation):
            return

        # A Variable in the observation is replaced by its array (Chainer's
        # accumulator would become a Variable, and float() of it fails later).
        self._numerator += unwrap(observation[self._numerator_key])
        self._denominator += unwrap(observation[self._denominator_key])

        if self._trigger(trainer):
            numerator, denominator = self._numerator, self._denominator
            if self._comm is not None:
                from fusedmetrics import multi_node
                numerator, denominator = multi_node.allreduce_pair(
                    self._comm, numerator, denominator)
            result = float(_to_host(numerator)) / _to_host(denominator)
            self._numerator = 0
            self._denominator = 0
            reporter.report({self._result_key: result})

    def serialize(self, serializer):
        if isinstance(serializer, chainer.serializer.Serializer):
            self._save(serializer)
        else:
            self._load(serializer)

    def _save(self, serializer):
        serializer('_numerator', _to_host(self._numerator))
        serializer('_denominator', _to_host(self._denominator))
        has_state = hasattr(self._trigger, 'serialize')
        serializer(_TRIGGER_MARKER, has_state)
        if has_state:
            self._trigger.serialize(serializer[_TRIGGER_PATH])

    def _load(self, serializer):
        numerator = serializer('_numerator', None)
        if numerator is not None:
            self._numerator = _python_scalar(numerator)
        denominator = serializer('_denominator', None)
        if denominator is not None:
            self._denominator = _python_scalar(denominator)

        try:
            marker = serializer(_TRIGGER_MARKER, None)
        except KeyError:  # a strict deserializer and a Chainer snapshot
            marker = None
        if marker is not None and bool(numpy.asarray(marker)):
            if hasattr(self._trigger, 'serialize'):
                self._trigger.serialize(serializer[_TRIGGER_PATH])
        elif self._initial_trigger is not None:
            self._trigger = copy.deepcopy(self._initial_trigger)
