"""Runs under ``mpiexec -n P``: SemanticSegmentationEvaluator(comm=...) over disjoint shards must
report, on every rank, the values of one process evaluating all the maps. Rank 0 prints
``RESULT pass`` or ``RESULT fail: why``."""
import math
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")

import chainer  # noqa: E402
import chainermn  # noqa: E402
from mpi4py import MPI  # noqa: E402

from fusedmetrics import extensions  # noqa: E402

WORLD = MPI.COMM_WORLD
RANK, SIZE = WORLD.Get_rank(), WORLD.Get_size()


class Fixed(chainer.Link):
    def predict(self, imgs):
        return [np.asarray(img[0] % 4, np.int32) for img in imgs]


def dataset():
    rng = np.random.RandomState(0)
    data = []
    for _ in range(23):
        h, w = rng.randint(2, 7, size=2)
        img = rng.randint(0, 5, size=(1, h, w)).astype(np.int32)
        label = np.where(rng.rand(h, w) < 0.7, img[0] % 4, rng.randint(-1, 4, size=(h, w)))
        data.append((img, label.astype(np.int32)))
    return data


def run(iterator_data, comm, **kwargs):
    it = None if iterator_data is None else chainer.iterators.SerialIterator(
        iterator_data, 4, repeat=False, shuffle=False)
    ev = extensions.SemanticSegmentationEvaluator(it, Fixed(), comm=comm, **kwargs)
    ev.name = "validation"
    with chainer.Reporter():
        return ev()


def same(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 1e-14 * max(abs(a), abs(b))


def main():
    data = dataset()
    want = run(data, None, label_names=("a", "b", "c", "d", "e"))
    bounds = np.linspace(0, len(data), SIZE + 1).astype(int)
    shard = data[bounds[RANK]:bounds[RANK + 1]]
    failures = []
    for comm_kind in ("mpi4py", "chainermn"):
        comm = WORLD if comm_kind == "mpi4py" else chainermn.create_communicator("naive")
        for kwargs in ({"label_names": ("a", "b", "c", "d", "e")}, {}):
            got = run(shard, comm, **kwargs)
            for key, value in got.items():
                if not same(float(value), float(want[key])):
                    failures.append(f"{comm_kind} {kwargs} {key}: {value} != {want[key]}")
            # ChainerCV's pattern: the whole iterator on rank 0, None elsewhere
            got = run(data if RANK == 0 else None, comm, **kwargs)
            for key, value in got.items():
                if not same(float(value), float(want[key])):
                    failures.append(f"root-only {comm_kind} {kwargs} {key}")
    gathered = WORLD.gather(failures, root=0)
    if RANK == 0:
        flat = [f for fs in gathered for f in fs]
        print("RESULT " + ("pass" if not flat else "fail: " + "; ".join(flat[:5])), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
