"""torch tensors (and other __dlpack__ producers) into accuracy_counts / accuracy."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fusedmetrics as fm  # noqa: E402
from fusedmetrics import _interop  # noqa: E402

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
LABELS = [torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8]
LABELS += [getattr(torch, n) for n in ("uint16", "uint32", "uint64") if hasattr(torch, n)]


def _reference(y, t):
    """numpy argmax on the float64 values (ties and NaN as numpy)."""
    y64 = y.detach().double().numpy()
    t64 = t.to(torch.int64).numpy()
    return np.array([(y64.argmax(1) == t64).sum(), t64.size], dtype=np.int64)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(97, 11, generator=g)
    y[3, :] = 0.5  # a tie: the first maximum wins
    t = torch.randint(0, 11, (97,), generator=g)
    return y, t


@pytest.mark.parametrize("fdtype", FLOATS, ids=str)
@pytest.mark.parametrize("ldtype", LABELS, ids=str)
def test_every_float_and_label_dtype(batch, fdtype, ldtype):
    y, t = batch
    y, t = y.to(fdtype), t.to(ldtype)
    got = fm.accuracy_counts(y, t)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.int64 and got.device.type == "cpu"
    np.testing.assert_array_equal(got.numpy(), _reference(y, t))


def test_requires_grad_is_read_not_differentiated(batch):
    y, t = batch
    y = y.clone().requires_grad_()
    got = fm.accuracy_counts(y * 2, t)  # a non-leaf too
    np.testing.assert_array_equal(got.numpy(), _reference(y, t))
    assert y.grad is None


def test_read_in_place_no_copy(batch, monkeypatch):
    y, t = batch
    view, dtype = _interop.torch_host_view(y)
    assert view.__array_interface__["data"][0] == y.data_ptr()
    assert dtype == np.float32


def test_out_tensor_accumulates_in_place(batch):
    y, t = batch
    out = torch.zeros(2, dtype=torch.int64)
    ret = fm.accuracy_counts(y, t, out=out)
    fm.accuracy_counts(y, t, out=out)
    assert ret is out
    np.testing.assert_array_equal(out.numpy(), 2 * _reference(y, t))


def test_out_numpy_with_torch_input(batch):
    y, t = batch
    out = np.zeros(2, dtype=np.int64)
    assert fm.accuracy_counts(y, t, out=out) is out
    np.testing.assert_array_equal(out, _reference(y, t))


def test_bad_out_tensor(batch):
    y, t = batch
    with pytest.raises(ValueError, match="int64"):
        fm.accuracy_counts(y, t, out=torch.zeros(2, dtype=torch.int32))


def test_strided_and_segmentation_layouts():
    g = torch.Generator().manual_seed(1)
    y = torch.randn(5, 4, 6, 7, generator=g)
    t = torch.randint(0, 4, (5, 6, 7), generator=g)
    want = ((y.argmax(1) == t).sum().item(), t.numel())
    assert tuple(fm.accuracy_counts(y, t).tolist()) == want
    yp = y.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # channels-last
    assert tuple(fm.accuracy_counts(yp, t).tolist()) == want
    assert tuple(fm.accuracy_counts(y[:, :, ::2], t[:, ::2]).tolist()) == (
        (y[:, :, ::2].argmax(1) == t[:, ::2]).sum().item(), t[:, ::2].numel())


def test_neg_bit_view_is_resolved():
    z = torch.tensor([[1 + 1j, 1 + 3j], [1 + 2j, 1 + 0j]])
    y = z.conj().imag  # a float view with the negative bit set
    assert y.is_neg()
    got = fm.accuracy_counts(y, torch.tensor([0, 1]))
    assert got.tolist() == [2, 2]  # -imag: row 0 [-1, -3] -> 0; row 1 [-2, 0] -> 1


def test_top_k_and_ignore_label(batch):
    y, t = batch
    t = t.clone()
    t[:10] = -1
    ref = fm.accuracy_counts(y.numpy(), t.numpy(), ignore_label=-1, k=3)
    np.testing.assert_array_equal(fm.accuracy_counts(y, t, ignore_label=-1, k=3).numpy(), ref)


@pytest.mark.parametrize("fdtype", FLOATS, ids=str)
def test_accuracy_returns_torch_of_y_dtype(batch, fdtype):
    y, t = batch
    got = fm.accuracy(y.to(fdtype), t)
    assert isinstance(got, torch.Tensor) and got.dtype == fdtype and got.dim() == 0
    c = _reference(y.to(fdtype), t)
    assert got.item() == torch.tensor(c[0] / c[1], dtype=fdtype).item()


def test_accuracy_all_ignored_and_empty():
    y = torch.zeros(0, 3)
    assert fm.accuracy(y, torch.zeros(0, dtype=torch.int64), ignore_label=-1).item() == 0.0
    assert np.isnan(fm.accuracy(y, torch.zeros(0, dtype=torch.int64)).item())


def test_mixed_torch_labels_numpy(batch):
    y, t = batch
    got = fm.accuracy_counts(y, t.numpy())
    assert isinstance(got, torch.Tensor)
    np.testing.assert_array_equal(got.numpy(), _reference(y, t))


class _DLPackOnly:
    """A producer that speaks only DLPack (as JAX arrays do)."""

    def __init__(self, array):
        self._a = array

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


def test_dlpack_only_producer(batch):
    y, t = batch
    got = fm.accuracy_counts(_DLPackOnly(y.numpy()), _DLPackOnly(t.numpy()))
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, _reference(y, t))


def test_import_fusedmetrics_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, fusedmetrics, fusedmetrics.ppe; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- GPU (torch CUDA, no CuPy) ---------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.torch_gpu
@pytest.mark.parametrize("fdtype", FLOATS, ids=str)
def test_cuda_tensors_on_a_side_stream(fdtype):
    g = torch.Generator().manual_seed(2)
    y = torch.randn(4096, 37, generator=g).to(fdtype)
    t = torch.randint(0, 37, (4096,), generator=g)
    want = _reference(y, t)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        yd = y.cuda().requires_grad_(fdtype.is_floating_point)
        td = t.cuda()
        out = fm.accuracy_counts(yd, td)
        out2 = torch.zeros(2, dtype=torch.int64, device="cuda")
        fm.accuracy_counts(yd, td, out=out2)
        acc = fm.accuracy(yd, td)
    stream.synchronize()
    assert out.is_cuda and out.dtype == torch.int64
    np.testing.assert_array_equal(out.cpu().numpy(), want)
    np.testing.assert_array_equal(out2.cpu().numpy(), want)
    assert acc.is_cuda and acc.dtype == fdtype


@pytest.mark.gpu
@pytest.mark.torch_gpu
def test_cuda_graph_capture():
    y = torch.randn(512, 10, device="cuda")
    t = torch.randint(0, 10, (512,), device="cuda")
    out = torch.zeros(2, dtype=torch.int64, device="cuda")
    fm.accuracy_counts(y, t, out=out)  # warm the plan cache before capture
    torch.cuda.synchronize()
    out.zero_()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fm.accuracy_counts(y, t, out=out)
    for _ in range(3):
        graph.replay()
    torch.cuda.synchronize()
    want = _reference(y.cpu(), t.cpu())
    np.testing.assert_array_equal(out.cpu().numpy(), 3 * want)
