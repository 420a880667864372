"""Evaluator and DistributedEvaluator for pytorch-pfn-extras, on fusedmetrics' DictSummary."""

import torch.distributed as dist
from pytorch_pfn_extras import reporting
from pytorch_pfn_extras.training.extensions import evaluator as _ppe_eval

from ..multi_node import StateAggregator
from ..multi_node._aggregate import report_local_failure
from ._torch_comm import TorchComm
from .summary import DictSummary

__all__ = ["DistributedEvaluator", "Evaluator"]


class Evaluator(_ppe_eval.Evaluator):
    """Drop-in for ``ppe.training.extensions.Evaluator``: the same arguments
    (``iterator``, ``target``, ``eval_hook``, ``eval_func``, ``progress_bar=``,
    ``metrics=``), trigger, name, priority, eval mode and report; the observations
    are accumulated in ``fusedmetrics.ppe.DictSummary``.

    Deliberate differences from ppe: exact float64 means (see
    ``fusedmetrics.ppe.summary``); results are ``numpy.float64`` for host values and
    0-d float64 tensors on the device for CUDA values (ppe: the input's type).
    """

    def _local_summary(self):
        """Runs the evaluation loop over this process's iterator into a DictSummary."""
        iterator = self._iterators["main"]
        if self.eval_hook:
            self.eval_hook(self)
        summary = DictSummary()
        status = _ppe_eval.IterationStatus(len(iterator))
        bar = (_ppe_eval._IteratorProgressBar(name=self.name or self.default_name, iterator=status)
               if self._progress_bar else None)
        last = len(iterator) - 1
        with _ppe_eval._in_eval_mode(self._targets.values()):
            for idx, batch in enumerate(iterator):
                status.current_position = idx
                observation = {}
                with reporting.report_scope(observation):
                    outs = self._call_eval_func(batch)
                    for metric in self._metrics:
                        metric(batch, outs, idx == last)
                summary.add(observation)
                if bar is not None:
                    bar.update()
        if bar is not None:
            bar.close()
        return summary

    def _call_eval_func(self, batch):
        if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple is one argument
            return self.eval_func(batch)
        if isinstance(batch, (tuple, list)):
            return self.eval_func(*batch)
        if isinstance(batch, dict):
            return self.eval_func(**batch)
        return self.eval_func(batch)

    def evaluate(self):
        return self._gather_summaries(self._local_summary()).compute_mean()


class DistributedEvaluator(Evaluator):
    """Drop-in for ``ppe.training.extensions.DistributedEvaluator``: every rank
    evaluates its shard and gets the result over all ranks' batches.

    Deliberate differences from ppe: instead of ``all_gather_object`` of pickled
    summaries summed with float ``+``, the ranks' exact float64 states go through
    ONE ``all_gather`` of a packed table (after the first evaluation, or a new key)
    and are merged in rank order with Chan's formula, so every rank gets the same
    bits, whatever the shard sizes (empty ranks included). A rank whose evaluation
    raises still joins that collective: it raises its own error and every other rank
    raises ``fusedmetrics.multi_node.RemoteEvaluationError`` (ppe's other ranks would
    hang). ``group=`` picks a process group (gloo, or NCCL on CUDA devices).
    """

    def __init__(self, iterator, target, eval_hook=None, eval_func=None, *, group=None, **kwargs):
        if not dist.is_initialized():
            raise RuntimeError("PyTorch distributed module is not initialized. "
                               "Initialize process group or use non-distributed Evaluator.")
        if "progress_bar" in kwargs:
            kwargs["progress_bar"] = kwargs["progress_bar"] and dist.get_rank(group) == 0
        super().__init__(iterator, target, eval_hook, eval_func, **kwargs)
        self._aggregator = StateAggregator(TorchComm(group))

    def evaluate(self):
        try:
            local = self._local_summary().exact_state_dict()
        except Exception as exc:  # noqa: BLE001 - every rank must still join the collective
            comm = self._aggregator.comm
            report_local_failure(exc, comm.Get_rank(), comm.Get_size())
            self._aggregator.aggregate(None, failure=exc)
            raise  # (aggregate raised already; kept for clarity)
        merged = self._aggregator.aggregate(local)
        return DictSummary.from_exact_state_dict(merged).compute_mean()

