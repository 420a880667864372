"""accuracy_counts on torch CPU tensors: the cached in-place path (plan keyed on dtypes, shapes and
strides; raw pointers checked in C++ against each tensor's storage) gives numpy's counts, falls back to
the general path where it cannot read in place, and never reads outside a storage."""
import numpy as np
import pytest

import fusedmetrics as fm
from fusedmetrics import _accuracy, _layout

torch = pytest.importorskip("torch")


def _reference(y, t, ignore_label=None):
    y, t = y.detach().float().numpy(), t.numpy()
    keep = np.ones(t.shape, bool) if ignore_label is None else t != ignore_label
    return np.array([int(((y.argmax(1) == t) & keep).sum()), int(keep.sum())])


def _batch(n=64, c=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(n, c, generator=g)
    t = torch.randint(0, c, (n,), generator=g)
    t[: n // 2] = y[: n // 2].argmax(1)
    return y, t


def test_repeated_calls_use_one_cached_plan_and_match_numpy(monkeypatch, torch_exchange):
    monkeypatch.setattr(_accuracy, "_TORCH_PLANS", _layout.PlanCache())
    torch_exchange(None)  # a fresh one: its plans come from _TORCH_PLANS
    for seed in range(4):   # new tensors of one call shape: one plan
        y, t = _batch(seed=seed)
        got = fm.accuracy_counts(y, t)
        assert got.dtype == torch.int64 and got.shape == (2,)
        np.testing.assert_array_equal(got.numpy(), _reference(y, t))
    assert len(_accuracy._TORCH_PLANS) == 1
    plan = next(iter(_accuracy._TORCH_PLANS.values()))
    assert plan is not False


def test_fresh_result_each_call():
    y, t = _batch()
    a, b = fm.accuracy_counts(y, t), fm.accuracy_counts(y, t)
    assert a.data_ptr() != b.data_ptr()
    assert a.tolist() == b.tolist()


@pytest.mark.parametrize("ydtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("tdtype", ["uint8", "int8", "int16", "int32", "int64"])
def test_dtypes_views_and_ignore(ydtype, tdtype):
    base, t = _batch(n=100, c=12)
    y = base.to(getattr(torch, ydtype))[5:69, 1:11]     # a view at a storage offset, strided rows
    t = y.float().argmax(1).to(getattr(torch, tdtype))
    t[::3] = 4
    for ignore in (None, 4):
        np.testing.assert_array_equal(fm.accuracy_counts(y, t, ignore).numpy(), _reference(y, t, ignore))


def test_requires_grad_and_segmentation_layout():
    y = torch.rand(2, 5, 3, 4, requires_grad=True)
    t = torch.randint(0, 5, (2, 3, 4))
    expected = np.array([int((y.detach().numpy().argmax(1) == t.numpy()).sum()), t.numel()])
    np.testing.assert_array_equal(fm.accuracy_counts(y, t).numpy(), expected)
    assert y.grad is None


def test_fallbacks_give_the_same_counts():
    y, t = _batch()
    # neg bit (memory holds the un-negated values), an expanded (zero-stride) y, empty input,
    # a subclass, and an out= tensor all leave the in-place path.
    np.testing.assert_array_equal(fm.accuracy_counts(torch._neg_view(y), t).numpy(), _reference(-y, t))
    row = y[:1].expand(64, 10)
    np.testing.assert_array_equal(fm.accuracy_counts(row, t).numpy(), _reference(row.contiguous(), t))
    assert fm.accuracy_counts(torch.empty(0, 10), torch.empty(0, dtype=torch.int64)).tolist() == [0, 0]
    assert fm.accuracy_counts(torch.nn.Parameter(y), t).tolist() == _reference(y, t).tolist()
    out = torch.zeros(2, dtype=torch.int64)
    fm.accuracy_counts(y, t, out=out)
    fm.accuracy_counts(y, t, out=out)
    assert out.tolist() == (2 * _reference(y, t)).tolist()


def test_misaligned_storage_falls_back():
    y, t = _batch()
    raw = bytearray(y.numel() * 4 + 1)
    ym = torch.frombuffer(raw, dtype=torch.float32, offset=1, count=y.numel()).view(y.shape)
    assert ym.data_ptr() % 4 == 1   # the kernels read through typed pointers: an aligned copy is read
    ym.copy_(y)
    for _ in range(2):
        np.testing.assert_array_equal(fm.accuracy_counts(ym, t).numpy(), _reference(y, t))


def test_cpp_refuses_reads_outside_the_storage(torch_exchange):
    torch_exchange(False)  # the data_ptr path makes (or finds) the plan
    y, t = _batch()
    fm.accuracy_counts(y, t)
    key = (y.dtype, y.shape, y.stride(), t.dtype, t.shape, t.stride(), None, 1)
    plan = _accuracy._TORCH_PLANS.get(key)
    out = torch.zeros(2, dtype=torch.int64)
    ys, ts = y.untyped_storage(), t.untyped_storage()
    for y_ptr, t_ptr in ((y.data_ptr() + 4, t.data_ptr()), (y.data_ptr() - 4, t.data_ptr()),
                         (y.data_ptr(), t.data_ptr() + 8), (y.data_ptr(), t.data_ptr() - 8)):
        with pytest.raises(IndexError, match="outside its tensor's storage"):
            plan.count_torch(ys, y_ptr, ts, t_ptr, out.data_ptr())
    # a smaller tensor's storage under the same plan: refused, not read past
    small = torch.rand(8, 10)
    with pytest.raises(IndexError):
        plan.count_torch(small.untyped_storage(), small.data_ptr(), ts, t.data_ptr(), out.data_ptr())
    # a resized-away storage: refused
    gone = y.clone()
    ptr = gone.data_ptr()
    gone.untyped_storage().resize_(0)
    with pytest.raises(IndexError):
        plan.count_torch(gone.untyped_storage(), ptr, ts, t.data_ptr(), out.data_ptr())
    # misaligned pointers: declined (False), nothing written
    assert plan.count_torch(ys, y.data_ptr() + 1, ts, t.data_ptr(), out.data_ptr()) is False
    assert out.tolist() == [0, 0]
    with pytest.raises(ValueError, match="aligned"):
        plan.count_torch(ys, y.data_ptr(), ts, t.data_ptr(), out.data_ptr() + 4)
    assert plan.count_torch(ys, y.data_ptr(), ts, t.data_ptr(), out.data_ptr()) is True
    assert out.tolist() == _reference(y, t).tolist()


def test_errors_name_the_arguments():
    y, t = _batch()
    with pytest.raises(ValueError):
        fm.accuracy_counts(y, t[:10])
    with pytest.raises((TypeError, ValueError)):
        fm.accuracy_counts(y, t.float())
