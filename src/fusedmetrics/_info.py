"""What was built and what this machine can use."""
from . import _core

try:  # the CUDA kernels are optional: built only where a CUDA compiler was found
    from . import _cuda
except ImportError:  # pragma: no cover - depends on the build
    _cuda = None


def cuda_available():
    """True when the CUDA kernels were built and a CUDA device is usable."""
    return _cuda is not None and _cuda.device_count() > 0


def build_info():
    """Compiler, CPU instruction sets, threads, and the CUDA build (if any) as a dict."""
    info = dict(_core.build_info())
    info["cpu_isas_usable"] = list(_core.usable_isas())
    info["cpu_isa_active"] = _core.active_isa()
    info["num_threads"] = _core.get_num_threads()
    info["cuda_built"] = _cuda is not None
    if _cuda is not None:
        info["cuda"] = dict(_cuda.build_info())
        info["cuda_device_count"] = _cuda.device_count()
    return info


def get_num_threads():
    """Threads the CPU kernels use per call (default: all CPUs this process may use)."""
    return _core.get_num_threads()


def set_num_threads(n):
    """Sets the threads per CPU kernel call; n <= 0 restores the default."""
    _core.set_num_threads(int(n))
