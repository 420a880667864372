"""A small synthetic classification dataset, generated deterministically from a seed.

Used by examples/train_classifier.py and the tests; needs only numpy (no
downloads, no Chainer).
"""
import numpy


def make_classification(n_samples, n_features=16, n_classes=5,
                        class_sep=0.6, noise=1.0, seed=0):
    """Gaussian blobs: one centre per class, isotropic noise around it.

    Returns ``(x, t)``: ``x`` float32 of shape ``(n_samples, n_features)`` and
    ``t`` int32 of shape ``(n_samples,)``. The same arguments always give the
    same arrays. Classes overlap (for the default ``class_sep``/``noise``), so
    a classifier reaches a high but not perfect accuracy.
    """
    for name, value in (('n_samples', n_samples), ('n_features', n_features),
                        ('n_classes', n_classes)):
        if int(value) != value or value < (0 if name == 'n_samples' else 1):
            raise ValueError('{} must be a {} integer, got {!r}'.format(
                name, 'non-negative' if name == 'n_samples' else 'positive',
                value))
    rng = numpy.random.RandomState(seed)
    centres = rng.normal(0.0, class_sep, size=(n_classes, n_features))
    t = rng.randint(0, n_classes, size=n_samples).astype(numpy.int32)
    x = centres[t] + rng.normal(0.0, noise, size=(n_samples, n_features))
    return x.astype(numpy.float32), t


def train_test(n_train=1000, n_test=303, seed=0, **kwargs):
    """Two disjoint splits of one generated set: ``((x, t), (x, t))``.

    The default test size is not a multiple of common batch sizes, so the
    last evaluation batch is smaller (where per-batch means are inexact).
    """
    x, t = make_classification(n_train + n_test, seed=seed, **kwargs)
    return (x[:n_train], t[:n_train]), (x[n_train:], t[n_train:])
