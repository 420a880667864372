"""Hardening: threads sharing one DictSummary / Summary, the thread-pool limits and
errors, and calls that must not wait for a running parallel call."""
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import fusedmetrics
from fusedmetrics import DictSummary, Summary
from test_summary_moments import assert_round_trips

# The children import the fusedmetrics this process imported (installed, or the sanitized
# copy of scripts/sanitize.sh), not src/: a clean checkout's src/ has no compiled _core.
PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fusedmetrics.__file__)))


class Yielding:
    """A 0-d value whose conversion lets the GIL switch to another thread."""

    ndim = 0

    def __init__(self, value):
        self.value = value

    def __float__(self):
        time.sleep(0)
        return float(self.value)


@pytest.fixture
def fast_switching():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def test_threads_sharing_a_dict_summary_lose_nothing(fast_switching):
    n_threads, n_adds = 4, 1500
    s = DictSummary()
    start = threading.Barrier(n_threads)
    errors = []

    def work(tid):
        try:
            start.wait()
            for j in range(n_adds):
                s.add({
                    "shared": Yielding(tid),
                    "k%d" % (j % 37): (Yielding(1.0), 2),
                    "t%d" % tid: Yielding(j),
                })
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    sd = s.state_dict()
    names = list(sd["names"])
    assert len(names) == len(set(names)) == 1 + 37 + n_threads
    rows = dict(zip(names, np.asarray(sd["moments"])))
    assert rows["shared"][0] == n_threads * n_adds
    assert rows["shared"][1] == pytest.approx(sum(range(n_threads)) / n_threads, rel=1e-12)
    assert sum(rows["k%d" % i][0] for i in range(37)) == 2 * n_threads * n_adds
    for t in range(n_threads):
        assert rows["t%d" % t][0] == n_adds
        assert rows["t%d" % t][1] == pytest.approx((n_adds - 1) / 2, rel=1e-12)
    # What we save loads back, through state_dict and through Chainer's serializers.
    again = DictSummary.from_state_dict(sd)
    assert again.compute_mean() == s.compute_mean()
    assert_round_trips(s)  # the same two ways, every float64 of the state compared


def test_threads_sharing_a_summary_lose_nothing(fast_switching):
    n_threads, n_adds = 4, 2000
    s = Summary()

    def work(tid):
        for _ in range(n_adds):
            s.add(Yielding(tid), weight=Yielding(1))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    row = s._state.moments()[0]
    assert row[0] == n_threads * n_adds
    assert row[1] == pytest.approx(1.5, rel=1e-12)


def test_readers_in_other_threads_see_whole_adds(fast_switching):
    s = DictSummary()
    stop = threading.Event()
    bad = []

    def reader():
        while not stop.is_set():
            sd = s.state_dict()
            if len(sd["names"]) != len(np.asarray(sd["moments"])):
                bad.append(sd)
            w = np.asarray(sd["moments"])[:, 0] if len(sd["names"]) else []
            if len(set(np.asarray(w).tolist())) > 1:  # every add() has every key
                bad.append(sd)

    r = threading.Thread(target=reader)
    r.start()
    try:
        for j in range(2000):
            s.add({"a": Yielding(j), "b": Yielding(1), "c%d" % (j % 1): Yielding(2)})
    finally:
        stop.set()
        r.join()
    assert not bad


# -- set_num_threads arguments ---------------------------------------------------

@pytest.fixture
def restore_threads():
    n = fusedmetrics.get_num_threads()
    yield
    fusedmetrics.set_num_threads(n)


@pytest.mark.parametrize("bad", [1.5, "2", 2.0, None, np.float64(3)])
def test_set_num_threads_rejects_non_integers(bad, restore_threads):
    before = fusedmetrics.get_num_threads()
    with pytest.raises(TypeError, match="set_num_threads: n must be an integer"):
        fusedmetrics.set_num_threads(bad)
    assert fusedmetrics.get_num_threads() == before


@pytest.mark.parametrize("bad", [1025, 10**6, 2**31, 2**63, 2**100])
def test_set_num_threads_rejects_absurd_counts(bad, restore_threads):
    before = fusedmetrics.get_num_threads()
    with pytest.raises(ValueError, match="at most 1024"):
        fusedmetrics.set_num_threads(bad)
    assert fusedmetrics.get_num_threads() == before


def test_set_num_threads_accepts_index_types(restore_threads):
    fusedmetrics.set_num_threads(np.int64(3))
    assert fusedmetrics.get_num_threads() == 3
    fusedmetrics.set_num_threads(True)
    assert fusedmetrics.get_num_threads() == 1
    fusedmetrics.set_num_threads(1024)
    assert fusedmetrics.get_num_threads() == 1024


@pytest.mark.parametrize("k", [2**63, 2**64, 10**30])
def test_huge_k_gives_a_clear_value_error(k):
    y = np.zeros((4, 3), np.float32)
    t = np.zeros(4, np.int64)
    with pytest.raises(ValueError, match="k must be"):
        fusedmetrics.accuracy_counts(y, t, k=k)


def test_largest_k_is_accepted():
    y = np.zeros((4, 3), np.float32)
    t = np.zeros(4, np.int64)
    assert fusedmetrics.accuracy_counts(y, t, k=2**63 - 1).tolist() == [4, 4]


# -- subprocess checks: a regression must fail, never hang -------------------------

def run_python(code, timeout):
    env = dict(os.environ, PYTHONPATH=PKG_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        pytest.fail("the child process hung (killed after %ss); output so far: %r" % (timeout, e.stdout))


def test_thread_creation_failure_raises_instead_of_hanging():
    result = run_python("""
        import resource
        import numpy as np
        import fusedmetrics

        y = np.zeros((1 << 22, 16), np.float32)  # 256 MiB: enough work for every thread
        t = np.zeros(1 << 22, np.int64)
        with open("/proc/self/status") as f:
            vm = [int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:")][0]
        # Room for 200 MiB more: far less than 1000 thread stacks.
        resource.setrlimit(resource.RLIMIT_AS, (vm + (200 << 20), resource.RLIM_INFINITY))
        fusedmetrics.set_num_threads(1000)
        try:
            print("counts", fusedmetrics.accuracy_counts(y, t).tolist())
        except RuntimeError as e:
            print("error", e)
        # The pool is usable again with a sane thread count.
        fusedmetrics.set_num_threads(2)
        print("after", fusedmetrics.accuracy_counts(y, t).tolist())
    """, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("error") and "thread" in lines[0], lines
    assert lines[1] == "after [4194304, 4194304]", lines


def test_thread_queries_do_not_wait_for_a_running_call():
    # The long call would take minutes; the child checks that get_num_threads,
    # set_num_threads and build_info all return while it is still running, then exits.
    result = run_python("""
        import os, threading, time
        import numpy as np
        import fusedmetrics

        fusedmetrics.set_num_threads(2)
        row = np.zeros((1, 64), np.float32)
        y = np.broadcast_to(row, (1 << 40, 64))  # zero-stride: huge work, no memory
        t = np.broadcast_to(np.zeros(1, np.int64), (1 << 40,))
        started, finished = threading.Event(), threading.Event()

        def long_call():
            started.set()
            fusedmetrics.accuracy_counts(y, t)
            finished.set()

        th = threading.Thread(target=long_call, daemon=True)
        th.start()
        started.wait()
        time.sleep(0.5)  # let it enter the kernels (it releases the GIL there)
        n = fusedmetrics.get_num_threads()
        info = fusedmetrics.build_info()
        fusedmetrics.set_num_threads(2)
        print("returned", n, info["num_threads"], finished.is_set(), th.is_alive(), flush=True)
        os._exit(0)
    """, timeout=90)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["returned", "2", "2", "False", "True"], result.stdout
