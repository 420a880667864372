"""Splitting a stream anywhere and merging the parts (Chan) equals one summary
over the whole stream, in any merge order."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusedmetrics import _core
from fusedmetrics.summary import DictSummary

values = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
weights = st.one_of(st.integers(1, 5), st.floats(0.01, 10.0))
items = st.tuples(st.sampled_from(["a", "b", "c"]), values, weights)
streams = st.lists(items, min_size=1, max_size=60)


def summarize(stream):
    s = DictSummary()
    for key, x, w in stream:
        s.add({key: (x, w)})
    return s


def close(got, want):
    assert got["names"] == want["names"]
    np.testing.assert_array_equal(got["integer_weights"], want["integer_weights"])
    g, w = got["moments"], want["moments"]
    np.testing.assert_allclose(g[:, 0], w[:, 0], rtol=1e-12)
    np.testing.assert_allclose(g[:, 1], w[:, 1], rtol=1e-12, atol=1e-12 * np.abs(w[:, 1]).max(initial=1.0))
    # M2: relative to its scale (a tiny M2 next to a huge mean is limited by the mean's rounding)
    scale = w[:, 2] + w[:, 0] * np.maximum(np.abs(w[:, 1]), 1.0) ** 2 * 1e-4
    assert np.all(np.abs(g[:, 2] - w[:, 2]) <= 1e-12 * scale + 1e-300)


@settings(max_examples=150, deadline=None)
@given(streams, st.data())
def test_split_and_merge_matches_whole(stream, data):
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), min_size=1, max_size=3)))
    bounds = [0] + cuts + [len(stream)]
    parts = [summarize(stream[lo:hi]) for lo, hi in zip(bounds, bounds[1:])]
    whole = summarize(stream).state_dict()
    # In stream order, keys appear first-seen: merge left to right keeps the order.
    merged = DictSummary()
    for p in parts:
        merged.merge(p)
    close(merged.state_dict(), whole)
    # Any other order: same statistics per key (order of names may differ).
    order = data.draw(st.permutations(range(len(parts))))
    shuffled = DictSummary()
    for i in order:
        shuffled = shuffled + parts[i]
    sd = shuffled.state_dict()
    index = [sd["names"].index(n) for n in whole["names"]]
    close({"names": whole["names"], "moments": sd["moments"][index],
           "integer_weights": sd["integer_weights"][index]}, whole)


def test_merge_moment_stack_is_chan_in_order():
    stack = np.array([[[1.0, 2.0, 0.0, 9.0], [0.0, 7.0, 0.0, 9.0], [2.0, 1.0, 0.5, 9.0]],
                      [[3.0, 4.0, 2.0, 9.0], [0.0, 5.0, 0.0, 9.0], [0.0, 0.0, 0.0, 9.0]]])
    out = _core.merge_moment_stack(stack)
    # W = 4, mean = 2 + 2 * 3/4, M2 = 0 + 2 + 2**2 * 1 * 3/4; both empty keeps the first row
    # (as fm::moments_merge does); an empty second row leaves the first unchanged.
    np.testing.assert_array_equal(out, [[4.0, 3.5, 5.0], [0.0, 7.0, 0.0], [2.0, 1.0, 0.5]])
    # The same bits as DictSummary.merge, which runs the same C++ function.
    a = DictSummary.from_state_dict({"names": ["k"], "moments": stack[0, :1, :3],
                                     "integer_weights": [True]})
    a.merge(DictSummary.from_state_dict({"names": ["k"], "moments": stack[1, :1, :3],
                                         "integer_weights": [True]}))
    assert a.state_dict()["moments"].tobytes() == out[:1].tobytes()


def test_merge_moment_stack_shapes():
    assert _core.merge_moment_stack(np.zeros((0, 2, 3))).tolist() == [[0.0, 0.0, 0.0]] * 2
    assert _core.merge_moment_stack(np.zeros((3, 0, 4))).shape == (0, 3)
    with pytest.raises(ValueError, match=r"\(P, K, C\) with C >= 3; got \(2, 2\)"):
        _core.merge_moment_stack(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"got \(1, 2, 2\)"):
        _core.merge_moment_stack(np.zeros((1, 2, 2)))
