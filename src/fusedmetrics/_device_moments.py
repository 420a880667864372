"""Per-key float64 moments of the device values of one Summary/DictSummary.

Nothing on the ``add`` path synchronises with the host (no ``.get()``, no
``int()``/``float()`` of a device value, no allocation once the table is large
enough), so a caller can capture it in a CUDA graph.

The table lives in the framework of the first device value: CuPy for CuPy (and
other ``__cuda_array_interface__``) values, torch for torch CUDA tensors, whose
users need no CuPy; launches go to that framework's current stream, after an event
wait on each other stream a value or weight was produced on.
"""
import sys

import numpy as np

from ._device_streams import wait_for
from ._dtypes import scalar_code
from ._interop import (cuda_module, current_stream_ptr, describe, is_device_array, is_torch_tensor, require_cupy,
                       torch_readable)

__all__ = ["DeviceMomentStore"]


class _CupyTables:
    """Allocation, pointers and the stream of CuPy tables."""

    def __init__(self, device_id):
        self.cupy = require_cupy()
        self.device_id = device_id

    def zeros(self, shape):
        with self.cupy.cuda.Device(self.device_id):
            return self.cupy.zeros(shape, dtype=self.cupy.float64)

    def upload(self, array):
        with self.cupy.cuda.Device(self.device_id):
            return self.cupy.asarray(array)

    def ptr(self, array):
        return array.data.ptr

    def stream(self):
        return current_stream_ptr(self.cupy, self.device_id)

    def to_host(self, array):
        return array.get()

    def capturing(self):
        """Whether the launch stream is capturing a CUDA graph (an error while another
        stream captures in global mode counts as capturing: allocating would break it)."""
        try:
            with self.cupy.cuda.Device(self.device_id):
                return self.cupy.cuda.runtime.streamIsCapturing(self.stream()) != 0
        except self.cupy.cuda.runtime.CUDARuntimeError:
            return True


class _TorchTables:
    """The same for torch tensors: torch's caching allocator and current stream."""

    def __init__(self, device_id):
        self.torch = sys.modules["torch"]
        self.device = self.torch.device("cuda", device_id)

    def zeros(self, shape):
        return self.torch.zeros(shape, dtype=self.torch.float64, device=self.device)

    def upload(self, array):
        return self.torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def ptr(self, array):
        return array.data_ptr()

    def stream(self):
        return self.torch.cuda.current_stream(self.device).cuda_stream

    def to_host(self, array):
        return array.cpu().numpy()

    def capturing(self):
        with self.torch.cuda.device(self.device):
            return self.torch.cuda.is_current_stream_capturing()


class DeviceMomentStore:
    """Per-slot float64 moments (W, mean, M2) kept on one device.

    ``add`` folds the values of one ``DictSummary.add`` into the table with ONE
    kernel launch (per 128 values) on CuPy's current stream of the device, and
    never synchronises: the table grows on the device (allocation + device copy,
    both stream-ordered) when a slot beyond its capacity appears. Keep one store's
    calls on one stream, as with any CuPy code. Grow it before capturing a CUDA graph
    (an add() that needs to grow allocates; during a capture it raises RuntimeError).

    Deliberate difference from the host path: a negative or NaN *device* weight
    cannot raise without a host sync, so it turns that slot's state into NaN
    (host weights are still checked and raise ValueError).
    """

    def __init__(self, device_id, framework="cupy"):
        self.device_id = int(device_id)
        self.framework = framework
        self._tables = None  # made on first use: CuPy is imported only then
        self._state = None  # float64 (capacity, 3) CuPy array or torch tensor
        self._capacity = 0

    @classmethod
    def for_value(cls, value):
        """A store in value's framework, on its device."""
        return cls(describe(value).device_id, "torch" if is_torch_tensor(value) else "cupy")

    def _backend(self):
        if self._tables is None:
            self._tables = (_TorchTables if self.framework == "torch" else _CupyTables)(self.device_id)
        return self._tables

    @property
    def capacity(self) -> int:
        return self._capacity

    def _grow(self, needed):
        if self._backend().capturing():
            # The allocation and zeroing would be recorded into the graph: every replay
            # would re-zero the table and lose what earlier replays added.
            raise RuntimeError(
                f"the device moment table must grow to {needed} slots (it has {self._capacity}) while the "
                "stream is capturing a CUDA graph; add every key once before capturing")
        capacity = max(16, 2 * self._capacity, needed)
        table = self._backend().zeros((capacity, 3))
        if self._state is not None:
            table[: self._capacity] = self._state  # a stream-ordered device copy
        self._state = table
        self._capacity = capacity

    def _operand(self, value, what, index, keep, streams):
        """(ptr, scalar code) of a one-element device array on this store's device. A
        torch copy made to resolve a pending negation goes into ``keep`` (it must live
        until the launch is queued: torch's allocator would hand its block to the next
        operand); the stream the value was produced on goes into ``streams``."""
        if is_torch_tensor(value):
            value = torch_readable(value)
            keep.append(value)
        info = describe(value, f"{what}[{index}]")
        streams.add(info.stream_ptr)
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
        or numpy numbers (checked here: negative, NaN or inf raises ValueError) or
        one-element device arrays. Everything is checked before anything is launched.
        """
        n = len(slots)
        if len(values) != n or len(weights) != n:
            raise ValueError(
                f"slots, values and weights must have the same length, got {n}, {len(values)}, {len(weights)}"
            )
        if n == 0:
            return
        tables = self._backend()
        slots = [int(s) for s in slots]
        if min(slots) < 0:
            raise ValueError(f"slots must be >= 0, got {min(slots)}")
        x_ptrs, x_codes, w_ptrs, w_codes, w_consts = [], [], [], [], []
        keep, streams = [], set()
        for i in range(n):
            ptr, code = self._operand(values[i], "values", i, keep, streams)
            x_ptrs.append(ptr)
            x_codes.append(code)
            w = weights[i]
            if is_device_array(w):
                ptr, code = self._operand(w, "weights", i, keep, streams)
                w_ptrs.append(ptr)
                w_codes.append(code)
                w_consts.append(0.0)
            else:
                wf = float(w)
                if not 0.0 <= wf < float("inf"):  # inf would turn the slot's mean into NaN
                    raise ValueError(f"weights[{i}] must be finite and >= 0, got {w!r}")
                w_ptrs.append(0)
                w_codes.append(0)
                w_consts.append(wf)
        needed = max(slots) + 1
        if needed > self._capacity:
            self._grow(needed)
        launch = tables.stream()
        for produced_on in streams:  # values made on another stream: an event wait, no sync
            wait_for(produced_on, launch, self.device_id)
        cuda_module().summary_update(
            slots, x_ptrs, x_codes, w_ptrs, w_codes, w_consts,
            tables.ptr(self._state), self.device_id, launch, self._capacity,
        )
        del keep  # the launch is queued: torch's stream-ordered allocator may reuse the copies

    def statistics(self, slots, host_moments):
        """(means, stds) as float64 device arrays (CuPy or torch) of len(slots): the Chan merge of
        host_moments[i] (numpy (len, 3) [W, mean, M2], zeros where a key has no host
        part) with the device state of slots[i]; population std, variance clamped at
        0. One small upload and one launch; no synchronisation. A slot at or beyond
        the capacity has no device part (its device state counts as zeros)."""
        tables = self._backend()
        n = len(slots)
        host = np.ascontiguousarray(host_moments, dtype=np.float64).reshape(n, 3)
        slot_arr = np.asarray(slots, dtype=np.int64).reshape(n)
        if n and slot_arr.min() < 0:
            raise ValueError(f"slots must be >= 0, got {int(slot_arr.min())}")
        out = tables.zeros((2, n))  # one allocation: row 0 means, row 1 stds
        means, stds = out[0], out[1]
        if n == 0:
            return means, stds
        if self._capacity == 0 or slot_arr.max() >= self._capacity:
            self._grow(int(slot_arr.max()) + 1)  # missing device parts read as zeros
        d_slots = tables.upload(slot_arr)
        d_host = tables.upload(host)
        cuda_module().summary_statistics(
            tables.ptr(self._state), self._capacity, tables.ptr(d_slots), tables.ptr(d_host), n,
            tables.ptr(means), tables.ptr(stds), self.device_id, tables.stream(),
        )
        return means, stds

    def to_host(self):
        """numpy float64 (capacity, 3) copy of the table. Synchronises (serialize, state_dict, merge only)."""
        if self._state is None:
            return np.zeros((0, 3), dtype=np.float64)
        return self._backend().to_host(self._state)
