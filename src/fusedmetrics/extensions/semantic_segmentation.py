"""SemanticSegmentationEvaluator: ChainerCV's segmentation evaluator, streaming into a confusion matrix."""
import copy

import numpy

from chainer import reporter as reporter_module
from chainer.training import extension

from fusedmetrics.scores import segmentation_scores
from fusedmetrics.summary import DictSummary

from ._label_counts import LabelCounts
from .evaluator import Evaluator


def _split_sample(sample):
    if not isinstance(sample, tuple) or len(sample) != 2:
        raise ValueError(
            'SemanticSegmentationEvaluator expects each example to be a tuple (img, label); got '
            + (f'a tuple of {len(sample)}' if isinstance(sample, tuple)
               else type(sample).__name__))
    return sample


def _predicted_labels(output, n):
    if isinstance(output, tuple):  # predict returned (labels,): one output, as ChainerCV accepts
        if len(output) != 1:
            raise ValueError(
                f'target.predict must return one batch of label maps; got a tuple of {len(output)}')
        output, = output
    if len(output) != n:
        raise ValueError(f'target.predict returned {len(output)} label maps for {n} images')
    return output


class SemanticSegmentationEvaluator(Evaluator):
    """__init__(self, iterator, target, label_names=None, comm=None, *, ignore_label=-1, num_classes=None)

    Trainer extension that evaluates a semantic segmentation model: a drop-in replacement for
    ``chainercv.extensions.SemanticSegmentationEvaluator`` (ChainerCV 0.13) that streams.

    Same as ChainerCV: the constructor's positional arguments; class attributes
    (``trigger=(1, 'epoch')``, ``default_name='validation'``, ``PRIORITY_WRITER``); each example
    is a tuple ``(img, label)``; ``target.predict(imgs)`` receives the batch's images as a list
    and returns one label map per image; the iterator is reset (or copied when it has no
    ``reset``); the report keys ``miou``, ``pixel_accuracy``, ``mean_class_accuracy`` and, with
    ``label_names``, ``iou/<name>`` and ``class_accuracy/<name>`` (NaN for a class absent from
    truth and prediction, or beyond the matrix), reported under the target's observer name
    (``validation/main/miou`` in a trainer); and their values, which are those of
    ``eval_semantic_segmentation`` over all the maps (see :func:`fusedmetrics.segmentation_scores`).

    Streaming: each (prediction, truth) pair is counted into a
    :class:`fusedmetrics.ConfusionMatrix` as it arrives and then dropped, instead of keeping every
    map until the end. C is ``num_classes`` when given, else ``len(label_names)``, else grown to
    1 + the largest label seen, as ChainerCV sizes its matrix.

    Args:
        iterator: the validation iterator (may be ``None`` on a rank that evaluates nothing
            when ``comm`` is given).
        target (chainer.Link): a link with ``predict(imgs)``.
        label_names: class names for the per-class keys.
        comm: ``None``, an mpi4py intra-communicator or a ChainerMN communicator. Each rank
            evaluates the iterator IT was given and the counts are summed over all ranks with
            one int64 ``Allreduce`` of C*C counts (plus one small ``Allreduce`` agreeing on C
            when it is grown); every rank then reports the same, exact global values.
        ignore_label: pixels whose truth equals it are not counted (default -1, as ChainerCV).
        num_classes: C. When neither this nor ``label_names`` is given, C grows with the labels.

    Deliberate differences from ChainerCV 0.13:

    * Label maps are never stored: memory does not grow with the validation set.
    * With ``comm``, ChainerCV scatters the root's iterator and gathers every map on rank 0,
      which alone reports. Here each rank evaluates its own iterator (give the ranks disjoint
      shards, e.g. from ``fusedmetrics.scatter_dataset``; a rank given ``None`` contributes
      nothing, so passing the whole iterator on rank 0 and ``None`` elsewhere gives ChainerCV's
      numbers without its parallelism) and every rank reports the global values. A rank whose
      evaluation raises still joins the collective; then every rank raises (the others
      ``RemoteEvaluationError``). Every rank must use the same ``num_classes``/``label_names``.
    * ChainerCV skips every negative truth value; here only ``ignore_label`` is skipped and any
      other truth or prediction outside [0, C) raises ``ValueError`` at the end of the pass
      (with a fixed C, a label >= C is such an error; ChainerCV would grow its matrix).
      ``ignore_label`` may be any value (e.g. 255), which ChainerCV would count as a class.
    * Label maps of any matching shape are accepted (ChainerCV requires 2-D maps).
    * When the matrix has more classes than the largest label seen (fixed C), ``iou/<name>`` of
      such classes is NaN from 0/0 rather than from ChainerCV's IndexError fallback: the same
      value.
    * No RuntimeWarning for 0/0 or an all-NaN mean.
    * :meth:`evaluate_matrix` returns the pass's global host int64 matrix;
      :meth:`evaluate_summary` returns a DictSummary holding the reported values.
    """

    trigger = 1, 'epoch'
    default_name = 'validation'
    priority = extension.PRIORITY_WRITER

    # create_multi_node_evaluator gives such an evaluator its comm rather than patching it.
    counts_over_ranks_with_comm = True

    def __init__(self, iterator, target, label_names=None, comm=None, *, ignore_label=-1,
                 num_classes=None):
        if iterator is None:
            iterator = {}
        super().__init__(iterator, target)
        self.label_names = label_names
        self.comm = comm
        self.ignore_label = ignore_label
        if num_classes is None and label_names is not None:
            num_classes = len(label_names)
        if num_classes is not None:
            num_classes = int(num_classes)
            if num_classes < 0:
                raise ValueError(f'num_classes must be >= 0; got {num_classes}')
        self.num_classes = num_classes
        if comm is not None:
            from fusedmetrics.multi_node._comm import resolve_comm
            resolve_comm(comm, 'comm')  # fail here, not at the first evaluation

    def _local_counts(self):
        target = self._targets['main']
        counts = LabelCounts(self.num_classes, self.ignore_label)
        if self.comm is not None and 'main' not in self._iterators:
            return counts  # this rank evaluates nothing but joins the collective
        iterator = self._iterators['main']
        if hasattr(iterator, 'reset'):
            iterator.reset()
            it = iterator
        else:  # ChainerCV copies silently
            it = copy.copy(iterator)
        self._iterator_in_use = it
        for batch in it:
            samples = [_split_sample(sample) for sample in batch]
            imgs = [img for img, _ in samples]
            preds = _predicted_labels(target.predict(imgs), len(samples))
            for pred, (_, truth) in zip(preds, samples):
                counts.update(pred, truth)
        self._iterator_in_use = None
        return counts

    def evaluate_matrix(self):
        """Runs one pass and returns the (global, with ``comm``) host int64 confusion matrix."""
        if self.comm is None:
            counts = self._local_counts()
            invalid, matrix = counts.invalid, counts.counts()
        else:
            from fusedmetrics.multi_node._aggregate import report_local_failure
            from fusedmetrics.multi_node._comm import resolve_comm
            from fusedmetrics.multi_node._confusion import allreduce_confusion
            mpi = resolve_comm(self.comm, 'comm')
            failure, local, invalid = None, None, 0
            try:
                counts = self._local_counts()
                local, invalid = counts.counts(), counts.invalid
            except Exception as exc:  # joins the collective, then raises
                failure = exc
                report_local_failure(exc, mpi.Get_rank(), mpi.Get_size())
            matrix, invalid = allreduce_confusion(mpi, local, invalid, self.num_classes, failure)
        if invalid:
            c = matrix.shape[0]
            raise ValueError(
                f'{invalid} labelled pixels had a truth or predicted label outside [0, {c}) '
                f'that is not ignore_label={self.ignore_label!r}')
        return matrix

    def evaluate(self):
        """One pass; returns ``{<observer>/<key>: value}`` as ChainerCV's evaluate does."""
        target = self._targets['main']
        result = segmentation_scores(self.evaluate_matrix())
        report = {'miou': result['miou'],
                  'pixel_accuracy': result['pixel_accuracy'],
                  'mean_class_accuracy': result['mean_class_accuracy']}
        if self.label_names is not None:
            n = len(result['iou'])
            for index, label_name in enumerate(self.label_names):
                inside = index < n
                report['iou/{:s}'.format(label_name)] = \
                    result['iou'][index] if inside else numpy.nan
                report['class_accuracy/{:s}'.format(label_name)] = \
                    result['class_accuracy'][index] if inside else numpy.nan
        observation = {}
        with reporter_module.report_scope(observation):
            reporter_module.report(report, target)
        return observation

    def evaluate_summary(self):
        """A DictSummary holding one pass's reported values (needs a current reporter)."""
        summary = DictSummary()
        summary.add(self.evaluate())
        return summary
