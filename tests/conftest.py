"""Shared test setup: the one GPU switch and the backend fixtures.

Tests that need a GPU are marked ``gpu`` and skipped here, in one place, unless CuPy,
a device and the CUDA kernels are all there. GPU test modules take ``cupy`` from this
file (None without CuPy) so that they import everywhere.

A test of a kernel rule that both backends promise takes the ``backend`` fixture: it runs
once per usable CPU ISA and once on ``cuda`` (marked ``gpu``, so skipped above without a
GPU), with the same assertions. Host-only behaviours (buffer protocol, misaligned or
byte-swapped host memory, thread pools) take ``isa`` instead.
"""
import contextlib

import numpy as np
import pytest

import fusedmetrics
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


def device_bfloat16():
    """numpy's bfloat16 dtype (ml_dtypes) for device tests; skips where ml_dtypes is missing
    or this CuPy cannot hold bfloat16 arrays."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    dtype = np.dtype(ml_dtypes.bfloat16)
    try:
        cupy.asarray(np.zeros(1, dtype=dtype))
    except Exception:  # noqa: BLE001 - this CuPy has no bfloat16
        pytest.skip("this CuPy does not support bfloat16")
    return dtype


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


@contextlib.contextmanager
def _active_isa(name):
    before = _core.active_isa()
    assert _core.set_active_isa(name)
    try:
        yield
    finally:
        _core.set_active_isa(before)


@pytest.fixture(params=_core.usable_isas())
def isa(request):
    """Each CPU instruction set this machine can run, made the active one for the test."""
    with _active_isa(request.param):
        yield request.param


class Backend:
    """Where a backend-parametrized test runs: a CPU ISA (made active) or ``cuda``.

    ``asarray`` moves numpy inputs to the backend's arrays and ``asnumpy`` brings results
    back, so one test body asserts on numpy values either way. ``backend.accuracy_counts(y,
    t, ...)``, and any other fusedmetrics function of (y, t, ...), does both around the call.
    Device copies are contiguous: layout tests (strides, broadcasting) stay on the CPU ISAs,
    and the GPU's own strided views are tested in test_accuracy_gpu.py.
    """

    def __init__(self, name):
        self.name = name
        self.is_cuda = name == "cuda"
        self.xp = cupy if self.is_cuda else np

    def asarray(self, a):
        if not self.is_cuda:
            return a
        try:
            return cupy.asarray(a)
        except Exception:  # noqa: BLE001 - e.g. bfloat16, which not every CuPy has
            if getattr(a, "dtype", None) is not None and np.dtype(a.dtype).name == "bfloat16":
                pytest.skip("this CuPy does not support bfloat16")
            raise

    def asnumpy(self, a):
        if self.is_cuda:
            assert isinstance(a, cupy.ndarray), type(a)  # device in, device out
            return cupy.asnumpy(a)
        assert isinstance(a, np.ndarray), type(a)
        return a

    def run(self, fn, y, t, *args, **kwargs):
        """fn(y, t, ...) on the backend's copies of y and t, the result as numpy."""
        return self.asnumpy(fn(self.asarray(y), self.asarray(t), *args, **kwargs))

    def __getattr__(self, name):  # backend.confusion_matrix(y, t, C) and the like
        if name.startswith("_"):  # dunder probes (copy, pickle, pytest) are not ours
            raise AttributeError(name)
        fn = getattr(fusedmetrics, name)
        return lambda y, t, *args, **kwargs: self.run(fn, y, t, *args, **kwargs)

    def __repr__(self):
        return self.name


@pytest.fixture(params=list(_core.usable_isas()) + [pytest.param("cuda", marks=pytest.mark.gpu)])
def backend(request):
    """Each usable CPU ISA (made the active one) and, where a GPU is usable, ``cuda``."""
    if request.param == "cuda":
        yield Backend("cuda")
        return
    with _active_isa(request.param):
        yield Backend(request.param)


@pytest.fixture
def torch_exchange():
    """use(cache): the torch exchange cache accuracy_counts reads torch CPU tensors through
    (a _core.TorchAccuracyCache; False: none, the data_ptr path serves; None: a new one on
    the next torch call), restored after the test."""
    from fusedmetrics import _accuracy

    saved = []

    def use(cache):
        import torch

        saved.append(_accuracy.install_torch_exchange(cache, torch.Tensor))

    yield use
    if saved:
        _accuracy.install_torch_exchange(*saved[0])
