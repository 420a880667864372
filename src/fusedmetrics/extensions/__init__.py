"""Drop-in Chainer trainer extensions backed by fusedmetrics.

``MicroAverage`` and ``Evaluator`` replace Chainer's classes of the same
names; ``SemanticSegmentationEvaluator`` replaces ChainerCV's;
``ClassificationEvaluator`` adds per-class scores to the Evaluator. Any other name (``LogReport``, ``PrintReport``, ``snapshot``, ...) is
looked up in ``chainer.training.extensions``, so this module can replace
``from chainer.training import extensions`` as a whole.
"""
from .classification import ClassificationEvaluator
from .evaluator import Evaluator
from .micro_average import MicroAverage
from .progress_bar import EvaluationProgressBar
from .semantic_segmentation import SemanticSegmentationEvaluator

__all__ = ['ClassificationEvaluator', 'Evaluator', 'EvaluationProgressBar',
           'MicroAverage', 'SemanticSegmentationEvaluator']


def __getattr__(name):
    from chainer.training import extensions as chainer_extensions
    try:
        return getattr(chainer_extensions, name)
    except AttributeError:
        raise AttributeError(
            'module {!r} has no attribute {!r}'.format(__name__, name)) \
            from None
