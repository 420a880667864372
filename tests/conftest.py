"""Shared test setup: the one GPU switch.

Tests that need a GPU are marked ``gpu`` and skipped here, in one place, unless CuPy,
a device and the CUDA kernels are all there. GPU test modules take ``cupy`` from this
file (None without CuPy) so that they import everywhere.
"""
import pytest

from fusedmetrics import _core

try:
    import cupy
except Exception:  # noqa: BLE001 - not installed, or a broken CUDA install: no GPU either way
    cupy = None


def _gpu_usable():
    try:
        import fusedmetrics._cuda  # noqa: F401 - built with the CUDA kernels?
        return cupy is not None and cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - no kernels, no driver, no device: all mean "no GPU"
        return False


GPU_USABLE = _gpu_usable()
_NO_GPU = "needs CuPy, an NVIDIA GPU and fusedmetrics built with its CUDA kernels"


def torch_gpu_usable():
    """torch with a CUDA device and the CUDA kernels: what torch GPU tests need (no CuPy)."""
    try:
        import fusedmetrics._cuda  # noqa: F401
        import torch
        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - no torch, no kernels or no driver
        return False


def pytest_collection_modifyitems(config, items):
    torch_gpu = None
    for item in items:
        if "gpu" not in item.keywords:
            continue
        if "torch_gpu" in item.keywords:  # torch CUDA tests: torch and the kernels, no CuPy
            if torch_gpu is None:
                torch_gpu = torch_gpu_usable()
            if not torch_gpu:
                item.add_marker(pytest.mark.skip(reason="needs torch with CUDA and the CUDA kernels"))
        elif not GPU_USABLE:
            item.add_marker(pytest.mark.skip(reason=_NO_GPU))


@pytest.fixture(params=_core.usable_isas())
def isa(request):
    """Each CPU instruction set this machine can run, made the active one for the test."""
    before = _core.active_isa()
    assert _core.set_active_isa(request.param)
    yield request.param
    _core.set_active_isa(before)
