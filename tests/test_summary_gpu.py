"""Device values in DictSummary and the device moment store behind them, against numpy
float64 two-pass statistics (need an NVIDIA GPU with CuPy; skipped otherwise)."""
import io

import numpy as np
import pytest

import fusedmetrics
from conftest import cupy, device_bfloat16
from fusedmetrics._device_moments import DeviceMomentStore
from fusedmetrics.summary import DictSummary

try:
    from fusedmetrics import _cuda
except ImportError:  # built without the CUDA kernels: conftest skips every test here
    _cuda = None

pytestmark = pytest.mark.gpu


def stream(seed, steps=200):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(steps):
        d = {"loss": rng.normal(2.3, 1e-3), "acc": rng.random()}
        if i % 4 == 0:
            d["sparse"] = rng.normal(10.0, 3.0)
        out.append(d)
    return out


def test_device_values_match_host_path():
    host, dev = DictSummary(), DictSummary()
    for d in stream(0):
        host.add({k: np.float32(v) for k, v in d.items()})
        dev.add({k: cupy.asarray(v, dtype=cupy.float32) for k, v in d.items()})
    h, g = host.make_statistics(), dev.make_statistics()
    assert list(g) == list(h)
    for k in h:
        assert isinstance(g[k], cupy.ndarray) and g[k].shape == () and g[k].dtype == cupy.float64
        np.testing.assert_allclose(float(g[k]), float(h[k]), rtol=1e-12, atol=1e-15)
    means = dev.compute_mean()
    assert all(isinstance(v, cupy.ndarray) for v in means.values())


def test_host_and_device_parts_of_one_key_are_merged():
    mixed, host = DictSummary(), DictSummary()
    for i, d in enumerate(stream(1)):
        host.add(d)
        mixed.add({k: (cupy.asarray(v) if i % 2 else v) for k, v in d.items()})
    h, m = host.make_statistics(), mixed.make_statistics()
    for k in h:
        np.testing.assert_allclose(float(m[k]), float(h[k]), rtol=1e-12, atol=1e-15)
    sd_h, sd_m = host.state_dict(), mixed.state_dict()
    assert sd_m["names"] == sd_h["names"]
    np.testing.assert_allclose(sd_m["moments"], sd_h["moments"], rtol=1e-12, atol=1e-15)


def test_device_weights_and_integer_flag():
    s, ref = DictSummary(), DictSummary()
    for x, w in [(1.0, 2), (3.0, 1), (5.0, 4)]:
        s.add({"i": (cupy.asarray(x), cupy.asarray(w, dtype=cupy.int32)), "f": (cupy.asarray(x), 0.5)})
        ref.add({"i": (x, w), "f": (x, 0.5)})
    np.testing.assert_allclose(s.state_dict()["moments"], ref.state_dict()["moments"], rtol=1e-14)
    assert s.state_dict()["integer_weights"].tolist() == [True, False]


def test_one_store_call_per_add(monkeypatch):
    s = DictSummary()
    s.add({"a": cupy.asarray(1.0)})
    calls = []
    original = type(s._store).add
    monkeypatch.setattr(type(s._store), "add", lambda self, *a: (calls.append(len(a[0])), original(self, *a))[1])
    s.add({f"k{i}": cupy.asarray(float(i)) for i in range(64)})
    assert calls == [64]


def test_add_is_capturable_in_a_cuda_graph():
    s = DictSummary()
    values = {f"k{i}": cupy.asarray(float(i), dtype=cupy.float32) for i in range(8)}
    s.add(values)  # creates the store and the slots outside the capture
    cupy.cuda.Device().synchronize()
    stream_ = cupy.cuda.Stream(non_blocking=True)
    with stream_:
        stream_.begin_capture()
        for _ in range(5):
            s.add(values)
        graph = stream_.end_capture()
    graph.launch(stream_)
    stream_.synchronize()
    means = s.compute_mean()
    assert float(means["k3"]) == 3.0
    assert s.state_dict()["moments"][3, 0] == 6.0  # 1 + 5 values captured and replayed once


def test_device_summary_serializes_to_host_snapshot():
    chainer = pytest.importorskip("chainer")
    s = DictSummary()
    for d in stream(2, steps=20):
        s.add({k: cupy.asarray(v) for k, v in d.items()})
    buf = io.BytesIO()
    chainer.serializers.save_npz(buf, s)
    buf.seek(0)
    loaded = DictSummary()
    chainer.serializers.load_npz(buf, loaded)
    np.testing.assert_array_equal(loaded.state_dict()["moments"], s.state_dict()["moments"])


# -- the device moment store itself --------------------------------------------
def two_pass(values, weights):
    """(W, mean, population variance) in float64, two passes."""
    x = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    keep = w != 0
    x, w = x[keep], w[keep]
    total = w.sum()
    mean = (w * x).sum() / total
    return total, mean, (w * (x - mean) ** 2).sum() / total


def host_moments(values, weights):
    total, mean, var = two_pass(values, weights)
    return np.array([total, mean, var * total])


def assert_close(got, want, rtol=1e-12, atol=0.0):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=rtol, atol=atol)


def _device_scalars(array):
    """0-d device views of a device array: no allocation per value."""
    return [array[i] for i in range(array.shape[0])]


def test_store_matches_two_pass_for_mixed_dtypes_and_weights():
    rng = np.random.default_rng(0)
    n = 200
    dtypes = [np.float16, np.float32, np.float64, np.int8, np.int32, np.uint16, np.int64, np.bool_]
    store = DeviceMomentStore(cupy.cuda.Device().id)
    streams = {slot: ([], []) for slot in range(len(dtypes))}
    for step in range(n):
        slots, values, weights = [], [], []
        for slot, dt in enumerate(dtypes):
            raw = rng.normal(2.3, 1e-3 if slot == 2 else 5.0) if dt != np.bool_ else rng.random() < 0.3
            raw = abs(raw) if dt == np.uint16 else raw
            x = np.asarray(raw).astype(dt)
            w = float(rng.integers(0, 4)) if slot % 2 else 1.0
            dev_w = cupy.asarray(np.float32(w)) if slot % 3 == 0 else w  # device and host weights
            slots.append(slot)
            values.append(cupy.asarray(x))
            weights.append(dev_w)
            streams[slot][0].append(float(x))
            streams[slot][1].append(w)
        store.add(slots, values, weights)
    state = store.to_host()
    for slot, (xs, ws) in streams.items():
        total, mean, var = two_pass(xs, ws)
        assert_close(state[slot, 0], total)
        assert_close(state[slot, 1], mean)
        assert_close(state[slot, 2] / state[slot, 0], var, rtol=1e-10, atol=1e-300)


def test_hard_stream_gives_exact_zero_std_for_a_constant():
    store = DeviceMomentStore(cupy.cuda.Device().id)
    v = cupy.asarray(np.float32(10000.1))
    for _ in range(1000):
        store.add([0], [v], [1.0])
    means, stds = store.statistics([0], np.zeros((1, 3)))
    assert float(means[0]) == float(np.float32(10000.1))
    assert float(stds[0]) == 0.0


def test_statistics_merge_host_and_device_parts():
    rng = np.random.default_rng(1)
    xs = rng.normal(2.3, 1e-3, size=3000)
    ws = rng.integers(1, 5, size=3000).astype(np.float64)
    store = DeviceMomentStore(cupy.cuda.Device().id)
    d_x = cupy.asarray(xs[1000:])
    for x in _device_scalars(d_x):
        store.add([3], [x], [1.0])
    host = np.zeros((2, 3))
    host[0] = host_moments(xs[:1000], ws[:1000])  # slot 3: host part + device part
    means, stds = store.statistics([3, 0], host)  # slot 0: never touched on the device
    assert isinstance(means, cupy.ndarray) and means.dtype == np.float64 and means.shape == (2,)
    _, mean, var = two_pass(np.concatenate([xs[:1000], xs[1000:]]),
                            np.concatenate([ws[:1000], np.ones(2000)]))
    assert_close(means[0].get(), mean)
    assert_close(stds[0].get() ** 2, var, rtol=1e-10)


def test_zero_weights_are_skipped_and_bad_device_weights_poison_the_slot():
    store = DeviceMomentStore(cupy.cuda.Device().id)
    one = cupy.asarray(np.float64(1.0))
    store.add([0, 1], [one, one], [0.0, cupy.asarray(np.float64(0.0))])
    np.testing.assert_array_equal(store.to_host()[:2], np.zeros((2, 3)))
    store.add([0, 1], [one, one], [cupy.asarray(np.float64(-1.0)), cupy.asarray(np.float64(np.nan))])
    assert np.isnan(store.to_host()[:2]).all()


def test_bad_host_weights_raise_and_leave_the_state_alone():
    store = DeviceMomentStore(cupy.cuda.Device().id)
    one = cupy.asarray(np.float64(1.0))
    store.add([0], [one], [2.0])
    before = store.to_host().copy()
    for bad in (-1.0, float("nan"), float("inf"), np.float64("inf")):
        with pytest.raises(ValueError, match="weights"):
            store.add([0, 1], [one, one], [1.0, bad])
    np.testing.assert_array_equal(store.to_host(), before)
    with pytest.raises(ValueError, match="scalar"):
        store.add([0], [cupy.zeros(3)], [1.0])


def test_more_keys_than_one_launch_carries_and_duplicate_slots():
    rng = np.random.default_rng(2)
    per_launch = _cuda.SUMMARY_ENTRIES_PER_LAUNCH
    n = 2 * per_launch + 17
    xs = rng.normal(size=n)
    slots = [i % 50 for i in range(n)]  # slots repeat inside one launch and across launches
    store = DeviceMomentStore(cupy.cuda.Device().id)
    store.add(slots, _device_scalars(cupy.asarray(xs)), [1.0] * n)
    state = store.to_host()
    for slot in range(50):
        mine = xs[[i for i in range(n) if slots[i] == slot]]
        total, mean, var = two_pass(mine, np.ones(mine.size))
        assert_close(state[slot, :2], [total, mean])
        assert_close(state[slot, 2], var * total, rtol=1e-10, atol=1e-12)


def test_growing_the_table_keeps_earlier_states():
    store = DeviceMomentStore(cupy.cuda.Device().id)
    x = cupy.asarray(np.float64(4.0))
    store.add([0], [x], [1.0])
    store.add([5000], [x], [3.0])
    assert store.capacity > 5000
    state = store.to_host()
    assert_close(state[0], [1.0, 4.0, 0.0])
    assert_close(state[5000], [3.0, 4.0, 0.0])


def test_cuda_graph_capture_of_a_loop_of_store_adds():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=50), rng.normal(size=50) * 10
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        store = DeviceMomentStore(cupy.cuda.Device().id)
        da, db = cupy.asarray(a), cupy.asarray(b)
        va, vb = _device_scalars(da), _device_scalars(db)
        store.add([0, 1], [va[0], vb[0]], [0.0, 0.0])  # warm-up: table allocated, kernel loaded
        stream.synchronize()
        stream.begin_capture()
        for i in range(50):
            store.add([0, 1], [va[i], vb[i]], [1.0, 2.0])
        graph = stream.end_capture()  # fails if add() synchronised
        graph.launch()
        stream.synchronize()
    state = store.to_host()
    for slot, xs, w in ((0, a, 1.0), (1, b, 2.0)):
        total, mean, var = two_pass(xs, np.full(xs.size, w))
        assert_close(state[slot, :2], [total, mean])
        assert_close(state[slot, 2], var * total, rtol=1e-10)


def test_dict_summary_device_values_match_host_path_and_use_one_call_per_add(monkeypatch):
    rng = np.random.default_rng(4)
    keys = ["k%d" % i for i in range(8)]
    data = {k: rng.normal(i, 1 + i, size=40).astype(np.float32) for i, k in enumerate(keys)}
    calls = []
    real = _cuda.summary_update

    def counting(*args, **kwargs):
        calls.append(len(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(_cuda, "summary_update", counting)
    device_summary, host_summary = fusedmetrics.DictSummary(), fusedmetrics.DictSummary()
    device_data = {k: cupy.asarray(v) for k, v in data.items()}
    for i in range(40):
        device_summary.add({k: device_data[k][i] for k in keys})
        host_summary.add({k: data[k][i] for k in keys})
    assert calls == [8] * 40  # one extension call (one launch for <= 128 keys) per add()
    dev_stats, host_stats = device_summary.make_statistics(), host_summary.make_statistics()
    assert list(dev_stats) == list(host_stats)
    for name, value in dev_stats.items():
        assert isinstance(value, cupy.ndarray) and value.dtype == np.float64 and value.ndim == 0
        assert_close(value.get(), host_stats[name], rtol=1e-12, atol=1e-15)
    for k in keys:
        _, mean, var = two_pass(data[k], np.ones(40))
        assert_close(dev_stats[k].get(), mean)
        assert_close(dev_stats[k + ".std"].get(), np.sqrt(var), rtol=1e-10)


def test_dict_summary_mixed_host_and_device_values_for_one_key():
    rng = np.random.default_rng(5)
    xs = rng.normal(size=30)
    summary = fusedmetrics.DictSummary()
    for i, x in enumerate(xs):
        summary.add({"loss": cupy.asarray(x) if i % 2 else float(x)})
    _, mean, var = two_pass(xs, np.ones(30))
    stats = summary.make_statistics()
    assert_close(cupy.asnumpy(stats["loss"]), mean)
    assert_close(cupy.asnumpy(stats["loss.std"]), np.sqrt(var), rtol=1e-10)


def test_cuda_graph_capture_of_a_loop_of_dict_summary_adds():
    rng = np.random.default_rng(6)
    losses, accs = rng.normal(size=20), rng.random(20)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        summary = fusedmetrics.DictSummary()
        dl, da = cupy.asarray(losses), cupy.asarray(accs)
        summary.add({"loss": dl[0], "acc": da[0]})  # warm-up outside the capture
        stream.synchronize()
        stream.begin_capture()
        for i in range(1, 20):
            summary.add({"loss": dl[i], "acc": da[i]})
        graph = stream.end_capture()  # fails if DictSummary.add synchronised
        graph.launch()
        stream.synchronize()
        means = summary.compute_mean()
    assert_close(cupy.asnumpy(means["loss"]), losses.mean())
    assert_close(cupy.asnumpy(means["acc"]), accs.mean())


def test_a_slot_with_only_zero_device_weights_has_nan_statistics():
    """The host reports a weightless key as NaN; the device state of such a slot
    is all zeros, which must not come out as a mean of 0.0."""
    store = DeviceMomentStore(cupy.cuda.Device().id)
    store.add([0, 1], [cupy.asarray(np.float64(5.0))] * 2, [cupy.asarray(np.float64(0.0)), 1.0])
    means, stds = store.statistics([0, 1], np.zeros((2, 3)))
    means, stds = cupy.asnumpy(means), cupy.asnumpy(stds)
    assert np.isnan(means[0]) and np.isnan(stds[0])
    assert means[1] == 5.0 and stds[1] == 0.0


# -- Every scalar code; host and device agree bit for bit ---------------------------------------

SCALAR_DTYPES = ["float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64",
                 "uint8", "uint16", "uint32", "uint64", "bool"]


def _scalar_dtype(name):
    return device_bfloat16() if name == "bfloat16" else np.dtype(name)


def _scalar_series(name, rng, n):
    if name == "bool":
        return rng.random(n) < 0.4
    if name.startswith("uint"):
        return rng.integers(0, 200, n)
    if name.startswith("int"):
        return rng.integers(-100, 100, n)
    return rng.normal(3.0, 2.0, n)


@pytest.mark.parametrize("value_dtype", SCALAR_DTYPES)
@pytest.mark.parametrize("weight_dtype", SCALAR_DTYPES)
def test_every_scalar_code_for_device_values_and_weights(value_dtype, weight_dtype):
    rng = np.random.default_rng(SCALAR_DTYPES.index(value_dtype) * 16 + SCALAR_DTYPES.index(weight_dtype))
    vdt, wdt = _scalar_dtype(value_dtype), _scalar_dtype(weight_dtype)
    xs = _scalar_series(value_dtype, rng, 40).astype(vdt)
    ws = (rng.integers(0, 4, 40) if weight_dtype != "bool" else rng.random(40) < 0.7).astype(wdt)
    host, dev = DictSummary(), DictSummary()
    for x, w in zip(xs, ws):
        host.add({"v": (float(x), float(w))})
        dev.add({"v": (cupy.asarray(np.asarray(x)), cupy.asarray(np.asarray(w)))})
    np.testing.assert_array_equal(dev.state_dict()["moments"], host.state_dict()["moments"])


def test_host_and_device_summaries_are_bit_identical():
    """The same float64 values in the same order: the device runs the host's update rule
    (csrc/semantics/moments.h, no FMA contraction), so the states are equal, not close."""
    rng = np.random.default_rng(90)
    host, dev = DictSummary(), DictSummary()
    for i in range(500):
        d = {"loss": rng.normal(2.3, 1e-4), "big": rng.normal(1e12, 1.0), "acc": (rng.random(), i % 5 + 1)}
        host.add(d)
        dev.add({k: ((cupy.asarray(v[0]), v[1]) if isinstance(v, tuple) else cupy.asarray(v))
                 for k, v in d.items()})
    h, g = host.state_dict(), dev.state_dict()
    assert g["names"] == h["names"]
    np.testing.assert_array_equal(g["moments"], h["moments"])
    hs, gs = host.make_statistics(), dev.make_statistics()
    for k in hs:
        assert float(gs[k]) == float(hs[k]), k


# -- Growth during a capture --------------------------------------------------------------------

def test_growing_the_table_during_a_capture_raises_and_keeps_the_state():
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        s = DictSummary()
        s.add({"a": cupy.asarray(1.0)})
        store = s._store
        capacity, before = store.capacity, store.to_host().copy()
        new_keys = {f"k{i}": cupy.asarray(float(i)) for i in range(capacity + 1)}
        stream.begin_capture()
        try:
            with pytest.raises(RuntimeError, match="capturing a CUDA graph"):
                s.add(new_keys)
        finally:
            stream.end_capture()
        assert store.capacity == capacity
        np.testing.assert_array_equal(store.to_host(), before)
        assert s.state_dict()["names"] == ["a"]


def test_capture_in_global_mode_of_dict_summary_adds():
    stream = cupy.cuda.Stream(non_blocking=True)
    values = [cupy.asarray(np.float32(v)) for v in (1.0, 2.0, 6.0)]
    with stream:
        s = DictSummary()
        s.add({"x": (values[0], 0.0)})  # the table exists before the capture
        stream.synchronize()
        stream.begin_capture(mode=cupy.cuda.runtime.streamCaptureModeGlobal)
        for v in values:
            s.add({"x": v})
        graph = stream.end_capture()
        graph.launch()
        stream.synchronize()
    assert float(s.compute_mean()["x"]) == 3.0


def test_two_threads_adding_on_separate_streams():
    import threading

    results, errors = [None, None], []

    def work(i):
        try:
            stream = cupy.cuda.Stream(non_blocking=True)
            with stream:
                s = DictSummary()
                v = cupy.asarray(float(i + 1))
                for _ in range(300):
                    s.add({"v": v, "w": (v, 2)})
                results[i] = s.state_dict()["moments"]
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for i in range(2):
        np.testing.assert_array_equal(results[i], [[300.0, i + 1.0, 0.0], [600.0, i + 1.0, 0.0]])
