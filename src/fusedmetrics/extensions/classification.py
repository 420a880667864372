"""ClassificationEvaluator: the Evaluator plus per-class precision, recall and F1 from one confusion matrix."""
from chainer import reporter as reporter_module
from chainer.dataset import convert

from fusedmetrics._interop import unwrap
from fusedmetrics.confusion import ConfusionMatrix
from fusedmetrics.scores import classification_scores

from .evaluator import Evaluator


def _labels_of(args, kwargs):
    """The batch's labels: the last converted element (Classifier's default ``label_key=-1``)."""
    if args:
        return args[-1]
    if kwargs:
        return list(kwargs.values())[-1]
    raise ValueError('ClassificationEvaluator needs the converted batch to hold the labels as '
                     'its last element; the converter returned nothing to take them from')


class ClassificationEvaluator(Evaluator):
    """__init__(self, iterator, target, num_classes, label_names=None, *, ignore_label=None, converter=concat_examples, device=None, eval_hook=None, eval_func=None, progress_bar=False)

    :class:`fusedmetrics.extensions.Evaluator` (same arguments, attributes, lifecycle and
    reports) that also fills one :class:`fusedmetrics.ConfusionMatrix` per evaluation pass and
    reports per-class and macro-averaged precision, recall and F1 from it.

    Per batch, after the target (or ``eval_func``) ran, the scores the target kept in
    ``target.y`` (as ``chainer.links.Classifier`` and ``fusedmetrics.links.Classifier`` do) and
    the batch's labels (the last converted element: the last of a tuple, the last value of a
    dict) are counted with ``ConfusionMatrix.update``: one call, no host synchronisation for
    device arrays. At the end of the pass these keys are added under the target's observer name
    (``validation/main/...`` in a trainer), from :func:`fusedmetrics.classification_scores`
    (scikit-learn's ``zero_division=nan`` values):

    * ``precision/<name>``, ``recall/<name>``, ``f1/<name>`` per class, ``<name>`` from
      ``label_names`` or else the class index;
    * ``macro_precision``, ``macro_recall``, ``macro_f1``: the means over the classes whose value
      is defined (not NaN).

    Args:
        num_classes (int): C; predictions are the argmax over axis 1 of ``target.y``.
        label_names: C names for the per-class keys.
        ignore_label: samples whose label equals it are not counted (None: none skipped). A
            non-ignored label outside [0, C) makes the evaluation raise ``ValueError``.

    Differences from the per-batch ``chainer.functions.classification_summary`` (which
    ``DictSummary`` cannot average, as its values are vectors): the scores are exact over the
    whole pass, not means of per-batch values; F1 of a class never predicted but present is 0
    (scikit-learn), where Chainer gives NaN.

    Multi-node: wrap it with :func:`fusedmetrics.multi_node.create_multi_node_evaluator` (which
    replaces :meth:`evaluate`). Every rank then reports the usual keys and the per-class and
    macro keys, all exact over the union of the ranks' batches: the wrapper calls
    :meth:`multi_node_observation`, which sums the ranks' C*C counts with one int64 ``Allreduce``.
    Every rank must use the same ``num_classes``. ChainerMN's own ``create_multi_node_evaluator``
    would instead average each rank's per-class values with equal weight (not exact).
    """

    def __init__(self, iterator, target, num_classes, label_names=None, *, ignore_label=None,
                 converter=convert.concat_examples, device=None, eval_hook=None, eval_func=None,
                 **kwargs):
        super().__init__(iterator, target, converter=converter, device=device,
                         eval_hook=eval_hook, eval_func=eval_func, **kwargs)
        num_classes = int(num_classes)
        if num_classes < 0:
            raise ValueError(f'num_classes must be >= 0; got {num_classes}')
        if label_names is not None:
            label_names = list(label_names)
            if len(label_names) != num_classes:
                raise ValueError(f'label_names has {len(label_names)} names for '
                                 f'num_classes={num_classes}')
        self.num_classes = num_classes
        self.label_names = label_names
        self.ignore_label = ignore_label
        self.confusion = ConfusionMatrix(num_classes, ignore_label)

    def evaluate_summary(self):
        """One pass: the per-batch DictSummary; the pass's counts are left in ``self.confusion``."""
        target = self._targets['main']
        original = self.eval_func
        call = original or target
        confusion = self.confusion
        confusion.reset()

        def counted(*args, **kwargs):
            before = getattr(target, 'y', None)
            out = call(*args, **kwargs)
            y = getattr(target, 'y', None)
            if y is None or y is before:  # unchanged: the scores of an earlier batch
                raise ValueError(
                    'ClassificationEvaluator reads the scores from target.y, which is %s after '
                    'the call (use chainer.links.Classifier or fusedmetrics.links.Classifier, or '
                    'a target that keeps its last output in .y; an eval_func must call the target)'
                    % ('None' if y is None else 'unchanged'))
            confusion.update(unwrap(y), unwrap(_labels_of(args, kwargs)))
            return out

        self.eval_func = counted
        try:
            return super().evaluate_summary()
        finally:
            self.eval_func = original

    def class_scores(self, matrix=None):
        """``{key: value}`` of the per-class and macro scores (unprefixed) of ``matrix``, by
        default this rank's last pass (``self.confusion``)."""
        if matrix is None:
            matrix = self.confusion.compute()
        per_class = classification_scores(matrix)
        macro = classification_scores(matrix, average='macro')
        names = self.label_names or [str(i) for i in range(self.num_classes)]
        report = {}
        for source, key in (('precision', 'precision'), ('recall', 'recall'), ('fbeta', 'f1')):
            for name, value in zip(names, per_class[source]):
                report['{}/{}'.format(key, name)] = value
            report['macro_' + key] = macro[source]
        return report

    def _observation(self, matrix):
        """The scores of ``matrix`` under the target's observer name (in the current reporter)."""
        observation = {}
        with reporter_module.report_scope(observation):
            reporter_module.report(self.class_scores(matrix), self._targets['main'])
        return observation

    def evaluate(self):
        """Like Evaluator's, plus the confusion-matrix scores under the target's name."""
        result = super().evaluate()
        result.update(self._observation(self.confusion.compute()))
        return result

    def multi_node_observation(self, comm):
        """The scores of the matrix summed over every rank of ``comm`` (an mpi4py communicator),
        under the target's name: a collective, called on every rank after each pass by
        ``create_multi_node_evaluator``'s ``evaluate``. A rank that cannot read its counts still
        joins the ``Allreduce``; then every rank raises (the others ``RemoteEvaluationError``)."""
        from fusedmetrics.multi_node._aggregate import report_local_failure
        from fusedmetrics.multi_node._confusion import allreduce_confusion
        failure, local, invalid = None, None, 0
        try:
            state = self.confusion.state_dict()  # device counts come to the host here, once
            local, invalid = state['matrix'], state['invalid']
        except Exception as exc:  # joins the collective, then raises
            failure = exc
            report_local_failure(exc, comm.Get_rank(), comm.Get_size())
        matrix, invalid = allreduce_confusion(comm, local, invalid, self.num_classes, failure)
        if invalid:
            raise ValueError('ClassificationEvaluator: %d non-ignored samples over all ranks had a true or '
                             'predicted label outside [0, %d)' % (invalid, self.num_classes))
        return self._observation(matrix)
