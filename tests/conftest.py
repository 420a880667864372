import pytest


def _gpu_usable():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - no cupy, no driver, no device: all mean "no GPU"
        return False


GPU_USABLE = _gpu_usable()
requires_gpu = pytest.mark.skipif(not GPU_USABLE, reason="needs CuPy and an NVIDIA GPU")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "gpu" in item.keywords and not GPU_USABLE:
            item.add_marker(pytest.mark.skip(reason="needs CuPy and an NVIDIA GPU"))
