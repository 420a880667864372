"""Opt-in: make Chainer itself use fusedmetrics' Summary / DictSummary.

Chainer's LogReport, PlotReport, Evaluator, ParameterStatistics and the
min/max/early-stopping triggers all create ``chainer.reporter.DictSummary()``
through the module attribute at run time, so pointing that attribute at ours is
enough for them to get exact statistics and the C++/CUDA accumulation. Imports
Chainer only when called.
"""
from ._class_swap import ClassSwap
from .summary import DictSummary, Summary

__all__ = ["install_chainer_reporter", "uninstall_chainer_reporter"]


def _targets():
    import chainer
    import chainer.reporter

    return [(chainer.reporter, "DictSummary", DictSummary), (chainer.reporter, "Summary", Summary),
            (chainer, "DictSummary", DictSummary), (chainer, "Summary", Summary)]


_swap = ClassSwap(_targets)


def install_chainer_reporter():
    """Points ``chainer.reporter.DictSummary`` / ``Summary`` and ``chainer.DictSummary`` /
    ``chainer.Summary`` at fusedmetrics' classes. Calling it again does nothing.
    Summaries created before the call stay Chainer's."""
    _swap.install()


def uninstall_chainer_reporter():
    """Restores Chainer's own classes (no-op when not installed)."""
    _swap.uninstall()

