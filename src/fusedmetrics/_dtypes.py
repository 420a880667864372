"""Dtype codes shared with the C++ and CUDA code (csrc/semantics/dtypes.h)."""
import numpy as np

LOGIT_CODES = {"float16": 0, "bfloat16": 1, "float32": 2, "float64": 3}
LABEL_CODES = {
    "int8": 0, "int16": 1, "int32": 2, "int64": 3,
    "uint8": 4, "uint16": 5, "uint32": 6, "uint64": 7,
}
BOOL_SCALAR_CODE = 12


def logit_code(dtype):
    """Code of a floating dtype the kernels read, or None."""
    return LOGIT_CODES.get(np.dtype(dtype).name)


def label_code(dtype):
    """Code of an integer label dtype, or None (bool is not a label dtype)."""
    return LABEL_CODES.get(np.dtype(dtype).name)


def scalar_code(dtype):
    """Code of a summary value/weight dtype: floats 0-3, integers 4-11, bool 12, else None."""
    name = np.dtype(dtype).name
    if name in LOGIT_CODES:
        return LOGIT_CODES[name]
    if name in LABEL_CODES:
        return 4 + LABEL_CODES[name]
    if name == "bool":
        return BOOL_SCALAR_CODE
    return None
