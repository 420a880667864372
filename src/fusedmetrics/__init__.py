"""fusedmetrics: fused, exact metric bookkeeping for training and evaluation loops."""
from ._info import build_info, cuda_available, get_num_threads, set_num_threads
from .accuracy import accuracy, accuracy_counts

__version__ = "0.1.0"

__all__ = [
    "accuracy",
    "accuracy_counts",
    "build_info",
    "cuda_available",
    "get_num_threads",
    "set_num_threads",
]
