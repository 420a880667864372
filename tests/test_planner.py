"""The measuring planner (csrc/cpu/planner.*, fusedmetrics/planner.py): which pair it
keeps under injected timings (never real ones: no timed tests), its budget, its size
threshold, the heuristic mode, wisdom, and exact counts during and after planning.
That every candidate kernel counts right on its own is tests/test_accuracy_candidates.py's."""
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fusedmetrics
from fusedmetrics import _accuracy, _core
from reference import top_k_counts

PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fusedmetrics.__file__)))
MAX_CALLS = 400  # far more than any plan needs: pairs x rounds x the planner's own cap


def adversarial_flat(rows, C, dtype, label_dtype, seed, ignore=-1):
    """Scores with NaN, +-inf, ties and -0.0; labels with the ignore label and out-of-range values."""
    rng = np.random.default_rng(seed)
    y = rng.integers(-3, 4, size=(rows, C)).astype(dtype)  # few values: many ties
    y[rng.random((rows, C)) < 0.02] = np.nan
    y[rng.random((rows, C)) < 0.02] = np.inf
    y[rng.random((rows, C)) < 0.02] = -np.inf
    y[rng.random((rows, C)) < 0.05] = -0.0
    t = rng.integers(0, C, size=rows).astype(label_dtype)
    t[rng.random(rows) < 0.05] = ignore
    t[rng.random(rows) < 0.03] = C + 2  # out of range: counted, wrong
    return y, t


class Case:
    """A call over 1 MiB (so the planner plans it) and its reference counts."""

    def __init__(self, y, t, ignore=None, k=1):
        self.y, self.t, self.ignore, self.k = y, t, ignore, k
        self.expected = top_k_counts(y, t, ignore, k)

    def plan(self):
        y, t, y_code, t_code, view, has_ignore, ignore, copied = _accuracy.host_view(self.y, self.t, self.ignore)
        assert not copied
        return _core.AccuracyPlan(y_code, view.N, view.C, view.M, view.y_strides, t_code, view.t_strides,
                                  has_ignore, ignore, self.k)

    def count(self, plan):
        out = np.zeros(2, dtype=np.int64)
        plan.count(self.y, self.t, out)
        np.testing.assert_array_equal(out, self.expected)
        return out


@pytest.fixture(scope="module")
def flat():
    # 30001 rows (not a multiple of any vector width) x (10 float32 + int32 label) = 1.3 MB.
    return Case(*adversarial_flat(30001, 10, np.float32, np.int32, seed=1), ignore=-1)


@pytest.fixture(scope="module")
def flat_other_batch():
    # Another batch size in the same log2-size bucket as `flat`.
    return Case(*adversarial_flat(29001, 10, np.float32, np.int32, seed=2), ignore=-1)


@pytest.fixture(scope="module")
def vertical_top3():
    # Segmentation layout (N, C, H, W), float16, uint8 labels, top-3: 2.2 MB.
    rng = np.random.default_rng(3)
    y = rng.integers(-2, 3, size=(3, 5, 240, 300)).astype(np.float16)
    y[rng.random(y.shape) < 0.03] = np.nan
    y[rng.random(y.shape) < 0.05] = -0.0
    t = rng.integers(0, 7, size=(3, 240, 300)).astype(np.uint8)  # 5, 6: out of range
    t[rng.random(t.shape) < 0.05] = 255
    return Case(y, t, ignore=255, k=3)


@pytest.fixture
def planner():
    """Measure mode, no wisdom, no fake timings; everything restored afterwards."""
    mode = fusedmetrics.get_planner()
    fusedmetrics.set_planner("measure")
    fusedmetrics.clear_planner_wisdom()
    _core._planner_set_fake_timings({})
    yield
    _core._planner_set_fake_timings({})
    fusedmetrics.clear_planner_wisdom()
    fusedmetrics.set_planner(mode)


def plan_until_decided(case, plan):
    """Counts (each checked against the reference) until the plan decides; returns the calls made."""
    for calls in range(1, MAX_CALLS + 1):
        case.count(plan)
        if plan.planner_state()["phase"] == "decided":
            return calls
    raise AssertionError("the plan did not decide in %d calls: %s" % (MAX_CALLS, plan.planner_state()))


def chosen(plan):
    s = plan.planner_state()
    return "%s@%d" % (s["kernel"], s["max_threads"])


def pairs_of(case):
    return case.plan().planner_state()["pairs"]


@pytest.mark.parametrize("seed", range(4))
def test_picks_the_fastest_pair_whatever_their_order(planner, flat, seed):
    pairs = pairs_of(flat)
    assert len(pairs) >= 2
    rng = np.random.default_rng(seed)
    for winner in range(len(pairs)):
        # All within 2x of each other (none dropped), in a shuffled order; the winner 20% ahead
        # of the next (beyond the margin a challenger needs to displace the heuristic's pair).
        times = dict(zip(pairs, 0.010 + 0.001 * rng.permutation(len(pairs))))
        times[pairs[winner]] = 0.008
        _core._planner_set_fake_timings(times)
        fusedmetrics.clear_planner_wisdom()
        plan = flat.plan()
        plan_until_decided(flat, plan)
        assert chosen(plan) == pairs[winner], (times, plan.planner_state())
        for _ in range(3):  # and after the decision, still the reference counts
            flat.count(plan)
        assert plan.planner_state()["source"] == "measured"


def test_a_slow_heuristic_pair_first_still_converges(planner, vertical_top3):
    pairs = pairs_of(vertical_top3)
    times = {p: 0.02 for p in pairs}
    times[pairs[0]] = 5.0   # the heuristic's pair, timed first, is very slow
    times[pairs[-1]] = 0.01  # the last one is the fastest
    _core._planner_set_fake_timings(times)
    plan = vertical_top3.plan()
    plan_until_decided(vertical_top3, plan)
    assert chosen(plan) == pairs[-1]


def test_a_pair_over_twice_the_best_is_timed_once(planner, flat):
    pairs = pairs_of(flat)
    times = {p: 0.010 for p in pairs}
    slow = pairs[len(pairs) // 2]
    times[slow] = 0.025
    _core._planner_set_fake_timings(times)
    plan = flat.plan()
    calls_before = _core._planner_timed_calls()
    plan_until_decided(flat, plan)
    timed = plan.planner_state()["timed_calls"]
    assert _core._planner_timed_calls() - calls_before == timed
    # Every other pair 3 rounds, the slow one once (plus nothing else: within budget).
    assert timed == 3 * (len(pairs) - 1) + 1
    assert chosen(plan) != slow


def test_identical_timings_keep_the_heuristic_pair(planner, flat):
    pairs = pairs_of(flat)
    _core._planner_set_fake_timings({p: 0.01 for p in pairs})
    for _ in range(2):
        fusedmetrics.clear_planner_wisdom()
        plan = flat.plan()
        plan_until_decided(flat, plan)
        assert chosen(plan) == pairs[0]


@pytest.mark.parametrize("challenger, switches", [(0.0095, False), (0.0091, False), (0.0089, True), (0.005, True)])
def test_leaving_the_heuristic_pair_takes_a_ten_percent_win(planner, flat, challenger, switches):
    pairs = pairs_of(flat)
    times = {p: 0.012 for p in pairs}
    times[pairs[0]] = 0.010
    times[pairs[-1]] = challenger
    _core._planner_set_fake_timings(times)
    plan = flat.plan()
    plan_until_decided(flat, plan)
    assert chosen(plan) == (pairs[-1] if switches else pairs[0]), plan.planner_state()


def confirm_with(case, times, after_rounds):
    """Plans with fake `times`; once every pair has had its rounds, the pairs in
    `after_rounds` take the times given there. Returns the plan."""
    pairs = pairs_of(case)
    _core._planner_set_fake_timings(times)
    plan = case.plan()
    for _ in range(MAX_CALLS):
        case.count(plan)
        state = plan.planner_state()
        if state["phase"] == "decided":
            return plan
        if after_rounds and state["timed_calls"] == 3 * len(pairs):
            _core._planner_set_fake_timings(dict(times, **after_rounds))
    raise AssertionError("the plan did not decide: %s" % plan.planner_state())


def test_a_win_is_confirmed_before_leaving_the_heuristic_pair(planner, flat):
    # A 17% win in the rounds that holds in three more alternate timings of the two: taken,
    # after exactly those six extra calls.
    pairs = pairs_of(flat)
    times = {p: 0.013 for p in pairs}
    times[pairs[0]], times[pairs[-1]] = 0.012, 0.010
    plan = confirm_with(flat, times, {})
    assert chosen(plan) == pairs[-1], plan.planner_state()
    assert plan.planner_state()["timed_calls"] == 3 * len(pairs) + 6


def test_a_win_that_does_not_hold_up_keeps_the_heuristic_pair(planner, flat):
    # The same rounds, then the heuristic pair turns out faster (its first timings were the
    # noise): medians over six timings each, 0.010 against 0.01025, are not a 10% win.
    pairs = pairs_of(flat)
    times = {p: 0.013 for p in pairs}
    times[pairs[0]], times[pairs[-1]] = 0.012, 0.010
    plan = confirm_with(flat, times, {pairs[0]: 0.0085})
    assert chosen(plan) == pairs[0], plan.planner_state()
    d = fusedmetrics.planner_decisions()[plan.planner_state()["signature"]]
    assert d["kernel"] + "@%d" % d["max_threads"] == pairs[0]


def test_a_third_pair_does_not_win_on_a_failed_confirmation(planner, flat):
    # The challenger fails its confirmation (slower in its last three timings); a third pair
    # whose three timings beat the heuristic's by the margin is not taken unconfirmed.
    pairs = pairs_of(flat)
    if len(pairs) < 3:
        pytest.skip("needs three pairs")
    times = {p: 0.013 for p in pairs}
    times[pairs[0]], times[pairs[-1]], times[pairs[1]] = 0.012, 0.010, 0.0105
    plan = confirm_with(flat, times, {pairs[-1]: 0.0125})
    assert chosen(plan) == pairs[0], plan.planner_state()


def test_tied_fastest_pairs_choose_the_earlier(planner, flat):
    pairs = pairs_of(flat)
    if len(pairs) < 3:
        pytest.skip("needs three pairs")
    times = {p: 0.012 for p in pairs}
    times[pairs[1]] = times[pairs[-1]] = 0.010
    _core._planner_set_fake_timings(times)
    plan = flat.plan()
    plan_until_decided(flat, plan)
    assert chosen(plan) == pairs[1]


def test_overhead_beyond_the_heuristic_stays_within_budget(planner, flat):
    # Every other pair 1.9x the heuristic's (not dropped): exploring costs, so it is paced.
    pairs = pairs_of(flat)
    times = {p: 0.019 for p in pairs}
    times[pairs[0]] = 0.010
    _core._planner_set_fake_timings(times)
    plan = flat.plan()
    plan_until_decided(flat, plan)
    assert chosen(plan) == pairs[0]
    d = fusedmetrics.planner_decisions()[plan.planner_state()["signature"]]
    planning_time = d["overhead_s"] + d["planning_calls"] * 0.010  # timed calls' total
    # The budget: 20% of the planning calls' time plus 50 ms, exceeded by at most one call's excess.
    assert d["overhead_s"] <= 0.2 * planning_time + 0.05 + 0.009 + 1e-9


def test_the_overhead_cap_ends_planning(planner, flat):
    pairs = pairs_of(flat)
    times = {p: 1.9 for p in pairs}
    times[pairs[0]] = 1.0
    _core._planner_set_fake_timings(times)
    plan = flat.plan()
    plan_until_decided(flat, plan)
    d = fusedmetrics.planner_decisions()[plan.planner_state()["signature"]]
    assert 2.0 < d["overhead_s"] <= 2.0 + 0.9 + 1e-9  # stops at the first call past the 2 s cap
    assert chosen(plan) == pairs[0]


def test_small_calls_are_never_planned(planner):
    case = Case(*adversarial_flat(2000, 10, np.float32, np.int64, seed=4))  # 96 kB
    _core._planner_set_fake_timings({p: 0.01 for p in pairs_of(case)})
    plan = case.plan()
    before = _core._planner_timed_calls()
    for _ in range(50):
        case.count(plan)
    assert plan.planner_state()["phase"] == "heuristic"
    assert _core._planner_timed_calls() == before
    assert fusedmetrics.planner_decisions() == {}


def test_heuristic_mode_times_nothing(planner, flat):
    fusedmetrics.set_planner("heuristic")
    assert fusedmetrics.build_info()["planner"] == "heuristic"
    plan = flat.plan()
    before = _core._planner_timed_calls()
    for _ in range(30):
        flat.count(plan)
    s = plan.planner_state()
    assert s["phase"] == "heuristic" and _core._planner_timed_calls() == before
    assert chosen(plan) == s["pairs"][0]
    assert s["kernel"].startswith(_core.active_isa() + "/")
    assert fusedmetrics.planner_decisions() == {}


def test_switching_the_mode_replans_or_reuses(planner, flat):
    pairs = pairs_of(flat)
    _core._planner_set_fake_timings({p: (0.005 if p == pairs[-1] else 0.01) for p in pairs})
    plan = flat.plan()
    plan_until_decided(flat, plan)
    assert chosen(plan) == pairs[-1]
    fusedmetrics.set_planner("heuristic")
    flat.count(plan)
    assert plan.planner_state()["phase"] == "heuristic" and chosen(plan) == pairs[0]
    fusedmetrics.set_planner("measure")
    flat.count(plan)
    s = plan.planner_state()
    assert (s["phase"], s["source"], chosen(plan)) == ("decided", "wisdom", pairs[-1])


def test_set_planner_rejects_unknown_modes():
    with pytest.raises(ValueError, match="heuristic"):
        fusedmetrics.set_planner("fastest")
    with pytest.raises(ValueError):
        _core.set_planner_mode("fastest")


def test_wisdom_round_trips_and_is_reused_for_other_batch_sizes(planner, flat, flat_other_batch):
    pairs = pairs_of(flat)
    _core._planner_set_fake_timings({p: (0.004 if p == pairs[-1] else 0.01) for p in pairs})
    plan_until_decided(flat, flat.plan())
    saved = json.loads(json.dumps(fusedmetrics.planner_wisdom()))
    assert saved["version"] == 1 and len(saved["decisions"]) == 1

    fusedmetrics.clear_planner_wisdom()
    assert fusedmetrics.planner_wisdom()["decisions"] == {}
    fusedmetrics.load_planner_wisdom(saved)
    assert fusedmetrics.planner_wisdom() == saved
    before = _core._planner_timed_calls()
    for case in (flat, flat_other_batch):  # same signature: same log2 size bucket
        plan = case.plan()
        assert plan.planner_state()["signature"] == next(iter(saved["decisions"]))
        case.count(plan)
        s = plan.planner_state()
        assert (s["phase"], s["source"], chosen(plan)) == ("decided", "wisdom", pairs[-1])
    assert _core._planner_timed_calls() == before


def test_wisdom_with_unknown_kernels_or_caps_is_ignored(planner, flat):
    signature = flat.plan().planner_state()["signature"]
    known = pairs_of(flat)[0].split("@")[0]
    for kernel, cap in (("avx2/no_such_kernel", 1), ("avx9/portable", 1), (known, 999)):
        fusedmetrics.clear_planner_wisdom()
        fusedmetrics.load_planner_wisdom({"version": 1, "decisions": {
            signature: {"kernel": kernel, "max_threads": cap},
            "float64/int8/C3/flat/k1/all/2^30B/t2/avx2": {"kernel": kernel, "max_threads": 1},
        }})
        plan = flat.plan()
        flat.count(plan)
        assert plan.planner_state()["phase"] == "planning"


@pytest.mark.parametrize("bad, error", [
    ([], ValueError),
    ({"version": 2, "decisions": {}}, ValueError),
    ({"version": 1, "decisions": []}, TypeError),
    ({"version": 1, "decisions": {"s": {"kernel": 3, "max_threads": 1}}}, TypeError),
    ({"version": 1, "decisions": {"s": {"kernel": "avx2/portable", "max_threads": 1.5}}}, TypeError),
    ({"version": 1, "decisions": {"s": {"kernel": "avx2/portable", "max_threads": -1}}}, ValueError),
    ({"version": 1, "decisions": {"s": "avx2/portable"}}, TypeError),
])
def test_malformed_wisdom_raises_and_loads_nothing(planner, bad, error):
    with pytest.raises(error):
        fusedmetrics.load_planner_wisdom(bad)
    assert fusedmetrics.planner_wisdom()["decisions"] == {}


def test_candidates_stop_at_the_active_isa(planner, isa, flat):
    order = list(_core.usable_isas())
    plan = flat.plan()
    pairs = plan.planner_state()["pairs"]
    assert pairs[0].startswith(isa + "/")
    assert all(order.index(p.split("/")[0]) <= order.index(isa) for p in pairs)
    # Each of them, made the fastest, is kept and counts right.
    for winner in pairs:
        fusedmetrics.clear_planner_wisdom()
        _core._planner_set_fake_timings({p: (0.005 if p == winner else 0.01) for p in pairs})
        plan = flat.plan()
        plan_until_decided(flat, plan)
        assert chosen(plan) == winner
        flat.count(plan)


def test_the_thread_setting_is_part_of_the_signature(planner, flat):
    before = fusedmetrics.get_num_threads()
    try:
        fusedmetrics.set_num_threads(1)
        plan = flat.plan()
        s = plan.planner_state()
        assert "/t1/" in s["signature"] and all(p.endswith("@1") for p in s["pairs"])
        _core._planner_set_fake_timings({p: 0.01 for p in s["pairs"]})
        plan_until_decided(flat, plan)
        fusedmetrics.set_num_threads(2)
        flat.count(plan)  # a new setting: planned afresh under its own signature
        s = plan.planner_state()
        assert "/t2/" in s["signature"] and s["phase"] == "planning"
    finally:
        fusedmetrics.set_num_threads(before)


def test_threads_sharing_a_planning_plan_get_exact_counts(planner, flat):
    pairs = pairs_of(flat)
    _core._planner_set_fake_timings({p: 0.01 + 0.001 * i for i, p in enumerate(reversed(pairs))})
    plan = flat.plan()
    errors = []

    def work():
        try:
            for _ in range(40):
                flat.count(plan)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[0]
    assert plan.planner_state()["phase"] == "decided" and chosen(plan) == pairs[-1]


def test_public_calls_plan_and_report_decisions(planner, flat):
    _core._planner_set_fake_timings({p: 0.01 for p in pairs_of(flat)})
    # Until decided: the calls that takes grow with the pairs (20 on an AVX-512 CPU, 14 on AVX2).
    for _ in range(MAX_CALLS):
        np.testing.assert_array_equal(fusedmetrics.accuracy_counts(flat.y, flat.t, flat.ignore), flat.expected)
        if fusedmetrics.planner_decisions():
            break
    (signature, d), = fusedmetrics.planner_decisions().items()
    assert signature.startswith("float32/int32/C10/flat/k1/ignore/2^20B/")
    assert d["kernel"] + "@%d" % d["max_threads"] == pairs_of(flat)[0] and d["planning_calls"] > 0


def test_the_torch_fast_path_runs_the_planned_kernel(planner, flat):
    torch = pytest.importorskip("torch")
    pairs = pairs_of(flat)
    _core._planner_set_fake_timings({p: (0.005 if p == pairs[-1] else 0.01) for p in pairs})
    y, t = torch.from_numpy(flat.y), torch.from_numpy(flat.t)
    before = _core._planner_timed_calls()

    def torch_plans():
        return [p for p in _accuracy._TORCH_PLANS.values() if p is not False]

    for _ in range(MAX_CALLS):  # until decided, however many pairs this CPU has
        np.testing.assert_array_equal(fusedmetrics.accuracy_counts(y, t, -1).numpy(), flat.expected)
        if any(p.planner_state()["phase"] == "decided" for p in torch_plans()):
            break
    assert _core._planner_timed_calls() > before
    plans = torch_plans()
    states = [p.planner_state() for p in plans if p.planner_state()["timed_calls"] > 0]
    assert len(states) == 1 and states[0]["kernel"] + "@%d" % states[0]["max_threads"] == pairs[-1]


@pytest.mark.parametrize("value, mode", [("heuristic", "heuristic"), ("measure", "measure"), ("bogus", "measure")])
def test_the_environment_variable_sets_the_mode(value, mode):
    env = dict(os.environ, FUSEDMETRICS_PLANNER=value, PYTHONPATH=PKG_ROOT)
    out = subprocess.run([sys.executable, "-c", "import fusedmetrics; print(fusedmetrics.get_planner())"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == mode
