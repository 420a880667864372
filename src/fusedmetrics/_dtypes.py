"""Dtype codes shared with the C++ and CUDA code, built from the one table the
extension exports (_core.DTYPE_CODES)."""
import numpy as np

from . import _core

_TABLE = _core.DTYPE_CODES

LOGIT_CODES = {name: code for name, (code, _) in _TABLE["logit"].items()}
LABEL_CODES = {name: code for name, (code, _) in _TABLE["label"].items()}
_SCALAR_CODES = {name: code for name, (code, _) in _TABLE["scalar"].items()}
BOOL_SCALAR_CODE = _SCALAR_CODES["bool"]


def logit_code(dtype):
    """Code of a floating dtype the kernels read, or None."""
    return LOGIT_CODES.get(np.dtype(dtype).name)


def label_code(dtype):
    """Code of an integer label dtype, or None (bool is not a label dtype)."""
    return LABEL_CODES.get(np.dtype(dtype).name)


def scalar_code(dtype):
    """Code of a summary value/weight dtype (floats, integers, bool), or None."""
    return _SCALAR_CODES.get(np.dtype(dtype).name)
