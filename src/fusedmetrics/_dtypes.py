"""Dtype codes shared with the C++ and CUDA code, built from the one table the
extension exports (_core.DTYPE_CODES)."""
import numpy as np

from . import _core

_TABLE = _core.DTYPE_CODES

LOGIT_CODES = {name: code for name, (code, _) in _TABLE["logit"].items()}
LABEL_CODES = {name: code for name, (code, _) in _TABLE["label"].items()}
_SCALAR_CODES = {name: code for name, (code, _) in _TABLE["scalar"].items()}
BOOL_SCALAR_CODE = _SCALAR_CODES["bool"]


def dtype_name(dtype):
    """The table name of a dtype. numpy has no bfloat16 without ml_dtypes, so torch
    bfloat16 input is described by ``_interop.BFLOAT16`` (a stand-in named 'bfloat16')."""
    if getattr(dtype, "name", None) == "bfloat16" or (isinstance(dtype, str) and dtype == "bfloat16"):
        return "bfloat16"
    return np.dtype(dtype).name


def logit_code(dtype):
    """Code of a floating dtype the kernels read, or None."""
    return LOGIT_CODES.get(dtype_name(dtype))


def label_code(dtype):
    """Code of an integer label dtype, or None (bool is not a label dtype)."""
    return LABEL_CODES.get(dtype_name(dtype))


def scalar_code(dtype):
    """Code of a summary value/weight dtype (floats, integers, bool), or None."""
    return _SCALAR_CODES.get(dtype_name(dtype))
