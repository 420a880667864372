"""LabelCounts: a ConfusionMatrix of fixed C, or one that grows to the largest label seen."""
import numpy

from fusedmetrics._interop import is_device_array, to_host
from fusedmetrics.confusion import ConfusionMatrix


def host(x):
    """A numpy view or copy of ``x`` (device arrays are copied: this synchronises)."""
    return to_host(x) if is_device_array(x) else numpy.asarray(x)


def _largest(a):
    """The largest value of a non-empty array as a Python int (synchronises for device arrays)."""
    return int(host(a.max()))


class LabelCounts:
    """Counts (prediction, truth) label maps into a confusion matrix, one update per map.

    With ``num_classes`` given, C is fixed and every update goes straight to a
    :class:`ConfusionMatrix` (no host synchronisation for device maps). Without it, C grows as
    ChainerCV's does, to 1 + the largest label seen; reading that label is one host
    synchronisation per map for device arrays. Ground truth equal to ``ignore_label`` does not
    grow C (ChainerCV counts every ground-truth value, ignored or not, in its size).
    """

    def __init__(self, num_classes=None, ignore_label=None):
        self.ignore_label = ignore_label
        self.fixed = num_classes is not None
        self.num_classes = int(num_classes) if self.fixed else 0
        self._carry = None  # host counts kept from before the last growth
        self._carry_invalid = 0  # and their out-of-range samples (device maps count them)
        self._cm = ConfusionMatrix(self.num_classes, ignore_label) if self.fixed else None

    def update(self, pred, truth):
        if not self.fixed:
            self._grow_to(self._needed(pred, truth))
        if self._cm is not None:
            self._cm.update(pred, truth)

    def _needed(self, pred, truth):
        n = self.num_classes
        if getattr(pred, "size", 0):
            n = max(n, _largest(pred) + 1)
        if getattr(truth, "size", 0):
            if self.ignore_label is None:
                n = max(n, _largest(truth) + 1)
            else:
                kept = host(truth)
                kept = kept[kept != self.ignore_label]
                if kept.size:
                    n = max(n, int(kept.max()) + 1)
        return n

    def _grow_to(self, n):
        if n <= self.num_classes:
            return
        grown = numpy.zeros((n, n), dtype=numpy.int64)
        if self._cm is not None:
            c = self.num_classes
            grown[:c, :c] = self._carry_plus_counts()
            self._carry_invalid = self.invalid
        self._carry = grown
        self.num_classes = n
        self._cm = ConfusionMatrix(n, self.ignore_label)

    def _carry_plus_counts(self):
        counts = host(self._cm.matrix).astype(numpy.int64)
        return counts if self._carry is None else counts + self._carry

    @property
    def invalid(self):
        return self._carry_invalid + (0 if self._cm is None else int(host(self._cm.invalid)))

    def counts(self):
        """The host int64 (C, C) counts, without checking ``invalid``."""
        if self._cm is None:
            return numpy.zeros((0, 0), dtype=numpy.int64)
        return self._carry_plus_counts()
