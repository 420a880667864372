"""fusedmetrics.ppe.DistributedEvaluator over torch.distributed (gloo) on one machine."""
import os
import socket
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_pfn_extras")

import torch.multiprocessing as mp  # noqa: E402

DATA = 53  # items; shards are contiguous slices


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Model(torch.nn.Module):
    def __init__(self, fail=False):
        super().__init__()
        self.fail = fail

    def forward(self, x):
        import pytorch_pfn_extras as ppe

        if self.fail:
            raise ValueError("this rank fails")
        ppe.reporting.report({"v": x.to(torch.float64).sum(), "n": len(x),
                              "w": (x.to(torch.float64).mean(), len(x))})


def _values():
    g = torch.Generator().manual_seed(7)
    return torch.randn(DATA, generator=g) * 1e3 + 1e6


def _reporting(fn):
    """fn() under a ppe Reporter, as a manager runs extensions."""
    import pytorch_pfn_extras as ppe

    with ppe.reporting.Reporter():
        return fn()


def _evaluator(cls, values, **kw):
    loader = torch.utils.data.DataLoader(values, batch_size=4)
    return cls(loader, _Model(**kw))


def _worker(rank, size, port, shards, fail_rank, out_path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import torch.distributed as dist

    from fusedmetrics import ppe as fmppe

    dist.init_process_group("gloo", rank=rank, world_size=size)
    try:
        start = sum(shards[:rank])
        ev = _evaluator(fmppe.DistributedEvaluator, _values()[start:start + shards[rank]],
                        fail=rank == fail_rank)
        try:
            result = {k: float(v) for k, v in _reporting(ev).items()}
        except Exception as exc:  # noqa: BLE001 - recorded for the parent
            result = {"error": type(exc).__name__}
        torch.save(result, f"{out_path}.{rank}")
    finally:
        dist.destroy_process_group()


def _run(shards, tmp_path, fail_rank=-1):
    size = len(shards)
    mp.start_processes(_worker, args=(size, _free_port(), shards, fail_rank, str(tmp_path / "r")),
                       nprocs=size, join=True, start_method="spawn")
    return [torch.load(f"{tmp_path / 'r'}.{r}", weights_only=True) for r in range(size)]


def _single_process_reference(shards):
    """One process: each shard's DictSummary, merged in rank order (what every rank must get, bit for bit)."""
    from fusedmetrics import ppe as fmppe

    values, total, start = _values(), fmppe.DictSummary(), 0
    for n in shards:
        ev = _evaluator(fmppe.Evaluator, values[start:start + n])
        total.merge(_reporting(ev._local_summary))
        start += n
    return {k: float(v) for k, v in total.compute_mean().items()}


@pytest.mark.parametrize("shards", [(50, 3), (40, 0, 7)], ids=["50/3", "40/0/7"])
def test_every_rank_gets_the_exact_global_result(shards, tmp_path):
    results = _run(shards, tmp_path)
    want = _single_process_reference(shards)
    assert all(r == want for r in results)  # bit for bit, on every rank
    from fusedmetrics import ppe as fmppe

    whole = {k: float(v) for k, v in _reporting(_evaluator(fmppe.Evaluator, _values()[:sum(shards)])).items()}
    for k, v in whole.items():  # one process over all batches: the same up to rounding
        assert want[k] == pytest.approx(v, rel=1e-14), k


def test_a_failing_rank_makes_all_raise(tmp_path):
    results = _run((20, 20, 13), tmp_path, fail_rank=1)
    assert [r["error"] for r in results] == ["RemoteEvaluationError", "ValueError", "RemoteEvaluationError"]


if __name__ == "__main__":  # spawn re-imports this module by name
    sys.exit(0)
