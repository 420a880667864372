"""Opt-in: make pytorch-pfn-extras itself create fusedmetrics' Summary / DictSummary.

ppe's LogReport, PlotReport, Evaluator, DistributedEvaluator, ParameterStatistics and
the min/max/early-stopping triggers create ``reporting.DictSummary()`` through the
module attribute at run time, so pointing it at ours is enough (ppe's
DistributedEvaluator then pickles ours through ``all_gather_object`` and adds them
with ``sum``, which works, exactly, but not in one packed collective: use
``fusedmetrics.ppe.DistributedEvaluator`` for that). Imports ppe only when called.
"""
from .summary import DictSummary, Summary

__all__ = ["install_ppe_reporter", "uninstall_ppe_reporter"]

_originals = None  # {(module, name): original} while installed


def _targets():
    from pytorch_pfn_extras import reporting

    return [(reporting, "DictSummary", DictSummary), (reporting, "Summary", Summary)]


def install_ppe_reporter():
    """Points ``pytorch_pfn_extras.reporting.DictSummary`` / ``Summary`` at ours.
    Calling it again does nothing; summaries created before the call stay ppe's."""
    global _originals
    if _originals is not None:
        return
    targets = _targets()
    _originals = {(module, name): getattr(module, name) for module, name, _ in targets}
    for module, name, ours in targets:
        setattr(module, name, ours)


def uninstall_ppe_reporter():
    """Restores ppe's own classes (no-op when not installed)."""
    global _originals
    if _originals is None:
        return
    for (module, name), original in _originals.items():
        setattr(module, name, original)
    _originals = None
