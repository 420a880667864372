"""A host stand-in for ``fusedmetrics._cuda`` and for device arrays, so the Python side
of the device path (argument checks, plan cache, launch arguments) runs without a GPU.

"Device" pointers are the addresses of numpy arrays registered by ``FakeDeviceArray``;
the fake kernels compute with tests/reference.py.
"""
import types

import numpy as np

from fusedmetrics import _dtypes
from reference import top_k_counts

_MEMORY = {}  # pointer -> the numpy array that starts there

_LOGIT_DTYPES = {code: name for name, code in _dtypes.LOGIT_CODES.items()}
_LABEL_DTYPES = {code: name for name, code in _dtypes.LABEL_CODES.items()}


class FakeDeviceArray:
    """A numpy array seen through ``__cuda_array_interface__`` only (device 0)."""

    def __init__(self, array):
        self.array = array
        self.dtype = array.dtype
        self.shape = array.shape
        _MEMORY[array.ctypes.data] = array

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.array.shape, "typestr": self.array.dtype.str, "strides": self.array.strides,
                "data": (self.array.ctypes.data, False), "version": 3, "stream": 7}


class AccuracyPlan:
    """``_cuda.AccuracyPlan``'s API: built once per call shape, launched per call."""

    built = []

    def __init__(self, y_code, N, C, M, y_strides, t_code, t_strides, has_ignore, ignore, k):
        self.y_dtype = np.dtype(_LOGIT_DTYPES[y_code])
        self.t_dtype = np.dtype(_LABEL_DTYPES[t_code])
        self.shape = (N, C, M)
        self.y_strides, self.t_strides = tuple(y_strides), tuple(t_strides)
        self.has_ignore, self.ignore, self.k = has_ignore, ignore, k
        self.launches = []
        AccuracyPlan.built.append(self)

    def launch(self, y_ptr, t_ptr, out_ptr, device_id, stream_ptr):
        self.launches.append((device_id, stream_ptr))
        N, C, M = self.shape
        y = np.lib.stride_tricks.as_strided(
            _MEMORY[y_ptr], (N, C, M), [s * self.y_dtype.itemsize for s in self.y_strides])
        t = np.lib.stride_tricks.as_strided(
            _MEMORY[t_ptr], (N, M), [s * self.t_dtype.itemsize for s in self.t_strides])
        ignore = None
        if self.has_ignore:  # the plan holds the int64 reading; compare in the label's own type
            ignore = self.ignore + 2 ** 64 if self.ignore < 0 and self.t_dtype.kind == "u" else self.ignore
        _MEMORY[out_ptr][:] += top_k_counts(y, t, ignore, self.k)


def module():
    """A fresh fake ``fusedmetrics._cuda``."""
    AccuracyPlan.built.clear()
    return types.SimpleNamespace(AccuracyPlan=AccuracyPlan, pointer_device=lambda ptr: 0)
