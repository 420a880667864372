"""Train a small MLP on scikit-learn's digits with pytorch-pfn-extras and fusedmetrics.

    python examples/train_digits.py --epochs 5
    torchrun --nproc_per_node 2 examples/train_digits.py --epochs 5   # gloo, DistributedEvaluator

The 1,797 8x8 images ship with scikit-learn: nothing is downloaded. Runs on the CPU.
"""
import argparse
import gc
import json
import os

import torch
import torch.distributed as dist
import pytorch_pfn_extras as ppe
from pytorch_pfn_extras.training import extensions as ppe_ext
from sklearn.datasets import load_digits

import fusedmetrics
from fusedmetrics import ppe as fmppe


class MLP(torch.nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))

    def forward(self, x, t):
        y = self.net(x)
        loss = torch.nn.functional.cross_entropy(y, t)
        counts = fusedmetrics.accuracy_counts(y, t)  # exact int64 [correct, total], read in place
        ppe.reporting.report({"loss": loss, "correct": counts[0], "total": counts[1]}, self)
        return loss


def datasets(seed=0):
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    t = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, t = x[order], t[order]
    n_train = 1400
    return (torch.utils.data.TensorDataset(x[:n_train], t[:n_train]),
            torch.utils.data.TensorDataset(x[n_train:], t[n_train:]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", default="result")
    args = parser.parse_args(argv)

    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    rank, size = 0, 1
    if distributed:
        dist.init_process_group("gloo")
        rank, size = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    train, test = datasets()
    # Contiguous validation shards (uneven is fine: the evaluator merges exactly).
    lo, hi = rank * len(test) // size, (rank + 1) * len(test) // size
    test = torch.utils.data.Subset(test, range(lo, hi))
    train_loader = torch.utils.data.DataLoader(train, batch_size=args.batch_size, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test, batch_size=128)

    net = MLP()
    # Training steps go through DDP; the manager and the evaluator see the MLP itself, so its
    # reports are named main/... (registered under DDP they would be mainmodule/...) and
    # evaluation, whose batch counts may differ between ranks, starts no DDP collective.
    model = torch.nn.parallel.DistributedDataParallel(net) if distributed else net
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    manager = ppe.training.ExtensionsManager(net, optimizer, args.epochs, iters_per_epoch=len(train_loader),
                                             out_dir=args.out if rank == 0 else f"{args.out}/rank{rank}")
    evaluator_cls = fmppe.DistributedEvaluator if distributed else fmppe.Evaluator
    manager.extend(evaluator_cls(test_loader, net), trigger=(1, "epoch"))
    manager.extend(fmppe.MicroAverage("main/correct", "main/total", "main/accuracy"), trigger=(1, "iteration"))
    manager.extend(fmppe.MicroAverage("validation/main/correct", "validation/main/total",
                                      "validation/main/accuracy"), trigger=(1, "iteration"))
    log = ppe_ext.LogReport()
    manager.extend(log)
    if rank == 0:
        manager.extend(ppe_ext.PrintReport(["epoch", "main/loss", "main/accuracy", "validation/main/loss",
                                            "validation/main/accuracy"]))
    fmppe.install_ppe_reporter()  # LogReport's own summaries: exact too
    while not manager.stop_trigger:
        for x, t in train_loader:
            with manager.run_iteration():
                optimizer.zero_grad()
                model(x, t).backward()
                optimizer.step()
    if distributed:
        # DDP's reducer holds the gloo process group: freed after destroy_process_group (at
        # exit), its destructor waited forever on a rank whose peer had left. Free it first.
        del model
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
    return log.log


if __name__ == "__main__":
    entries = main()
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(entries[-1], default=float))
