"""accuracy_counts on torch CPU tensors through torch's DLPack C exchange API
(_core.TorchAccuracyCache): the same counts as the numpy path on the same values, the same
errors as the path it replaces, and a fresh int64 tensor per call (or out, added into)."""
import threading

import numpy as np
import pytest

import fusedmetrics as fm
from fusedmetrics import _accuracy, _core

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not hasattr(torch.Tensor, "__dlpack_c_exchange_api__"),
                                reason="this torch has no DLPack C exchange API")

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
LABELS = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]
LABELS += [getattr(torch, n) for n in ("uint16", "uint32", "uint64") if hasattr(torch, n)]


@pytest.fixture
def fresh_cache(monkeypatch, torch_exchange):
    """A fresh exchange cache, and a record of the calls the data_ptr path took."""
    cache = _core.TorchAccuracyCache(torch.Tensor, torch.Tensor.__dlpack_c_exchange_api__)
    torch_exchange(cache)
    fallbacks = []
    real = _accuracy._torch_in_place_counts

    def recorded(*args):
        fallbacks.append(args)
        return real(*args)

    monkeypatch.setattr(_accuracy, "_torch_in_place_counts", recorded)
    return cache, fallbacks


def _numpy_counts(y, t, ignore_label=None, k=1):
    """The numpy path on the same values (bfloat16 widened to float32: the same order)."""
    y = y.detach()
    y = y.float() if y.dtype == torch.bfloat16 else y
    return fm.accuracy_counts(y.numpy(), t.numpy(), ignore_label, k=k)


def _adversarial(n, c, seed=0, dtype=torch.float32):
    """Scores with ties, NaN (several in a row), inf, -0.0/+0.0, and labels with ignored
    (-1) and out-of-range ones."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, c, generator=g).round(decimals=1)  # many ties
    y[1::7, 0] = float("nan")
    y[2::7, c - 1] = float("nan")
    y[3::7] = float("nan")
    y[4::7, 1 % c] = float("inf")
    y[5::7] = 0.0
    y[5::7, 0] = -0.0
    y[6::11, c // 2] = float("-inf")
    t = torch.randint(0, c, (n,), generator=g)
    t[::5] = -1
    t[3::13] = c + 2
    return y.to(dtype), t


@pytest.mark.parametrize("fdtype", FLOATS, ids=str)
@pytest.mark.parametrize("ldtype", LABELS, ids=str)
def test_every_dtype_matches_numpy(fresh_cache, fdtype, ldtype):
    cache, fallbacks = fresh_cache
    y, t = _adversarial(67, 10, dtype=fdtype)   # 67: not a multiple of any vector width
    signed = ldtype.is_signed
    t = t.clamp(min=0) if not signed else t
    t = t.to(ldtype)
    ignores = (None, 3) + ((-1,) if signed else ())
    for ignore in ignores:
        for k in (1, 2):
            got = fm.accuracy_counts(y, t, ignore, k=k)
            assert type(got) is torch.Tensor and got.dtype == torch.int64 and got.shape == (2,)
            np.testing.assert_array_equal(got.numpy(), _numpy_counts(y, t, ignore, k))
    assert len(cache) == 2 * len(ignores)   # one plan per (ignore_label, k) layout
    assert not fallbacks   # every call took the exchange path


@pytest.mark.parametrize("n,c", [(1, 2), (16, 2), (64, 10), (255, 3), (256, 10), (1000, 37), (4096, 1000)])
def test_batch_and_class_sizes(fresh_cache, n, c):
    y, t = _adversarial(n, c, seed=n + c)
    for ignore in (None, -1):
        np.testing.assert_array_equal(fm.accuracy_counts(y, t, ignore).numpy(), _numpy_counts(y, t, ignore))


def test_non_contiguous_and_segmentation_layouts(fresh_cache):
    y, t = _adversarial(80, 12)
    cases = [
        (y[::2, 1:11], t[::2].clamp(max=9)),         # strided rows, a storage offset
        (y.t().contiguous().t(), t),                 # column-major scores
        (y[5:69, 1:11], t[10:74].clamp(max=9)),      # both at storage offsets
        (y.view(20, 4, 12).permute(0, 2, 1), t[:80].view(20, 4).clamp(max=11)),  # (N, C, M)
        (torch.randn(3, 5, 4, 6).permute(0, 1, 3, 2), torch.randint(0, 5, (3, 6, 4))),
        (torch.randn(4, 7, 1, 1), torch.randint(0, 7, (4,))),                  # trailing size-1 axes
    ]
    for ys, ts in cases:
        for ignore in (None, -1):
            np.testing.assert_array_equal(fm.accuracy_counts(ys, ts, ignore).numpy(),
                                          _numpy_counts(ys.contiguous(), ts.contiguous(), ignore))


def test_requires_grad_leaf_and_non_leaf(fresh_cache):
    cache, fallbacks = fresh_cache
    y, t = _adversarial(64, 10)
    leaf = y.clone().requires_grad_()
    for scores in (leaf, leaf * 1, leaf[:, :]):
        np.testing.assert_array_equal(fm.accuracy_counts(scores, t).numpy(), _numpy_counts(y, t))
    assert leaf.grad is None and not fallbacks


@pytest.mark.parametrize("stride", [1, 3])
def test_out_accumulates_in_place(fresh_cache, stride):
    y, t = _adversarial(64, 10)
    base = torch.full((2 * stride,), 7, dtype=torch.int64)
    out = base[::stride]
    for k in (1, 1, 3):
        assert fm.accuracy_counts(y, t, -1, k=k, out=out) is out
    expected = 2 * _numpy_counts(y, t, -1) + _numpy_counts(y, t, -1, 3) + 7
    np.testing.assert_array_equal(out.numpy(), expected)
    if stride == 3:
        assert base[1].item() == 7 and base[2].item() == 7   # between the counters: untouched


def test_result_is_a_fresh_plain_tensor(fresh_cache):
    y, t = _adversarial(64, 10)
    a, b = fm.accuracy_counts(y, t), fm.accuracy_counts(y, t)
    assert a.data_ptr() != b.data_ptr() and a.tolist() == b.tolist()
    assert a.is_contiguous() and a.device.type == "cpu" and not a.requires_grad
    a += 1   # the caller owns it
    assert (a - b).tolist() == [1, 1]
    assert torch.stack([a, b]).shape == (2, 2)


def test_declined_calls_give_the_same_counts(fresh_cache):
    cache, fallbacks = fresh_cache
    y, t = _adversarial(64, 10)
    expected = _numpy_counts(y, t).tolist()
    neg = torch._neg_view(-y)   # memory holds -y, the view reads y
    assert fm.accuracy_counts(neg, t).tolist() == expected
    assert fm.accuracy_counts(torch.nn.Parameter(y), t).tolist() == expected
    assert fm.accuracy_counts(y, t, np.int64(-1)).tolist() == _numpy_counts(y, t, -1).tolist()
    assert fm.accuracy_counts(torch.empty(0, 10), torch.empty(0, dtype=torch.int64)).tolist() == [0, 0]
    big = torch.randn(1024, 1100)   # over 4 MiB: the path that releases the GIL
    tb = torch.randint(0, 1100, (1024,))
    assert fm.accuracy_counts(big, tb).tolist() == _numpy_counts(big, tb).tolist()
    assert fallbacks   # these went to the data_ptr path (or past it)


def test_ignore_labels_beyond_int64(fresh_cache):
    if not hasattr(torch, "uint64"):
        pytest.skip("no torch.uint64")
    y, t = _adversarial(64, 10)
    t = t.clamp(min=0).to(torch.uint64)
    for ignore in (2**64 - 1, 2**63, 3):
        np.testing.assert_array_equal(fm.accuracy_counts(y, t, ignore).numpy(), _numpy_counts(y, t, ignore))


def test_misaligned_tensor(fresh_cache):
    y, t = _adversarial(64, 10)
    raw = bytearray(y.numel() * 4 + 1)
    ym = torch.frombuffer(raw, dtype=torch.float32, offset=1, count=y.numel()).view(y.shape)
    ym.copy_(y)
    for _ in range(2):
        np.testing.assert_array_equal(fm.accuracy_counts(ym, t).numpy(), _numpy_counts(y, t))


def _error(call):
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - compared below
        return type(exc), str(exc)
    return None


BAD_CALLS = {
    "short t": lambda y, t: fm.accuracy_counts(y, t[:10]),
    "float t": lambda y, t: fm.accuracy_counts(y, t.float()),
    "int y": lambda y, t: fm.accuracy_counts(t.view(8, 8), t[:8]),
    "complex y": lambda y, t: fm.accuracy_counts(torch.complex(y, y), t),
    "1-d y": lambda y, t: fm.accuracy_counts(y[:, 0], t),
    "0-d t": lambda y, t: fm.accuracy_counts(y, t[0]),
    "bool t": lambda y, t: fm.accuracy_counts(y, t > 2),
    "float ignore": lambda y, t: fm.accuracy_counts(y, t, 1.5),
    "int32 out": lambda y, t: fm.accuracy_counts(y, t, out=torch.zeros(2, dtype=torch.int32)),
    "(3,) out": lambda y, t: fm.accuracy_counts(y, t, out=torch.zeros(3, dtype=torch.int64)),
    "(1, 2) out": lambda y, t: fm.accuracy_counts(y, t, out=torch.zeros(1, 2, dtype=torch.int64)),
    "zero-stride out": lambda y, t: fm.accuracy_counts(y, t, out=torch.zeros(1, dtype=torch.int64).expand(2)),
    "short t with out": lambda y, t: fm.accuracy_counts(y, t[:3], out=torch.zeros(2, dtype=torch.int64)),
    "meta y": lambda y, t: fm.accuracy_counts(y.to("meta"), t),
    "meta t": lambda y, t: fm.accuracy_counts(y, t.to("meta")),
    "k=0": lambda y, t: fm.accuracy_counts(y, t, k=0),
    "top-k short t": lambda y, t: fm.accuracy_counts(y, t[:10], k=(1, 5)),
    "top-k float t": lambda y, t: fm.accuracy_counts(y, t.float(), k=(1, 5)),
    "top-k int y": lambda y, t: fm.accuracy_counts(t.view(8, 8), t[:8], k=(1, 5)),
    "top-k int32 out": lambda y, t: fm.accuracy_counts(y, t, k=(1, 5), out=torch.zeros(2, 2, dtype=torch.int32)),
    "top-k (2,) out": lambda y, t: fm.accuracy_counts(y, t, k=(1, 5), out=torch.zeros(2, dtype=torch.int64)),
    "top-k (3, 2) out": lambda y, t: fm.accuracy_counts(y, t, k=(1, 5), out=torch.zeros(3, 2, dtype=torch.int64)),
    "top-k short t with out": lambda y, t: fm.accuracy_counts(y, t[:3], k=(1, 5),
                                                             out=torch.zeros(2, 2, dtype=torch.int64)),
    "top-k meta y": lambda y, t: fm.accuracy_counts(y.to("meta"), t, k=(1, 5)),
    "top-k k=0": lambda y, t: fm.accuracy_counts(y, t, k=(1, 0)),
    "top-k no k": lambda y, t: fm.accuracy_counts(y, t, k=()),
}


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_errors_are_those_of_the_path_it_replaces(fresh_cache, torch_exchange, name):
    y, t = _adversarial(64, 10)
    t = t.clamp(min=0)
    fast = _error(lambda: BAD_CALLS[name](y, t))
    again = _error(lambda: BAD_CALLS[name](y, t))   # a cached layout, if any, errs the same way
    torch_exchange(False)
    before = _error(lambda: BAD_CALLS[name](y, t))
    assert before is not None
    assert fast == again == before


def test_cache_is_bounded(fresh_cache):
    cache, _ = fresh_cache
    for n in range(1, 300):
        y, t = _adversarial(n, 3, seed=n)
        np.testing.assert_array_equal(fm.accuracy_counts(y, t).numpy(), _numpy_counts(y, t))
    assert 0 < len(cache) <= 256


def test_threads_share_the_cache(fresh_cache):
    batches = [_adversarial(50 + i, 10, seed=i) for i in range(8)]
    expected = [_numpy_counts(y, t).tolist() for y, t in batches]
    errors = []

    def run(i):
        for _ in range(200):
            y, t = batches[i]
            if fm.accuracy_counts(y, t).tolist() != expected[i]:
                errors.append(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors


def test_constructor_refuses_what_is_not_an_exchange_table():
    with pytest.raises(ValueError, match="dlpack_exchange_api"):
        _core.TorchAccuracyCache(torch.Tensor, object())
    with pytest.raises(ValueError, match="dlpack_exchange_api"):
        _core.TorchAccuracyCache(torch.Tensor, torch.empty(2).__dlpack__())


def test_count_fast_keeps_its_cache_alive_and_checks_its_arguments():
    import gc

    cache = _core.TorchAccuracyCache(torch.Tensor, torch.Tensor.__dlpack_c_exchange_api__)
    count = cache.count_fast
    del cache
    gc.collect()
    y, t = _adversarial(64, 10)
    assert count(y, t, None, 1, None) is None   # no plan yet: alive, and empty
    with pytest.raises(TypeError, match="5 positional arguments"):
        count(y, t, None, 1)
    with pytest.raises(TypeError):
        count(y, t, None, "1", None)


def test_errors_name_the_argument_shape_and_dtype(fresh_cache):
    y, t = _adversarial(64, 10)
    t = t.clamp(min=0)
    with pytest.raises(ValueError, match=r"y.shape\[0\] and t.shape\[0\].*y.shape \(64, 10\) and t.shape \(10,\)"):
        fm.accuracy_counts(y, t[:10])
    with pytest.raises(TypeError, match=r"^t must hold integer labels.*t.dtype float32"):
        fm.accuracy_counts(y, t.float())
    with pytest.raises(TypeError, match=r"^y must hold float16, bfloat16.*y.dtype int64"):
        fm.accuracy_counts(t.view(8, 8), t[:8])
    with pytest.raises(ValueError, match=r"out must be an int64 tensor of shape \(2,\).*dtype torch.int32"):
        fm.accuracy_counts(y, t, out=torch.zeros(2, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"out must be an int64 array of shape \(2,\); got dtype int64, shape \(3,\)"):
        fm.accuracy_counts(y, t, out=torch.zeros(3, dtype=torch.int64))
