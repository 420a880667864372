"""Kernel choice for the CPU accuracy counts: measured (the default) or a fixed heuristic.

Each call shape's plan has candidate (kernel, thread cap) pairs: the active ISA build's
kernels and those of the builds below it, each with all, half or one of the
``get_num_threads()`` threads. In ``"measure"`` mode a plan whose calls read at least
1 MiB times its pairs on the caller's own calls (interleaved, 3 rounds; a pair more
than 2x slower than the best is not timed again; exploring pauses while the time lost
beyond the heuristic's choice exceeds 20% of the planning calls' time, and stops past
2 s) and keeps the lowest median; leaving the heuristic's pair takes a 10% win that
holds over three more alternate timings of the two. Every pair gives the same counts, so results never
depend on the choice. Decisions are shared process-wide by signature (dtypes, C,
layout, k, ignore label or not, log2 of the bytes read, thread setting, active ISA)
and can be saved and loaded as plain data. ``"heuristic"`` mode runs each ISA
build's first candidate with the thread setting and times nothing.
``FUSEDMETRICS_PLANNER=heuristic|measure`` sets the mode at import.
"""
import operator

from . import _core

_MODES = ("heuristic", "measure")
_WISDOM_VERSION = 1


def get_planner():
    """The planner mode: ``"measure"`` or ``"heuristic"``."""
    return _core.planner_mode()


def set_planner(mode):
    """Sets the planner mode (from the next call on): ``"measure"`` times the candidate
    kernels on real calls and keeps the fastest; ``"heuristic"`` runs the fixed choice
    and times nothing. Plans made before choose again under the new mode."""
    if mode not in _MODES:
        raise ValueError("set_planner: mode must be 'heuristic' or 'measure'; got %r" % (mode,))
    _core.set_planner_mode(mode)


def planner_decisions():
    """The decisions made or loaded so far: ``{signature: {"kernel", "max_threads",
    "median_s", "heuristic_s", "planning_calls", "overhead_s"}}`` (times in seconds, 0 for
    loaded ones; ``overhead_s`` is the planning calls' time beyond the heuristic pair's)."""
    return _core.planner_wisdom()


def planner_wisdom():
    """The decisions as plain data to save (``json.dumps`` takes it) and pass to
    ``load_planner_wisdom`` in a later process: ``{"version": 1, "decisions":
    {signature: {"kernel": name, "max_threads": n}}}``."""
    decisions = {sig: {"kernel": d["kernel"], "max_threads": d["max_threads"]}
                 for sig, d in _core.planner_wisdom().items()}
    return {"version": _WISDOM_VERSION, "decisions": decisions}


def load_planner_wisdom(wisdom):
    """Adds saved decisions (``planner_wisdom()``'s dict): plans of those signatures then
    skip timing. A kernel name this build does not offer for a signature is ignored
    there (that plan times its candidates). Malformed data raises TypeError/ValueError
    and loads nothing."""
    if not isinstance(wisdom, dict) or wisdom.get("version") != _WISDOM_VERSION:
        raise ValueError("load_planner_wisdom: expected a dict with version %d, as planner_wisdom() returns"
                         % _WISDOM_VERSION)
    decisions = wisdom.get("decisions")
    if not isinstance(decisions, dict):
        raise TypeError("load_planner_wisdom: 'decisions' must be a dict of signature -> decision")
    entries = {}
    for sig, d in decisions.items():
        if not isinstance(sig, str) or not isinstance(d, dict):
            raise TypeError("load_planner_wisdom: each decision must be str -> dict; got %r" % (sig,))
        kernel, threads = d.get("kernel"), d.get("max_threads")
        if not isinstance(kernel, str):
            raise TypeError("load_planner_wisdom: %s: 'kernel' must be a str" % sig)
        try:
            threads = operator.index(threads)
        except TypeError:
            raise TypeError("load_planner_wisdom: %s: 'max_threads' must be an integer" % sig) from None
        if not 0 <= threads <= 1024:
            raise ValueError("load_planner_wisdom: %s: 'max_threads' must be in [0, 1024]" % sig)
        entries[sig] = (kernel, threads)
    _core.load_planner_wisdom(entries)


def clear_planner_wisdom():
    """Forgets every decision: plans made from now on time their candidates again."""
    _core.clear_planner_wisdom()
