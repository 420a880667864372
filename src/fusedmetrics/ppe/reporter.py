"""Opt-in: make pytorch-pfn-extras itself create fusedmetrics' Summary / DictSummary.

ppe's LogReport, PlotReport, Evaluator, DistributedEvaluator, ParameterStatistics and
the min/max/early-stopping triggers create ``reporting.DictSummary()`` through the
module attribute at run time, so pointing it at ours is enough (ppe's
DistributedEvaluator then pickles ours through ``all_gather_object`` and adds them
with ``sum``, which works, exactly, but not in one packed collective: use
``fusedmetrics.ppe.DistributedEvaluator`` for that). Imports ppe only when called.
"""
from .._class_swap import ClassSwap
from .summary import DictSummary, Summary

__all__ = ["install_ppe_reporter", "uninstall_ppe_reporter"]


def _targets():
    from pytorch_pfn_extras import reporting

    return [(reporting, "DictSummary", DictSummary), (reporting, "Summary", Summary)]


_swap = ClassSwap(_targets)


def install_ppe_reporter():
    """Points ``pytorch_pfn_extras.reporting.DictSummary`` / ``Summary`` at ours.
    Calling it again does nothing; summaries created before the call stay ppe's."""
    _swap.install()


def uninstall_ppe_reporter():
    """Restores ppe's own classes (no-op when not installed)."""
    _swap.uninstall()
