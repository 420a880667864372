"""Classifier: chainer.links.Classifier whose accuracy comes from fusedmetrics' exact counts."""
import functools


import chainer
import chainer.functions as F
import chainer.links as L
from chainer import reporter

import fusedmetrics
from fusedmetrics._accuracy import accuracy_from_counts, chainer_ignore_label
from fusedmetrics._binary_accuracy import binary_accuracy_from_counts
from fusedmetrics._interop import unwrap


def _fused_ignore_label(accfun):
    """The ignore_label when ``accfun`` is (a partial of) a plain accuracy.

    Returns ``(True, ignore_label)`` for ``F.accuracy``,
    ``fusedmetrics.accuracy`` and ``functools.partial`` of either that binds
    at most ``ignore_label``; ``(False, None)`` for anything else.
    """
    plain = (F.accuracy, fusedmetrics.accuracy)
    if any(accfun is f for f in plain):
        return True, None
    if (isinstance(accfun, functools.partial)
            and any(accfun.func is f for f in plain) and not accfun.args
            and set(accfun.keywords) <= {'ignore_label'}):
        return True, accfun.keywords.get('ignore_label')
    return False, None


def _is_binary_accuracy(accfun):
    """True for ``F.binary_accuracy`` and ``fusedmetrics.binary_accuracy``."""
    return accfun is F.binary_accuracy or accfun is fusedmetrics.binary_accuracy


class Classifier(L.Classifier):
    """Drop-in for ``chainer.links.Classifier`` with exact, fused accuracy.

    Same constructor arguments (``predictor``, ``lossfun``, ``accfun``,
    ``label_key``), attributes (``y``, ``loss``, ``accuracy``,
    ``compute_accuracy``) and reported keys (``loss``, ``accuracy``, with
    the link as observer); it is a subclass of Chainer's class.

    When ``accfun`` is the default ``F.accuracy`` (or ``fusedmetrics.accuracy``,
    or a ``functools.partial`` of either binding only ``ignore_label``), the
    accuracy is computed with ONE ``fusedmetrics.accuracy_counts`` call per
    batch and the link also reports ``correct`` and ``total`` (int64 counts;
    device arrays on a GPU, no host synchronisation). Then

        MicroAverage('validation/main/correct', 'validation/main/total',
                     'validation/main/accuracy_micro')

    gives the exact accuracy over the whole validation set, even when the
    last batch is smaller (the Evaluator's per-batch mean is not exact).

    Differences from Chainer: ``accuracy`` is computed from exact integer
    counts (Chainer's float16 mean overflows past 65504 correct predictions);
    its value and dtype are otherwise ``F.accuracy``'s, also for a float
    ``ignore_label``, which is matched exactly as Chainer's ``t == ignore_label``
    does (-1.0 ignores label -1; -1.5 or NaN ignores nothing, and an empty
    batch still gives 0.0; int64 labels beyond 2**53 compare exactly here, in
    float64 in Chainer). ``accfun=F.binary_accuracy`` (or
    ``fusedmetrics.binary_accuracy``) is recognised the same way: one
    ``binary_accuracy_counts`` call, Chainer's value and dtype, and
    ``correct``/``total`` reported (total = labels other than -1). With any other
    ``accfun``, it is called as in Chainer and no counts are reported.
    """

    def forward(self, *args, **kwargs):
        """Returns the loss; reports loss, accuracy, correct and total."""
        args, kwargs, t = self._split_label(args, kwargs)

        self.y = None
        self.loss = None
        self.accuracy = None
        self.y = self.predictor(*args, **kwargs)
        self.loss = self.lossfun(self.y, t)
        reporter.report({'loss': self.loss}, self)
        if self.compute_accuracy:
            fused, ignore_label = _fused_ignore_label(self.accfun)
            if _is_binary_accuracy(self.accfun):
                y = unwrap(self.y)
                counts = fusedmetrics.binary_accuracy_counts(y, unwrap(t))
                self.accuracy = chainer.Variable(binary_accuracy_from_counts(counts, y.dtype), requires_grad=False)
                reporter.report({'accuracy': self.accuracy,
                                 'correct': counts[0],
                                 'total': counts[1]}, self)
            elif fused:
                y = unwrap(self.y)
                counts = fusedmetrics.accuracy_counts(
                    y, unwrap(t), chainer_ignore_label(ignore_label))
                self.accuracy = chainer.Variable(
                    accuracy_from_counts(counts, y.dtype, ignore_label),
                    requires_grad=False)
                reporter.report({'accuracy': self.accuracy,
                                 'correct': counts[0],
                                 'total': counts[1]}, self)
            else:
                self.accuracy = self.accfun(self.y, t)
                reporter.report({'accuracy': self.accuracy}, self)
        return self.loss

    def _split_label(self, args, kwargs):
        # Same selection and errors as chainer.links.Classifier.forward.
        key = self.label_key
        if isinstance(key, int):
            if not -len(args) <= key < len(args):
                raise ValueError('Label key %d is out of bounds' % key)
            t = args[key]
            index = key % len(args)
            args = args[:index] + args[index + 1:]
        else:
            if key not in kwargs:
                raise ValueError('Label key "%s" is not found' % key)
            kwargs = dict(kwargs)
            t = kwargs.pop(key)
        return args, kwargs, t

