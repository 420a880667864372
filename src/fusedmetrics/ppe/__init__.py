"""Drop-ins for pytorch-pfn-extras 0.9: swap the imports, keep the logs, get exact statistics.

- ``Summary``, ``DictSummary``: ``ppe.reporting``'s API on fusedmetrics' exact state.
- ``MicroAverage``, ``Evaluator``, ``DistributedEvaluator``: ``ppe.training.extensions``' ones.
- ``install_ppe_reporter()`` / ``uninstall_ppe_reporter()``: make ppe's own reporter, LogReport
  and evaluators use our ``DictSummary``.

Importing this package imports neither torch nor ppe; the extensions do, on first use.
Each class's docstring lists where it deliberately differs from ppe.
"""
from .summary import DictSummary, Summary
from .reporter import install_ppe_reporter, uninstall_ppe_reporter

__all__ = ["DictSummary", "DistributedEvaluator", "Evaluator", "MicroAverage", "Summary",
           "install_ppe_reporter", "uninstall_ppe_reporter"]

_LAZY = {"MicroAverage": "micro_average", "Evaluator": "evaluator", "DistributedEvaluator": "evaluator"}


def __getattr__(name):  # the extensions subclass ppe's, which imports torch
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
