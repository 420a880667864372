"""torch tensors (and other __dlpack__ producers) into accuracy_counts / accuracy."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fusedmetrics as fm  # noqa: E402
from fusedmetrics import _interop  # noqa: E402
from dlpack_producer import DLPackOnly  # noqa: E402

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


def test_dlpack_only_producer(batch):
    y, t = batch
    got = fm.accuracy_counts(DLPackOnly(y.numpy()), DLPackOnly(t.numpy()))
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


# -- Summary / DictSummary with torch 0-d tensors ---------------------------------------------

ALL_SCALARS = FLOATS + LABELS + [torch.bool]


@pytest.mark.parametrize("dtype", ALL_SCALARS, ids=str)
def test_dict_summary_reads_cpu_tensors_like_numbers(dtype):
    values = [1, 0, 3, 2, 1] if dtype is not torch.bool else [1, 0, 1, 1, 0]
    ours, ref = fm.DictSummary(), fm.DictSummary()
    for v in values:
        ours.add({"x": torch.tensor(v, dtype=dtype), "w": (torch.tensor(v, dtype=dtype), torch.tensor(2))})
        ref.add({"x": float(torch.tensor(v, dtype=dtype)), "w": (float(v), 2)})
    assert ours.make_statistics() == ref.make_statistics()
    integer = not dtype.is_floating_point
    assert ours.state_dict()["integer_weights"].tolist() == [True, True]
    assert isinstance(ours.compute_mean()["x"], float)
    del integer


def test_dict_summary_tensor_flavours():
    ds = fm.DictSummary()
    leaf = torch.tensor(2.0, requires_grad=True)
    ds.add({
        "grad": leaf * 1.5,                               # requires grad, non-leaf
        "param": torch.nn.Parameter(torch.tensor(4.0)),   # a Parameter
        "view": torch.arange(5.0)[3],                     # a 0-d view with a storage offset
        "neg": torch.tensor(1 + 2j).conj().imag,          # negative bit
        "vector": torch.ones(3),                          # not a scalar: skipped
    })
    assert ds.compute_mean() == {"grad": 3.0, "param": 4.0, "view": 3.0, "neg": -2.0}
    with pytest.raises(TypeError, match="complex"):
        ds.add({"c": torch.tensor(1 + 1j)})
    with pytest.raises(ValueError, match="not scalar"):
        ds.add({"x": (1.0, torch.ones(2))})


def test_summary_tensor_weights_stay_integer():
    s = fm.Summary()
    s.add(torch.tensor(2.0), torch.tensor(3))
    s.add(torch.tensor(4.0), weight=torch.tensor(1))
    mean, std = s.make_statistics()
    assert mean == 2.5 and std == pytest.approx(np.sqrt(0.75), rel=1e-15)


def test_tensor_subclass_goes_through_float():
    class Sub(torch.Tensor):
        pass

    ds = fm.DictSummary()
    ds.add({"x": torch.tensor(1.25).as_subclass(Sub)})
    assert ds.compute_mean() == {"x": 1.25}


@pytest.mark.gpu
@pytest.mark.torch_gpu
def test_dict_summary_cuda_tensors_one_launch_no_sync():
    stream = torch.cuda.Stream()
    ds = fm.DictSummary()
    values = [torch.tensor(float(i), device="cuda") for i in range(4)]
    with torch.cuda.stream(stream):
        ds.add({"a": values[0], "b": (values[1], torch.tensor(2, device="cuda")), "h": 1.0})
        ds.add({"a": values[2], "b": values[3], "h": 3.0})
        stats = ds.make_statistics()
    stream.synchronize()
    assert isinstance(stats["a"], torch.Tensor) and stats["a"].is_cuda
    assert stats["a"].item() == 1.0 and stats["a.std"].item() == 1.0
    assert stats["b"].item() == pytest.approx((2 * 1.0 + 3.0) / 3, rel=1e-15)
    assert stats["h"] == 2.0


@pytest.mark.gpu
@pytest.mark.torch_gpu
def test_dict_summary_cuda_graph_capture():
    ds = fm.DictSummary()
    x = torch.tensor(1.0, device="cuda")
    ds.add({"x": x})  # the key exists before capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        ds.add({"x": x})
    for value in (2.0, 3.0):
        x.fill_(value)
        graph.replay()
    torch.cuda.synchronize()
    assert ds.compute_mean()["x"].item() == pytest.approx(2.0, rel=1e-15)


@pytest.mark.gpu
@pytest.mark.torch_gpu
def test_dict_summary_growth_during_a_torch_capture_raises():
    ds = fm.DictSummary()
    x = torch.tensor(1.0, device="cuda")
    ds.add({"x": x})
    capacity = ds._store.capacity
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with pytest.raises(RuntimeError, match="capturing a CUDA graph"):
        with torch.cuda.graph(graph):
            ds.add({f"k{i}": x for i in range(capacity + 1)})
    assert ds._store.capacity == capacity and list(ds.compute_mean()) == ["x"]


@pytest.mark.gpu
@pytest.mark.torch_gpu
def test_cuda_confusion_matrix_and_multi_k_need_no_cupy():
    """torch in, torch out, on a side stream; a neg-bit view is read as the values it stands for;
    an unwalkable layout is copied by torch; several k go into the rows of one tensor."""
    g = torch.Generator().manual_seed(5)
    y = torch.randn(6, 5, 4, 7, generator=g)
    t = torch.randint(0, 5, (6, 4, 7), generator=g)
    z = torch.complex(torch.zeros_like(y), y)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        neg = z.cuda().conj().imag  # -y, with the negative bit set
        assert neg.is_neg()
        td = t.cuda()
        got = fm.confusion_matrix(neg, td, 5)
        strided = fm.confusion_matrix(y.cuda()[:, :, :, :5], td[:, :, :5], 5)
        top = fm.accuracy_counts(y.cuda(), td, k=(1, 3))
    stream.synchronize()
    assert got.is_cuda and got.dtype == torch.int64
    np.testing.assert_array_equal(got.cpu().numpy(), fm.confusion_matrix((-y).numpy(), t.numpy(), 5))
    np.testing.assert_array_equal(strided.cpu().numpy(),
                                  fm.confusion_matrix(y[:, :, :, :5].numpy(), t[:, :, :5].numpy(), 5))
    assert top.is_cuda
    np.testing.assert_array_equal(top.cpu().numpy(), fm.accuracy_counts(y.numpy(), t.numpy(), k=(1, 3)))
