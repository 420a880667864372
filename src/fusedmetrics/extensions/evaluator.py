"""Evaluator: Chainer's validation extension, accumulating through fusedmetrics' DictSummary."""
import copy
import warnings

import chainer
from chainer import backend
from chainer import configuration
from chainer import iterators
from chainer import link
from chainer import reporter as reporter_module
from chainer.dataset import convert
from chainer.dataset import iterator as iterator_module
from chainer.training import extension
from chainer.utils import argument

from fusedmetrics.summary import DictSummary

from .progress_bar import EvaluationProgressBar

# Chainer 7.8.1's message, verbatim: its long explanation is a separate,
# discarded string literal, so only this fragment (braces unformatted,
# trailing space) is ever shown. Kept so that filters written for Chainer
# keep matching.
_REPEAT_WARNING = 'The `repeat` property of the iterator {} '

_NO_RESET_WARNING = (
    'This iterator does not have the reset method. Evaluator copies the '
    'iterator instead of resetting. This behavior is deprecated. Please '
    'implement the reset method.')

_REPEAT_CHECKED = (iterators.SerialIterator, iterators.MultiprocessIterator,
                   iterators.MultithreadIterator)


class Evaluator(extension.Extension):
    """__init__(self, iterator, target, converter=concat_examples, device=None, eval_hook=None, eval_func=None, *, progress_bar=False)

    Trainer extension that evaluates target links on a validation set.

    Drop-in replacement for ``chainer.training.extensions.Evaluator`` with
    the same arguments, class attributes (``trigger=(1, 'epoch')``,
    ``default_name='validation'``, ``PRIORITY_WRITER``), device and
    converter handling, iterator reset-or-copy rule and warnings, key
    prefixes (``<name>/<target>/<key>``; keys reported without an observer
    stay unprefixed), ``train=False`` during ``__call__`` only,
    ``no_backprop_mode`` around ``eval_func`` only, and ``finalize()``
    without arguments finalizing the iterators.

    The per-batch observations are accumulated with
    :class:`fusedmetrics.summary.DictSummary` (exact float64 state, no host
    synchronisation per batch for device values). Each batch still has
    weight 1 (Chainer's mean of per-batch means); report ``(value, weight)``
    tuples, or use :class:`fusedmetrics.links.Classifier` with
    :class:`fusedmetrics.extensions.MicroAverage`, for exact dataset means.

    Additions and differences, on purpose:

    * :meth:`evaluate_summary` returns the DictSummary of one pass;
      :meth:`evaluate` is ``evaluate_summary().compute_mean()``.
    * The per-batch observation is swapped into the current reporter with
      ``try/finally`` (Chainer's ``report_scope`` leaves it swapped when the
      model raises).
    * :meth:`on_error`: when the trainer fails during an evaluation pass,
      the iterator that was being consumed is reset, so the trainer can be
      snapshotted or resumed with clean iterators.
    * ``progress_bar=True`` uses :class:`EvaluationProgressBar` (the
      evaluator's name as label, no negative speed, iterators without
      ``epoch_detail`` accepted). It is closed when the pass raises.
    """

    trigger = 1, 'epoch'
    default_name = 'validation'
    priority = extension.PRIORITY_WRITER

    name = None

    def __init__(self, iterator, target, converter=convert.concat_examples,
                 device=None, eval_hook=None, eval_func=None, **kwargs):
        progress_bar, = argument.parse_kwargs(kwargs, ('progress_bar', False))

        if device is not None:
            device = backend.get_device(device)

        if isinstance(iterator, iterator_module.Iterator):
            iterator = {'main': iterator}
        self._iterators = iterator

        if isinstance(target, link.Link):
            target = {'main': target}
        self._targets = target

        self.converter = converter
        self.device = device
        self.eval_hook = eval_hook
        self.eval_func = eval_func
        self._progress_bar = progress_bar
        self._iterator_in_use = None

        for _, it in iterator.items():   # a list fails here, as in Chainer
            if isinstance(it, _REPEAT_CHECKED) and getattr(it, 'repeat',
                                                           False):
                warnings.warn(_REPEAT_WARNING)

    def get_iterator(self, name):
        """Returns the iterator registered under ``name``."""
        return self._iterators[name]

    def get_all_iterators(self):
        """Returns a new dict of all iterators."""
        return dict(self._iterators)

    def get_target(self, name):
        """Returns the target link registered under ``name``."""
        return self._targets[name]

    def get_all_targets(self):
        """Returns a new dict of all target links."""
        return dict(self._targets)

    def __call__(self, trainer=None):
        """Evaluates under a fresh reporter and reports the means.

        ``trainer`` is not used (it may be omitted). The result dict is
        reported without an observer into the reporter that is current when
        the evaluation ends (the trainer's during training) and returned.
        """
        reporter = reporter_module.Reporter()
        prefix = '' if self.name is None else self.name + '/'
        for name, target in self._targets.items():
            reporter.add_observer(prefix + name, target)
            reporter.add_observers(prefix + name,
                                   target.namedlinks(skipself=True))

        with reporter:
            with configuration.using_config('train', False):
                result = self.evaluate()

        reporter_module.report(result)
        return result

    def evaluate(self):
        """Runs one evaluation pass and returns ``{key: mean}``.

        Like Chainer's, it needs a current reporter (``IndexError``
        otherwise) and does not switch ``train`` off by itself.
        """
        return self.evaluate_summary().compute_mean()

    def evaluate_summary(self):
        """Runs one evaluation pass and returns its DictSummary.

        This is the loop itself; :meth:`evaluate` only takes the means. The
        multi-node wrapper merges these summaries across ranks, so a
        subclass that customises the loop should override this method
        (overriding only :meth:`evaluate` changes single-process results).
        """
        iterator = self._iterators['main']
        eval_func = self.eval_func or self._targets['main']

        if self.eval_hook:
            self.eval_hook(self)

        if hasattr(iterator, 'reset'):
            iterator.reset()
            it = iterator
        else:
            warnings.warn(_NO_RESET_WARNING, DeprecationWarning)
            it = copy.copy(iterator)

        summary = DictSummary()
        pbar = None
        if self._progress_bar:
            label = self.default_name if self.name is None else self.name
            pbar = EvaluationProgressBar(it, label=label)

        self._iterator_in_use = it
        try:
            for batch in it:
                observation = {}
                # Looked up per batch, as report_scope does: no batch, no
                # reporter needed (an empty pass returns {} without one).
                reporter = reporter_module.get_current_reporter()
                saved = reporter.observation
                reporter.observation = observation
                try:
                    in_arrays = convert._call_converter(
                        self.converter, batch, self.device)
                    with chainer.no_backprop_mode():
                        if isinstance(in_arrays, tuple):
                            eval_func(*in_arrays)
                        elif isinstance(in_arrays, dict):
                            eval_func(**in_arrays)
                        else:
                            eval_func(in_arrays)
                finally:
                    reporter.observation = saved
                summary.add(observation)
                if pbar is not None:
                    pbar.update(batch)
        finally:
            if pbar is not None:
                pbar.close()
        self._iterator_in_use = None
        return summary

    def on_error(self, trainer, exc, tb):
        """Resets the iterator whose evaluation pass was interrupted."""
        it = self._iterator_in_use
        self._iterator_in_use = None
        if it is not None and hasattr(it, 'reset'):
            it.reset()

    def finalize(self):
        """Calls ``finalize()`` on every iterator (no trainer argument)."""
        for iterator in self._iterators.values():
            iterator.finalize()
