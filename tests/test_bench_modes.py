"""Harness call patterns (back to back, loop) and the class sweep. No timing is asserted."""
import json

import pytest

from fusedmetrics.bench.__main__ import main
from fusedmetrics.bench.data import SWEEP, input_bytes, parse_classes, sweep_shapes
from fusedmetrics.bench.timing import Candidate, MemoryGap, measure


def test_loop_mode_runs_the_gap_before_every_timed_call():
    events = []
    cands = [Candidate("a", lambda i: events.append("a")), Candidate("b", lambda i: events.append("b"))]
    timings = measure(cands, repeat=3, warmup=1, gap=lambda: events.append("gap"))
    # Every call (calibration, warm-up and timed rounds) follows its own gap, one call per sample.
    calls = [e for e in events if e != "gap"]
    assert len(calls) == 2 * (1 + 1 + 3)
    assert all(events[i] == "gap" for i in range(0, len(events), 2))
    assert all(t.calls_per_sample == 1 and len(t.samples_s) == 3 for t in timings.values())


def test_back_to_back_repeats_short_calls_inside_a_sample():
    timings = measure([Candidate("noop", lambda i: None)], repeat=2, warmup=0, min_sample_s=0.001)
    assert timings["noop"].calls_per_sample > 1


@pytest.mark.parametrize("slow_calls", [1, 2])
def test_slow_first_calls_do_not_set_the_sample_length(slow_calls):
    # First calls 1000x slower than the rest (a plan measuring its kernels, fresh pages) must not
    # leave the candidate timed one cold call per sample.
    import time
    made = []

    def call(i):
        made.append(i)
        if len(made) <= slow_calls:
            time.sleep(0.02)

    timings = measure([Candidate("planned", call), Candidate("noop", lambda i: made.append(i))],
                      repeat=2, warmup=1, min_sample_s=0.005)
    assert timings["planned"].calls_per_sample > 100
    # Calibration blocks included, every call got the next index of the one shared counter.
    assert made == list(range(len(made)))


def test_memory_gap_calibrates_to_a_bounded_length():
    gap = MemoryGap(target_s=0.002, llc_bytes=1 << 20, max_bytes=64 << 20)
    assert 0 < gap.elements <= gap.src.size
    assert gap.measured_s > 0
    gap()  # callable again


def test_class_sweep_shapes_reach_the_minimum_size():
    assert parse_classes("sweep") == SWEEP == (2, 3, 5, 8, 10, 16, 20, 32, 64, 100, 1000, 32000)
    assert parse_classes("2, 10") == (2, 10)
    for bad in ("", "0", "x"):
        with pytest.raises(ValueError, match="--classes"):
            parse_classes(bad)
    shapes = sweep_shapes(SWEEP, "float32", "int32", 640e6)
    for n, c in shapes:
        assert n % 64 == 0
        assert input_bytes(n, c, "float32", "int32") >= 640e6 > input_bytes(n - 64, c, "float32", "int32")


def test_accuracy_suite_reports_both_modes(tmp_path):
    path = tmp_path / "modes.json"
    rc = main(["--suite", "accuracy", "--quick", "--repeat", "1", "--warmup", "0", "--no-progress",
               "--classes", "3,20", "--min-mb", "1", "--mode", "back-to-back,loop", "--gap-ms", "1",
               "--json", str(path)])
    assert rc == 0
    doc = json.loads(path.read_text())
    results = doc["suites"]["accuracy"]["results"]
    assert [(r["C"], r["mode"]) for r in results] == [(3, "back-to-back"), (3, "loop"),
                                                       (20, "back-to-back"), (20, "loop")]
    for r in results:
        assert r["pct_of_read_ceiling"] > 0
        assert ("gap_ms" in r) == (r["mode"] == "loop")
    assert doc["options"]["modes"] == ["back-to-back", "loop"]


def test_bad_mode_is_a_usage_error():
    with pytest.raises(SystemExit):
        main(["--suite", "accuracy", "--mode", "sideways", "--no-progress"])
