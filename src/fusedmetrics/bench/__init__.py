"""The fusedmetrics benchmark harness: ``python -m fusedmetrics.bench`` / ``fusedmetrics-bench``.

Suites (one module each): ``accuracy`` (fused counts against numpy's argmax path, Chainer's
``F.accuracy`` and, on a GPU, CuPy's argmax path), ``summary`` (``DictSummary.add`` against
Chainer's), ``evaluator`` (per-batch Evaluator overhead against Chainer's) and ``bandwidth`` (the
memory ceilings the kernels are compared to).

Every figure is a median over repeats after warm-up, with the implementations interleaved in the
same loop, and every ratio is computed from medians of the same run. Before anything is timed, each
implementation's result is checked against the baseline; a mismatch aborts that suite.

Only numpy is required. Chainer, CuPy and matplotlib are optional: what needs a missing one is
skipped with a one-line note.
"""
from .runner import run

__all__ = ["run"]
