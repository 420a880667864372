"""Device values in DictSummary (need an NVIDIA GPU with CuPy; skipped otherwise)."""
import io

import numpy as np
import pytest

cupy = pytest.importorskip("cupy")
try:
    _gpus = cupy.cuda.runtime.getDeviceCount()
except Exception:  # no driver
    _gpus = 0
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_gpus == 0, reason="needs a CUDA GPU")]
if _gpus:  # a GPU but a build without the CUDA kernels: skip, as tests/gpu does
    pytest.importorskip("fusedmetrics._cuda", reason="fusedmetrics was built without its CUDA kernels")

from fusedmetrics.summary import DictSummary  # noqa: E402


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
