"""The Python side of the device path (hand-off, commit/discard, host+device
merge) against a NumPy stand-in for fusedmetrics._device_moments.DeviceMomentStore.
Runs without a GPU; the real store is tested by the gpu-marked summary tests."""
import types

import numpy as np
import pytest

from fusedmetrics import _device_moments, _interop
from fusedmetrics.summary import DictSummary


class FakeDeviceArray:
    """A 0-d 'device' array: has __cuda_array_interface__, holds a NumPy value."""

    def __init__(self, value, dtype=np.float32):
        self.value = np.asarray(value, dtype=dtype)
        self.ndim = 0
        self.dtype = self.value.dtype

    @property
    def __cuda_array_interface__(self):
        return {"shape": (), "typestr": self.value.dtype.str, "data": (0, False), "version": 3}


class FakeStore:
    instances = []

    def __init__(self, device_id):
        self.device_id = device_id
        self.table = np.zeros((0, 3))
        self.calls = []
        self.fail_next = False
        FakeStore.instances.append(self)

    @classmethod
    def for_value(cls, value):
        return cls(0)

    def add(self, slots, values, weights):
        if self.fail_next:
            raise RuntimeError("launch failed")
        self.calls.append(list(slots))
        need = max(slots) + 1
        if need > len(self.table):
            self.table = np.vstack([self.table, np.zeros((need - len(self.table), 3))])
        for slot, v, w in zip(slots, values, weights):
            assert isinstance(v, FakeDeviceArray)
            x = float(v.value)
            w = float(w.value) if isinstance(w, FakeDeviceArray) else float(w)
            if w == 0:
                continue
            total, mean, m2 = self.table[slot]
            new_total = total + w
            delta = x - mean
            new_mean = mean + delta * (w / new_total)
            self.table[slot] = (new_total, new_mean, m2 + w * delta * (x - new_mean))

    def statistics(self, slots, host_moments):
        means, stds = [], []
        for slot, (wa, ma, qa) in zip(slots, host_moments):
            wb, mb, qb = self.table[slot]
            total = wa + wb
            delta = mb - ma
            mean = ma + delta * (wb / total) if wa else mb
            m2 = qa + qb + delta * delta * wa * (wb / total)
            means.append(mean)
            stds.append(np.sqrt(max(m2 / total, 0.0)))
        return np.array(means), np.array(stds)

    def to_host(self):
        return self.table.copy()


@pytest.fixture
def fake_device(monkeypatch):
    monkeypatch.setattr(_device_moments, "DeviceMomentStore", FakeStore)
    FakeStore.instances.clear()
    return FakeStore


def test_mixed_host_and_device_values_match_host_only(fake_device):
    rng = np.random.default_rng(0)
    host, mixed = DictSummary(), DictSummary()
    for i in range(300):
        d = {"loss": float(rng.normal(2.3, 1e-3)), "acc": (float(rng.random()), int(rng.integers(1, 4)))}
        if i % 5 == 0:
            d["dev_only"] = float(rng.normal())
        host.add(d)
        m = {}
        for k, v in d.items():
            on_device = k == "dev_only" or i % 2 == 0
            if isinstance(v, tuple):
                m[k] = (FakeDeviceArray(v[0], np.float64), v[1]) if on_device else v
            else:
                m[k] = FakeDeviceArray(v, np.float64) if on_device else v
        mixed.add(m)
    store, = FakeStore.instances
    assert all(len(c) >= 1 for c in store.calls)
    # one store call per add() that had device values, none for host-only adds
    assert len(store.calls) == sum(1 for i in range(300) if i % 2 == 0 or i % 5 == 0)
    h, g = host.make_statistics(), mixed.make_statistics()
    assert list(g) == list(h)
    for k in h:
        np.testing.assert_allclose(g[k], h[k], rtol=1e-11, atol=1e-15, err_msg=k)
    sd_h, sd_m = host.state_dict(), mixed.state_dict()
    np.testing.assert_allclose(sd_m["moments"], sd_h["moments"], rtol=1e-11, atol=1e-15)
    assert sd_m["integer_weights"].tolist() == sd_h["integer_weights"].tolist() == [True, True, True]


def test_failed_launch_loses_nothing(fake_device):
    s = DictSummary()
    s.add({"a": 1.0, "d": FakeDeviceArray(2.0)})
    before = s.state_dict()
    store, = FakeStore.instances
    store.fail_next = True
    with pytest.raises(RuntimeError, match="launch failed"):
        s.add({"a": 5.0, "new_host": 1.0, "new_dev": FakeDeviceArray(3.0)})
    after = s.state_dict()
    assert after["names"] == before["names"] == ["a", "d"]
    np.testing.assert_array_equal(after["moments"], before["moments"])
    store.fail_next = False
    s.add({"a": 3.0, "new_dev": FakeDeviceArray(3.0)})
    assert s.compute_mean() == {"a": 2.0, "d": 2.0, "new_dev": 3.0}


def test_device_weights_and_zero_host_weights(fake_device):
    s = DictSummary()
    s.add({"z": (FakeDeviceArray(1.0), 0), "w": (FakeDeviceArray(4.0), FakeDeviceArray(3, np.int32)),
           "f": (FakeDeviceArray(4.0), FakeDeviceArray(0.5))})
    s.add({"w": (FakeDeviceArray(8.0), FakeDeviceArray(1, np.int32))})
    sd = s.state_dict()
    assert sd["names"] == ["w", "f"]  # zero host weight: skipped, no entry
    np.testing.assert_allclose(sd["moments"][0], [4.0, 5.0, 12.0])
    assert sd["integer_weights"].tolist() == [True, False]


def test_serialize_and_merge_include_device_parts(fake_device):
    chainer = pytest.importorskip("chainer")
    s = DictSummary()
    s.add({"k": FakeDeviceArray(1.0)})
    s.add({"k": 3.0})
    d = chainer.serializers.DictionarySerializer()
    d.save(s)
    np.testing.assert_array_equal(d.target["_fm_moments"], [[2.0, 2.0, 2.0]])
    assert d.target["_summaries/0/_n"] == 2
    other = DictSummary()
    other.add({"k": 5.0})
    other.merge(s)
    assert other.compute_mean() == {"k": 3.0}


class _FakeTables:
    """The store's backend without a GPU: numpy tables, a switchable capture flag."""

    def __init__(self, capturing=False):
        self.is_capturing = capturing
        self.allocations = 0

    def zeros(self, shape):
        self.allocations += 1
        return np.zeros(shape)

    def ptr(self, array):
        return array.ctypes.data

    def stream(self):
        return 7

    def capturing(self):
        return self.is_capturing


class _InterfaceScalar:
    """A one-element float32 'device' value: an aligned non-null pointer is all the store reads.
    The interface names the launch stream (7) unless told another."""

    def __init__(self, value, stream=7):
        self.value = np.full(1, value, np.float32)
        self.stream = stream

    @property
    def __cuda_array_interface__(self):
        return {"shape": (1,), "typestr": "<f4", "data": (self.value.ctypes.data, False), "version": 3,
                "stream": self.stream}


@pytest.fixture
def real_store(monkeypatch):
    launches = []
    module = types.SimpleNamespace(pointer_device=lambda ptr: 0,
                                   summary_update=lambda *args: launches.append(args),
                                   stream_wait=lambda produced, launch, dev: launches.append(("wait", produced,
                                                                                              launch)))
    monkeypatch.setattr(_interop, "cuda_module", lambda: module)
    monkeypatch.setattr(_device_moments, "cuda_module", lambda: module)
    store = _device_moments.DeviceMomentStore(0)
    store._tables = _FakeTables()
    store.launches = launches
    return store


def test_growing_the_table_while_capturing_raises_and_changes_nothing(real_store):
    real_store.add([0, 1], [_InterfaceScalar(1.0), _InterfaceScalar(2.0)], [1.0, 1.0])
    capacity, table = real_store.capacity, real_store._state
    real_store._tables.is_capturing = True
    with pytest.raises(RuntimeError, match="capturing a CUDA graph"):
        real_store.add([capacity], [_InterfaceScalar(3.0)], [1.0])
    assert real_store.capacity == capacity and real_store._state is table
    assert real_store._tables.allocations == 1 and len(real_store.launches) == 1
    real_store.add([1], [_InterfaceScalar(3.0)], [1.0])  # no growth: capturable
    assert len(real_store.launches) == 2


def test_values_and_weights_from_other_streams_are_waited_for_before_the_launch(real_store):
    real_store.add([0, 1, 2], [_InterfaceScalar(1.0, stream=9), _InterfaceScalar(2.0), _InterfaceScalar(3.0)],
                   [1.0, _InterfaceScalar(2.0, stream=11), _InterfaceScalar(1.0, stream=9)])
    *waits, launch = real_store.launches
    assert sorted(waits) == [("wait", 9, 7), ("wait", 11, 7)]   # once per stream, before the launch
    assert launch[0] == [0, 1, 2] and launch[-2] == 7           # launched on the tables' stream
    real_store.add([0], [_InterfaceScalar(4.0)], [_InterfaceScalar(1.0)])
    assert real_store.launches[-1][0] == [0] and len(real_store.launches) == 4   # same stream: no wait


@pytest.mark.parametrize("weight", [float("inf"), np.float64("inf"), float("-inf"), float("nan"), -1.0])
def test_non_finite_or_negative_host_weights_are_refused_before_the_launch(real_store, weight):
    with pytest.raises(ValueError, match=r"weights\[0\] must be finite and >= 0"):
        real_store.add([0], [_InterfaceScalar(1.0)], [weight])
    assert real_store.launches == [] and real_store.capacity == 0


def test_big_endian_device_values_are_refused_naming_them(real_store):
    class Swapped(_InterfaceScalar):
        @property
        def __cuda_array_interface__(self):
            return dict(super().__cuda_array_interface__, typestr=">f4")

    with pytest.raises(TypeError, match=r"values\[1\] has byte-swapped elements"):
        real_store.add([0, 1], [_InterfaceScalar(1.0), Swapped(2.0)], [1.0, 1.0])
    assert real_store.launches == []
