"""Scores derived from a confusion matrix: segmentation (IoU, pixel and class accuracy) and
classification (precision, recall, F-beta, support).

The matrix is ``m[i, j]`` = samples with true label ``i`` predicted as ``j`` (what
:func:`fusedmetrics.confusion_matrix` and :class:`fusedmetrics.ConfusionMatrix` produce). It may be a
numpy array, anything ``numpy.asarray`` accepts, or a device array (brought to the host here, which
synchronises: call these at the end of an evaluation, not per batch). All results are on the host.

Every division is done in float64 from the integer counts. 0/0 gives NaN; no RuntimeWarning is
emitted for it (numpy, and hence ChainerCV, warns).
"""
import math
import numbers

import numpy

from ._interop import from_dlpack, is_device_array, is_torch_tensor, to_host, unwrap

_AVERAGES = (None, "micro", "macro", "weighted")


def _host_matrix(matrix):
    matrix = from_dlpack(unwrap(matrix))  # JAX and other DLPack producers too
    if is_device_array(matrix) or is_torch_tensor(matrix):
        matrix = to_host(matrix)
    m = numpy.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix must be square (C, C); got shape {m.shape}")
    if m.dtype.kind not in "iub":
        if m.dtype.kind != "f" or not numpy.all(numpy.isfinite(m) & (m == numpy.floor(m))):
            raise ValueError(f"matrix must hold integer counts; got dtype {m.dtype}")
    if m.size and m.min() < 0:
        raise ValueError("matrix must hold non-negative counts; it has a negative entry")
    return m.astype(numpy.int64, copy=False)


def _ratio(numerator, denominator):
    """``numerator / denominator`` in float64, NaN where the denominator is 0, without warnings."""
    num = numpy.asarray(numerator, dtype=numpy.float64)
    den = numpy.asarray(denominator, dtype=numpy.float64)
    with numpy.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    return numpy.where(den == 0, numpy.nan, out)


def _nanmean(values):
    """Mean over the non-NaN entries; NaN when there are none (numpy.nanmean without its warning)."""
    values = numpy.asarray(values, dtype=numpy.float64)
    keep = ~numpy.isnan(values)
    count = int(numpy.count_nonzero(keep))
    if count == 0:
        return numpy.float64(numpy.nan)
    return numpy.float64(numpy.where(keep, values, 0.0).sum() / count)


def segmentation_scores(matrix):
    """ChainerCV's semantic-segmentation metrics from a (C, C) confusion matrix.

    Returns a dict of float64 values:

    * ``iou`` (C,): ``m[i, i] / (sum_j m[i, j] + sum_j m[j, i] - m[i, i])``; NaN for a class
      absent from both truth and prediction;
    * ``miou``: the mean of ``iou`` over its non-NaN entries;
    * ``pixel_accuracy``: ``trace(m) / sum(m)``;
    * ``class_accuracy`` (C,): ``m[i, i] / sum_j m[i, j]``; NaN for a class absent from truth;
    * ``mean_class_accuracy``: the mean of ``class_accuracy`` over its non-NaN entries.

    These are the values of ``chainercv.evaluations.eval_semantic_segmentation`` (ChainerCV 0.13)
    on the same samples, NaN placement included, when ``matrix`` is the confusion matrix ChainerCV
    builds from them. Deliberate differences:

    * ChainerCV sizes its matrix by the largest label it saw; here C is the matrix's size, so
      classes above the largest label seen appear with NaN IoU and class accuracy (which changes
      neither mean).
    * An all-NaN mean, an empty matrix or C = 0 give NaN without numpy's RuntimeWarning.
    * The scalars are ``numpy.float64`` (as ChainerCV's are).
    """
    m = _host_matrix(matrix)
    diag = numpy.diagonal(m)
    truth = m.sum(axis=1)
    predicted = m.sum(axis=0)
    iou = _ratio(diag, truth + predicted - diag)
    class_accuracy = _ratio(diag, truth)
    return {
        "iou": iou,
        "miou": _nanmean(iou),
        "pixel_accuracy": numpy.float64(_ratio(diag.sum(), m.sum())),
        "class_accuracy": class_accuracy,
        "mean_class_accuracy": _nanmean(class_accuracy),
    }


def _check_beta(beta):
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
        raise TypeError(f"beta must be a real number; got {type(beta).__name__}")
    beta = float(beta)
    if math.isnan(beta) or beta < 0:
        raise ValueError(f"beta must be >= 0 (inf allowed); got {beta}")
    return beta


def _fbeta(tp, true_sum, pred_sum, precision, recall, beta):
    """scikit-learn's F-beta: ``(1 + b^2) tp / (b^2 (tp + fn) + (tp + fp))``, NaN where that is 0/0."""
    if math.isinf(beta):
        return recall
    if beta == 0:
        return precision
    beta2 = beta * beta
    denominator = beta2 * numpy.asarray(true_sum, numpy.float64) + numpy.asarray(pred_sum,
                                                                                numpy.float64)
    return _ratio((1 + beta2) * numpy.asarray(tp, numpy.float64), denominator)


def _weighted_nanmean(values, weights):
    """scikit-learn's weighted mean ignoring NaN entries (and their weights); an all-zero weight
    set falls back to the plain mean of the non-NaN entries."""
    keep = ~numpy.isnan(values)
    if not keep.any():
        return numpy.float64(numpy.nan)
    v = values[keep]
    w = numpy.asarray(weights, numpy.float64)[keep]
    total = w.sum()
    if total == 0:
        return numpy.float64(v.mean())
    return numpy.float64((v * w).sum() / total)


def classification_scores(matrix, beta=1.0, average=None):
    """Precision, recall, F-beta and support from a (C, C) confusion matrix.

    Equal to scikit-learn's ``precision_recall_fscore_support(y_true, y_pred, labels=range(C),
    beta=beta, average=average, zero_division=numpy.nan)`` on the samples behind ``matrix``:

    * ``average=None``: ``precision``, ``recall``, ``fbeta`` are float64 arrays (C,) and
      ``support`` the int64 array (C,) of true counts. 0/0 is NaN; F-beta is
      ``(1 + b^2) tp / (b^2 (tp + fn) + tp + fp)``, so a class that is never predicted but present
      in truth has precision NaN and F-beta 0 (as in scikit-learn). ``beta=inf`` gives recall and
      ``beta=0`` precision as F-beta.
    * ``"micro"``: the same formulas on the summed counts (all three equal the accuracy).
    * ``"macro"``: the mean over the classes whose score is not NaN (scikit-learn with
      ``zero_division=nan`` drops them); NaN when every class is NaN.
    * ``"weighted"``: the support-weighted mean over the non-NaN classes; when those classes'
      supports are all 0, their plain mean (both as scikit-learn does).

    With an average, ``support`` is ``None``, as scikit-learn returns. Per class, where
    ``chainer.functions.classification_summary`` gives a defined (non-NaN) value, it is the same.

    Deliberate differences: the averaged scores are ``numpy.float64`` (scikit-learn returns Python
    floats of the same value); no warnings; ``average="binary"`` and ``"samples"`` are not offered
    (ValueError); an empty matrix gives NaN scores rather than scikit-learn's error on empty input.
    """
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}; got {average!r}")
    beta = _check_beta(beta)
    m = _host_matrix(matrix)
    tp = numpy.diagonal(m).astype(numpy.int64)
    true_sum = m.sum(axis=1).astype(numpy.int64)
    pred_sum = m.sum(axis=0).astype(numpy.int64)
    if average == "micro":
        tp, true_sum, pred_sum = tp.sum(), true_sum.sum(), pred_sum.sum()

    precision = _ratio(tp, pred_sum)
    recall = _ratio(tp, true_sum)
    fbeta = _fbeta(tp, true_sum, pred_sum, precision, recall, beta)

    if average is None:
        return {"precision": precision, "recall": recall, "fbeta": fbeta, "support": true_sum}
    if average == "micro":
        return {"precision": numpy.float64(precision), "recall": numpy.float64(recall),
                "fbeta": numpy.float64(fbeta), "support": None}
    if average == "macro":
        return {"precision": _nanmean(precision), "recall": _nanmean(recall),
                "fbeta": _nanmean(fbeta), "support": None}
    return {"precision": _weighted_nanmean(precision, true_sum),
            "recall": _weighted_nanmean(recall, true_sum),
            "fbeta": _weighted_nanmean(fbeta, true_sum), "support": None}


__all__ = ["classification_scores", "segmentation_scores"]
