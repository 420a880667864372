"""Optional baselines and tools, imported on demand; a missing one gives a note, never a crash."""
import importlib


def try_import(module_name):
    """Return (module, None) or (None, one-line reason)."""
    try:
        return importlib.import_module(module_name), None
    except Exception as exc:  # ImportError, or a broken install raising anything else
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return None, f"{module_name} not importable ({type(exc).__name__}: {first_line})"


def cupy_with_device():
    """Return (cupy, None) when CuPy imports and sees a GPU, else (None, reason)."""
    cupy, why = try_import("cupy")
    if cupy is None:
        return None, why
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return None, f"cupy sees no usable GPU ({type(exc).__name__}: {exc})"
    if count < 1:
        return None, "cupy sees no GPU"
    return cupy, None


def version_of(module_name):
    module, _ = try_import(module_name)
    return getattr(module, "__version__", None) if module is not None else None
