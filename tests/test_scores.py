"""segmentation_scores and classification_scores against independent references on the same samples.

References: scikit-learn's precision_recall_fscore_support (zero_division=nan); Chainer's
F.classification_summary (per batch, where its values are defined); and ChainerCV 0.13's
eval_semantic_segmentation, re-derived from its documented formulas in chainercv_reference.py
(ChainerCV does not build on Python 3.11).
"""
import math
import warnings

import numpy
import pytest

import fusedmetrics
from fusedmetrics import classification_scores, confusion_matrix, segmentation_scores

from chainercv_reference import chainercv_reference
from dlpack_producer import DLPackOnly

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def assert_same(got, want, rtol=1e-14):
    got = numpy.asarray(got, dtype=numpy.float64)
    want = numpy.asarray(want, dtype=numpy.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    numpy.testing.assert_array_equal(numpy.isnan(got), numpy.isnan(want))
    numpy.testing.assert_allclose(got, want, rtol=rtol, atol=0)


def segmentation_samples(seed, num_classes, absent=(), n_maps=4, ignore_p=0.1):
    rng = numpy.random.RandomState(seed)
    present = [c for c in range(num_classes) if c not in absent]
    preds, gts = [], []
    for _ in range(n_maps):
        h, w = rng.randint(1, 9, size=2)
        gt = rng.choice(present, size=(h, w)).astype(numpy.int32)
        pred = numpy.where(rng.rand(h, w) < 0.6, gt, rng.choice(present, size=(h, w)))
        gt[rng.rand(h, w) < ignore_p] = -1
        preds.append(pred.astype(numpy.int32))
        gts.append(gt)
    return preds, gts


def matrix_of(preds, gts, num_classes, ignore_label=-1):
    m = numpy.zeros((num_classes, num_classes), numpy.int64)
    for p, g in zip(preds, gts):
        confusion_matrix(p, g, num_classes, ignore_label, out=m)
    return m


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("absent", [(), (1,), (0, 3), (4,)])
def test_segmentation_matches_chainercv(seed, absent):
    preds, gts = segmentation_samples(seed, 5, absent)
    want = chainercv_reference(preds, gts)
    n = len(want["iou"])
    for extra in (0, 2):  # a matrix larger than ChainerCV's: trailing classes are NaN
        got = segmentation_scores(matrix_of(preds, gts, 5 + extra))
        assert_same(got["iou"][:n], want["iou"])
        assert_same(got["class_accuracy"][:n], want["class_accuracy"])
        assert numpy.isnan(got["iou"][n:]).all() and numpy.isnan(got["class_accuracy"][n:]).all()
        for key in ("miou", "pixel_accuracy", "mean_class_accuracy"):
            assert_same(got[key], want[key])
            assert isinstance(got[key], numpy.float64)
        assert got["iou"].dtype == numpy.float64 and got["class_accuracy"].dtype == numpy.float64


def test_segmentation_absent_from_truth_only():
    # Class 2 is predicted but never true: IoU 0 (not NaN), class accuracy NaN.
    m = numpy.array([[3, 0, 1], [0, 2, 0], [0, 0, 0]])
    got = segmentation_scores(m)
    assert got["iou"][2] == 0.0 and numpy.isnan(got["class_accuracy"][2])
    assert got["miou"] == pytest.approx((3 / 4 + 1 + 0) / 3)
    assert got["mean_class_accuracy"] == pytest.approx((3 / 4 + 1) / 2)
    assert got["pixel_accuracy"] == pytest.approx(5 / 6)


@pytest.mark.parametrize("c", [0, 1, 3])
def test_segmentation_empty_matrix_is_nan_without_warnings(c):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = segmentation_scores(numpy.zeros((c, c), numpy.int64))
    assert got["iou"].shape == (c,) and numpy.isnan(got["iou"]).all()
    for key in ("miou", "pixel_accuracy", "mean_class_accuracy"):
        assert numpy.isnan(got[key])


def test_segmentation_ignore_label_other_than_minus_one():
    preds, gts = segmentation_samples(3, 4, n_maps=3, ignore_p=0.2)
    want = chainercv_reference(preds, gts)
    gts255 = [numpy.where(g == -1, 255, g) for g in gts]
    got = segmentation_scores(matrix_of(preds, gts255, 4, ignore_label=255))
    for key in ("miou", "pixel_accuracy", "mean_class_accuracy"):
        assert_same(got[key], want[key])


# --- scikit-learn ------------------------------------------------------------------------------

def sklearn_prfs(y_true, y_pred, c, beta, average):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sklearn_metrics.precision_recall_fscore_support(
            y_true, y_pred, labels=list(range(c)), beta=beta, average=average,
            zero_division=numpy.nan)


def label_samples(seed, c, n, absent_true=(), absent_pred=()):
    rng = numpy.random.RandomState(seed)
    t_choices = [k for k in range(c) if k not in absent_true]
    p_choices = [k for k in range(c) if k not in absent_pred]
    t = rng.choice(t_choices, size=n)
    p = numpy.where(rng.rand(n) < 0.5, t, rng.choice(p_choices, size=n))
    p = numpy.where(numpy.isin(p, absent_pred), p_choices[0], p)
    return t.astype(numpy.int64), p.astype(numpy.int64)


CASES = [  # (c, n, absent from truth, absent from predictions)
    (2, 30, (), ()), (5, 80, (), ()), (6, 50, (2,), ()), (6, 50, (), (4,)),
    (6, 50, (1,), (1,)), (7, 40, (0, 5), (3,)), (3, 1, (), ()), (10, 25, (), ()),
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0, 0.0, math.inf])
@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
def test_classification_matches_sklearn(seed, case, beta, average):
    c, n, absent_true, absent_pred = case
    t, p = label_samples(seed, c, n, absent_true, absent_pred)
    want = sklearn_prfs(t, p, c, beta, average)
    got = classification_scores(confusion_matrix(p, t, c), beta=beta, average=average)
    for key, w in zip(("precision", "recall", "fbeta"), want):
        assert_same(got[key], w, rtol=1e-15)
        if average is None:
            assert got[key].dtype == numpy.float64 and got[key].shape == (c,)
        else:
            assert isinstance(got[key], numpy.float64)
    if average is None:
        numpy.testing.assert_array_equal(got["support"], want[3])
        assert got["support"].dtype == numpy.int64
    else:
        assert got["support"] is None and want[3] is None


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
def test_classification_with_ignored_samples_matches_sklearn_on_the_kept_ones(average):
    t, p = label_samples(7, 5, 60, absent_true=(3,))
    t = t.copy()
    t[::4] = -1
    got = classification_scores(confusion_matrix(p, t, 5, ignore_label=-1), average=average)
    keep = t != -1
    want = sklearn_prfs(t[keep], p[keep], 5, 1.0, average)
    for key, w in zip(("precision", "recall", "fbeta"), want):
        assert_same(got[key], w, rtol=1e-15)


def test_weighted_falls_back_to_plain_mean_when_kept_supports_are_zero():
    # Only class 1 is ever predicted; it never occurs in truth, so every non-NaN precision has
    # support 0 (the situation where scikit-learn averages without weights).
    m = numpy.array([[0, 2], [0, 0]])
    got = classification_scores(m, average="weighted")
    assert got["precision"] == 0.0
    want = sklearn_prfs([0, 0], [1, 1], 2, 1.0, "weighted")
    assert_same(got["precision"], want[0])
    assert_same(got["recall"], want[1])
    assert_same(got["fbeta"], want[2])


@pytest.mark.parametrize("c", [0, 1, 4])
@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
def test_classification_empty_matrix(c, average):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = classification_scores(numpy.zeros((c, c), numpy.int64), average=average)
    for key in ("precision", "recall", "fbeta"):
        assert numpy.isnan(got[key]).all()
    if average is None:
        assert got["support"].shape == (c,) and not got["support"].any()


def test_argument_errors():
    m = numpy.eye(3, dtype=numpy.int64)
    with pytest.raises(ValueError, match="average"):
        classification_scores(m, average="binary")
    with pytest.raises(ValueError, match="beta"):
        classification_scores(m, beta=-1)
    with pytest.raises(ValueError, match="beta"):
        classification_scores(m, beta=math.nan)
    with pytest.raises(TypeError, match="beta"):
        classification_scores(m, beta="1")
    with pytest.raises(ValueError, match="square"):
        segmentation_scores(numpy.zeros((2, 3), numpy.int64))
    with pytest.raises(ValueError, match="negative"):
        classification_scores(-m)
    with pytest.raises(ValueError, match="integer"):
        segmentation_scores(m * 0.5)


def test_exported():
    assert fusedmetrics.segmentation_scores is segmentation_scores
    assert fusedmetrics.classification_scores is classification_scores
    assert {"segmentation_scores", "classification_scores"} <= set(fusedmetrics.__all__)


# --- chainer.functions.classification_summary, per batch ----------------------------------------

@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_per_batch_matches_chainer_classification_summary_where_defined(seed, beta):
    pytest.importorskip("chainer")
    import chainer.functions as F
    rng = numpy.random.RandomState(seed)
    c, n = 6, 40
    y = rng.randn(n, c).astype(numpy.float32)
    y[:, 2] -= 10  # class 2 is (almost) never predicted
    t = rng.randint(0, c, size=n).astype(numpy.int32)
    t[t == 4] = 5  # class 4 never true
    t[::7] = -1
    with warnings.catch_warnings(), numpy.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        want = [v.array for v in F.classification_summary(y, t, label_num=c, beta=beta,
                                                           ignore_label=-1)]
    got = classification_scores(confusion_matrix(y, t, c, ignore_label=-1), beta=beta)
    for key, w in zip(("precision", "recall", "fbeta"), want[:3]):
        defined = ~numpy.isnan(w)
        assert defined.any()
        numpy.testing.assert_allclose(got[key][defined], w[defined], rtol=1e-14)
    numpy.testing.assert_array_equal(got["support"], want[3])


def test_matrix_from_torch_and_dlpack_producers():
    """A torch tensor (as confusion_matrix returns for torch input) and a DLPack-only producer
    give the same scores as the numpy matrix."""
    rng = numpy.random.default_rng(11)
    m = rng.integers(0, 50, (5, 5)).astype(numpy.int64)
    inputs = [DLPackOnly(m)]
    try:
        import torch
        inputs.append(torch.from_numpy(m))
    except ImportError:
        pass
    expected_seg, expected_cls = fusedmetrics.segmentation_scores(m), fusedmetrics.classification_scores(m)
    for x in inputs:
        seg, cls = fusedmetrics.segmentation_scores(x), fusedmetrics.classification_scores(x)
        for k in expected_seg:
            numpy.testing.assert_array_equal(seg[k], expected_seg[k])
        for k in expected_cls:
            numpy.testing.assert_array_equal(cls[k], expected_cls[k])
