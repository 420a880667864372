"""STAND-IN, throwaway: a pure-numpy, host-only ``confusion_matrix`` / ``ConfusionMatrix``.

This file only exists so that the scores and extensions work (branch cm-scores) can be written
and tested before the compiled implementation lands (branch cm-core). The real module replaces
this file at merge. It implements the agreed API on the host only: the prediction from scores is
numpy's ``argmax`` over axis 1, counting is ``numpy.bincount``. No device support, no speed.
"""
import numpy


def _predictions(y, t):
    y = numpy.asarray(y)
    t = numpy.asarray(t)
    if y.shape == t.shape and y.dtype.kind in "iub":
        return y.reshape(-1).astype(numpy.int64)
    if y.ndim != t.ndim + 1 or y.shape[:1] + y.shape[2:] != t.shape:
        raise ValueError(
            f"y must be scores (N, C, d...) matching t {t.shape} or integer predictions of t's "
            f"shape; got y {y.shape} {y.dtype}")
    return numpy.argmax(y, axis=1).reshape(-1).astype(numpy.int64)


def _counts(y, t, num_classes, ignore_label):
    t = numpy.asarray(t)
    p = _predictions(y, t)
    t = t.reshape(-1)
    if t.dtype.kind == "f":
        keep = ~(t == ignore_label) if ignore_label is not None else numpy.ones(t.shape, bool)
        t = t[keep]
        p = p[keep]
        if not numpy.all(t == numpy.floor(t)):
            raise ValueError("t has non-integral labels")
        t = t.astype(numpy.int64)
    else:
        t = t.astype(numpy.int64)
        if ignore_label is not None:
            keep = t != ignore_label
            t = t[keep]
            p = p[keep]
    c = int(num_classes)
    bad_t = (t < 0) | (t >= c)
    bad_p = (p < 0) | (p >= c)
    invalid = int(numpy.count_nonzero(bad_t | bad_p))
    ok = ~(bad_t | bad_p)
    m = numpy.bincount(c * t[ok] + p[ok], minlength=c * c).reshape(c, c).astype(numpy.int64)
    bad = None
    if invalid:
        bad = int(t[bad_t][0]) if bad_t.any() else int(p[bad_p][0])
    return m, invalid, bad


def confusion_matrix(y, t, num_classes, ignore_label=None, *, out=None):
    """Int64 (C, C) counts, rows true labels, columns predictions (stand-in; see module doc)."""
    m, invalid, bad = _counts(y, t, num_classes, ignore_label)
    if invalid:
        raise ValueError(f"label {bad} is outside [0, {int(num_classes)})")
    if out is not None:
        out += m
        return out
    return m


class ConfusionMatrix:
    """Accumulating confusion matrix (stand-in; see module doc)."""

    def __init__(self, num_classes, ignore_label=None):
        self.num_classes = int(num_classes)
        self.ignore_label = ignore_label
        self.reset()

    def reset(self):
        c = self.num_classes
        self.matrix = numpy.zeros((c, c), numpy.int64)
        self.invalid = 0

    def update(self, y, t):
        m, invalid, _ = _counts(y, t, self.num_classes, self.ignore_label)
        self.matrix += m
        self.invalid += invalid

    def merge(self, other):
        self.matrix += numpy.asarray(other.matrix)
        self.invalid += int(other.invalid)
        return self

    def compute(self):
        if self.invalid:
            raise ValueError(f"{self.invalid} samples had a label outside [0, {self.num_classes})")
        return numpy.array(self.matrix, dtype=numpy.int64)

    def state_dict(self):
        return {"matrix": numpy.array(self.matrix), "invalid": numpy.int64(self.invalid)}

    def load_state_dict(self, state):
        self.matrix = numpy.array(state["matrix"], dtype=numpy.int64)
        self.num_classes = self.matrix.shape[0]
        self.invalid = int(state["invalid"])

    def serialize(self, serializer):
        self.matrix = numpy.asarray(serializer("matrix", self.matrix), dtype=numpy.int64)
        self.invalid = int(serializer("invalid", self.invalid))


__all__ = ["ConfusionMatrix", "confusion_matrix"]
