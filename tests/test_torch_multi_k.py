"""accuracy_counts(k=(...)) on torch CPU tensors: read in place (requires_grad, bfloat16,
strided), a torch int64 (len(k), 2) result as for a single k, out= accumulation into a torch
(or numpy) array, and errors naming out's dtype and shape."""
import numpy as np
import pytest

import fusedmetrics as fm

torch = pytest.importorskip("torch")

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
LABELS = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]
LABELS += [getattr(torch, n) for n in ("uint16", "uint32", "uint64") if hasattr(torch, n)]


def _batch(n=67, c=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, c, generator=g).round(decimals=1)   # ties
    y[1::9, 2] = float("nan")
    y[4::9] = 0.0
    y[4::9, 0] = -0.0
    y[6::9, 1] = float("inf")
    t = torch.randint(0, c, (n,), generator=g)
    t[3::11] = c + 1   # out of range: counted, never correct
    return y, t


def _numpy_counts(y, t, ignore_label, ks):
    y = y.detach()
    y = y.float() if y.dtype == torch.bfloat16 else y
    return fm.accuracy_counts(y.contiguous().numpy(), t.contiguous().numpy(), ignore_label, k=ks)


@pytest.mark.parametrize("fdtype", FLOATS, ids=str)
@pytest.mark.parametrize("ldtype", LABELS, ids=str)
def test_every_dtype_gives_a_torch_result_equal_to_numpy(fdtype, ldtype):
    y, t = _batch()
    y, t = y.to(fdtype), t.to(ldtype)
    for ignore in (None, 4):
        got = fm.accuracy_counts(y, t, ignore, k=(1, 5))
        assert type(got) is torch.Tensor and got.dtype == torch.int64 and tuple(got.shape) == (2, 2)
        np.testing.assert_array_equal(got.numpy(), _numpy_counts(y, t, ignore, (1, 5)))


def test_requires_grad_and_strided_views():
    y, t = _batch(80, 12)
    leaf = y.clone().requires_grad_()
    for scores, labels in ((leaf, t), (leaf * 1, t), (leaf[::2, 1:11], t[::2].clamp(max=9)),
                           (leaf.t().contiguous().t(), t)):
        got = fm.accuracy_counts(scores, labels, k=[1, 3, 100])
        np.testing.assert_array_equal(got.numpy(), _numpy_counts(scores, labels, None, [1, 3, 100]))
    assert leaf.grad is None


def test_out_tensor_and_numpy_out_accumulate():
    y, t = _batch()
    expected = _numpy_counts(y, t, None, (1, 5))
    out = torch.ones(2, 2, dtype=torch.int64)
    assert fm.accuracy_counts(y, t, k=(1, 5), out=out) is out
    fm.accuracy_counts(y, t, k=(1, 5), out=out)
    np.testing.assert_array_equal(out.numpy(), 2 * expected + 1)
    out_np = np.zeros((2, 2), np.int64)
    assert fm.accuracy_counts(y, t, k=(1, 5), out=out_np) is out_np
    np.testing.assert_array_equal(out_np, expected)


@pytest.mark.parametrize("out", [torch.zeros(2, 2, dtype=torch.int32), torch.zeros(2, dtype=torch.int64),
                                 torch.zeros(3, 2, dtype=torch.int64)], ids=["int32", "(2,)", "(3, 2)"])
def test_bad_out_tensor_names_dtype_and_shape(out):
    y, t = _batch()
    with pytest.raises(ValueError, match=r"out must be an int64 array of shape \(2, 2\).*got dtype torch\.\w+, "
                                         r"shape \(\d,( \d)?\)"):
        fm.accuracy_counts(y, t, k=(1, 5), out=out)
    assert not out.any()


def test_bad_inputs_name_the_argument():
    y, t = _batch()
    with pytest.raises(ValueError, match="t.shape"):
        fm.accuracy_counts(y, t[:5], k=(1, 2))
    with pytest.raises(TypeError, match="^t must hold integer labels"):
        fm.accuracy_counts(y, t.float(), k=(1, 2))
    with pytest.raises(TypeError, match="^y must hold float16, bfloat16"):
        fm.accuracy_counts(t.view(-1, 1), t, k=(1, 2))


def test_in_place_after_the_first_call(monkeypatch):
    """After a layout's first call (which builds the plan through numpy views), calls of that
    layout read the tensors through torch's DLPack exchange table: no numpy views."""
    from fusedmetrics import _accuracy, _accuracy_multi_k
    if _accuracy.torch_exchange(torch) is False:
        pytest.skip("this torch has no DLPack C exchange API")
    y, t = _batch(33, 7, seed=3)
    fm.accuracy_counts(y, t, k=(1, 5))
    views = []
    real = _accuracy_multi_k.torch_host_view
    monkeypatch.setattr(_accuracy_multi_k, "torch_host_view", lambda x: views.append(x) or real(x))
    for seed in range(3):
        y, t = _batch(33, 7, seed=seed)
        np.testing.assert_array_equal(fm.accuracy_counts(y, t, k=(1, 5)).numpy(), _numpy_counts(y, t, None, (1, 5)))
    assert not views


@pytest.mark.parametrize("ks", [(1,), (5, 1), (1, 1, 2), (3, 100), [2, 7, 8]])
def test_k_lists_capped_and_repeated(ks):
    y, t = _batch(50, 7)
    for ignore in (None, 2):
        got = fm.accuracy_counts(y, t, ignore, k=ks)
        assert tuple(got.shape) == (len(ks), 2)
        np.testing.assert_array_equal(got.numpy(), _numpy_counts(y, t, ignore, ks))


@pytest.mark.parametrize("layout", ["row-major", "column-major", "strided rows", "one row"])
def test_out_layouts(layout):
    y, t = _batch()
    ks = (1, 2, 5) if layout != "one row" else (5,)
    expected = _numpy_counts(y, t, None, ks)
    if layout == "row-major":
        out = torch.zeros(3, 2, dtype=torch.int64)
    elif layout == "column-major":
        out = torch.zeros(2, 3, dtype=torch.int64).t()
    elif layout == "strided rows":
        out = torch.zeros(6, 3, dtype=torch.int64)[::2, 1:]
    else:
        out = torch.zeros(1, 2, dtype=torch.int64)
    assert fm.accuracy_counts(y, t, k=ks, out=out) is out
    fm.accuracy_counts(y, t, k=ks, out=out)
    np.testing.assert_array_equal(out.numpy(), 2 * expected)


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "views"])
def test_overlapping_out_is_refused_on_both_paths(torch_exchange, exchange):
    """An expanded out (rows sharing memory) would get every k's counts in one row: refused."""
    y, t = _batch()
    torch_exchange(None if exchange else False)   # None: a fresh exchange cache on the next call
    memory = torch.zeros(1, 2, dtype=torch.int64)
    with pytest.raises(ValueError, match="out must not overlap itself"):
        fm.accuracy_counts(y, t, k=(1, 5), out=memory.expand(2, 2))
    assert not memory.any()
