"""Stream ordering for the device paths, without host synchronisation.

A launch goes to y's stream (see ``_interop``). What else touches the same memory
must be ordered with it: labels produced on another stream (an event wait), and
arrays that CuPy allocates or zeroes for the launch (made on the launch stream, as
CuPy's pool reuses a block in the order of the stream that allocated it).
"""
import contextlib

from . import _interop
from ._interop import require_cupy


def wait_for(producer_stream, launch_stream, device_id):
    """Orders launch_stream after the work queued so far on producer_stream (no-op when equal)."""
    if producer_stream != launch_stream:
        _interop.cuda_module().stream_wait(  # looked up per call: tests swap in a fake
            producer_stream, launch_stream, device_id)


@contextlib.contextmanager
def on_stream(cupy, stream_ptr, device_id):
    """device_id current and stream_ptr CuPy's current stream inside the block."""
    with cupy.cuda.Device(device_id):
        if cupy.cuda.get_current_stream().ptr == stream_ptr:
            yield
        else:
            with foreign_stream(cupy, stream_ptr, device_id):
                yield


def zeros(shape, device_id, stream_ptr):
    """A zeroed int64 CuPy array, allocated and zeroed on stream_ptr so that a launch
    that follows on the same stream sees the zeros."""
    cupy = require_cupy()
    with on_stream(cupy, stream_ptr, device_id):
        return cupy.zeros(shape, dtype=cupy.int64)


class _StreamHandle:
    """A raw stream handle in the CUDA stream protocol (``__cuda_stream__``)."""

    __slots__ = ("ptr",)

    def __init__(self, ptr):
        self.ptr = int(ptr)

    def __cuda_stream__(self):
        return (0, self.ptr)


def foreign_stream(cupy, stream_ptr, device_id):
    """A CuPy stream object for a handle CuPy did not create (call it with
    device_id current). CuPy 14 deprecates ExternalStream (a DeprecationWarning
    on every call) in favour of Stream.from_external; older CuPy has only the former."""
    if hasattr(cupy.cuda.Stream, "from_external"):
        return cupy.cuda.Stream.from_external(_StreamHandle(stream_ptr))
    return cupy.cuda.ExternalStream(stream_ptr, device_id)
