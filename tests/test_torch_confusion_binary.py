"""torch CPU tensors (and other __dlpack__ producers) into confusion_matrix,
ConfusionMatrix and binary_accuracy(_counts): read in place, results in torch.

References are independent of our kernels: numpy float64 argmax + bincount for the
matrix, numpy elementwise comparisons for binary accuracy.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fusedmetrics as fm  # noqa: E402
from dlpack_producer import DLPackOnly  # noqa: E402

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
LABELS = [torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8]
LABELS += [getattr(torch, n) for n in ("uint16", "uint32", "uint64") if hasattr(torch, n)]
C = 7


def _matrix_reference(y, t, num_classes, ignore_label=None):
    """numpy: argmax of the float64 scores (or integer predictions) against t, bincount."""
    t64 = t.to(torch.int64).numpy().ravel()
    if y.is_floating_point():
        p64 = np.moveaxis(y.detach().double().numpy(), 1, -1).reshape(-1, num_classes).argmax(1)
    else:
        p64 = y.to(torch.int64).numpy().ravel()
    keep = np.ones(t64.shape, bool) if ignore_label is None else t64 != ignore_label
    return np.bincount(num_classes * t64[keep] + p64[keep], minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def _binary_reference(y, t):
    y64 = y.detach().double().numpy()
    t64 = t.to(torch.int64).numpy()
    counted = t64 != -1 if t.dtype.is_signed else np.ones(t64.shape, bool)
    return np.array([((y64 >= 0) == t64).sum(), counted.sum()], dtype=np.int64)


@pytest.fixture
def scores():
    g = torch.Generator().manual_seed(1)
    y = torch.randn(203, C, generator=g)
    y[5, :] = 0.25                   # a whole-row tie: class 0
    y[6, 2], y[6, 4] = 9.0, 9.0      # a tie between two maxima: the first
    y[7, 3] = float("nan")           # NaN is the maximum
    y[8, 1], y[8, 5] = float("nan"), float("nan")  # the first NaN wins
    y[9, 0], y[9, 1] = -0.0, 0.0     # -0.0 == +0.0, with every other score below
    y[9, 2:] = -1.0
    t = torch.randint(0, C, (203,), generator=g)
    return y, t


@pytest.mark.parametrize("fdtype", FLOATS, ids=str)
@pytest.mark.parametrize("ldtype", LABELS, ids=str)
def test_confusion_matrix_every_float_and_label_dtype(scores, fdtype, ldtype):
    y, t = scores
    y, t = y.to(fdtype), t.to(ldtype)
    got = fm.confusion_matrix(y, t, C)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.int64 and got.device.type == "cpu"
    assert tuple(got.shape) == (C, C)
    np.testing.assert_array_equal(got.numpy(), _matrix_reference(y, t, C))


@pytest.mark.parametrize("ldtype", LABELS, ids=str)
def test_confusion_matrix_integer_predictions(scores, ldtype):
    _, t = scores
    p = torch.roll(t, 3).to(ldtype)
    got = fm.confusion_matrix(p, t.to(ldtype), C)
    assert isinstance(got, torch.Tensor)
    np.testing.assert_array_equal(got.numpy(), _matrix_reference(p, t, C))


def test_requires_grad_strided_and_segmentation_layouts(scores):
    y, t = scores
    leaf = y.clone().requires_grad_()
    got = fm.confusion_matrix(leaf * 1.0, t, C)  # a non-leaf that requires grad
    np.testing.assert_array_equal(got.numpy(), _matrix_reference(y, t, C))
    assert leaf.grad is None
    wide = torch.randn(203, 2 * C)
    strided = wide[:, ::2]                      # class stride 2
    np.testing.assert_array_equal(fm.confusion_matrix(strided, t, C).numpy(), _matrix_reference(strided, t, C))
    g = torch.Generator().manual_seed(2)
    seg_y = torch.randn(2, C, 5, 6, generator=g).to(torch.bfloat16)
    seg_t = torch.randint(-1, C, (2, 5, 6), generator=g)
    got = fm.confusion_matrix(seg_y, seg_t, C, ignore_label=-1)
    np.testing.assert_array_equal(got.numpy(), _matrix_reference(seg_y, seg_t, C, ignore_label=-1))


def test_neg_bit_view_is_resolved(scores):
    y, t = scores
    neg = torch._neg_view(y)  # a lazily negated view: its memory holds y, not -y
    np.testing.assert_array_equal(fm.confusion_matrix(neg, t, C).numpy(), _matrix_reference(-y, t, C))


def test_out_tensor_accumulates_in_place(scores):
    y, t = scores
    out = torch.zeros(C, C, dtype=torch.int64)
    assert fm.confusion_matrix(y, t, C, out=out) is out
    fm.confusion_matrix(y, t, C, out=out)
    np.testing.assert_array_equal(out.numpy(), 2 * _matrix_reference(y, t, C))
    transposed = torch.zeros(C, C, dtype=torch.int64).t()  # not C-contiguous: through a temporary
    fm.confusion_matrix(y, t, C, out=transposed)
    np.testing.assert_array_equal(transposed.numpy(), _matrix_reference(y, t, C))
    host = np.zeros((C, C), np.int64)
    assert fm.confusion_matrix(y, t, C, out=host) is host
    np.testing.assert_array_equal(host, _matrix_reference(y, t, C))


@pytest.mark.parametrize("bad", [torch.zeros(C, C, dtype=torch.int32), torch.zeros(C, C + 1, dtype=torch.int64),
                                 torch.zeros(C, C, dtype=torch.float64)], ids=["int32", "shape", "float64"])
def test_bad_out_tensor_names_it(scores, bad):
    y, t = scores
    with pytest.raises(ValueError, match="out must be an int64 tensor of shape"):
        fm.confusion_matrix(y, t, C, out=bad)
    assert not bad.any()


def test_out_with_a_pending_negation_is_refused_by_every_count(scores):
    y, t = scores
    calls = [(lambda out: fm.accuracy_counts(y, t, out=out), (2,)),
             (lambda out: fm.accuracy_counts(y, t, k=(1, 2), out=out), (2, 2)),
             (lambda out: fm.confusion_matrix(y, t, C, out=out), (C, C))]
    for call, shape in calls:
        zeros = torch.zeros(shape, dtype=torch.int64)
        with pytest.raises(ValueError, match="out must be a plain int64 tensor"):
            call(torch._neg_view(zeros))
        assert not zeros.any()


@pytest.mark.skipif(not hasattr(torch, "float8_e4m3fn"), reason="this torch has no float8")
def test_dtypes_no_kernel_reads_name_the_argument(scores):
    y, t = scores
    for call in (lambda y, t: fm.accuracy_counts(y, t), lambda y, t: fm.accuracy_counts(y, t, k=(1, 2)),
                 lambda y, t: fm.confusion_matrix(y, t, C), lambda y, t: fm.binary_accuracy_counts(y[:, 0], t)):
        with pytest.raises(TypeError, match=r"^y has dtype torch.float8_e4m3fn, which fusedmetrics does not take"):
            call(y.to(torch.float8_e4m3fn), t)
    with pytest.raises(TypeError, match=r"^t has dtype torch.float8_e4m3fn"):
        fm.accuracy_counts(y, t.to(torch.float8_e4m3fn))
    with pytest.raises(TypeError, match=r"y must hold scores .* or integer predictions .*y.dtype bool"):
        fm.confusion_matrix(np.array([True, False]), np.array([1, 0]), 2)


def test_invalid_label_adds_nothing_to_out(scores):
    y, t = scores
    out = torch.ones(C, C, dtype=torch.int64)
    bad_t = t.clone()
    bad_t[100] = C
    with pytest.raises(ValueError, match=str(C)):
        fm.confusion_matrix(y, bad_t, C, out=out)
    assert (out == 1).all()


def test_mixed_numpy_labels_and_dlpack_producer(scores):
    y, t = scores
    got = fm.confusion_matrix(y, t.numpy(), C)
    assert isinstance(got, torch.Tensor)
    np.testing.assert_array_equal(got.numpy(), _matrix_reference(y, t, C))

    got = fm.confusion_matrix(DLPackOnly(y.numpy()), DLPackOnly(t.numpy()), C)
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, _matrix_reference(y, t, C))
    acc = fm.ConfusionMatrix(C)
    acc.update(DLPackOnly(y.numpy()), DLPackOnly(t.numpy()))
    np.testing.assert_array_equal(acc.compute(), _matrix_reference(y, t, C))


@pytest.mark.parametrize("fdtype", FLOATS, ids=str)
def test_confusion_accumulator_takes_tensors(scores, fdtype):
    y, t = scores
    y = y.to(fdtype).requires_grad_()
    acc = fm.ConfusionMatrix(C, ignore_label=2)
    acc.update(y[:100], t[:100]).update(y[100:], t[100:].numpy())
    expected = _matrix_reference(y, t, C, ignore_label=2)
    np.testing.assert_array_equal(acc.compute(), expected)
    bad_t = t.clone()
    bad_t[0] = -5
    with pytest.raises(ValueError, match="-5"):
        acc.update(y, bad_t)
    np.testing.assert_array_equal(acc.compute(), expected)  # nothing lost or added on error


def test_confusion_accumulator_state_loads_from_a_weights_only_torch_checkpoint(scores):
    import io
    y, t = scores
    acc = fm.ConfusionMatrix(C, ignore_label=2)
    acc.update(y, t)
    buffer = io.BytesIO()
    torch.save({"metric": acc.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)["metric"]
    assert isinstance(state["matrix"], torch.Tensor) and state["matrix"].dtype == torch.int64
    fresh = fm.ConfusionMatrix(C, ignore_label=2)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.compute(), _matrix_reference(y, t, C, ignore_label=2))
    numpy_user = fm.ConfusionMatrix(C, ignore_label=2)
    numpy_user.update(y.numpy(), t.numpy())
    assert isinstance(numpy_user.state_dict()["matrix"], np.ndarray)   # numpy users keep numpy


@pytest.mark.parametrize("fdtype", FLOATS, ids=str)
@pytest.mark.parametrize("ldtype", LABELS, ids=str)
def test_binary_accuracy_counts_every_dtype(fdtype, ldtype):
    g = torch.Generator().manual_seed(3)
    y = torch.randn(6, 50, generator=g).to(fdtype)
    y[0, :4] = torch.tensor([0.0, -0.0, float("nan"), -float("inf")])  # 0 and -0 predict 1; NaN predicts 0
    low = -1 if ldtype.is_signed else 0
    t = torch.randint(low, 3, (6, 50), generator=g).to(ldtype)  # 2 is counted, never correct
    got = fm.binary_accuracy_counts(y, t)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.int64
    np.testing.assert_array_equal(got.numpy(), _binary_reference(y, t))
    value = fm.binary_accuracy(y, t)
    assert isinstance(value, torch.Tensor) and value.dtype == fdtype and value.dim() == 0
    ref = _binary_reference(y, t)
    assert float(value) == float(torch.tensor(ref[0] / max(ref[1], 1), dtype=torch.float64).to(fdtype))


def test_binary_accuracy_requires_grad_out_and_mixed_inputs():
    g = torch.Generator().manual_seed(4)
    y = torch.randn(300, generator=g).requires_grad_()
    t = torch.randint(-1, 2, (300,), generator=g)
    out = torch.zeros(2, dtype=torch.int64)
    assert fm.binary_accuracy_counts(y * 1.0, t, out=out) is out
    fm.binary_accuracy_counts(y, t.numpy(), out=out)   # numpy labels beside a torch y
    np.testing.assert_array_equal(out.numpy(), 2 * _binary_reference(y, t))
    assert y.grad is None
    host = fm.binary_accuracy_counts(y.detach().numpy(), t)  # y's framework decides: numpy
    assert isinstance(host, np.ndarray)
    np.testing.assert_array_equal(host, _binary_reference(y, t))
    all_ignored = torch.full((5,), -1)
    assert float(fm.binary_accuracy(y[:5], all_ignored)) == 0.0
    # The numpy path and the torch path agree, as does Chainer's rule on the numpy side.
    np.testing.assert_array_equal(fm.binary_accuracy_counts(y.detach().numpy(), t.numpy()), _binary_reference(y, t))


def test_binary_accuracy_bad_inputs_name_them():
    y = torch.randn(10)
    with pytest.raises(ValueError, match="same shape"):
        fm.binary_accuracy_counts(y, torch.zeros(9, dtype=torch.int64))
    with pytest.raises(TypeError, match="t must hold integer labels"):
        fm.binary_accuracy_counts(y, torch.zeros(10))
    with pytest.raises(TypeError, match="y must hold"):
        fm.binary_accuracy_counts(torch.zeros(10, dtype=torch.int64), torch.zeros(10, dtype=torch.int64))
    with pytest.raises(ValueError, match="out must be an int64 tensor of shape"):
        fm.binary_accuracy_counts(y, torch.zeros(10, dtype=torch.int64), out=torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="out must be an int64 array of shape"):
        fm.binary_accuracy_counts(y, torch.zeros(10, dtype=torch.int64), out=np.zeros(2, np.int32))


def test_binary_accuracy_numpy_out_beside_cpu_tensors():
    y, t = torch.randn(40), torch.randint(-1, 2, (40,))
    out = np.ones(2, np.int64)
    assert fm.binary_accuracy_counts(y, t, out=out) is out
    np.testing.assert_array_equal(out, 1 + _binary_reference(y, t))


@pytest.mark.parametrize("fdtype", FLOATS, ids=str)
@pytest.mark.parametrize("ldtype", LABELS, ids=str)
def test_torch_operations_path_on_cpu_tensors(fdtype, ldtype):
    """The torch-operations count that CUDA tensors take, run here on CPU tensors."""
    from fusedmetrics import _binary_accuracy
    g = torch.Generator().manual_seed(5)
    y = torch.randn(4, 33, generator=g).to(fdtype)
    y[0, :3] = torch.tensor([-0.0, float("nan"), float("inf")])
    low = -1 if ldtype.is_signed else 0
    t = torch.randint(low, 3, (4, 33), generator=g).to(ldtype)
    got = _binary_accuracy._torch_counts(y.requires_grad_(), t, None)
    np.testing.assert_array_equal(got.numpy(), _binary_reference(y, t))
    out = torch.ones(2, dtype=torch.int64)
    assert _binary_accuracy._torch_counts(y, t, out) is out
    np.testing.assert_array_equal(out.numpy(), 1 + _binary_reference(y, t))


@pytest.mark.gpu
def test_cuda_binary_accuracy_needs_no_cupy_and_no_sync():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    y = torch.randn(4096, device="cuda")
    t = torch.randint(-1, 2, (4096,), device="cuda")
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        got = fm.binary_accuracy_counts(y, t)
        value = fm.binary_accuracy(y, t)
    side.synchronize()
    assert got.device.type == "cuda" and value.device.type == "cuda"
    np.testing.assert_array_equal(got.cpu().numpy(), _binary_reference(y.cpu(), t.cpu()))


@pytest.mark.gpu
def test_cuda_accumulator_keeps_torch_state_without_cupy(scores):
    """torch CUDA updates on a side stream: the state is torch tensors on the device; merge,
    state_dict/load_state_dict and compute work on torch's current stream."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    y, t = scores
    side = torch.cuda.Stream()
    acc = fm.ConfusionMatrix(C)
    with torch.cuda.stream(side):
        acc.update(y.cuda(), t.cuda())
        assert isinstance(acc.matrix, torch.Tensor) and acc.matrix.is_cuda
        other = fm.ConfusionMatrix(C).update(y[:50].cuda(), t[:50].cuda())
        acc.merge(other)
        acc.merge(fm.ConfusionMatrix(C).update(y[:10].numpy(), t[:10].numpy()))  # host state into torch state
    expected = _matrix_reference(y, t, C) + _matrix_reference(y[:50], t[:50], C) + _matrix_reference(y[:10], t[:10], C)
    np.testing.assert_array_equal(acc.compute(), expected)
    state = acc.state_dict()
    fresh = fm.ConfusionMatrix(C).update(y[:1].cuda(), t[:1].cuda())
    fresh.load_state_dict(state)
    assert isinstance(fresh.matrix, torch.Tensor)
    np.testing.assert_array_equal(fresh.compute(), expected)
    bad = t.clone()
    bad[0] = C
    acc.update(y.cuda(), bad.cuda())  # on the device: counted in invalid, raised by compute
    with pytest.raises(ValueError, match="outside"):
        acc.compute()
