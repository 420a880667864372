"""Exact confusion matrices: ``confusion_matrix`` (one call) and ``ConfusionMatrix``
(the accumulator).

Semantics, on every backend: ``m[i, j]`` counts the samples with true label i
predicted as j. Predictions are either integer labels of t's shape or come from
scores (N, C, d1, ...) (the layout rules of ``accuracy_counts``) by numpy's
argmax: the first maximum wins ties (-0.0 equals +0.0), NaN counts as the
maximum and the first NaN wins. Samples whose true label equals ``ignore_label``
are skipped. Counts are int64, exact and order-independent, so results are
deterministic whatever the threads or the GPU schedule.

A non-ignored true or predicted label outside [0, C) is an error. On the host it
is a ValueError naming the label and the sample, and nothing is counted. On a
GPU, raising would need a host synchronisation: ``ConfusionMatrix`` counts such
samples in ``invalid`` (not in the matrix) and ``compute()`` raises; the
one-call ``confusion_matrix`` on device arrays leaves them out silently (use
the accumulator when labels may be out of range).

Differences from the references: scikit-learn's ``confusion_matrix`` ignores
labels outside ``labels``; here they are an error. TorchMetrics builds a C x C
temporary per update; here nothing is allocated beyond the matrix itself (and
small per-thread tables on the CPU).
"""
import operator

import numpy as np

from . import _confusion_host, _snapshot
from ._interop import from_dlpack, host_readable, is_torch_tensor, loaded_torch, to_host, torch_out_view, unwrap
from ._interop import is_device_array as _is_device

__all__ = ["ConfusionMatrix", "confusion_matrix"]


def _check_ignore(ignore_label):
    if ignore_label is None:
        return None
    try:
        return int(ignore_label.__index__())
    except (AttributeError, TypeError):
        raise TypeError("ignore_label must be None or an integer; got %r" % (ignore_label,)) from None


def _same_device(y, t):
    y_dev, t_dev = _is_device(y), _is_device(t)
    if y_dev != t_dev:
        raise ValueError("y and t must be on the same device; got y on %s and t on %s"
                         % ("a GPU" if y_dev else "the host", "a GPU" if t_dev else "the host"))
    return y_dev


def confusion_matrix(y, t, num_classes, ignore_label=None, *, out=None):
    """The int64 (C, C) confusion matrix of predictions y against true labels t.

    Args:
        y: scores (N, C, d1, ...) of a float dtype (float16, bfloat16, float32,
            float64; the layouts ``accuracy_counts`` takes, C == num_classes), or
            integer predictions of t's shape.
        t: integer true labels (N, d1, ...) (any shape with integer predictions).
        num_classes: C.
        ignore_label: samples whose true label equals it are skipped.
        out: an int64 (C, C) array on y's device; the counts are ADDED into it and
            it is returned.

    ``m[i, j]`` counts samples with true label i predicted as j (rows are truth, as
    in scikit-learn). A non-ignored label outside [0, C): ValueError on the host,
    nothing added to ``out``; on a GPU such samples are left out (see the module
    docstring). numpy in, numpy out; CuPy (``__cuda_array_interface__``) in, CuPy
    out on y's stream (CuPy's current one for CuPy arrays) without a host
    synchronisation; a torch tensor y (CPU or CUDA, any ``requires_grad``, bfloat16
    too) in, a torch int64 tensor out on its device (no CuPy needed), or ``out``
    itself (a torch or numpy int64 (C, C) on the host for a CPU tensor). Other
    ``__dlpack__`` producers (JAX, ...) are read in place as numpy or CuPy arrays.
    """
    num_classes = _confusion_host.check_num_classes(num_classes)
    ignore_label = _check_ignore(ignore_label)
    if type(y) is np.ndarray and type(t) is np.ndarray:
        return _confusion_host.counts(y, t, num_classes, ignore_label, out)
    y, t = from_dlpack(unwrap(y)), from_dlpack(unwrap(t))
    if _same_device(y, t):
        from . import _device_confusion
        return _device_confusion.counts(y, t, num_classes, ignore_label, out, None)
    if is_torch_tensor(y):
        return _torch_host_counts(y, t, num_classes, ignore_label, out)
    return _host_counts(y, t, num_classes, ignore_label, out)


def _host_counts(y, t, num_classes, ignore_label, out):
    """Host inputs of any kind (numpy, CPU torch tensors, buffers) read in place."""
    y, y_dtype = host_readable(y, "y")
    t = host_readable(t, "t")[0]
    return _confusion_host.counts(y, t, num_classes, ignore_label, out, y_dtype)


def _torch_host_counts(y, t, num_classes, ignore_label, out):
    """A CPU torch y: the counts as a torch int64 tensor (sharing the new matrix's
    memory), or added into ``out``, a torch or numpy int64 (C, C) on the host."""
    torch = loaded_torch()
    if out is None:
        return torch.from_numpy(_host_counts(y, t, num_classes, ignore_label, None))
    if not is_torch_tensor(out):
        return _host_counts(y, t, num_classes, ignore_label, out)
    shape = (num_classes, num_classes)
    if out.device.type != "cpu" or out.dtype != torch.int64 or tuple(out.shape) != shape:
        raise ValueError("out must be an int64 tensor of shape %s on the host; got dtype %s, shape %s on %s"
                         % (shape, out.dtype, tuple(out.shape), out.device))
    _host_counts(y, t, num_classes, ignore_label, torch_out_view(out))  # the tensor's memory: the counts land in it
    return out


_INT64_MAX = 2 ** 63 - 1


def _check_state(matrix, invalid, num_classes, where):
    """A validated host (matrix, invalid) pair, or an error naming ``where``."""
    matrix = np.asarray(matrix)
    if matrix.shape != (num_classes, num_classes) or matrix.dtype.kind not in "iu":
        raise ValueError("%s: the matrix must be integer of shape (%d, %d); got dtype %s, shape %s"
                         % (where, num_classes, num_classes, matrix.dtype, matrix.shape))
    if (matrix < 0).any():
        raise ValueError("%s: the matrix has negative counts" % where)
    if matrix.size and int(matrix.max()) > _INT64_MAX:  # uint64 counts int64 cannot hold
        raise ValueError("%s: the matrix has counts beyond int64 (max %d)" % (where, int(matrix.max())))
    invalid = np.asarray(invalid)
    if invalid.shape != () or invalid.dtype.kind not in "iu" or not 0 <= int(invalid) <= _INT64_MAX:
        raise ValueError("%s: invalid must be an integer in [0, 2**63); got %r" % (where, invalid))
    return matrix.astype(np.int64), int(invalid)


class ConfusionMatrix:
    """A running confusion matrix: exact int64 counts, on the host or on a GPU.

    ``update(y, t)`` adds a batch (see ``confusion_matrix`` for y and t). The
    state lives where the first update's arrays live (the host until then); an
    update with arrays on another device is a ValueError. On a GPU, ``update``
    never synchronises with the host (it can be captured in a CUDA graph once the
    state exists); samples with a label outside [0, C) are counted in
    ``invalid`` instead of raising, and ``compute()`` raises for them. On the host
    they raise in ``update`` (nothing is added), so ``invalid`` stays 0.

    ``matrix``: the int64 (C, C) counts on the state's device (a torch tensor when
    the first device update was a torch tensor, else a CuPy array; numpy on the
    host, whatever the host input); ``invalid``: a 0-d int64 array there. ``merge(other)`` adds another accumulator's counts.
    ``state_dict()``/``load_state_dict()`` and ``serialize(serializer)`` (Chainer
    snapshots: keys ``matrix`` and ``invalid``) save and restore them.
    """

    def __init__(self, num_classes, ignore_label=None):
        self.num_classes = _confusion_host.check_num_classes(num_classes)
        self.ignore_label = _check_ignore(ignore_label)
        self._torch_user = False  # torch input seen: state_dict() then holds torch tensors
        self.reset()

    def reset(self):
        """Zero counts, on the host (the next update chooses the device again)."""
        c = self.num_classes
        self._matrix = np.zeros((c, c), dtype=np.int64)
        self._invalid = np.zeros((), dtype=np.int64)
        self._device = False
        # Device state is written on several streams: launches add atomically on their
        # arrays' stream (they may overlap each other), while zeroing, merge and load
        # rewrite it on one stream. Each access is ordered after the writes it must follow.
        self._writer = None           # stream of the last whole-state write
        self._launch_streams = set()  # streams of the launches since then

    @property
    def matrix(self):
        return self._matrix

    @property
    def invalid(self):
        return self._invalid

    def _to_device(self, array):
        """Zero state on the device of ``array``, allocated and zeroed on its launch
        stream (the host state it replaces is zero: ``update`` checks). torch tensors
        get torch state (torch users need no CuPy), anything else CuPy state."""
        from ._device_streams import zeros
        from ._interop import describe
        d = describe(array, "y")
        c = self.num_classes
        if is_torch_tensor(array):  # torch's current stream of the device is the launch stream
            torch = loaded_torch()
            self._matrix = torch.zeros((c, c), dtype=torch.int64, device=array.device)
            self._invalid = torch.zeros((), dtype=torch.int64, device=array.device)
        else:
            self._matrix = zeros((c, c), d.device_id, d.stream_ptr)
            self._invalid = zeros((), d.device_id, d.stream_ptr)
        self._device = True
        self._device_id, self._writer, self._launch_streams = d.device_id, d.stream_ptr, set()

    def _torch_state(self):
        return self._device and is_torch_tensor(self._matrix)

    def _current_stream(self):
        """The current stream of the state's framework (torch's or CuPy's) on its device:
        where merge, load and reads run."""
        if self._torch_state():
            return loaded_torch().cuda.current_stream(self._device_id).cuda_stream
        from ._interop import current_stream_ptr, require_cupy
        return current_stream_ptr(require_cupy(), self._device_id)

    def _as_state_array(self, x):
        """x (host or device, any framework) as an array of the state's framework on
        its device, for the current stream's arithmetic."""
        if self._torch_state():
            return loaded_torch().as_tensor(x, device=self._matrix.device)
        import cupy
        return cupy.asarray(x)

    def _order_before(self, stream):
        """Orders ``stream`` after every write into the device state (no host sync)."""
        from ._device_streams import wait_for
        for writer in self._launch_streams | {self._writer}:
            wait_for(writer, stream, self._device_id)

    def _host_state(self):
        """(matrix, invalid) as host copies; device state is read on CuPy's current stream,
        after every write into it (synchronises)."""
        if not self._device:
            return self._matrix.copy(), int(self._invalid)
        self._order_before(self._current_stream())
        return to_host(self._matrix), int(to_host(self._invalid))

    def _rewritten_on(self, stream):
        self._writer, self._launch_streams = stream, set()

    def update(self, y, t):
        """Adds the counts of one batch; returns self. A refused batch adds nothing and
        leaves the state where it was (a refused first device batch: on the host)."""
        if is_torch_tensor(y) or is_torch_tensor(t):
            self._torch_user = True
        y, t = from_dlpack(unwrap(y)), from_dlpack(unwrap(t))
        on_device = _same_device(y, t)
        if on_device and not self._device:
            if self._matrix.any() or int(self._invalid):
                raise ValueError("ConfusionMatrix: the state is on the host; got device arrays (reset() first)")
            host = self._matrix, self._invalid
            self._to_device(y)
            try:
                self._device_update(y, t)
            except BaseException:
                self._matrix, self._invalid = host
                self._device = False
                raise
        elif not on_device and self._device:
            raise ValueError("ConfusionMatrix: the state is on a GPU; got host arrays")
        elif on_device:
            self._device_update(y, t)
        else:
            _host_counts(y, t, self.num_classes, self.ignore_label, self._matrix)
        return self

    def _device_update(self, y, t):
        # One launch on y's stream, after t's and after the last whole-state write; the
        # arguments are checked before it, so a refused batch adds nothing.
        from . import _device_confusion
        from ._device_streams import wait_for
        from ._interop import describe
        launch = describe(y, "y").stream_ptr
        wait_for(self._writer, launch, self._device_id)
        _device_confusion.counts(y, t, self.num_classes, self.ignore_label, self._matrix, self._invalid)
        self._launch_streams.add(launch)

    def compute(self):
        """The matrix as a host numpy int64 (C, C) array (synchronises on a GPU).

        Raises ValueError when samples with a label outside [0, C) were seen."""
        matrix, invalid = self._host_state()
        if invalid:
            raise ValueError("ConfusionMatrix: %d non-ignored samples had a true or predicted label outside "
                             "[0, %d); they are not in the matrix" % (invalid, self.num_classes))
        return matrix

    def merge(self, other):
        """Adds another ConfusionMatrix's counts (same num_classes); returns self."""
        if not isinstance(other, ConfusionMatrix):
            raise TypeError("ConfusionMatrix.merge expects a ConfusionMatrix; got %s" % type(other).__name__)
        if other.num_classes != self.num_classes:
            raise ValueError("ConfusionMatrix.merge: num_classes %d and %d differ"
                             % (self.num_classes, other.num_classes))
        if self._device:
            stream = self._current_stream()
            self._order_before(stream)
            if other._device:
                other._order_before(stream)
            self._matrix += self._as_state_array(other._matrix)
            self._invalid += self._as_state_array(other._invalid)
            self._rewritten_on(stream)
        elif other._device:
            matrix, invalid = other._host_state()
            self._matrix += matrix
            self._invalid += invalid
        else:
            self._matrix += other._matrix
            self._invalid += other._invalid
        return self

    def state_dict(self):
        """``{'num_classes', 'ignore_label', 'matrix' (host int64 copy), 'invalid' (int)}``.
        Once an update took torch tensors, ``matrix`` is a torch CPU tensor (else numpy), so
        a torch checkpoint holding it loads with ``torch.load(..., weights_only=True)``."""
        matrix, invalid = self._host_state()
        if self._torch_user:
            matrix = loaded_torch().from_numpy(matrix)
        return {"num_classes": self.num_classes, "ignore_label": self.ignore_label, "matrix": matrix,
                "invalid": invalid}

    def load_state_dict(self, state_dict):
        """Replaces the counts (validated first: nothing changes on error). The state
        stays on its current device."""
        try:
            num_classes, matrix, invalid = (state_dict[k] for k in ("num_classes", "matrix", "invalid"))
        except (KeyError, TypeError) as exc:
            raise ValueError("ConfusionMatrix.load_state_dict: needs 'num_classes', 'matrix' and 'invalid'; "
                             "got %s (%s)" % (type(state_dict).__name__, exc)) from exc
        try:
            saved_classes = operator.index(num_classes.item() if hasattr(num_classes, "item") else num_classes)
        except TypeError:
            saved_classes = None
        if saved_classes != self.num_classes:
            raise ValueError("ConfusionMatrix.load_state_dict: num_classes %r, expected %d"
                             % (num_classes, self.num_classes))
        self._replace(*_check_state(matrix, invalid, self.num_classes, "ConfusionMatrix.load_state_dict"))

    def _replace(self, matrix, invalid):
        if self._device:
            stream = self._current_stream()
            self._order_before(stream)  # no launch may add into what is being replaced
            self._matrix[...] = self._as_state_array(matrix)
            self._invalid[...] = invalid
            self._rewritten_on(stream)
        else:
            self._matrix = matrix
            self._invalid = np.asarray(invalid, dtype=np.int64)

    def serialize(self, serializer):
        """Chainer's serializer protocol: keys ``matrix`` (int64 (C, C)) and ``invalid``."""
        if _snapshot.is_writer(serializer):
            matrix, invalid = self._host_state()
            serializer("matrix", matrix)
            serializer("invalid", np.asarray(invalid, dtype=np.int64))
            return
        try:
            matrix = serializer("matrix", None)
            invalid = serializer("invalid", None)
        except KeyError:  # a strict deserializer without our keys
            return
        if matrix is None or invalid is None:
            return  # nothing stored: keep the counts, as Chainer's objects do
        self._replace(*_check_state(matrix, invalid, self.num_classes, "snapshot"))

    def __repr__(self):
        return "ConfusionMatrix(num_classes=%d, ignore_label=%r)" % (self.num_classes, self.ignore_label)
