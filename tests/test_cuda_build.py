"""Checks of the CUDA extension and the device plumbing that run on every machine,
with or without a GPU, driver or CuPy. Nothing here launches a kernel on a device:
argument checks happen before any CUDA call."""
import subprocess
import sys

import numpy as np
import pytest

from fusedmetrics import _interop, _layout


def _cuda_module():
    return pytest.importorskip("fusedmetrics._cuda", reason="fusedmetrics was built without its CUDA kernels")


def test_device_count_is_a_nonnegative_int_and_never_raises():
    cuda = _cuda_module()
    n = cuda.device_count()
    assert isinstance(n, int) and n >= 0
    assert cuda.device_count() == n  # a second call (after an error without a driver) agrees


def test_build_info_reports_the_cuda_build():
    cuda = _cuda_module()
    info = cuda.build_info()
    assert info["cuda_runtime_version"] >= 12000
    major, minor = info["cuda_version"].split(".")
    assert int(major) * 1000 + int(minor) * 10 == info["cuda_runtime_version"]
    assert isinstance(info["cuda_architectures"], str) and info["cuda_architectures"]
    assert "NVIDIA" in info["cuda_compiler"]
    assert isinstance(info["cuda_driver_version"], int) and info["cuda_driver_version"] >= 0
    assert info["summary_entries_per_launch"] == cuda.SUMMARY_ENTRIES_PER_LAUNCH >= 1


def test_launch_without_a_device_raises_runtime_error():
    cuda = _cuda_module()
    if cuda.device_count() > 0:
        pytest.skip("a device is present; fake pointers must not reach a kernel")
    with pytest.raises(RuntimeError, match="CUDA error"):
        cuda.AccuracyPlan(2, 1, 3, 1, (3, 1, 1), 3, (1, 1), False, 0, 1).launch(4096, 8192, 16384, 0, 0)
    with pytest.raises(RuntimeError, match="CUDA error"):
        cuda.summary_update([0], [4096], [2], [0], [0], [1.0], 8192, 0, 0, 4)
    assert cuda.pointer_device(4096) == -1


PLAN_OK = dict(y_code=2, N=2, C=3, M=1, y_strides=(3, 1, 1), t_code=3, t_strides=(1, 1), has_ignore=False,
               ignore=0, k=1)
LAUNCH_OK = dict(y_ptr=4096, t_ptr=8192, out_ptr=16384, device_id=0, stream_ptr=0)


def _plan(cuda, **change):
    return cuda.AccuracyPlan(*{**PLAN_OK, **change}.values())


@pytest.mark.parametrize("change, message", [
    (dict(y_code=4), "y_code"),
    (dict(t_code=8), "t_code"),
    (dict(N=-1), "N, C, M"),
    (dict(C=2 ** 31), "C < 2\\^31"),
    (dict(k=0), "k must be"),
    (dict(N=2 ** 62, M=4), "overflows"),
    (dict(N=2 ** 40, y_strides=(2 ** 40, 1, 1)), "strides of y"),
])
def test_accuracy_plan_checks_shapes_strides_and_codes_once(change, message):
    cuda = _cuda_module()
    with pytest.raises(ValueError, match=message):
        _plan(cuda, **change)


@pytest.mark.parametrize("change, plan_change, message", [
    (dict(out_ptr=0), {}, "out_ptr"),
    (dict(out_ptr=16388), {}, "out_ptr"),
    (dict(t_ptr=8193), dict(t_code=2), "t_ptr"),
    (dict(y_ptr=4098), {}, "y_ptr"),
    (dict(device_id=-1), {}, "device_id"),
])
def test_accuracy_launch_checks_pointers_before_any_cuda_call(change, plan_change, message):
    cuda = _cuda_module()
    with pytest.raises(ValueError, match=message):
        _plan(cuda, **plan_change).launch(*{**LAUNCH_OK, **change}.values())


def test_accuracy_with_no_rows_is_a_no_op():
    cuda = _cuda_module()
    assert _plan(cuda, N=0).launch(*LAUNCH_OK.values()) is None  # returns before any CUDA call


@pytest.mark.parametrize("args, message", [
    (([0, 1], [4096], [2], [0], [0], [1.0], 8192, 0, 0, 4), "same length"),
    (([5], [4096], [2], [0], [0], [1.0], 8192, 0, 0, 4), "outside"),
    (([-1], [4096], [2], [0], [0], [1.0], 8192, 0, 0, 4), "outside"),
    (([0], [4096], [13], [0], [0], [1.0], 8192, 0, 0, 4), "x_codes"),
    (([0], [4098], [2], [0], [0], [1.0], 8192, 0, 0, 4), "x_ptrs"),
    (([0], [4096], [2], [4100], [3], [0.0], 8192, 0, 0, 4), "w_ptrs"),
    (([0], [4096], [2], [4096], [99], [0.0], 8192, 0, 0, 4), "w_codes"),
    (([0], [4096], [2], [0], [0], [1.0], 0, 0, 0, 4), "state_ptr"),
])
def test_summary_arguments_are_checked_before_any_cuda_call(args, message):
    cuda = _cuda_module()
    with pytest.raises(ValueError, match=message):
        cuda.summary_update(*args)


class FakeDeviceArray:
    """The smallest __cuda_array_interface__ producer: no CuPy, no memory behind it."""

    def __init__(self, shape, typestr, strides=None, ptr=0x7F0000000000, stream=None, dtype=None):
        self.__cuda_array_interface__ = {
            "shape": shape, "typestr": typestr, "data": (ptr, False), "version": 3, "strides": strides,
        }
        if stream is not None:
            self.__cuda_array_interface__["stream"] = stream
        if dtype is not None:
            self.dtype = dtype


def test_describe_computes_c_contiguous_strides_when_the_interface_gives_none():
    info = _interop.describe(FakeDeviceArray((3, 4, 5), "<f4"))
    assert info.ptr == 0x7F0000000000
    assert info.shape == (3, 4, 5)
    assert info.strides == (80, 20, 4)
    assert info.dtype == np.float32
    assert isinstance(info.device_id, int) and info.device_id >= 0
    assert isinstance(info.stream_ptr, int)
    if "cupy" not in sys.modules:
        assert info.device_id == 0 and info.stream_ptr == 0


def test_describe_keeps_given_strides_and_stream():
    info = _interop.describe(FakeDeviceArray((4, 6), "<i8", strides=(96, -8), stream=2))
    assert info.strides == (96, -8)
    assert info.dtype == np.int64
    assert info.stream_ptr == 2


def test_describe_empty_and_zero_dim_arrays():
    assert _interop.describe(FakeDeviceArray((0, 3), "<f2", ptr=0)).strides == (6, 2)
    info = _interop.describe(FakeDeviceArray((), "|b1"))
    assert info.shape == () and info.strides == () and info.dtype == np.bool_


def test_describe_takes_bfloat16_from_the_objects_dtype():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf16 = np.dtype(ml_dtypes.bfloat16)
    assert _interop.describe(FakeDeviceArray((2,), bf16.str, dtype=bf16)).dtype == bf16
    with pytest.raises(TypeError, match="typestr"):
        _interop.describe(FakeDeviceArray((2,), "<V2"))


def test_describe_rejects_host_objects():
    with pytest.raises(TypeError, match="__cuda_array_interface__"):
        _interop.describe(np.zeros(3))


def test_is_device_array():
    assert _interop.is_device_array(FakeDeviceArray((1,), "<f4"))
    assert not _interop.is_device_array(np.zeros(1))
    assert not _interop.is_device_array(1.0)


@pytest.mark.parametrize("ignore_label, t_dtype, expected", [
    (None, np.int64, (False, 0)),
    (-1, np.int64, (True, -1)),
    (2 ** 64 - 1, np.uint64, (True, -1)),   # uint64: bits reinterpreted like the labels
    (2 ** 63, np.int64, (False, 0)),        # no int64 label can equal it
    (-(2 ** 63) - 1, np.int8, (False, 0)),
])
def test_ignore_label_is_converted_to_the_int64_reading(ignore_label, t_dtype, expected):
    """The one conversion both backends use (the device path used to convert twice)."""
    assert _layout.ignore_value(ignore_label, t_dtype) == expected


def test_importing_the_device_modules_does_not_import_cupy():
    code = ("import sys, fusedmetrics._interop, fusedmetrics._device_accuracy, fusedmetrics._device_moments; "
            "print('cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"  # an editable install may log a rebuild first
