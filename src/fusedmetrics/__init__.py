"""fusedmetrics: fused, exact metric bookkeeping for training and evaluation loops."""
from ._version import version as _version
from ._info import build_info, cuda_available, get_num_threads, set_num_threads
from ._accuracy import accuracy, accuracy_counts
from .planner import (clear_planner_wisdom, get_planner, load_planner_wisdom, planner_decisions, planner_wisdom,
                      set_planner)
from ._binary_accuracy import binary_accuracy, binary_accuracy_counts
from .confusion import ConfusionMatrix, confusion_matrix
from .multi_node import create_multi_node_evaluator, scatter_dataset
from .chainer_compat import install_chainer_reporter, uninstall_chainer_reporter
from .summary import DictSummary, Summary
from .scores import classification_scores, segmentation_scores

__version__ = _version()

__all__ = [
    "ConfusionMatrix",
    "DictSummary",
    "Summary",
    "accuracy",
    "accuracy_counts",
    "binary_accuracy",
    "binary_accuracy_counts",
    "build_info",
    "clear_planner_wisdom",
    "classification_scores",
    "confusion_matrix",
    "create_multi_node_evaluator",
    "cuda_available",
    "get_num_threads",
    "get_planner",
    "install_chainer_reporter",
    "load_planner_wisdom",
    "planner_decisions",
    "planner_wisdom",
    "scatter_dataset",
    "segmentation_scores",
    "set_num_threads",
    "set_planner",
    "uninstall_chainer_reporter",
]
