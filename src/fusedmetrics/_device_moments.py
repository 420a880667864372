"""Per-key float64 moments of the device values of one Summary/DictSummary.

Nothing on the ``add`` path synchronises with the host (no ``.get()``, no
``int()``/``float()`` of a device value, no allocation once the table is large
enough), so a caller can capture it in a CUDA graph.
"""
import numpy as np

from ._dtypes import scalar_code
from ._interop import cuda_module, current_stream_ptr, describe, is_device_array, require_cupy

__all__ = ["DeviceMomentStore"]


class DeviceMomentStore:
    """Per-slot float64 moments (W, mean, M2) kept on one device.

    ``add`` folds the values of one ``DictSummary.add`` into the table with ONE
    kernel launch (per 128 values) on CuPy's current stream of the device, and
    never synchronises: the table grows on the device (allocation + device copy,
    both stream-ordered) when a slot beyond its capacity appears. Keep one store's
    calls on one stream, as with any CuPy code. Grow it before capturing a CUDA graph
    (an add() that needs to grow allocates).

    Deliberate difference from the host path: a negative or NaN *device* weight
    cannot raise without a host sync, so it turns that slot's state into NaN
    (host weights are still checked and raise ValueError).
    """

    def __init__(self, device_id):
        self.device_id = int(device_id)
        self._state = None  # cupy float64 (capacity, 3)
        self._capacity = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def _stream_ptr(self, cupy):
        return current_stream_ptr(cupy, self.device_id)

    def _grow(self, cupy, needed):
        capacity = max(16, 2 * self._capacity, needed)
        with cupy.cuda.Device(self.device_id):
            table = cupy.zeros((capacity, 3), dtype=cupy.float64)
            if self._state is not None:
                table[: self._capacity] = self._state
        self._state = table
        self._capacity = capacity

    def _operand(self, value, what, index):
        """(ptr, scalar code) of a one-element device array on this store's device."""
        info = describe(value)
        ptr, dev, dtype, size = info.ptr, info.device_id, info.dtype, info.size
        if size != 1:
            raise ValueError(f"{what}[{index}] must be a scalar (one element), got {size} elements")
        if dev != self.device_id:
            raise ValueError(f"{what}[{index}] is on device {dev} but this summary's device values are on {self.device_id}")
        try:
            code = scalar_code(dtype)
        except (TypeError, ValueError, KeyError):
            code = None
        if code is None:
            raise TypeError(f"{what}[{index}] has unsupported dtype {dtype} (expected a float, integer or bool scalar)")
        return ptr, code

    def add(self, slots, values, weights):
        """Folds values[i] with weights[i] into slot slots[i]; one launch, no sync.

        values: one-element device arrays (any float/int/bool dtype); weights: Python
        or numpy numbers (checked here: negative or NaN raises ValueError) or
        one-element device arrays. Everything is checked before anything is launched.
        """
        n = len(slots)
        if len(values) != n or len(weights) != n:
            raise ValueError(
                f"slots, values and weights must have the same length, got {n}, {len(values)}, {len(weights)}"
            )
        if n == 0:
            return
        cupy = require_cupy()
        slots = [int(s) for s in slots]
        if min(slots) < 0:
            raise ValueError(f"slots must be >= 0, got {min(slots)}")
        x_ptrs, x_codes, w_ptrs, w_codes, w_consts = [], [], [], [], []
        for i in range(n):
            ptr, code = self._operand(values[i], "values", i)
            x_ptrs.append(ptr)
            x_codes.append(code)
            w = weights[i]
            if is_device_array(w):
                ptr, code = self._operand(w, "weights", i)
                w_ptrs.append(ptr)
                w_codes.append(code)
                w_consts.append(0.0)
            else:
                wf = float(w)
                if not wf >= 0.0:
                    raise ValueError(f"weights[{i}] must be >= 0, got {w!r}")
                w_ptrs.append(0)
                w_codes.append(0)
                w_consts.append(wf)
        needed = max(slots) + 1
        if needed > self._capacity:
            self._grow(cupy, needed)
        cuda_module().summary_update(
            slots, x_ptrs, x_codes, w_ptrs, w_codes, w_consts,
            self._state.data.ptr, self.device_id, self._stream_ptr(cupy), self._capacity,
        )

    def statistics(self, slots, host_moments):
        """(means, stds) as CuPy float64 arrays of len(slots): the Chan merge of
        host_moments[i] (numpy (len, 3) [W, mean, M2], zeros where a key has no host
        part) with the device state of slots[i]; population std, variance clamped at
        0. One small upload and one launch; no synchronisation. A slot at or beyond
        the capacity has no device part (its device state counts as zeros)."""
        cupy = require_cupy()
        n = len(slots)
        host = np.ascontiguousarray(host_moments, dtype=np.float64).reshape(n, 3)
        slot_arr = np.asarray(slots, dtype=np.int64).reshape(n)
        if n and slot_arr.min() < 0:
            raise ValueError(f"slots must be >= 0, got {int(slot_arr.min())}")
        with cupy.cuda.Device(self.device_id):
            means = cupy.empty(n, dtype=cupy.float64)
            stds = cupy.empty(n, dtype=cupy.float64)
            if n == 0:
                return means, stds
            if self._capacity == 0 or slot_arr.max() >= self._capacity:
                self._grow(cupy, int(slot_arr.max()) + 1)  # missing device parts read as zeros
            d_slots = cupy.asarray(slot_arr)
            d_host = cupy.asarray(host)
            cuda_module().summary_statistics(
                self._state.data.ptr, self._capacity, d_slots.data.ptr, d_host.data.ptr, n,
                means.data.ptr, stds.data.ptr, self.device_id, self._stream_ptr(cupy),
            )
        return means, stds

    def to_host(self):
        """numpy float64 (capacity, 3) copy of the table. Synchronises (serialize, state_dict, merge only)."""
        if self._state is None:
            return np.zeros((0, 3), dtype=np.float64)
        return self._state.get()
