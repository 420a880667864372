"""What was built and what this machine can use."""
import operator

from . import _core

#: The most threads one CPU kernel call may use (csrc/cpu/thread_pool.h, kMaxThreads).
MAX_THREADS = 1024

try:  # the CUDA kernels are optional: built only where a CUDA compiler was found
    from . import _cuda
except ImportError:  # pragma: no cover - depends on the build
    _cuda = None


def cuda_available():
    """True when the CUDA kernels were built and a CUDA device is usable."""
    return _cuda is not None and _cuda.device_count() > 0


def build_info():
    """Compiler, CPU instruction sets, threads, the planner mode, and the CUDA build (if any) as a dict.

    Never waits for a running CPU kernel call (safe from any thread)."""
    info = dict(_core.build_info())
    info["cpu_isas_usable"] = list(_core.usable_isas())
    info["cpu_isa_active"] = _core.active_isa()
    info["num_threads"] = _core.get_num_threads()
    info["planner"] = _core.planner_mode()
    info["cuda_built"] = _cuda is not None
    if _cuda is not None:
        info["cuda"] = dict(_cuda.build_info())
        info["cuda_device_count"] = _cuda.device_count()
    return info


def get_num_threads():
    """Threads the CPU kernels use per call (default: all CPUs this process may use,
    at most MAX_THREADS). Never waits for a running call (safe from any thread)."""
    return _core.get_num_threads()


def set_num_threads(n):
    """Sets the threads per CPU kernel call (from the next call on); n <= 0 restores
    the default. n must be an integer (``operator.index``) <= MAX_THREADS (1024):
    TypeError / ValueError otherwise. If the threads cannot be created (e.g. under a
    memory limit), the next kernel call raises RuntimeError instead of running."""
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError("set_num_threads: n must be an integer; got {!r} of type {}".format(
            n, type(n).__name__)) from None
    if n > MAX_THREADS:
        raise ValueError("set_num_threads: n must be at most {} (or <= 0 for the default); got {}".format(
            MAX_THREADS, n))
    _core.set_num_threads(max(n, 0))
